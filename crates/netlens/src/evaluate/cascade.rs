//! The model-parameter randomization test of Adebayo et al. (2018) step by step on one
//! image: the cascade (the trained network, then the top 1, 25 %, 50 %, 75 % and all of the
//! learned layers re-drawn, from the logits down) and the independent test (one layer at a
//! time, at the same depths). For each step and method: Spearman of the absolute and of the
//! signed maps, SSIM and HOG similarity with the trained network's map (`randomization.csv`),
//! and the cascade's maps (the paper's figure: a row per method, a column per step).

use super::Progress;
use crate::batch::ImageBatch;
use crate::error::Result;
use crate::metrics::randomization::{layers, randomized, spearman, Randomization};
use crate::metrics::similarity::{hog_similarity, map_ssim};
use crate::models::{GraphModel, ModelSpec};
use crate::saliency::{Attribution, Map, Run, Targets};
use std::fmt::Write as _;

/// The steps of both tests for a network of `total` learned layers, the trained network
/// first.
pub fn steps(total: usize) -> Vec<Randomization> {
    let mut depths = vec![1, total / 4, total / 2, 3 * total / 4, total];
    depths.retain(|&k| k >= 1);
    depths.dedup();
    let mut v = vec![Randomization::Cascade(0)];
    v.extend(depths.iter().map(|&k| Randomization::Cascade(k)));
    v.extend(depths.iter().map(|&k| Randomization::Independent(k)));
    v
}

/// A step as `randomization.csv` names it: ("cascade" or "independent", its depth).
pub fn step_name(step: Randomization) -> (&'static str, usize) {
    match step {
        Randomization::Cascade(k) => ("cascade", k),
        Randomization::Independent(k) => ("independent", k),
    }
}

/// One method at one step of a test.
#[derive(Debug, Clone, PartialEq)]
pub struct StepResult {
    pub method: String,
    pub step: Randomization,
    /// Spearman rank correlation of the absolute maps with the trained network's.
    pub spearman_abs: f64,
    /// Spearman rank correlation of the signed maps.
    pub spearman_signed: f64,
    pub ssim: f64,
    pub hog: f64,
}

/// Both tests on one image.
#[derive(Debug, Clone)]
pub struct RandomizationTests {
    /// The image's name.
    pub image: String,
    /// The network's learned layers.
    pub layers: usize,
    /// The steps, the trained network first, then the cascade, then the independent test.
    pub steps: Vec<Randomization>,
    /// Per step, per method (in that order).
    pub results: Vec<StepResult>,
    /// Per method: its map at each step of the cascade (the trained network's first).
    pub cascade_maps: Vec<Vec<Map>>,
}

impl RandomizationTests {
    /// `randomization.csv`.
    pub fn csv(&self) -> String {
        let mut table =
            String::from("image,method,mode,layers,of,spearman_abs,spearman_signed,ssim,hog\n");
        for r in &self.results {
            let (mode, k) = step_name(r.step);
            let _ = writeln!(
                table,
                "{},{},{mode},{k},{},{},{},{},{}",
                self.image, r.method, self.layers, r.spearman_abs, r.spearman_signed, r.ssim, r.hog
            );
        }
        table
    }

    /// The cascade's Spearman of absolute maps for method `mi`, step by step.
    pub fn cascade_spearman(&self, mi: usize) -> Vec<f64> {
        let n = self.cascade_maps.len().max(1);
        self.results
            .iter()
            .skip(mi)
            .step_by(n)
            .filter(|r| matches!(r.step, Randomization::Cascade(_)))
            .map(|r| r.spearman_abs)
            .collect()
    }
}

/// Both tests of `methods` on `image` (fitted to the input), explaining class `target`.
#[allow(clippy::too_many_arguments)] // the one place that gathers them
pub fn randomization_tests(
    g: &GraphModel,
    spec: &ModelSpec,
    methods: &[Box<dyn Attribution>],
    image: &image::RgbImage,
    image_name: &str,
    target: usize,
    seed: u64,
    batch_size: usize,
    progress: &dyn Progress,
) -> Result<RandomizationTests> {
    let total = layers(g.graph()).len();
    let steps = steps(total);
    let x = ImageBatch::from_images(std::slice::from_ref(image), &spec.normalization)?;
    let targets = Targets::PerImage(vec![target]);
    let work: usize = methods.iter().map(|m| m.passes(1)).sum::<usize>() * steps.len();
    progress.stage("randomization tests (first image)", work);
    let mut tick = |k: usize| progress.tick(k);
    let mut run = Run::new(batch_size, &mut tick);
    let mut results = Vec::with_capacity(steps.len() * methods.len());
    let mut cascade_maps: Vec<Vec<Map>> = vec![Vec::new(); methods.len()];
    let mut originals: Vec<Map> = Vec::new();
    for &step in &steps {
        let model = randomized(g, spec, step, seed)
            .map_err(|e| crate::Error::Graph(format!("cannot build a randomized network: {e}")))?;
        for (i, m) in methods.iter().enumerate() {
            let map = m
                .attribute(&model, x.view(), &targets, &mut run)
                .map_err(|e| {
                    crate::Error::Graph(format!("{} on a randomized network failed: {e}", m.name()))
                })?
                .remove(0);
            if step == Randomization::Cascade(0) {
                originals.push(map.clone());
            }
            let o = &originals[i];
            let (mag, omag) = (map.magnitude(), o.magnitude());
            results.push(StepResult {
                method: m.name(),
                step,
                spearman_abs: spearman(&omag, &mag)?,
                spearman_signed: spearman(&o.values, &map.values)?,
                ssim: map_ssim(&omag, &mag, map.height, map.width),
                hog: hog_similarity(&omag, &mag, map.height, map.width),
            });
            if matches!(step, Randomization::Cascade(_)) {
                cascade_maps[i].push(map);
            }
        }
    }
    progress.done();
    Ok(RandomizationTests {
        image: image_name.to_string(),
        layers: total,
        steps,
        results,
        cascade_maps,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steps_of_both_tests() {
        let s = steps(99);
        assert_eq!(s.len(), 11);
        assert_eq!(s[0], Randomization::Cascade(0));
        assert_eq!(s[5], Randomization::Cascade(99));
        assert_eq!(s[6], Randomization::Independent(1));
        assert_eq!(s[10], Randomization::Independent(99));
    }
}
