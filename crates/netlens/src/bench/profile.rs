//! `netlens bench --profile`: where one model's forward + backward-to-input pass spends its
//! time, node by node, on the fast path ([`crate::fast::profile`]); and the FLOPs a whole
//! method does there, counted the same way ([`count_flops`]).

use super::inputs::{inputs, targets};
use crate::error::Result;
use crate::fast::profile::{self, NodeTime};
use crate::gradients::{input_gradient, ClassScore};
use crate::models::Classifier;
use std::time::Instant;

/// The floating-point operations of `run` on the fast path (convolutions and matrix
/// products, 2 per multiply-add, a backward-to-input call counted as its forward: the pass
/// table's convention), summed node by node as its kernels run ([`crate::fast::profile`]);
/// `None` where nothing ran on the fast path. The profile is process-wide and times every
/// call while on: count an untimed run, one at a time.
pub fn count_flops(run: impl FnOnce() -> Result<()>) -> Result<Option<u64>> {
    profile::start();
    let ran = run();
    let nodes = profile::stop();
    ran?;
    let total: u64 = nodes
        .iter()
        .map(|n| n.forward_flops + n.backward_flops)
        .sum();
    Ok((total > 0).then_some(total))
}

/// A profile of `passes` forward + backward-to-input passes of one batch.
#[derive(Debug, Clone)]
pub struct PassProfile {
    pub batch: usize,
    pub passes: usize,
    /// Wall time of the passes, all of them, in ms.
    pub wall_ms: f64,
    /// The nodes that ran, in graph order (empty where the model has no CNN fast path).
    pub nodes: Vec<NodeTime>,
}

/// Times `passes` forward + backward-to-input passes of `model` at `batch` (after two
/// untimed ones), node by node; `tick` is called after each timed pass.
pub fn profile_passes(
    model: &dyn Classifier,
    batch: usize,
    passes: usize,
    mut tick: impl FnMut(),
) -> Result<PassProfile> {
    let s = model.spec().input_size as usize;
    let x = model.precision().tensor(inputs(batch, s), [batch, 3, s, s]);
    let objective = ClassScore {
        targets: targets(batch, model.classes()),
    };
    for _ in 0..2 {
        input_gradient(model, x.clone(), &objective)?;
    }
    profile::start();
    let t0 = Instant::now();
    let mut run = || -> Result<()> {
        for _ in 0..passes {
            input_gradient(model, x.clone(), &objective)?;
            tick();
        }
        Ok(())
    };
    let ran = run();
    let wall_ms = t0.elapsed().as_secs_f64() * 1e3;
    let nodes = profile::stop();
    ran?;
    Ok(PassProfile {
        batch,
        passes,
        wall_ms,
        nodes: nodes.into_iter().filter(|n| !n.label.is_empty()).collect(),
    })
}
