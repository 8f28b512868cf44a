//! Times the zoo's ViT-B/16 forward and forward + backward-to-input on the fast and plain
//! paths, in wall-clock and process CPU time (median of several runs), from a weights file:
//! `cargo run --release -p netlens --example vit_time -- WEIGHTS.pth [batch ...]` (weights:
//! `tools/reference/torchvision_bench.py --model vit_b_16 --save-weights FILE`; environment
//! `VIT_PATHS=fast` or `plain` to time one path). Process CPU time is the steadier figure on a
//! shared machine: 2 threads, so it is about twice the wall time when they are not preempted.

use netlens::engine::{LoadOptions, Precision};
use netlens::gradients::{input_gradient, ClassScore};
use std::time::Instant;

fn cpu_s() -> f64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: a valid out-pointer.
    unsafe { libc::clock_gettime(libc::CLOCK_PROCESS_CPUTIME_ID, &mut ts) };
    ts.tv_sec as f64 + ts.tv_nsec as f64 * 1e-9
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let weights = std::path::PathBuf::from(&args[1]);
    let batches: Vec<usize> = args[2..].iter().map(|a| a.parse().unwrap()).collect();
    let paths = std::env::var("VIT_PATHS").unwrap_or_else(|_| "fast,plain".into());
    netlens::engine::set_threads(2);
    let spec = netlens::models::spec("vit_b_16").unwrap();
    for path in paths.split(',') {
        let opts = LoadOptions::with_fast_path(path == "fast");
        let model = netlens::models::load_with(spec, Some(&weights), opts, &mut |_| {}).unwrap();
        for &n in &batches {
            let x: Vec<f32> = (0..n * 3 * 224 * 224)
                .map(|i| ((i % 97) as f32 - 48.0) / 30.0)
                .collect();
            let obj = ClassScore {
                targets: (0..n).collect(),
            };
            for fb in [false, true] {
                let (mut wall, mut cpu) = (Vec::new(), Vec::new());
                let reps = if n > 1 { 3 } else { 5 };
                for r in 0..reps + 1 {
                    let t = Instant::now();
                    let c = cpu_s();
                    let xt = Precision::F32.tensor(x.clone(), [n, 3, 224, 224]);
                    if fb {
                        input_gradient(model.as_ref(), xt, &obj).unwrap();
                    } else {
                        let y = model.forward(xt);
                        let _ = netlens::engine::tensor_values(y);
                    }
                    if r > 0 {
                        wall.push(t.elapsed().as_secs_f64() * 1e3);
                        cpu.push((cpu_s() - c) * 1e3);
                    }
                }
                println!(
                    "{path} b{n} {}: wall {:.1} ms, cpu {:.1} ms (min wall {:.1})",
                    if fb { "f+b" } else { "fwd" },
                    median(wall.clone()),
                    median(cpu),
                    wall.iter().cloned().fold(f64::MAX, f64::min)
                );
            }
        }
    }
}
