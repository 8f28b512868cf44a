//! Memory is bounded in the number of images: `saliency` (SmoothGrad too), `classify` and
//! `fool` stream their images in chunks (decode, run, write, drop), and the figures show a
//! bounded number of them, so ten times the images must not take much more memory.
//!
//! The peak is the child's resident high-water mark (`VmHWM`, which Linux reports as
//! `ru_maxrss` when the child is reaped with `wait4`).

#![cfg(target_os = "linux")]

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// Writes `n` small noise PNGs (64×64) into `dir` and returns their paths.
fn small_images(dir: &Path, n: usize) -> Vec<PathBuf> {
    let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
    (0..n)
        .map(|i| {
            let img = image::RgbImage::from_fn(64, 64, |_, _| {
                let mut px = [0u8; 3];
                for c in &mut px {
                    state = state
                        .wrapping_mul(6_364_136_223_846_793_005)
                        .wrapping_add(1_442_695_040_888_963_407);
                    *c = (state >> 56) as u8;
                }
                image::Rgb(px)
            });
            let p = dir.join(format!("img{i:03}.png"));
            img.save(&p).unwrap();
            p
        })
        .collect()
}

/// Runs netlens with `args` then `images`, asserts success, and returns its peak resident
/// memory in KiB.
#[allow(clippy::zombie_processes)] // reaped by wait4, which also gives its rusage
fn peak_kib(args: &[String], images: &[PathBuf], log: &Path) -> u64 {
    let child = Command::new(env!("CARGO_BIN_EXE_netlens"))
        .args(args)
        .args(images)
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(log).unwrap())
        .spawn()
        .expect("run netlens");
    let pid = child.id() as libc::pid_t;
    let mut status = 0;
    // SAFETY: rusage is plain data, filled in by wait4; the child is ours and not yet reaped.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let r = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    assert_eq!(r, pid, "wait4: {}", std::io::Error::last_os_error());
    let ok = libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0;
    assert!(
        ok,
        "netlens {} on {} images failed ({status}): {}",
        args.join(" "),
        images.len(),
        std::fs::read_to_string(log).unwrap_or_default()
    );
    usage.ru_maxrss as u64
}

/// Removes the scratch folder when the test ends, passed or failed.
struct Scratch(PathBuf);

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[test]
fn peak_memory_is_flat_in_the_number_of_images() {
    let dir = std::env::temp_dir().join(format!("netlens-memory-test-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let _cleanup = Scratch(dir.clone());
    let photos = dir.join("photos");
    std::fs::create_dir_all(&photos).unwrap();
    let images = small_images(&photos, 200);
    let log = dir.join("stderr.txt");
    let s = |v: &str| v.to_string();
    let out = |name: &str, n: usize| dir.join(format!("{name}-{n}")).display().to_string();

    let mut report = Vec::new();
    for command in ["saliency", "smoothgrad", "classify", "fool"] {
        let mut peaks = Vec::new();
        for n in [20, 200] {
            let args: Vec<String> = match command {
                "saliency" => vec![s("saliency"), s("--method"), s("vanilla"), s("--out")]
                    .into_iter()
                    .chain([out("saliency", n)])
                    .collect(),
                // SmoothGrad derives noisy copies from each image: streamed all the same.
                "smoothgrad" => vec![
                    s("saliency"),
                    s("--method"),
                    s("smoothgrad"),
                    s("--samples"),
                    s("2"),
                    s("--out"),
                ]
                .into_iter()
                .chain([out("smoothgrad", n)])
                .collect(),
                "classify" => vec![s("classify"), s("--json")],
                _ => {
                    let o = out("fool", n);
                    std::fs::create_dir_all(&o).unwrap();
                    vec![
                        s("fool"),
                        s("--method"),
                        s("fgsm"),
                        s("--untargeted"),
                        s("--out"),
                        o.clone(),
                        s("--figure"),
                        format!("{o}/figure.png"),
                    ]
                }
            };
            peaks.push(peak_kib(&args, &images[..n], &log));
        }
        let (p20, p200) = (peaks[0], peaks[1]);
        report.push(format!(
            "{command}: {} MB for 20 images, {} MB for 200",
            p20 / 1024,
            p200 / 1024
        ));
        let bound = p20 * 3 / 2 + 50 * 1024;
        assert!(
            p200 < bound,
            "{command}: peak {p200} KiB for 200 images against {p20} KiB for 20 (bound {bound} \
             KiB): memory grows with the number of images"
        );
    }
    eprintln!("{}", report.join("\n"));

    // Every image got its outputs; the figures stay bounded and say what they show.
    let sal = Path::new(&out("saliency", 200)).to_path_buf();
    for i in [0, 199] {
        for ext in ["npy", "png", "overlay.png"] {
            assert!(
                sal.join(format!("img{i:03}.{ext}")).is_file(),
                "{ext} of {i}"
            );
        }
    }
    let (w, _) = image::image_dimensions(sal.join("figure.png")).unwrap();
    assert!(w < 5000, "saliency figure is {w} pixels wide");
    let fool = Path::new(&out("fool", 200)).to_path_buf();
    assert!(fool.join("img199.fooling.png").is_file());
    let (_, h) = image::image_dimensions(fool.join("figure.png")).unwrap();
    assert!(h < 6000, "fooling figure is {h} pixels high");
}
