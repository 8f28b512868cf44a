//! Deletion and insertion (Petsiuk, Das & Saenko 2018, "RISE: Randomized Input Sampling for
//! Explanation of Black-box Models", BMVC, section 4.1).
//!
//! Deletion removes pixels from the image, most important first (by the map's magnitude),
//! `step` pixels at a time, replacing them with a baseline, and records the softmax
//! probability of the explained class after each step: a faithful map makes it fall fast
//! (low area under the curve is good). Insertion starts from the baseline and puts the
//! image's pixels back in the same order: the probability should rise fast (high area is
//! good). As in the paper's code, the deletion baseline is black (pixel value 0) and the
//! insertion canvas a blurred copy of the image (the paper: an 11-tap Gaussian of σ = 5; here
//! SciPy's σ = 5 kernel, truncated at 4σ); both baselines are available to both metrics.
//! The curve has `ceil(H·W / step) + 1` points at fractions `k / n_steps` of the steps, and
//! the area is the paper's trapezoid rule on that uniform grid. Ties in the map are broken
//! by pixel index (row-major), so results are deterministic.

use crate::engine::tensor_values;
use crate::error::{Error, Result};
use crate::imaging::filters::gaussian_blur;
use crate::imaging::tensor::Normalization;
use crate::models::Classifier;
use crate::saliency::Run;

/// What removed pixels become.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Fill {
    /// Pixel value 0 (black) in every channel.
    Black,
    /// The image blurred by a Gaussian of `sigma` pixels.
    Blur { sigma: f32 },
}

impl Fill {
    /// The paper's blur (σ = 5 pixels).
    pub const PAPER_BLUR: Fill = Fill::Blur { sigma: 5.0 };

    /// Parses `black` or `blur`.
    pub fn parse(s: &str) -> Result<Fill> {
        match s.trim().to_lowercase().as_str() {
            "black" => Ok(Fill::Black),
            "blur" | "blurred" => Ok(Fill::PAPER_BLUR),
            other => Err(Error::Invalid(format!(
                "unknown baseline '{other}'; baselines: black, blur"
            ))),
        }
    }

    /// The name the CLI uses.
    pub fn name(&self) -> &'static str {
        match self {
            Fill::Black => "black",
            Fill::Blur { .. } => "blur",
        }
    }

    /// The baseline image for the normalized CHW `image` (`h`×`w`).
    pub fn baseline(&self, image: &[f32], h: usize, w: usize, norm: &Normalization) -> Vec<f32> {
        match *self {
            Fill::Black => (0..image.len())
                .map(|i| norm.apply(i / (h * w), 0.0))
                .collect(),
            Fill::Blur { sigma } => {
                let mut b = image.to_vec();
                gaussian_blur(&mut b, h, w, sigma);
                b
            }
        }
    }
}

/// Deletion or insertion.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    Deletion,
    Insertion,
}

/// A deletion or insertion curve.
#[derive(Debug, Clone, PartialEq)]
pub struct Curve {
    /// Fraction of the pixels changed at each point (0 to 1).
    pub fractions: Vec<f64>,
    /// Softmax probability of the explained class at each point.
    pub scores: Vec<f64>,
    /// Area under the curve (trapezoid rule, x from 0 to 1).
    pub auc: f64,
}

/// Pixel indices, most important first (magnitude descending, ties by index).
pub fn order(magnitude: &[f32]) -> Vec<usize> {
    let mut idx: Vec<usize> = (0..magnitude.len()).collect();
    idx.sort_by(|&a, &b| {
        let (va, vb) = (magnitude[a], magnitude[b]);
        let key = |v: f32| if v.is_nan() { f32::NEG_INFINITY } else { v };
        key(vb).total_cmp(&key(va))
    });
    idx
}

/// The paper's area: trapezoid rule on a uniform grid over [0, 1].
pub fn auc(scores: &[f64]) -> f64 {
    match scores.len() {
        0 => f64::NAN,
        1 => scores[0],
        n => (scores.iter().sum::<f64>() - (scores[0] + scores[n - 1]) / 2.0) / (n - 1) as f64,
    }
}

/// Softmax probability of `target` for each row of `logits` (`k` columns).
pub fn softmax_at(logits: &[f32], k: usize, target: usize) -> Vec<f64> {
    logits
        .chunks(k)
        .map(|row| {
            let m = row.iter().fold(f32::NEG_INFINITY, |a, &b| a.max(b)) as f64;
            let s: f64 = row.iter().map(|&v| (v as f64 - m).exp()).sum();
            (row[target] as f64 - m).exp() / s
        })
        .collect()
}

/// Softmax probabilities of `target` for flat normalized images `x` (`n` of `[3, h, w]`),
/// `run.batch_size` at a time.
pub fn probabilities(
    model: &dyn Classifier,
    x: &[f32],
    h: usize,
    w: usize,
    target: usize,
    run: &mut Run,
) -> Result<Vec<f64>> {
    probabilities_with(model, x, h, w, target, run, &mut |_| {})
}

/// As [`probabilities`], handing each batch's logits (rows of `model.classes()`) to
/// `on_logits` too.
pub fn probabilities_with(
    model: &dyn Classifier,
    x: &[f32],
    h: usize,
    w: usize,
    target: usize,
    run: &mut Run,
    on_logits: &mut dyn FnMut(&[f32]),
) -> Result<Vec<f64>> {
    let per = 3 * h * w;
    let n = x.len() / per;
    let k = model.classes();
    let mut out = Vec::with_capacity(n);
    for start in (0..n).step_by(run.batch_size) {
        let end = (start + run.batch_size).min(n);
        let xb = model
            .precision()
            .tensor(x[start * per..end * per].to_vec(), [end - start, 3, h, w]);
        let logits = tensor_values(model.forward(xb));
        on_logits(&logits);
        out.extend(softmax_at(&logits, k, target));
        (run.progress)(end - start);
    }
    Ok(out)
}

/// Number of forward passes one curve takes for `pixels` pixels.
pub fn passes(pixels: usize, step: usize) -> usize {
    pixels.div_ceil(step.max(1)) + 1
}

/// The deletion or insertion curve of one normalized CHW `image` (`h`×`w`) for the map
/// `magnitude` (`h`·`w` values, larger = more important) and class `target`; `step` pixels
/// change per point.
#[allow(clippy::too_many_arguments)]
pub fn curve(
    model: &dyn Classifier,
    image: &[f32],
    h: usize,
    w: usize,
    magnitude: &[f32],
    target: usize,
    direction: Direction,
    fill: Fill,
    step: usize,
    run: &mut Run,
) -> Result<Curve> {
    let plane = h * w;
    super::check_image_and_map("deletion/insertion", image, magnitude, h, w)?;
    if step == 0 {
        return Err(Error::Invalid(
            "deletion/insertion: step must be ≥ 1 pixel".into(),
        ));
    }
    let norm = &model.spec().normalization;
    let base = fill.baseline(image, h, w, norm);
    let (start, finish) = match direction {
        Direction::Deletion => (image, base.as_slice()),
        Direction::Insertion => (base.as_slice(), image),
    };
    let ord = order(magnitude);
    let n_steps = plane.div_ceil(step);
    // Build the perturbed images a batch at a time to bound memory.
    let mut scores = Vec::with_capacity(n_steps + 1);
    let mut current = start.to_vec();
    let mut done = 0usize;
    let mut k = 0usize;
    while k <= n_steps {
        let chunk_end = (k + run.batch_size).min(n_steps + 1);
        let mut batch = Vec::with_capacity((chunk_end - k) * 3 * plane);
        for kk in k..chunk_end {
            let upto = (kk * step).min(plane);
            for &p in &ord[done..upto] {
                for c in 0..3 {
                    current[c * plane + p] = finish[c * plane + p];
                }
            }
            done = upto;
            batch.extend_from_slice(&current);
        }
        scores.extend(probabilities(model, &batch, h, w, target, run)?);
        k = chunk_end;
    }
    let fractions = (0..=n_steps).map(|k| k as f64 / n_steps as f64).collect();
    let auc = auc(&scores);
    Ok(Curve {
        fractions,
        scores,
        auc,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn order_and_area() {
        assert_eq!(order(&[0.1, 0.5, 0.5, -1.0, f32::NAN]), vec![1, 2, 0, 3, 4]);
        assert!((auc(&[1.0, 0.5, 0.0]) - 0.5).abs() < 1e-12);
        assert!((auc(&[1.0, 1.0]) - 1.0).abs() < 1e-12);
        assert_eq!(passes(224 * 224, 224), 225);
        assert_eq!(passes(10, 3), 5);
    }

    #[test]
    fn softmax_rows() {
        let p = softmax_at(&[0.0, 0.0, 1.0, 1.0], 2, 1);
        assert!((p[0] - 0.5).abs() < 1e-12 && (p[1] - 0.5).abs() < 1e-12);
    }
}
