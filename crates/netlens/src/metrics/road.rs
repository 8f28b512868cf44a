//! ROAD, "remove and debias" (Rong, Leemann, Borisov, Kasneci & Kasneci 2022, "A Consistent
//! and Efficient Evaluation Strategy for Attribution Methods", ICML): remove a percentage of
//! the pixels, most relevant first (MoRF) or least relevant first (LeRF), fill them by noisy
//! linear imputation ([`super::imputation`]) instead of a constant, and see how the network's
//! belief in the explained class holds up. A faithful map makes MoRF fall fast (low is good)
//! and LeRF stay high (high is good). Removing without retraining is the point: the imputation
//! leaks no shape of the removed region, so no model has to be retrained per method (ROAR).
//!
//! Protocol as the paper's: the map's magnitude ranks the pixels (ties by pixel index, as
//! deletion does); the paper's percentages are 10 %, 20 %, …, 90 % (Quantus's `ROAD` defaults
//! to 1 %, 3 %, …, 99 %); at `p` % the first `⌊H·W·p/100⌋` pixels of the order are removed;
//! imputation noise σ = 0.01 in the model's normalized input units (the paper's and Quantus's
//! default). The paper reports, per percentage, the accuracy over a dataset (top-1 equals the
//! label); per image netlens records both that hit and the softmax probability of the
//! explained class, and the image's score is the mean probability over the percentages (the
//! area under its ROAD curve: a hit rate of a handful of images is too coarse to rank
//! methods). The hits are kept in [`RoadCurve::hits`]; their mean over images is the paper's
//! accuracy.

use super::deletion_insertion::{order, probabilities_with};
use super::imputation::impute;
use crate::error::{Error, Result};
use crate::models::Classifier;
use crate::saliency::Run;
use rand::rngs::StdRng;
use rand::SeedableRng;

/// Which pixels go first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RoadOrder {
    /// Most relevant first.
    Morf,
    /// Least relevant first.
    Lerf,
}

/// The protocol's settings.
#[derive(Debug, Clone, PartialEq)]
pub struct Road {
    /// Percentages of the pixels removed (0 < p < 100).
    pub percentages: Vec<f64>,
    /// Standard deviation of the imputation noise (normalized input units).
    pub noise: f32,
    /// Seeds the noise.
    pub seed: u64,
}

impl Road {
    /// The paper's percentages: 10, 20, …, 90.
    pub fn paper_percentages() -> Vec<f64> {
        (1..=9).map(|k| f64::from(k) * 10.0).collect()
    }
}

impl Default for Road {
    fn default() -> Self {
        Self {
            percentages: Self::paper_percentages(),
            noise: 0.01,
            seed: 0,
        }
    }
}

/// One image's ROAD curve.
#[derive(Debug, Clone, PartialEq)]
pub struct RoadCurve {
    /// Percentages removed.
    pub percentages: Vec<f64>,
    /// Softmax probability of the explained class at each percentage.
    pub probabilities: Vec<f64>,
    /// Whether the network's top-1 class is still the explained class at each percentage.
    pub hits: Vec<bool>,
    /// Mean probability over the percentages.
    pub score: f64,
}

/// Forward passes one curve takes.
pub fn passes(r: &Road) -> usize {
    r.percentages.len()
}

/// Pixel order for `magnitude`: most relevant first for MoRF, least relevant first for
/// LeRF (ties by pixel index in both).
pub fn road_order(magnitude: &[f32], o: RoadOrder) -> Vec<usize> {
    match o {
        RoadOrder::Morf => order(magnitude),
        RoadOrder::Lerf => {
            let neg: Vec<f32> = magnitude.iter().map(|v| -v).collect();
            order(&neg)
        }
    }
}

/// The image with `p` % of its pixels removed in `ord`er and imputed (noise from `rng`).
pub fn removed_image(
    image: &[f32],
    h: usize,
    w: usize,
    ord: &[usize],
    p: f64,
    noise: f32,
    rng: &mut StdRng,
) -> Result<Vec<f32>> {
    let plane = h * w;
    let k = ((plane as f64) * p / 100.0).floor() as usize;
    let mut removed = vec![false; plane];
    for &q in &ord[..k.min(plane)] {
        removed[q] = true;
    }
    impute(image, h, w, &removed, noise, rng)
}

/// The ROAD curve of one normalized CHW `image` (`h`×`w`) for the map `magnitude` and class
/// `target`.
#[allow(clippy::too_many_arguments)]
pub fn road_curve(
    model: &dyn Classifier,
    image: &[f32],
    h: usize,
    w: usize,
    magnitude: &[f32],
    target: usize,
    o: RoadOrder,
    r: &Road,
    run: &mut Run,
) -> Result<RoadCurve> {
    let plane = h * w;
    super::check_image_and_map("ROAD", image, magnitude, h, w)?;
    if let Some(p) = r.percentages.iter().find(|p| !(**p > 0.0 && **p < 100.0)) {
        return Err(Error::Invalid(format!(
            "ROAD: percentages must lie strictly between 0 and 100, got {p}"
        )));
    }
    let ord = road_order(magnitude, o);
    let k = model.classes();
    let mut probs = Vec::with_capacity(r.percentages.len());
    let mut hits = Vec::with_capacity(r.percentages.len());
    for (ci, chunk) in r.percentages.chunks(run.batch_size).enumerate() {
        let mut batch = Vec::with_capacity(chunk.len() * 3 * plane);
        for (j, &p) in chunk.iter().enumerate() {
            let idx = ci * run.batch_size + j;
            let mut rng = StdRng::seed_from_u64(
                r.seed
                    .wrapping_mul(0x9E37_79B9_7F4A_7C15)
                    .wrapping_add(idx as u64 + 1),
            );
            batch.extend(removed_image(image, h, w, &ord, p, r.noise, &mut rng)?);
        }
        let (p, top) = probabilities_and_top1(model, &batch, h, w, target, k, run)?;
        probs.extend(p);
        hits.extend(top.into_iter().map(|t| t == target));
    }
    let score = probs.iter().sum::<f64>() / probs.len().max(1) as f64;
    Ok(RoadCurve {
        percentages: r.percentages.clone(),
        probabilities: probs,
        hits,
        score,
    })
}

/// Probabilities of `target` and the top-1 class for each image of `x`, in one pass.
fn probabilities_and_top1(
    model: &dyn Classifier,
    x: &[f32],
    h: usize,
    w: usize,
    target: usize,
    classes: usize,
    run: &mut Run,
) -> Result<(Vec<f64>, Vec<usize>)> {
    let mut top = Vec::new();
    let probs = probabilities_with(model, x, h, w, target, run, &mut |logits| {
        top.extend(logits.chunks(classes).map(|row| {
            row.iter()
                .enumerate()
                .fold(
                    (0, f32::NEG_INFINITY),
                    |b, (i, &v)| {
                        if v > b.1 {
                            (i, v)
                        } else {
                            b
                        }
                    },
                )
                .0
        }))
    })?;
    Ok((probs, top))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn orders_and_counts() {
        let m = [0.5, 0.1, 0.9, 0.1];
        assert_eq!(road_order(&m, RoadOrder::Morf), vec![2, 0, 1, 3]);
        assert_eq!(road_order(&m, RoadOrder::Lerf), vec![1, 3, 0, 2]);
        assert_eq!(Road::paper_percentages().len(), 9);
        // 2×2 image, 50 %: two pixels imputed from the other two.
        let img = [0.0, 1.0, 1.0, 1.0];
        let mut rng = StdRng::seed_from_u64(0);
        let out = removed_image(&img, 2, 2, &[0, 1, 2, 3], 50.0, 0.0, &mut rng).unwrap();
        assert_eq!(&out[2..], &img[2..]);
        assert!((out[0] - 1.0).abs() < 1e-6 && (out[1] - 1.0).abs() < 1e-6);
    }
}
