//! SmoothGrad (Smilkov et al. 2017) as Captum's NoiseTunnel: any attribution method averaged
//! over noisy copies of each image. The noise is Gaussian with σ = `noise` × (max − min) of
//! that image's normalized values, drawn from the image's own seeded generator
//! ([`super::seeding::image_rng`]), so a map depends on the seed and the image only: not on
//! the batch size, nor on the other images of the call.

use super::seeding::image_rng;
use super::{batches, Attribution, Batch, Batching, Map, Method, Run, Targets};
use crate::batch::ImageBatch;
use crate::error::{Error, Result};
use crate::models::Classifier;
use rand::rngs::StdRng;
use rand_distr::{Distribution, Normal};
use std::ops::RangeInclusive;

/// SmoothGrad's settings; `Default` is the library's (and the CLI's) default.
#[derive(Debug, Clone, PartialEq)]
pub struct SmoothGradConfig {
    /// Noisy copies averaged per image, in [`SmoothGradConfig::SAMPLES`].
    pub samples: usize,
    /// Noise σ as a fraction of each image's value range (max − min), in
    /// [`SmoothGradConfig::NOISE`].
    pub noise: f32,
    /// The method averaged (anything but smoothgrad itself).
    pub inner: Method,
}

impl SmoothGradConfig {
    /// Accepted sample counts.
    pub const SAMPLES: RangeInclusive<usize> = 1..=10_000;
    /// Accepted noise fractions.
    pub const NOISE: RangeInclusive<f32> = 0.0..=10.0;
}

impl Default for SmoothGradConfig {
    fn default() -> Self {
        Self {
            samples: 25,
            noise: 0.15,
            inner: Method::Vanilla,
        }
    }
}

/// Wraps a method: the mean of its maps over `samples` noisy copies of each image.
pub struct NoiseTunnel {
    inner: Box<dyn Attribution>,
    samples: usize,
    noise: f32,
    seed: u64,
}

impl NoiseTunnel {
    /// `samples` copies (in [`SmoothGradConfig::SAMPLES`]) with noise σ = `noise` × the
    /// image's range (in [`SmoothGradConfig::NOISE`]).
    pub fn new(inner: Box<dyn Attribution>, samples: usize, noise: f32, seed: u64) -> Result<Self> {
        let (lo, hi) = SmoothGradConfig::SAMPLES.into_inner();
        if !(lo..=hi).contains(&samples) {
            return Err(Error::Invalid(format!(
                "SmoothGrad needs {lo} to {hi} samples, got {samples}"
            )));
        }
        if !SmoothGradConfig::NOISE.contains(&noise) || !noise.is_finite() {
            let (lo, hi) = SmoothGradConfig::NOISE.into_inner();
            return Err(Error::Invalid(format!(
                "SmoothGrad noise {noise} must be a fraction of the input range, {lo} to {hi}"
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

    fn batching(&self) -> Batching {
        Batching::Derived
    }

    fn step(&self, model: &dyn Classifier, batch: &Batch, run: &mut Run) -> Result<Vec<Map>> {
        let (x, t) = (batch.inputs, batch.targets);
        let [n, c, h, w] = x.shape();
        let per = x.per_image();
        let sigmas: Vec<f32> = x
            .images()
            .map(|img| {
                let (lo, hi) = img
                    .iter()
                    .fold((f32::INFINITY, f32::NEG_INFINITY), |(l, h), &v| {
                        (l.min(v), h.max(v))
                    });
                self.noise * (hi - lo).max(0.0)
            })
            .collect();
        let mut rngs: Vec<StdRng> = x
            .images()
            .map(|img| image_rng(self.seed, "smoothgrad noise", img))
            .collect();
        let mut sums: Vec<Option<Map>> = vec![None; n];
        // (image, sample) pairs in a fixed order, `batch_size` noisy copies per call.
        let jobs: Vec<usize> = (0..n)
            .flat_map(|i| std::iter::repeat_n(i, self.samples))
            .collect();
        for r in batches(jobs.len(), run.batch_size) {
            let chunk = &jobs[r];
            let mut noisy = Vec::with_capacity(chunk.len() * per);
            for &i in chunk {
                let normal = Normal::new(0.0f32, sigmas[i])
                    .map_err(|e| Error::Invalid(format!("SmoothGrad noise: {e}")))?;
                noisy.extend(x.image(i).iter().map(|&v| v + normal.sample(&mut rngs[i])));
            }
            let copies = ImageBatch::new(noisy, [chunk.len(), c, h, w])?;
            let tg = Targets::PerImage(chunk.iter().map(|&i| t[i]).collect());
            let maps = self.inner.attribute(model, copies.view(), &tg, run)?;
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
