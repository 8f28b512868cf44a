//! `netlens bench --profile`: each model's forward + backward-to-input pass on the fast path,
//! node by node (a ViT: stage by stage), with time per pass, FLOP rate and share of the
//! pass, in this process.

use super::*;
use netlens::bench::profile::{profile_passes, PassProfile};

/// Profiles every model of `--models` at every batch of `--batches`, `--repeats` passes each.
pub(super) fn run(a: &Args) -> Result<()> {
    let names = model_list(a.models.iter().map(String::as_str), "--models")?;
    if a.weights.is_some() && names.len() != 1 {
        anyhow::bail!("--weights needs exactly one model (--model NAME)");
    }
    for name in &names {
        let model = load_worker_model(a, EnginePath::Fast, name)?;
        if !model.fast_path_on() {
            println!("{name}: not on the fast path (nothing to profile)\n");
            continue;
        }
        for &b in &a.batches {
            let bar = bar(u64::from(a.repeats), &format!("{name}, batch {b}"));
            let p = profile_passes(model.as_ref(), b as usize, a.repeats as usize, || {
                bar.inc(1)
            });
            bar.finish_and_clear();
            print_profile(name, &p?);
        }
    }
    Ok(())
}

fn print_profile(name: &str, p: &PassProfile) {
    let n = p.passes.max(1) as f64;
    let wall = p.wall_ms / n;
    let total: f64 = p
        .nodes
        .iter()
        .map(|r| r.forward_ms + r.backward_ms)
        .sum::<f64>()
        / n;
    println!(
        "{name}, batch {}: {} passes, {wall:.1} ms per pass (wall); the nodes' times sum to \
         {total:.1} ms per pass",
        p.batch, p.passes
    );
    if p.nodes.is_empty() {
        println!("  (no fast-path node or stage ran)\n");
        return;
    }
    println!(
        "  {:>4}  {:<34} {:>9} {:>9} {:>8} {:>8} {:>6}",
        "node", "layer", "fwd ms", "bwd ms", "fwd GF/s", "bwd GF/s", "share"
    );
    let rate = |flops: u64, ms: f64| {
        if flops == 0 || ms <= 0.0 {
            "-".to_string()
        } else {
            format!("{:.0}", flops as f64 / (ms * 1e6))
        }
    };
    for r in &p.nodes {
        let (f, b) = (r.forward_ms / n, r.backward_ms / n);
        println!(
            "  {:>4}  {:<34} {:>9.2} {:>9.2} {:>8} {:>8} {:>5.1}%",
            r.node,
            r.label,
            f,
            b,
            rate(r.forward_flops, r.forward_ms),
            rate(r.backward_flops, r.backward_ms),
            100.0 * (f + b) / total.max(1e-9),
        );
    }
    println!(
        "  Times are wall clock on the thread that ran each node or stage (the pool's other \
         threads help inside it); at batches above 1 a CNN's images run side by side, so the \
         nodes' sum can exceed the wall time; a ViT's rows are kinds of work summed over its \
         blocks. GF/s: the multiply-add FLOPs of the row's products (2 per multiply-add; a \
         backward to the input has as many as its forward, attention's twice) per second of \
         its time.\n"
    );
}
