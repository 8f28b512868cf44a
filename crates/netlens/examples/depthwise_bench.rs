//! Times the fast path's depthwise kernels, forward and backward-data, on the depthwise layers
//! of EfficientNet-Lite0 at 224×224 (random data; timing does not depend on it).
//!
//! `cargo run --release --example depthwise_bench` — environment: `THREADS` (default 1),
//! `IMAGES` (default 1), `LAYER` (an index into the table below: time only that layer).
//! The loop runs inside a rayon pool, as the fast path's passes do.

use netlens::fast::kernels::{
    depthwise_backward, depthwise_forward, Act, ConvGeom, DepthwiseLayer,
};
use std::time::Instant;

/// Channels, input side, kernel, stride, and how many such layers Lite0 has.
const LAYERS: [(usize, usize, usize, usize, usize); 12] = [
    (32, 112, 3, 1, 1),
    (96, 112, 3, 2, 1),
    (144, 56, 3, 1, 1),
    (144, 56, 5, 2, 1),
    (240, 28, 5, 1, 1),
    (240, 28, 3, 2, 1),
    (480, 14, 3, 1, 2),
    (480, 14, 5, 1, 1),
    (672, 14, 5, 1, 2),
    (672, 14, 5, 2, 1),
    (1152, 7, 5, 1, 3),
    (1152, 7, 3, 1, 1),
];

fn env(name: &str, default: usize) -> Result<usize, String> {
    match std::env::var(name) {
        Ok(v) => v.parse().map_err(|_| format!("{name}={v}: not a count")),
        Err(_) => Ok(default),
    }
}

fn main() -> Result<(), String> {
    let threads = env("THREADS", 1)?.max(1);
    let images = env("IMAGES", 1)?.max(1);
    let only = std::env::var("LAYER")
        .ok()
        .and_then(|v| v.parse::<usize>().ok());
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .map_err(|e| e.to_string())?;
    pool.install(|| run(images, only));
    println!("({images} image(s), {threads} thread(s))");
    Ok(())
}

fn run(images: usize, only: Option<usize>) {
    let reps = if only.is_some() {
        200
    } else {
        (160 / images).max(5)
    };
    let (mut total_f, mut total_b) = (0.0, 0.0);
    for (i, &(c, h, k, s, count)) in LAYERS.iter().enumerate() {
        if only.is_some_and(|o| o != i) {
            continue;
        }
        let oh = h.div_ceil(s);
        let pad = ((oh - 1) * s + k).saturating_sub(h);
        let g = ConvGeom {
            cin: c,
            cout: c,
            k,
            stride: s,
            pt: pad / 2,
            pl: pad / 2,
            h,
            w: h,
            oh,
            ow: oh,
        };
        let x: Vec<f32> = (0..images * c * h * h)
            .map(|i| ((i * 7919) % 1000) as f32 / 500.0 - 1.0)
            .collect();
        let kk = k * k;
        let w: Vec<f32> = (0..c * kk)
            .map(|i| ((i * 31) % 17) as f32 / 17.0 - 0.5)
            .collect();
        let flipped: Vec<f32> = (0..c * kk)
            .map(|i| w[(i / kk) * kk + kk - 1 - i % kk])
            .collect();
        let b = vec![0.1f32; c];
        let layer = DepthwiseLayer {
            g: &g,
            weight: &w,
            weight_flipped: &flipped,
            bias: &b,
            act: Act::Relu6,
        };
        let mut y = vec![0f32; images * c * oh * oh];
        let mut mask = vec![0u8; y.len()];
        let mut dx = vec![0f32; x.len()];
        let time = |f: &mut dyn FnMut()| {
            for _ in 0..3 {
                f();
            }
            let t = Instant::now();
            for _ in 0..reps {
                f();
            }
            t.elapsed().as_secs_f64() * 1e3 / reps as f64
        };
        let fwd = time(&mut || depthwise_forward(&layer, &x, &mut y, Some(&mut mask), images));
        let bwd =
            time(&mut || depthwise_backward(&layer, &y, Some(&mask), &mut dx, None, images, false));
        let gmac = (images * c * oh * oh * kk) as f64 / 1e6;
        println!(
            "{c:5} ch {h:3}² k{k} s{s}: forward {fwd:6.3} ms ({:4.1} GMAC/s), backward {bwd:6.3} ms ({:4.1} GMAC/s) ×{count}",
            gmac / fwd,
            gmac / bwd
        );
        total_f += fwd * count as f64;
        total_b += bwd * count as f64;
    }
    println!("all layers: forward {total_f:.2} ms, backward {total_b:.2} ms");
}
