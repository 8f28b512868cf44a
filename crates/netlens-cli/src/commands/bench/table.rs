//! The comparison `netlens bench` prints: one row per measurement and batch size with the
//! fast and plain paths' medians, PyTorch's, and their ratios — as a table, or as one JSON
//! object with every engine's record.

use super::{Args, ModelReport, Weights, BUSY_WARNING};
use crate::common::ALLOCATOR_ENV;
use netlens::bench::measure::MIN_REPEATS;
use netlens::bench::passes::classviz_name;
use netlens::bench::peak::Peak;
use netlens::bench::EngineRecord;
use serde_json::{json, Value};

/// One row of the comparison: a measurement at a batch size.
struct Row {
    name: String,
    batch: usize,
    fast: Option<f64>,
    plain: Option<f64>,
    module: Option<f64>,
    folded: Option<f64>,
    /// Floating-point operations of the measurement (10⁹), when the model counts them.
    gflop: Option<f64>,
    /// fast/module ratio of each round (`--rounds`) where both engines ran.
    round_ratios: Vec<f64>,
}

impl Row {
    /// The rounds' fast/module ratios as `lowest–highest`, with more than one round.
    fn round_range(&self) -> Option<String> {
        let lo = self.round_ratios.iter().copied().reduce(f64::min)?;
        let hi = self.round_ratios.iter().copied().reduce(f64::max)?;
        (self.round_ratios.len() > 1).then(|| format!("{lo:.2}–{hi:.2}"))
    }

    /// The fast path's share of the machine's measured peak on this measurement.
    fn fast_peak_share(&self, peak: Option<&Peak>) -> Option<f64> {
        peak_share(self.gflop, self.fast, peak)
    }
}

/// The share of the machine's measured `peak` that `gflop` (10⁹ operations) in `ms`
/// milliseconds reaches: the pass table's and the method table's `%peak`.
pub(super) fn peak_share(gflop: Option<f64>, ms: Option<f64>, peak: Option<&Peak>) -> Option<f64> {
    match (gflop, ms, peak) {
        (Some(g), Some(ms), Some(p)) if ms > 0.0 && p.gflops > 0.0 => {
            Some(g / (ms / 1e3) / p.gflops)
        }
        _ => None,
    }
}

/// A share of peak as the tables print it (`23%`, or `-`).
pub(super) fn percent(share: Option<f64>) -> String {
    share
        .map(|f| format!("{:.0}%", f * 100.0))
        .unwrap_or_else(|| "-".into())
}

fn ratio(a: Option<f64>, b: Option<f64>) -> Option<f64> {
    match (a, b) {
        (Some(a), Some(b)) if b > 0.0 => Some(a / b),
        _ => None,
    }
}

/// The record of an engine that ran, if it did.
fn ok(v: Option<&anyhow::Result<EngineRecord>>) -> Option<&EngineRecord> {
    v.and_then(|r| r.as_ref().ok())
}

/// The median (ms) of measurement `name` at `batch` on `variant` of an engine's record.
fn median(
    v: Option<&anyhow::Result<EngineRecord>>,
    name: &str,
    variant: &str,
    batch: usize,
) -> Option<f64> {
    ok(v).and_then(|r| r.median(name, variant, batch))
}

fn rows(a: &Args, r: &ModelReport) -> Vec<Row> {
    let mut keys: Vec<(String, usize)> = Vec::new();
    for &b in &a.batches {
        for name in ["forward", "forward_backward"] {
            keys.push((name.to_string(), b as usize));
        }
    }
    if a.classviz_iterations > 0 && r.spec.is_lite() {
        keys.push((classviz_name(a.classviz_iterations as usize), 1));
    }
    let flops = ok(r.fast.as_ref())
        .or(ok(r.plain.as_ref()))
        .and_then(|e| e.forward_flops);
    keys.into_iter()
        .map(|(name, batch)| Row {
            gflop: match name.as_str() {
                "forward" | "forward_backward" => flops.map(|f| {
                    let passes = if name == "forward" { 1.0 } else { 2.0 };
                    f as f64 * batch as f64 * passes / 1e9
                }),
                // A whole run, counted by the fast path's worker as it ran.
                _ => ok(r.fast.as_ref())
                    .and_then(|e| e.flops(&name, "fast", batch))
                    .map(|f| f as f64 / 1e9),
            },
            round_ratios: r
                .rounds
                .iter()
                .filter_map(|(f, t)| {
                    let f = f.as_ref()?.median(&name, "fast", batch);
                    ratio(f, t.as_ref()?.median(&name, "module", batch))
                })
                .collect(),
            fast: median(r.fast.as_ref(), &name, "fast", batch),
            plain: median(r.plain.as_ref(), &name, "plain", batch),
            module: median(r.torch.as_ref(), &name, "module", batch),
            folded: median(r.torch.as_ref(), &name, "folded", batch),
            name,
            batch,
        })
        .collect()
}

/// [`ratio`] rounded to 4 decimals, for JSON.
fn ratio4(a: Option<f64>, b: Option<f64>) -> Option<f64> {
    ratio(a, b).map(|r| (r * 1e4).round() / 1e4)
}

fn err_text(v: Option<&anyhow::Result<EngineRecord>>) -> Option<String> {
    match v {
        Some(Err(e)) => Some(crate::common::one_line(e)),
        _ => None,
    }
}

pub(super) fn to_json(
    a: &Args,
    threads: usize,
    load: Option<f64>,
    reports: &[ModelReport],
    peak: Option<&Peak>,
) -> Value {
    let models: Vec<Value> = reports
        .iter()
        .map(|r| {
            let results: Vec<Value> = rows(a, r)
                .iter()
                .map(|row| {
                    json!({
                        "name": row.name,
                        "batch": row.batch,
                        "netlens_fast_ms": row.fast,
                        "netlens_plain_ms": row.plain,
                        "torch_module_ms": row.module,
                        "torch_folded_ms": row.folded,
                        "ratio_fast_module": ratio4(row.fast, row.module),
                        "ratio_fast_module_rounds": row.round_ratios.iter().map(|&q| (q * 1e4).round() / 1e4).collect::<Vec<_>>(),
                        "ratio_fast_folded": ratio4(row.fast, row.folded),
                        "ratio_plain_module": ratio4(row.plain, row.module),
                        "ratio_plain_folded": ratio4(row.plain, row.folded),
                        "ratio_fast_plain": ratio4(row.fast, row.plain),
                        "gflop": row.gflop,
                        "fast_peak_fraction": row.fast_peak_share(peak).map(|f| (f * 1e4).round() / 1e4),
                    })
                })
                .collect();
            let (weights, weights_file) = match &r.weights {
                Ok(w) => (
                    json!(w.kind()),
                    json!(w.file().map(|p| p.display().to_string())),
                ),
                Err(_) => (Value::Null, Value::Null),
            };
            let weights_error = r.weights.as_ref().err().map(crate::common::one_line);
            json!({
                "model": r.spec.name,
                "other_cpu_busy_pct_before": r.busy_before,
                "weights": weights,
                "weights_file": weights_file,
                "random_weights": matches!(r.weights, Ok(Weights::Random(_))),
                "fast_path_active": ok(r.fast.as_ref()).and_then(|f| f.fast_path_active),
                "results": results,
                "peak_rss_mb": {
                    "netlens_fast": ok(r.fast.as_ref()).and_then(|e| e.peak_rss_mb),
                    "netlens_plain": ok(r.plain.as_ref()).and_then(|e| e.peak_rss_mb),
                    "torch": ok(r.torch.as_ref()).and_then(|e| e.peak_rss_mb),
                },
                "setup_rss_mb": {
                    "netlens_fast": ok(r.fast.as_ref()).and_then(|e| e.setup_rss_mb),
                    "netlens_plain": ok(r.plain.as_ref()).and_then(|e| e.setup_rss_mb),
                    "torch": ok(r.torch.as_ref()).and_then(|e| e.setup_rss_mb),
                },
                "largest_batch": a.batches.iter().max(),
                "classviz": {
                    "netlens_fast": ok(r.fast.as_ref()).and_then(|e| e.classviz),
                    "netlens_plain": ok(r.plain.as_ref()).and_then(|e| e.classviz),
                },
                "netlens_fast": ok(r.fast.as_ref()),
                "netlens_plain": ok(r.plain.as_ref()),
                "torch": ok(r.torch.as_ref()),
                "errors": {
                    "weights": weights_error,
                    "netlens_fast": err_text(r.fast.as_ref()),
                    "netlens_plain": err_text(r.plain.as_ref()),
                    "torch": err_text(r.torch.as_ref()),
                },
            })
        })
        .collect();
    let allocator: serde_json::Map<String, Value> = ALLOCATOR_ENV
        .iter()
        .map(|(k, v)| (k.to_string(), json!(v)))
        .collect();
    json!({
        "threads": threads,
        "allocator": allocator,
        "loadavg_1min": load,
        "repeats": a.repeats,
        "rounds": a.rounds,
        "warmup": a.warmup,
        "budget_s": a.budget,
        "classviz_iterations": a.classviz_iterations,
        "classviz_repeats": a.classviz_repeats,
        "peak_gflops": peak.map(|p| (p.gflops * 10.0).round() / 10.0),
        "peak_isa": peak.map(|p| p.isa),
        "models": models,
        "ratio": "netlens time / PyTorch time (below 1 means netlens is faster)",
    })
}

pub(super) fn print_table(
    a: &Args,
    threads: usize,
    load: Option<f64>,
    reports: &[ModelReport],
    peak: Option<&Peak>,
) {
    let torch_version = reports
        .iter()
        .find_map(|r| ok(r.torch.as_ref()).and_then(|t| t.torch_version.as_deref()))
        .map(|v| format!(", PyTorch {v}"))
        .unwrap_or_default();
    let alloc = ALLOCATOR_ENV
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(" ");
    println!(
        "netlens bench: {threads} threads, {alloc} for every process{torch_version}{}",
        load.map(|l| format!(", load average {l:.2} at start"))
            .unwrap_or_default()
    );
    let fmt = |t: Option<f64>| t.map(|t| format!("{t:.1}")).unwrap_or_else(|| "-".into());
    let fmtr = |t: Option<f64>| t.map(|t| format!("{t:.2}")).unwrap_or_else(|| "-".into());
    for r in reports {
        println!();
        match &r.weights {
            Ok(w) => println!("{} — {}", r.spec.name, w.describe()),
            Err(e) => println!(
                "{} — no weights: {}",
                r.spec.name,
                crate::common::one_line(e)
            ),
        }
        if let Some(b) = r.busy_before {
            println!("  (CPUs {b:.0}% busy with other work in the second before)");
        }
        if ok(r.fast.as_ref()).and_then(|f| f.fast_path_active) == Some(false) {
            println!("  (the fast path was off in its worker: NETLENS_FAST_PATH=0 or float64)");
        }
        if r.weights.is_err() {
            continue;
        }
        let by_round = if a.rounds > 1 {
            "  rounds' fast/module"
        } else {
            ""
        };
        println!(
            "{:<18} {:>5} {:>10} {:>10} {:>13} {:>13} {:>12} {:>12} {:>7} {:>6}{by_round}",
            "pass (median ms)",
            "batch",
            "fast",
            "plain",
            "torch module",
            "torch folded",
            "fast/module",
            "fast/folded",
            "GFLOP",
            "%peak"
        );
        for row in rows(a, r) {
            let range = match row.round_range() {
                Some(r) => format!("  {r:>20}"),
                None => String::new(),
            };
            println!(
                "{:<18} {:>5} {:>10} {:>10} {:>13} {:>13} {:>12} {:>12} {:>7} {:>6}{range}",
                row.name,
                row.batch,
                fmt(row.fast),
                fmt(row.plain),
                fmt(row.module),
                fmt(row.folded),
                fmtr(ratio(row.fast, row.module)),
                fmtr(ratio(row.fast, row.folded)),
                fmtr(row.gflop),
                percent(row.fast_peak_share(peak)),
            );
        }
        let mb = |v: Option<f64>| {
            v.map(|m| format!("{m:.0} MB"))
                .unwrap_or_else(|| "-".into())
        };
        let peak = |v: Option<&anyhow::Result<EngineRecord>>| match ok(v) {
            Some(e) => match e.setup_rss_mb {
                Some(s) => format!(
                    "{} ({} before the first pass)",
                    mb(e.peak_rss_mb),
                    mb(Some(s))
                ),
                None => mb(e.peak_rss_mb),
            },
            None => "-".into(),
        };
        println!(
            "peak RSS: netlens fast {}, plain {}; PyTorch {}",
            peak(r.fast.as_ref()),
            peak(r.plain.as_ref()),
            peak(r.torch.as_ref()),
        );
        for (what, v) in [
            ("netlens fast path", r.fast.as_ref()),
            ("netlens plain path", r.plain.as_ref()),
            ("PyTorch", r.torch.as_ref()),
        ] {
            if let Some(e) = err_text(v) {
                println!("{what} failed: {e}");
            }
        }
    }
    println!();
    let budget = if a.budget > 0.0 {
        format!(
            ", fewer once a measurement took {} s (at least {})",
            a.budget,
            MIN_REPEATS.min(a.repeats as usize)
        )
    } else {
        String::new()
    };
    println!(
        "runs: up to {} timed after up to {} warm-up{budget}; class visualization: median of {} \
         whole run(s)",
        a.repeats, a.warmup, a.classviz_repeats
    );
    if a.rounds > 1 {
        println!(
            "rounds: {} per model, the fast path and PyTorch taking turns; fast, torch module and \
             fast/module are the median of the rounds' medians, and the last column the lowest and \
             highest of the rounds' own fast/module ratios (the plain path ran once)",
            a.rounds
        );
    }
    println!(
        "peak RSS: netlens = VmHWM of the worker process that loaded the model and ran its \
         column (largest batch {}); PyTorch = ru_maxrss of its whole run (both variants where there \
         are two, torch's own libraries included)",
        a.batches.iter().max().copied().unwrap_or(1)
    );
    let busy: Vec<String> = reports
        .iter()
        .filter_map(|r| {
            r.busy_before
                .filter(|&b| b >= BUSY_WARNING)
                .map(|b| format!("{b:.0}% before {}", r.spec.name))
        })
        .collect();
    if !busy.is_empty() {
        println!(
            "warning: other work kept the CPUs busy ({}): it skews every figure, PyTorch's \
             OpenMP threads most; rerun on an idle machine",
            busy.join(", ")
        );
    }
    if let Some(p) = peak {
        println!(
            "%peak = the fast path's FLOP rate (convolutions and matrix products, 2 per \
             multiply-add; backward-to-input counted as one more forward) / this machine's \
             measured peak, {:.1} GFLOP/s on {} threads ({} fused multiply-adds); FLOPs are \
             counted as a direct convolution does them, so a model whose 3×3 layers run by Winograd \
             (F(2,3): 2.25× fewer multiplies; e.g. VGG16) shows the equivalent rate; a class \
             visualization's GFLOP are those its fast-path worker counted in one untimed run, \
             every forward and backward call as it ran",
            p.gflops, p.threads, p.isa
        );
    }
    println!("ratio = netlens fast-path time / PyTorch time (below 1 means netlens is faster)");
}
