//! SmoothGrad (Smilkov et al. 2017) as Captum's NoiseTunnel: any attribution method averaged
//! over noisy copies of each image. The noise is Gaussian with σ = `noise` × (max − min) of
//! that image's normalized values, drawn from a seeded generator in image-then-sample order,
//! so the maps depend on the seed but not on the batch size.

use super::{check_shape, flat, Attribution, Map, Run, Targets};
use crate::engine;
use crate::error::{Error, Result};
use crate::models::Classifier;
use burn::tensor::Tensor;
use rand::rngs::StdRng;
use rand::SeedableRng;
use rand_distr::{Distribution, Normal};

/// Wraps a method: the mean of its maps over `samples` noisy copies of each image.
pub struct NoiseTunnel {
    inner: Box<dyn Attribution>,
    samples: usize,
    noise: f32,
    seed: u64,
}

impl NoiseTunnel {
    /// `samples` ≥ 1 copies with noise σ = `noise` × the image's range (0 ≤ noise ≤ 10).
    pub fn new(inner: Box<dyn Attribution>, samples: usize, noise: f32, seed: u64) -> Result<Self> {
        if samples == 0 {
            return Err(Error::Invalid("SmoothGrad needs at least 1 sample".into()));
        }
        if !(0.0..=10.0).contains(&noise) || !noise.is_finite() {
            return Err(Error::Invalid(format!(
                "SmoothGrad noise {noise} must be a fraction of the input range, 0 to 10"
            )));
        }
        Ok(Self {
            inner,
            samples,
            noise,
            seed,
        })
    }
}

impl Attribution for NoiseTunnel {
    fn name(&self) -> String {
        format!("smoothgrad({})", self.inner.name())
    }

    fn passes(&self, n: usize) -> usize {
        self.samples * self.inner.passes(n)
    }

    fn attribute(
        &self,
        model: &dyn Classifier,
        inputs: &Tensor<4>,
        targets: &Targets,
        run: &mut Run,
    ) -> Result<Vec<Map>> {
        let (x, shape) = flat(inputs);
        check_shape(shape)?;
        let t = targets.resolve(shape[0], model.classes())?;
        let [n, c, h, w] = shape;
        let per = c * h * w;
        let sigmas: Vec<f32> = x
            .chunks(per)
            .map(|img| {
                let (lo, hi) = img
                    .iter()
                    .fold((f32::INFINITY, f32::NEG_INFINITY), |(l, h), &v| {
                        (l.min(v), h.max(v))
                    });
                self.noise * (hi - lo).max(0.0)
            })
            .collect();
        let mut rng = StdRng::seed_from_u64(self.seed);
        let mut sums: Vec<Option<Map>> = vec![None; n];
        // (image, sample) pairs in a fixed order, `batch_size` noisy copies per call.
        let jobs: Vec<usize> = (0..n)
            .flat_map(|i| std::iter::repeat_n(i, self.samples))
            .collect();
        for chunk in jobs.chunks(run.batch_size) {
            let mut noisy = Vec::with_capacity(chunk.len() * per);
            for &i in chunk {
                let normal = Normal::new(0.0f32, sigmas[i])
                    .map_err(|e| Error::Invalid(format!("SmoothGrad noise: {e}")))?;
                noisy.extend(
                    x[i * per..(i + 1) * per]
                        .iter()
                        .map(|&v| v + normal.sample(&mut rng)),
                );
            }
            let batch = engine::tensor(noisy, [chunk.len(), c, h, w]);
            let tg = Targets::PerImage(chunk.iter().map(|&i| t[i]).collect());
            let maps = self.inner.attribute(model, &batch, &tg, run)?;
            for (&i, m) in chunk.iter().zip(maps) {
                match &mut sums[i] {
                    Some(acc) => {
                        acc.values
                            .iter_mut()
                            .zip(&m.values)
                            .for_each(|(a, v)| *a += v);
                        if let (Some(a), Some(d)) = (acc.delta.as_mut(), m.delta) {
                            *a += d;
                        }
                    }
                    slot => *slot = Some(m),
                }
            }
        }
        let k = self.samples as f32;
        Ok(sums
            .into_iter()
            .flatten()
            .map(|mut m| {
                m.values.iter_mut().for_each(|v| *v /= k);
                m.delta = m.delta.map(|d| d / k);
                m
            })
            .collect())
    }
}
