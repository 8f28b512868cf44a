//! Chance baselines, as attribution methods so that every table reads a number against them:
//! `random` (independent uniform values per pixel, seeded) and `centre` (an isotropic Gaussian
//! on the image centre, σ = a quarter of the shorter side: the centre bias of photographs,
//! the baseline of saliency benchmarks since Judd et al. 2009). Neither looks at the network.

use crate::error::Result;
use crate::models::Classifier;
use crate::saliency::{Attribution, Map, Run, Targets};
use burn::tensor::Tensor;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// Uniform random values in [0, 1), seeded per image (`seed`, image index).
#[derive(Debug, Clone, Copy, Default)]
pub struct RandomMap {
    pub seed: u64,
}

/// A Gaussian bump on the image centre.
#[derive(Debug, Clone, Copy, Default)]
pub struct CentreMap;

fn maps(
    model: &dyn Classifier,
    inputs: &Tensor<4>,
    targets: &Targets,
    run: &mut Run,
    values: impl Fn(usize, usize, usize) -> Vec<f32>,
) -> Result<Vec<Map>> {
    let [n, _, h, w] = inputs.dims();
    let t = targets.resolve(n, model.classes())?;
    let out = t
        .iter()
        .enumerate()
        .map(|(i, &target)| Map {
            width: w,
            height: h,
            values: values(i, h, w),
            target,
            signed: false,
            delta: None,
        })
        .collect();
    (run.progress)(n);
    Ok(out)
}

impl Attribution for RandomMap {
    fn name(&self) -> String {
        "random".into()
    }
    fn passes(&self, n: usize) -> usize {
        n
    }
    fn attribute(
        &self,
        model: &dyn Classifier,
        inputs: &Tensor<4>,
        targets: &Targets,
        run: &mut Run,
    ) -> Result<Vec<Map>> {
        let seed = self.seed;
        maps(model, inputs, targets, run, |i, h, w| {
            let mut rng =
                StdRng::seed_from_u64(seed ^ (0x9E37_79B9_7F4A_7C15u64.wrapping_mul(i as u64 + 1)));
            (0..h * w).map(|_| rng.random::<f32>()).collect()
        })
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
    fn passes(&self, n: usize) -> usize {
        n
    }
    fn attribute(
        &self,
        model: &dyn Classifier,
        inputs: &Tensor<4>,
        targets: &Targets,
        run: &mut Run,
    ) -> Result<Vec<Map>> {
        maps(model, inputs, targets, run, |_, h, w| centre_values(h, w))
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
