//! Chance baselines, as attribution methods so that every table reads a number against them:
//! `random` (independent uniform values per pixel, seeded per image) and `centre` (an isotropic Gaussian
//! on the image centre, σ = a quarter of the shorter side: the centre bias of photographs,
//! the baseline of saliency benchmarks since Judd et al. 2009). Neither looks at the network.

use crate::error::Result;
use crate::models::Classifier;
use crate::saliency::seeding::image_rng;
use crate::saliency::{Attribution, Batch, Batching, Map, Run};
use rand::Rng;

/// Uniform random values in [0, 1), seeded per image (`seed` and the image's pixels, so that
/// an image gets the same map alone, in any batch or chunk).
#[derive(Debug, Clone, Copy, Default)]
pub struct RandomMap {
    pub seed: u64,
}

/// A Gaussian bump on the image centre.
#[derive(Debug, Clone, Copy, Default)]
pub struct CentreMap;

/// One map per image of `batch` from `values(image index in the batch, h, w)`.
fn maps(
    batch: &Batch,
    run: &mut Run,
    values: impl Fn(usize, usize, usize) -> Vec<f32>,
) -> Vec<Map> {
    let [n, _, h, w] = batch.inputs.shape();
    let out = (0..n)
        .map(|i| batch.map(i, values(i, h, w), false))
        .collect();
    (run.progress)(n);
    out
}

impl Attribution for RandomMap {
    fn name(&self) -> String {
        "random".into()
    }
    fn batching(&self) -> Batching {
        Batching::Derived
    }
    fn step(&self, _model: &dyn Classifier, batch: &Batch, run: &mut Run) -> Result<Vec<Map>> {
        let seed = self.seed;
        Ok(maps(batch, run, |i, h, w| {
            let mut rng = image_rng(seed, "random map", batch.inputs.image(i));
            (0..h * w).map(|_| rng.random::<f32>()).collect()
        }))
    }
}

/// The centre map of an `h`×`w` image.
pub fn centre_values(h: usize, w: usize) -> Vec<f32> {
    let (cy, cx) = ((h as f64 - 1.0) / 2.0, (w as f64 - 1.0) / 2.0);
    let s = h.min(w) as f64 / 4.0;
    (0..h * w)
        .map(|i| {
            let (y, x) = ((i / w) as f64, (i % w) as f64);
            (-((x - cx).powi(2) + (y - cy).powi(2)) / (2.0 * s * s)).exp() as f32
        })
        .collect()
}

impl Attribution for CentreMap {
    fn name(&self) -> String {
        "centre".into()
    }
    fn batching(&self) -> Batching {
        Batching::Derived
    }
    fn step(&self, _model: &dyn Classifier, batch: &Batch, run: &mut Run) -> Result<Vec<Map>> {
        Ok(maps(batch, run, |_, h, w| centre_values(h, w)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn centre_peaks_in_the_middle() {
        let v = centre_values(5, 5);
        let max = v.iter().cloned().fold(0.0, f32::max);
        assert_eq!(v[12], max);
        assert!(v[0] < v[6]);
    }
}
