//! Integrated Gradients (Sundararajan, Taly & Yan 2017): the gradient averaged along the
//! straight path from a baseline x' to the input x, times (x − x'), summed over channels.
//!
//! The path integral uses Gauss–Legendre quadrature on [0, 1], Captum's default. Completeness
//! — Σ attributions = score(x) − score(x') — is measured on every image and returned as
//! [`Map::delta`]. Baselines: black (pixel value 0), a Gaussian blur of the image (Sturmfels
//! et al., Distill 2020), or uniform random pixels (seeded).

use super::{check_shape, class_gradients, flat, Attribution, Map, Run, Targets};
use crate::engine;
use crate::error::{Error, Result};
use crate::gradients::logits;
use crate::imaging::filters::gaussian_blur;
use crate::models::Classifier;
use burn::tensor::Tensor;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// Where the path starts.
#[derive(Debug, Clone, PartialEq)]
pub enum Baseline {
    /// Every pixel 0 (black) in every channel.
    Black,
    /// The image blurred with a Gaussian of `sigma` pixels.
    Blur { sigma: f32 },
    /// Uniform random pixel values in 0–255, seeded.
    Noise,
}

/// Integrated Gradients with `steps` quadrature points.
#[derive(Debug, Clone)]
pub struct IntegratedGradients {
    steps: usize,
    baseline: Baseline,
    seed: u64,
    alphas: Vec<f64>,
    weights: Vec<f64>,
}

impl IntegratedGradients {
    /// `steps` in 1..=4096 points on the path.
    pub fn new(steps: usize, baseline: Baseline, seed: u64) -> Result<Self> {
        if !(1..=4096).contains(&steps) {
            return Err(Error::Invalid(format!(
                "Integrated Gradients needs 1 to 4096 steps, got {steps}"
            )));
        }
        if let Baseline::Blur { sigma } = baseline {
            if !(sigma > 0.0 && sigma.is_finite()) {
                return Err(Error::Invalid(format!(
                    "blur baseline sigma must be positive, got {sigma}"
                )));
            }
        }
        let (alphas, weights) = gauss_legendre(steps);
        Ok(Self {
            steps,
            baseline,
            seed,
            alphas,
            weights,
        })
    }

    /// The baseline of each image (flat, like `x`), in normalized units.
    fn baselines(&self, model: &dyn Classifier, x: &[f32], shape: [usize; 4]) -> Vec<f32> {
        let [_, c, h, w] = shape;
        let plane = h * w;
        let norm = model.spec().normalization;
        match self.baseline {
            Baseline::Black => (0..x.len())
                .map(|j| norm.apply((j / plane) % c, 0.0))
                .collect(),
            Baseline::Blur { sigma } => {
                let mut b = x.to_vec();
                gaussian_blur(&mut b, h, w, sigma);
                b
            }
            Baseline::Noise => {
                let mut rng = StdRng::seed_from_u64(self.seed);
                (0..x.len())
                    .map(|j| norm.apply((j / plane) % c, rng.random_range(0.0..=255.0)))
                    .collect()
            }
        }
    }
}

/// Gauss–Legendre nodes and weights mapped to [0, 1] (weights sum to 1).
pub fn gauss_legendre(n: usize) -> (Vec<f64>, Vec<f64>) {
    let mut nodes = Vec::with_capacity(n);
    let mut weights = Vec::with_capacity(n);
    for i in 0..n {
        // Newton's method on P_n from the Tricomi initial guess.
        let mut z = (std::f64::consts::PI * (i as f64 + 0.75) / (n as f64 + 0.5)).cos();
        let mut dp = 1.0;
        for _ in 0..100 {
            let (mut p0, mut p1) = (1.0, z);
            for k in 2..=n {
                let p2 = ((2 * k - 1) as f64 * z * p1 - (k - 1) as f64 * p0) / k as f64;
                p0 = p1;
                p1 = p2;
            }
            let p = if n == 1 { z } else { p1 };
            let pm1 = if n == 1 { 1.0 } else { p0 };
            dp = n as f64 * (z * p - pm1) / (z * z - 1.0);
            let dz = p / dp;
            z -= dz;
            if dz.abs() < 1e-15 {
                break;
            }
        }
        if n == 1 {
            z = 0.0;
            dp = 1.0;
        }
        let wgt = 2.0 / ((1.0 - z * z) * dp * dp);
        nodes.push(0.5 * (1.0 + z));
        weights.push(0.5 * wgt);
    }
    // Increasing alphas.
    nodes.reverse();
    weights.reverse();
    (nodes, weights)
}

impl Attribution for IntegratedGradients {
    fn name(&self) -> String {
        "integrated-gradients".into()
    }

    fn passes(&self, n: usize) -> usize {
        n * self.steps
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
        let t = targets.resolve(shape[0])?;
        let [n, c, h, w] = shape;
        let per = c * h * w;
        let base = self.baselines(model, &x, shape);
        // score(x) and score(x') for the completeness check, forward only.
        let mut ends = Vec::with_capacity(2 * n);
        for i in 0..n {
            ends.push((i, &x[i * per..(i + 1) * per]));
            ends.push((i, &base[i * per..(i + 1) * per]));
        }
        let mut end_scores = Vec::with_capacity(2 * n);
        for chunk in ends.chunks(run.batch_size) {
            let data: Vec<f32> = chunk.iter().flat_map(|(_, v)| v.iter().copied()).collect();
            let l = logits(model, engine::tensor(data, [chunk.len(), c, h, w]));
            let k = l.len() / chunk.len();
            for (j, (i, _)) in chunk.iter().enumerate() {
                end_scores.push(l[j * k + t[*i]]);
            }
        }
        let mut maps = Vec::with_capacity(n);
        for i in 0..n {
            let (xi, bi) = (&x[i * per..(i + 1) * per], &base[i * per..(i + 1) * per]);
            let mut avg = vec![0f64; per];
            for start in (0..self.steps).step_by(run.batch_size) {
                let end = (start + run.batch_size).min(self.steps);
                let mut pts = Vec::with_capacity((end - start) * per);
                for &a in &self.alphas[start..end] {
                    pts.extend(
                        xi.iter()
                            .zip(bi)
                            .map(|(&xv, &bv)| (f64::from(bv) + a * f64::from(xv - bv)) as f32),
                    );
                }
                let b = end - start;
                let (g, _) = class_gradients(model, &pts, [b, c, h, w], &vec![t[i]; b], run)?;
                for (k, gk) in g.chunks(per).enumerate() {
                    let wk = self.weights[start + k];
                    avg.iter_mut()
                        .zip(gk)
                        .for_each(|(a, &gv)| *a += wk * f64::from(gv));
                }
            }
            let plane = h * w;
            let mut values = vec![0f64; plane];
            for (j, a) in avg.iter().enumerate() {
                values[j % plane] += a * f64::from(xi[j] - bi[j]);
            }
            let total: f64 = values.iter().sum();
            let expected = f64::from(end_scores[2 * i]) - f64::from(end_scores[2 * i + 1]);
            maps.push(Map {
                width: w,
                height: h,
                values: values.into_iter().map(|v| v as f32).collect(),
                target: t[i],
                signed: true,
                delta: Some((total - expected) as f32),
            });
        }
        Ok(maps)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quadrature_is_exact_for_polynomials() {
        for n in [1usize, 2, 5, 16, 64] {
            let (a, w) = gauss_legendre(n);
            assert!((w.iter().sum::<f64>() - 1.0).abs() < 1e-12, "n={n}");
            assert!(a.windows(2).all(|p| p[0] < p[1]));
            // ∫0^1 t^k dt = 1/(k+1), exact up to degree 2n-1.
            let k = (2 * n - 1).min(20) as i32;
            let got: f64 = a.iter().zip(&w).map(|(t, wt)| wt * t.powi(k)).sum();
            assert!((got - 1.0 / f64::from(k + 1)).abs() < 1e-12, "n={n}: {got}");
        }
    }
}
