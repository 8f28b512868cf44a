//! Times the fast path's 3×3 stride-1 dense convolutions — im2col + gemm, Winograd F(2,3) and
//! F(4,3) — on the 3×3 layers of VGG16, SqueezeNet 1.1's expand layers and ResNet-50 at
//! 224×224 (random data; timing does not depend on it), and prints each as a share of the
//! direct convolution's FLOPs per second.
//!
//! `cargo run --release --example conv_bench` — environment: `THREADS` (default 2),
//! `IMAGES` (default 1), `NET` (`vgg16`, `squeezenet`, `resnet50`; default all), `REPS`
//! (default 5), `CPU` (1: time CPU seconds, not the wall clock), `ONLY` (0: gemm, 2 or 4: that Winograd tile; default all). The loop runs inside a rayon pool, as the fast path's passes do.

use netlens::fast::kernels::{conv_forward, winograd, Act, ConvGeom, ConvLayer};
use std::time::Instant;

/// Network, input channels, output channels, side, and how many such layers it has.
const LAYERS: [(&str, usize, usize, usize, usize); 18] = [
    ("vgg16", 64, 64, 224, 1),
    ("one", 256, 256, 56, 1),
    ("vgg16", 64, 128, 112, 1),
    ("vgg16", 128, 128, 112, 1),
    ("vgg16", 128, 256, 56, 1),
    ("vgg16", 256, 256, 56, 2),
    ("vgg16", 256, 512, 28, 1),
    ("vgg16", 512, 512, 28, 2),
    ("vgg16", 512, 512, 14, 3),
    ("squeezenet", 16, 64, 55, 2),
    ("squeezenet", 32, 128, 27, 2),
    ("squeezenet", 48, 192, 13, 2),
    ("squeezenet", 64, 256, 13, 2),
    ("resnet50", 64, 64, 56, 3),
    ("resnet50", 128, 128, 28, 3),
    ("resnet50", 256, 256, 14, 5),
    ("resnet50", 512, 512, 7, 3),
    ("vgg16-backward", 64, 3, 224, 0),
];

fn env(name: &str, default: usize) -> Result<usize, String> {
    match std::env::var(name) {
        Ok(v) => v.parse().map_err(|_| format!("{name}={v}: not a count")),
        Err(_) => Ok(default),
    }
}

fn main() -> Result<(), String> {
    let threads = env("THREADS", 2)?.max(1);
    let images = env("IMAGES", 1)?.max(1);
    let reps = env("REPS", 5)?.max(1);
    let net = std::env::var("NET").ok();
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .map_err(|e| e.to_string())?;
    let only = std::env::var("ONLY").ok().and_then(|v| v.parse().ok());
    pool.install(|| run(images, reps, net.as_deref(), only));
    println!("({images} image(s), {threads} thread(s), best of {reps})");
    Ok(())
}

/// Seconds of CPU time this process has used (all threads).
fn cpu_seconds() -> f64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes the timespec it is given.
    unsafe { libc::clock_gettime(libc::CLOCK_PROCESS_CPUTIME_ID, &mut ts) };
    ts.tv_sec as f64 + ts.tv_nsec as f64 * 1e-9
}

/// Best of `reps` calls: wall-clock seconds, or with `CPU=1` the process's CPU seconds (on a
/// loaded machine, with `THREADS=1`, a steadier figure than the wall clock).
fn time(reps: usize, mut f: impl FnMut()) -> f64 {
    let cpu = std::env::var("CPU").is_ok_and(|v| v == "1");
    f();
    (0..reps)
        .map(|_| {
            let (t, c) = (Instant::now(), cpu_seconds());
            f();
            if cpu {
                cpu_seconds() - c
            } else {
                t.elapsed().as_secs_f64()
            }
        })
        .fold(f64::INFINITY, f64::min)
}

fn run(images: usize, reps: usize, net: Option<&str>, only: Option<usize>) {
    println!(
        "{:<11} {:>4} {:>4} {:>4} {:>3}   {:>17} {:>17} {:>17}",
        "net", "cin", "cout", "side", "×", "gemm ms (GF/s)", "F(2,3)", "F(4,3)"
    );
    let mut totals = [0.0f64; 3];
    for &(name, cin, cout, side, count) in &LAYERS {
        if count == 0 || net.is_some_and(|n| n != name) {
            continue;
        }
        let g = ConvGeom {
            cin,
            cout,
            k: 3,
            stride: 1,
            pt: 1,
            pl: 1,
            h: side,
            w: side,
            oh: side,
            ow: side,
        };
        let x: Vec<f32> = (0..images * cin * side * side)
            .map(|i| ((i * 7919) % 1000) as f32 / 500.0 - 1.0)
            .collect();
        let w: Vec<f32> = (0..cout * cin * 9)
            .map(|i| ((i * 104_729) % 1000) as f32 / 5000.0 - 0.1)
            .collect();
        let bias = vec![0.1f32; cout];
        let mut y = vec![0.0f32; images * cout * side * side];
        let mut mask = vec![0u8; y.len()];
        let flops = 2.0 * (images * cin * cout * 9 * side * side) as f64;
        let mut cells = Vec::new();
        for (i, m) in [0, 2, 4].into_iter().enumerate() {
            if only.is_some_and(|o| o != m) {
                cells.push(format!("{:>17}", "-"));
                continue;
            }
            let u = (m > 0).then(|| winograd::transform_weights(&w, cout, cin, m));
            let layer = ConvLayer {
                g: &g,
                weight: &w,
                bias: Some(&bias),
                act: Act::Relu,
                winograd: u.as_deref(),
            };
            let s = time(reps, || {
                conv_forward(&layer, &x, &mut y, Some(&mut mask), images, false)
            });
            totals[i] += s * count as f64;
            cells.push(format!("{:>8.2} ({:>5.0})", s * 1e3, flops / s / 1e9));
        }
        println!(
            "{name:<11} {cin:>4} {cout:>4} {side:>4} {count:>3}   {}",
            cells.join(" ")
        );
    }
    println!(
        "total ms: gemm {:.1}, F(2,3) {:.1}, F(4,3) {:.1}",
        totals[0] * 1e3,
        totals[1] * 1e3,
        totals[2] * 1e3
    );
}
