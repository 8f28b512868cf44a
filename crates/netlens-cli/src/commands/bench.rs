//! `netlens bench`: median times of forward and forward+backward-to-input passes at several
//! batch sizes, printed beside PyTorch's for the same model, threads and allocator settings
//! (run by `tools/reference/bench_torch.py`), as ratios.

use anyhow::{Context, Result};
use netlens::engine;
use netlens::gradients::{input_gradient, logits, ClassScore};
use rand::{Rng, SeedableRng};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Command;
use std::time::Instant;

#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    pub model: crate::common::ModelArgs,
    /// Batch sizes to time, comma-separated
    #[arg(long, default_value = "1,8", value_delimiter = ',')]
    pub batches: Vec<usize>,
    /// Timed repetitions per measurement (the median is reported)
    #[arg(long, default_value_t = 10)]
    pub repeats: usize,
    /// Untimed warm-up repetitions
    #[arg(long, default_value_t = 3)]
    pub warmup: usize,
    /// Skip the PyTorch comparison
    #[arg(long)]
    pub no_torch: bool,
    /// PyTorch benchmark script
    #[arg(long, default_value = "tools/reference/bench_torch.py")]
    pub torch_script: PathBuf,
    /// Python interpreter with torch installed
    #[arg(long, default_value = "python3")]
    pub python: String,
    /// Print one JSON object instead of a table
    #[arg(long)]
    pub json: bool,
}

fn median_ms(mut f: impl FnMut(), warmup: usize, repeats: usize) -> f64 {
    for _ in 0..warmup {
        f();
    }
    let mut t: Vec<f64> = (0..repeats.max(1))
        .map(|_| {
            let s = Instant::now();
            f();
            s.elapsed().as_secs_f64() * 1e3
        })
        .collect();
    t.sort_by(f64::total_cmp);
    t[t.len() / 2]
}

pub fn run(a: Args) -> Result<()> {
    let model = crate::common::load_model(&a.model.model, a.model.weights.as_deref())?;
    let spec = model.spec();
    let s = spec.input_size as usize;
    let mut rng = rand::rngs::StdRng::seed_from_u64(0);
    let mut ours: BTreeMap<(String, usize), f64> = BTreeMap::new();
    let pb = crate::common::bar((a.batches.len() * 2) as u64, "netlens");
    for &b in &a.batches {
        let values: Vec<f32> = (0..b * 3 * s * s)
            .map(|_| rng.random_range(-1.0f32..1.0))
            .collect();
        let shape = [b, 3, s, s];
        let targets = ClassScore {
            targets: (0..b).map(|i| (i * 97) % 1000).collect(),
        };
        let fwd = median_ms(
            || {
                let _ = logits(model.as_ref(), engine::tensor(values.clone(), shape));
            },
            a.warmup,
            a.repeats,
        );
        pb.inc(1);
        let fb = median_ms(
            || {
                let _ = input_gradient(
                    model.as_ref(),
                    engine::tensor(values.clone(), shape),
                    &targets,
                );
            },
            a.warmup,
            a.repeats,
        );
        pb.inc(1);
        ours.insert(("forward".into(), b), fwd);
        ours.insert(("forward_backward".into(), b), fb);
    }
    pb.finish_and_clear();

    let torch = if a.no_torch {
        None
    } else {
        Some(run_torch(&a, spec.name))
    };
    let torch_rows: BTreeMap<(String, String, usize), f64> = match &torch {
        Some(Ok(v)) => v["results"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|r| {
                Some((
                    (
                        r["name"].as_str()?.to_string(),
                        r["variant"].as_str()?.to_string(),
                        r["batch"].as_u64()? as usize,
                    ),
                    r["median_ms"].as_f64()?,
                ))
            })
            .collect(),
        _ => BTreeMap::new(),
    };
    if a.json {
        let rows: Vec<_> = ours
            .iter()
            .map(|((name, b), ms)| {
                serde_json::json!({
                    "name": name, "batch": b, "netlens_ms": ms,
                    "torch_module_ms": torch_rows.get(&(name.clone(), "module".into(), *b)),
                    "torch_folded_ms": torch_rows.get(&(name.clone(), "folded".into(), *b)),
                })
            })
            .collect();
        println!(
            "{}",
            serde_json::json!({"model": spec.name, "threads": engine::threads(), "results": rows})
        );
    } else {
        println!(
            "model {}  threads {}  (median of {} runs, ms)",
            spec.name,
            engine::threads(),
            a.repeats
        );
        println!(
            "{:<18} {:>5} {:>10} {:>14} {:>7} {:>14} {:>7}",
            "pass", "batch", "netlens", "torch module", "ratio", "torch folded", "ratio"
        );
        for ((name, b), ms) in &ours {
            let m = torch_rows.get(&(name.clone(), "module".into(), *b));
            let f = torch_rows.get(&(name.clone(), "folded".into(), *b));
            let fmt = |t: Option<&f64>| t.map(|t| format!("{t:.1}")).unwrap_or_else(|| "-".into());
            let ratio = |t: Option<&f64>| {
                t.map(|t| format!("{:.2}", ms / t))
                    .unwrap_or_else(|| "-".into())
            };
            println!(
                "{:<18} {:>5} {:>10.1} {:>14} {:>7} {:>14} {:>7}",
                name,
                b,
                ms,
                fmt(m),
                ratio(m),
                fmt(f),
                ratio(f)
            );
        }
        println!("ratio = netlens time / PyTorch time (below 1 means netlens is faster)");
        if let Some(Err(e)) = &torch {
            println!("PyTorch comparison skipped: {}", crate::common::one_line(e));
        }
    }
    Ok(())
}

fn run_torch(a: &Args, model: &str) -> Result<serde_json::Value> {
    if !a.torch_script.is_file() {
        anyhow::bail!(
            "{} not found (run from the repository root or pass --torch-script)",
            a.torch_script.display()
        );
    }
    let batches: Vec<String> = a.batches.iter().map(|b| b.to_string()).collect();
    let pb = crate::common::spinner("running the PyTorch benchmark");
    let out = Command::new(&a.python)
        .arg(&a.torch_script)
        .args(["--model", model, "--batches", &batches.join(",")])
        .args(["--threads", &engine::threads().to_string()])
        .args([
            "--repeats",
            &a.repeats.to_string(),
            "--warmup",
            &a.warmup.to_string(),
        ])
        .args(["--classviz-iterations", "0"])
        .envs(crate::common::ALLOCATOR_ENV.iter().copied())
        .output()
        .with_context(|| format!("cannot run {}", a.python))?;
    pb.finish_and_clear();
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        anyhow::bail!(
            "the PyTorch benchmark failed: {}",
            err.lines()
                .rev()
                .find(|l| !l.trim().is_empty())
                .unwrap_or("no output")
        );
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text
        .lines()
        .rev()
        .find(|l| l.trim_start().starts_with('{'))
        .context("no JSON from the PyTorch benchmark")?;
    Ok(serde_json::from_str(line)?)
}
