//! `netlens bench`'s method table: whole methods on EfficientNet-Lite0 and the five sample
//! photos (`netlens::bench::methods`), each in its own netlens worker process and beside the
//! library a user would otherwise run (`tools/reference/bench_methods.py`: Captum,
//! pytorch-grad-cam, torchattacks, the practical's loop) in its own Python process, so that
//! every figure carries its own peak memory.

use super::{
    find_script, load_worker_model, merged, run_python, run_worker_command, worker_record, Args,
    EnginePath,
};
use crate::common::ALLOCATOR_ENV;
use anyhow::{Context, Result};
use image::RgbImage;
use netlens::bench::methods::{describe, time_method, METHODS};
use netlens::bench::peak::Peak;
use netlens::bench::system::proc_status_mb;
use netlens::bench::EngineRecord;
use netlens::imaging;
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::Command;

/// The model the method table runs on (the PyTorch side builds its reference module).
pub const MODEL: &str = "efficientnet_lite0";

/// The sample photos, in the order the PyTorch script reads them.
const PHOTOS: [&str; 5] = [
    "chelsea.png",
    "coffee.png",
    "grace_hopper.jpg",
    "motorcycle_left.png",
    "rocket.jpg",
];

/// `--methods`: the table's methods, or none.
pub fn method_list(s: &str) -> Result<Vec<String>, String> {
    if s.trim() == "none" {
        return Ok(Vec::new());
    }
    s.split(',')
        .map(str::trim)
        .filter(|m| !m.is_empty())
        .map(|m| {
            if METHODS.contains(&m) {
                Ok(m.to_string())
            } else {
                Err(format!(
                    "unknown method {m:?}; one of {} (or none)",
                    METHODS.join(", ")
                ))
            }
        })
        .collect()
}

/// One method's two measurements.
pub(super) struct MethodReport {
    name: String,
    netlens: Result<EngineRecord>,
    anchor: Option<Result<EngineRecord>>,
    /// netlens/anchor ratio of each round (`--rounds`) where both ran.
    round_ratios: Vec<f64>,
}

/// `assets/photos` under the current folder or the source tree netlens was built from.
fn photos_dir() -> Result<PathBuf> {
    [
        PathBuf::from("assets/photos"),
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../assets/photos"),
    ]
    .into_iter()
    .find(|d| PHOTOS.iter().all(|p| d.join(p).is_file()))
    .context(
        "the method table needs the sample photos in assets/photos (run from the repository root)",
    )
}

/// Times every method of `--methods`, netlens then the anchor, one process each, `--rounds`
/// times taking turns.
pub(super) fn bench_methods(a: &Args, threads: usize, weights: Option<&Path>) -> Vec<MethodReport> {
    a.methods
        .iter()
        .map(|name| {
            let (mut ours, mut theirs, mut round_ratios) = (Vec::new(), Vec::new(), Vec::new());
            for _ in 0..a.rounds.max(1) {
                let n = run_method_worker(a, name, threads, weights);
                let t = (!a.no_torch).then(|| run_anchor(a, name, threads));
                round_ratios.extend(ratio(median(&n), t.as_ref().and_then(median)));
                ours.push(n);
                theirs.extend(t);
            }
            MethodReport {
                name: name.clone(),
                netlens: merged(ours).unwrap_or_else(|| Err(anyhow::anyhow!("no rounds ran"))),
                anchor: merged(theirs),
                round_ratios,
            }
        })
        .collect()
}

fn run_method_worker(
    a: &Args,
    name: &str,
    threads: usize,
    weights: Option<&Path>,
) -> Result<EngineRecord> {
    let exe = std::env::current_exe().context("cannot locate the netlens executable")?;
    let mut cmd = Command::new(exe);
    cmd.args(["--threads", &threads.to_string(), "bench"])
        .args(["--worker", EnginePath::Fast.name(), "--models", MODEL])
        .args(["--worker-method", name])
        .args(["--method-repeats", &a.method_repeats.to_string()])
        .envs(ALLOCATOR_ENV.iter().copied());
    run_worker_command(cmd, weights, &format!("{name}: netlens"))
}

fn run_anchor(a: &Args, name: &str, threads: usize) -> Result<EngineRecord> {
    let script = find_script("bench_methods.py", None)?;
    let args = [
        "--method",
        name,
        "--threads",
        &threads.to_string(),
        "--repeats",
        &a.method_repeats.to_string(),
    ]
    .map(String::from);
    run_python(a, &script, &args, &format!("{name}: PyTorch"))
}

/// The worker's side: times method `name` in this process and prints its record.
pub(super) fn worker(a: &Args, path: EnginePath, name: &str) -> Result<()> {
    let model = load_worker_model(a, path, MODEL)?;
    let setup_rss_mb = proc_status_mb("VmRSS");
    let dir = photos_dir()?;
    let spec = model.spec();
    let photos: Vec<RgbImage> = PHOTOS
        .iter()
        .map(|p| {
            let img = crate::common::read_image(&dir.join(p))?;
            Ok(imaging::fit_with(&img, spec.resize, spec.input_size).0)
        })
        .collect::<Result<_>>()?;
    let row = time_method(
        model.as_ref(),
        name,
        &photos,
        a.method_repeats as usize,
        path.name(),
    )?;
    let record = worker_record(model.as_ref(), setup_rss_mb, None, vec![row]);
    println!("{}", serde_json::to_string(&record)?);
    Ok(())
}

fn median(r: &Result<EngineRecord>) -> Option<f64> {
    r.as_ref()
        .ok()
        .and_then(|e| e.results.first())
        .map(|p| p.timing.median_ms)
}

/// Floating-point operations (10⁹) of one run of the method, as netlens's worker counted
/// them on the fast path.
fn gflop(r: &Result<EngineRecord>) -> Option<f64> {
    r.as_ref()
        .ok()
        .and_then(|e| e.results.first())
        .and_then(|p| p.flops)
        .map(|f| f as f64 / 1e9)
}

/// netlens's share of the machine's measured peak over a whole run of the method.
fn peak_share(r: &Result<EngineRecord>, peak: Option<&Peak>) -> Option<f64> {
    super::table::peak_share(gflop(r), median(r), peak)
}

fn peak_rss(r: Option<&Result<EngineRecord>>) -> Option<f64> {
    r.and_then(|r| r.as_ref().ok()).and_then(|e| e.peak_rss_mb)
}

fn ratio(a: Option<f64>, b: Option<f64>) -> Option<f64> {
    match (a, b) {
        (Some(a), Some(b)) if b > 0.0 => Some((a / b * 1e4).round() / 1e4),
        _ => None,
    }
}

/// The method table as JSON rows.
pub(super) fn to_json(reports: &[MethodReport], peak: Option<&Peak>) -> Value {
    reports
        .iter()
        .map(|r| {
            let anchor_ms = r.anchor.as_ref().and_then(median);
            json!({
                "method": r.name,
                "model": MODEL,
                "netlens_ms": median(&r.netlens),
                "netlens_runs": r.netlens.as_ref().ok().and_then(|e| e.results.first()).map(|p| p.timing.runs),
                "anchor_ms": anchor_ms,
                "anchor": r.anchor.as_ref().and_then(|a| a.as_ref().ok()).and_then(|e| e.anchor.clone()),
                "ratio": ratio(median(&r.netlens), anchor_ms),
                "ratio_rounds": r.round_ratios,
                "gflop": gflop(&r.netlens),
                "fast_peak_fraction": peak_share(&r.netlens, peak).map(|f| (f * 1e4).round() / 1e4),
                "peak_rss_mb": { "netlens": peak_rss(Some(&r.netlens)), "anchor": peak_rss(r.anchor.as_ref()) },
                "errors": {
                    "netlens": r.netlens.as_ref().err().map(crate::common::one_line),
                    "anchor": r.anchor.as_ref().and_then(|a| a.as_ref().err()).map(crate::common::one_line),
                },
            })
        })
        .collect()
}

/// The method table on the terminal.
pub(super) fn print(reports: &[MethodReport], peak: Option<&Peak>) {
    if reports.is_empty() {
        return;
    }
    println!();
    println!("{MODEL} — whole methods on the five sample photos (fast path; median ms)");
    println!(
        "{:<13} {:>10} {:>10} {:>7} {:>16} {:>7} {:>6}  anchor",
        "method", "netlens", "anchor", "ratio", "peak RSS (MB)", "GFLOP", "%peak"
    );
    let f = |v: Option<f64>, p: usize| v.map(|v| format!("{v:.p$}")).unwrap_or_else(|| "-".into());
    for r in reports {
        let anchor_ms = r.anchor.as_ref().and_then(median);
        let name = r
            .anchor
            .as_ref()
            .and_then(|a| a.as_ref().ok())
            .and_then(|e| e.anchor.clone())
            .unwrap_or_else(|| "-".into());
        let rounds = match (
            r.round_ratios.iter().copied().reduce(f64::min),
            r.round_ratios.iter().copied().reduce(f64::max),
        ) {
            (Some(lo), Some(hi)) if r.round_ratios.len() > 1 => {
                format!("  (rounds' ratios {lo:.2}–{hi:.2})")
            }
            _ => String::new(),
        };
        println!(
            "{:<13} {:>10} {:>10} {:>7} {:>16} {:>7} {:>6}  {name}{rounds}",
            r.name,
            f(median(&r.netlens), 0),
            f(anchor_ms, 0),
            f(ratio(median(&r.netlens), anchor_ms), 2),
            format!(
                "{} / {}",
                f(peak_rss(Some(&r.netlens)), 0),
                f(peak_rss(r.anchor.as_ref()), 0)
            ),
            f(gflop(&r.netlens), 0),
            super::table::percent(peak_share(&r.netlens, peak)),
        );
        if let Err(e) = &r.netlens {
            println!("  netlens failed: {}", crate::common::one_line(e));
        }
        if let Some(Err(e)) = &r.anchor {
            println!("  anchor failed: {}", crate::common::one_line(e));
        }
    }
    for r in reports {
        if let Some(d) = describe(&r.name) {
            println!("  {:<13} {d}", r.name);
        }
    }
    println!(
        "  GFLOP: one whole run's convolutions and matrix products (2 per multiply-add, a \
         backward-to-input call counted as its forward), counted on the fast path by netlens's \
         worker in an untimed run; %peak: that over netlens's median time, against the \
         machine's measured peak"
    );
}
