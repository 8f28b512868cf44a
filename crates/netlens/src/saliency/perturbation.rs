//! The template of the perturbation methods ([`super::occlusion`], [`super::rise`]): no
//! gradient. Copies of one image, each changed by the method, go through the network
//! [`Run::batch_size`] at a time without recording a graph, and the method turns each
//! copy's target score into the map. Only one batch of copies exists at a time, so memory is
//! bounded by the batch size however many copies a map needs.

use super::{batches, Run};
use crate::classify::logits;
use crate::error::Result;
use crate::models::Classifier;
use std::ops::Range;

/// Which score of the target class a perturbation method reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Score {
    /// The logit (Captum's attribution of the model's output; Occlusion).
    Logit,
    /// The softmax probability (RISE's protocol).
    Probability,
}

/// Progress in fixed units per image: a method whose number of copies depends on the image
/// size reports `units` per image whatever that number.
pub(crate) struct Ticker {
    total: usize,
    units: usize,
    done: usize,
    reported: usize,
}

impl Ticker {
    /// `units` for `total` copies.
    pub(crate) fn new(total: usize, units: usize) -> Self {
        Self {
            total: total.max(1),
            units,
            done: 0,
            reported: 0,
        }
    }

    /// `k` more copies done: reports the units they complete.
    pub(crate) fn advance(&mut self, k: usize, run: &mut Run) {
        self.done = (self.done + k).min(self.total);
        let now = self.done * self.units / self.total;
        if now > self.reported {
            (run.progress)(now - self.reported);
            self.reported = now;
        }
    }
}

/// What a method perturbs: `count` copies of `image` (`[3, H, W]` = `shape`), judged by
/// the `score` of class `target`.
pub(crate) struct Copies<'a> {
    pub image: &'a [f32],
    pub shape: [usize; 3],
    pub target: usize,
    pub score: Score,
    pub count: usize,
}

/// Told each batch's range of copies and their scores, before the next batch is made.
pub(crate) type Done<'a> = dyn FnMut(Range<usize>, &[f64], &mut Run) + 'a;

/// The scores of `copies`, copy `j` made by `make(j, copy)` from a copy that starts as the
/// image, in batches of `run.batch_size`, each batch handed to `done`.
pub(crate) fn copy_scores(
    model: &dyn Classifier,
    copies: &Copies,
    run: &mut Run,
    make: &mut dyn FnMut(usize, &mut [f32]),
    done: &mut Done,
) -> Result<()> {
    let (image, shape) = (copies.image, copies.shape);
    let per = image.len();
    let classes = model.classes();
    for r in batches(copies.count, run.batch_size) {
        let mut x = Vec::with_capacity(r.len() * per);
        for j in r.clone() {
            let start = x.len();
            x.extend_from_slice(image);
            make(j, &mut x[start..]);
        }
        let l = logits(
            model,
            model
                .precision()
                .tensor(x, [r.len(), shape[0], shape[1], shape[2]]),
        );
        let scores: Vec<f64> = l
            .chunks(classes)
            .map(|row| target_score(row, copies.target, copies.score))
            .collect();
        done(r, &scores, run);
    }
    Ok(())
}

/// The `score` of class `target` in one row of logits.
pub(crate) fn target_score(row: &[f32], target: usize, score: Score) -> f64 {
    match score {
        Score::Logit => f64::from(row[target]),
        Score::Probability => {
            let m = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
            let z: f64 = row.iter().map(|&v| f64::from(v - m).exp()).sum();
            f64::from(row[target] - m).exp() / z
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticker_reports_every_unit_once() {
        let mut got = 0;
        {
            let mut tick = |k: usize| got += k;
            let mut run = Run::new(4, &mut tick);
            let mut t = Ticker::new(7, 100);
            for _ in 0..7 {
                t.advance(1, &mut run);
            }
            t.advance(3, &mut run);
        }
        assert_eq!(got, 100);
    }

    #[test]
    fn probability_is_the_softmax() {
        let row = [1.0f32, 2.0, 3.0];
        let p = target_score(&row, 2, Score::Probability);
        let z: f64 = row.iter().map(|&v| f64::from(v).exp()).sum();
        assert!((p - 3f64.exp() / z).abs() < 1e-12);
        assert_eq!(target_score(&row, 1, Score::Logit), 2.0);
    }
}
