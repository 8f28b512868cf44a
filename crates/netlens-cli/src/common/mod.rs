//! What every subcommand shares: the allocator settings, progress bars, error lines, image
//! loading and numeric flag parsers here; output-path safety and the writers in `outputs`,
//! model flags and loading (zoo names, ONNX files, the shared-model cache) in `loading`.

mod loading;
mod outputs;

pub use loading::*;
pub use outputs::*;

use anyhow::Result;
use indicatif::{ProgressBar, ProgressStyle};
use netlens::imaging::{self, Placement};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// glibc allocator settings netlens runs under (and gives PyTorch when comparing): freed
/// activations stay in the heap instead of being unmapped and page-faulted back in on every
/// pass. 32 MiB is the largest mmap threshold glibc accepts.
pub const ALLOCATOR_ENV: [(&str, &str); 2] = [
    ("MALLOC_MMAP_THRESHOLD_", "33554432"),
    ("MALLOC_TRIM_THRESHOLD_", "1073741824"),
];

/// Applies [`ALLOCATOR_ENV`] to this process.
pub fn tune_allocator() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only adjusts glibc's allocator parameters; called once at startup,
    // before other threads exist.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 32 << 20);
        libc::mallopt(libc::M_TRIM_THRESHOLD, 1 << 30);
    }
}

/// An error chain as one line: "outer: inner: root".
pub fn one_line(e: &anyhow::Error) -> String {
    let mut parts: Vec<String> = Vec::new();
    for cause in e.chain() {
        let s = cause.to_string();
        if !parts.iter().any(|p| p.contains(&s)) {
            parts.push(s);
        }
    }
    parts.join(": ").replace('\n', " ")
}

/// A spinner on stderr (hidden when stderr is not a terminal).
pub fn spinner(msg: &str) -> ProgressBar {
    let pb = ProgressBar::new_spinner();
    pb.set_style(
        ProgressStyle::with_template("{spinner} {msg} [{elapsed}]")
            .unwrap_or_else(|_| ProgressStyle::default_spinner()),
    );
    pb.set_message(msg.to_string());
    pb.enable_steady_tick(Duration::from_millis(120));
    pb
}

/// A bar over `n` steps on stderr.
pub fn bar(n: u64, msg: &str) -> ProgressBar {
    let pb = ProgressBar::new(n);
    pb.set_style(
        ProgressStyle::with_template("{msg} [{bar:30}] {pos}/{len} {elapsed}<{eta}")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    pb.set_message(msg.to_string());
    pb
}

/// One input image, decoded and fitted to the model.
pub struct InputImage {
    pub path: PathBuf,
    pub original: image::RgbImage,
    pub input: image::RgbImage,
    pub placement: Placement,
}

/// Decodes and fits every image to a model's geometry (pass the model's `spec()`: short side
/// to `spec.resize`, centre crop `spec.input_size`; a bare size resizes and crops to it); the
/// first unreadable one is the error.
pub fn load_images(
    paths: &[PathBuf],
    geometry: impl Into<imaging::Geometry>,
) -> Result<Vec<InputImage>> {
    if paths.is_empty() {
        anyhow::bail!("no image given");
    }
    let g = geometry.into();
    note_inputs(paths.iter().map(PathBuf::as_path));
    paths
        .iter()
        .map(|p| {
            let original = read_image(p)?;
            let (input, placement) = imaging::fit_with(&original, g.resize, g.crop);
            Ok(InputImage {
                path: p.clone(),
                original,
                input,
                placement,
            })
        })
        .collect()
}

/// Decodes one image file, printing on stderr what the user should know about a file that
/// decoded all the same (a PNG cut short after its pixels).
pub fn read_image(path: &Path) -> Result<image::RgbImage> {
    let (img, notes) = imaging::load_rgb_noting(path)?;
    for n in notes {
        eprintln!("warning: {}: {n}", path.display());
    }
    Ok(img)
}

/// Checks, before any work, that every image is a regular file of bounded size (the
/// commands that stream their images decode each only when its chunk comes; a file that is
/// missing, a folder, a FIFO or too large is refused here, before anything is written).
pub fn check_images(paths: &[PathBuf]) -> Result<()> {
    if paths.is_empty() {
        anyhow::bail!("no image given");
    }
    note_inputs(paths.iter().map(PathBuf::as_path));
    for p in paths {
        netlens::files::open_regular(p, imaging::decode::MAX_FILE_BYTES, "images")?;
    }
    Ok(())
}

pub use netlens::streaming::chunk_size;

/// File stem of a path, for output names.
pub fn stem(path: &Path) -> String {
    path.file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "image".into())
}

/// A clap parser of a finite number `x` with `lo ≤ x ≤ hi` (`lo < x` when `open_lo`); NaN and
/// infinity are refused. clap names the flag in the error.
pub fn f64_in(
    lo: f64,
    hi: f64,
    open_lo: bool,
) -> impl Fn(&str) -> std::result::Result<f64, String> + Clone + Send + Sync + 'static {
    move |s: &str| {
        let range = if open_lo {
            format!("{lo} < x ≤ {hi}")
        } else {
            format!("{lo} ≤ x ≤ {hi}")
        };
        match s.trim().parse::<f64>() {
            Ok(x) if x.is_finite() && (x > lo || (!open_lo && x == lo)) && x <= hi => Ok(x),
            Ok(_) => Err(format!("{s} is out of range: give a number with {range}")),
            Err(_) => Err(format!("'{s}' is not a number (give one with {range})")),
        }
    }
}

/// [`f64_in`] for a float32 flag.
pub fn f32_in(
    lo: f64,
    hi: f64,
    open_lo: bool,
) -> impl Fn(&str) -> std::result::Result<f32, String> + Clone + Send + Sync + 'static {
    let p = f64_in(lo, hi, open_lo);
    move |s: &str| p(s).map(|x| x as f32)
}

/// A clap parser of a whole number in `lo..=hi`.
pub fn usize_in(
    lo: usize,
    hi: usize,
) -> impl Fn(&str) -> std::result::Result<usize, String> + Clone + Send + Sync + 'static {
    move |s: &str| match s.trim().parse::<i128>() {
        Ok(x) if x >= lo as i128 && x <= hi as i128 => Ok(x as usize),
        Ok(_) => Err(format!("{s} is out of range {lo}..={hi}")),
        Err(_) => Err(format!("'{s}' is not a whole number in {lo}..={hi}")),
    }
}
