//! `netlens bench --profile`: each model's forward + backward-to-input pass on the fast path,
//! node by node (time per pass, FLOP rate, share of the pass), in this process.

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
            println!("{name}: not on the fast path (nothing to profile node by node)\n");
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
        println!("  (no CNN fast-path nodes ran: the ViT's passes are not profiled by node)\n");
        return;
    }
    println!(
        "  {:>4}  {:<34} {:>9} {:>9} {:>8} {:>8} {:>6}",
        "node", "layer", "fwd ms", "bwd ms", "fwd GF/s", "bwd GF/s", "share"
    );
    let rate = |flops: u64, images: u64, ms: f64| {
        if flops == 0 || ms <= 0.0 {
            "-".to_string()
        } else {
            format!("{:.0}", (flops * images) as f64 / (ms * 1e6))
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
            rate(r.flops_per_image, r.forward_images, r.forward_ms),
            rate(r.flops_per_image, r.backward_images, r.backward_ms),
            100.0 * (f + b) / total.max(1e-9),
        );
    }
    println!(
        "  Times are wall clock on the thread that ran each node (the pool's other threads help \
         inside it); at batches above 1 images run side by side, so the nodes' sum can exceed \
         the wall time. GF/s: the node's multiply-add FLOPs (2 per multiply-add; its backward \
         to the input has as many) per second of its time.\n"
    );
}
