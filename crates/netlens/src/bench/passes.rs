//! netlens's side of the benchmark: the passes of one loaded model, timed by the rule of
//! [`super::measure`] on the inputs of [`super::inputs`].
//!
//! - `forward`: the logits of the batch, no graph recorded;
//! - `forward_backward`: the gradient of each image's target score with respect to the input
//!   batch (weights frozen), as every attribution method takes it;
//! - `classviz<N>` (when asked): `N` iterations of `netlens visualize`'s default recipe
//!   ([`crate::synthesis::cs231n`]) for class [`super::inputs::CLASS`], timed as one whole run,
//!   its FLOPs counted on an untimed run before ([`super::profile::count_flops`]).

use super::inputs::{inputs, targets, CLASS};
use super::measure::{measure, Budget};
use super::profile::count_flops;
use super::records::{ClassvizRecord, PassRecord};
use crate::error::Result;
use crate::gradients::{input_gradient, logits, ClassScore};
use crate::models::Classifier;
use crate::synthesis::cs231n::{self, Cs231nRecipe};

/// The name of the class-visualization measurement of `iterations` iterations.
pub fn classviz_name(iterations: usize) -> String {
    format!("classviz{iterations}")
}

/// `forward` and `forward_backward` of `model` at each batch size, recorded as `variant`.
pub fn time_passes(
    model: &dyn Classifier,
    batches: &[usize],
    budget: Budget,
    variant: &str,
) -> Result<Vec<PassRecord>> {
    let s = model.spec().input_size as usize;
    let mut out = Vec::new();
    for &b in batches {
        let x = model.precision().tensor(inputs(b, s), [b, 3, s, s]);
        let objective = ClassScore {
            targets: targets(b, model.classes()),
        };
        let fwd = measure(
            || {
                let _ = logits(model, x.clone());
                Ok(())
            },
            budget,
        )?;
        let fb = measure(
            || input_gradient(model, x.clone(), &objective).map(|_| ()),
            budget,
        )?;
        for (name, timing) in [("forward", fwd), ("forward_backward", fb)] {
            out.push(PassRecord {
                name: name.into(),
                variant: variant.into(),
                batch: b,
                timing,
                flops: None,
            });
        }
    }
    Ok(out)
}

/// `iterations` of the default class-visualization recipe, `repeats` whole runs (no warm-up:
/// the passes before warmed the model up), after one untimed run that counts its FLOPs.
pub fn time_classviz(
    model: &dyn Classifier,
    iterations: usize,
    repeats: usize,
    variant: &str,
) -> Result<(PassRecord, ClassvizRecord)> {
    let recipe = Cs231nRecipe {
        iterations,
        ..Cs231nRecipe::default()
    };
    let mut probs = (0.0, 0.0);
    let mut once = || {
        let v = cs231n::visualize(model, CLASS, &recipe, 0, &mut |_| {})?;
        probs = (v.start_prob, v.prob);
        Ok(())
    };
    let flops = count_flops(&mut once)?;
    let timing = measure(
        once,
        Budget {
            warmup: 0,
            repeats,
            seconds: 0.0,
        },
    )?;
    Ok((
        PassRecord {
            name: classviz_name(iterations),
            variant: variant.into(),
            batch: 1,
            timing,
            flops,
        },
        ClassvizRecord {
            class: CLASS,
            start_prob: probs.0,
            final_prob: probs.1,
        },
    ))
}
