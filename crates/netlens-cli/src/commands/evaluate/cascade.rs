//! The model-parameter randomization test of Adebayo et al. (2018) step by step on one
//! image: the cascade (the trained network, then the top 1, 25 %, 50 %, 75 % and all of the
//! learned layers re-drawn, from the logits down) and the independent test (one layer at a
//! time, at the same depths). For each step and method: Spearman of the absolute and of the
//! signed maps, SSIM and HOG similarity with the trained network's map (`randomization.csv`);
//! the paper's figure of the cascade (a row per method, a column per step, each map captioned
//! with its Spearman of absolute maps).

use super::Args;
use crate::commands::saliency::map_picture;
use crate::common;
use anyhow::{Context, Result};
use netlens::imaging::figure::{Cell, Figure};
use netlens::imaging::images_to_tensor;
use netlens::metrics::randomization::{layers, randomized, spearman, Randomization};
use netlens::metrics::similarity::{hog_similarity, map_ssim};
use netlens::models::GraphModel;
use netlens::saliency::{Attribution, Map, Run, Targets};
use std::fmt::Write as _;

/// The steps of both tests for a network of `total` learned layers: `(mode, k)`, the trained
/// network first.
fn steps(total: usize) -> Vec<Randomization> {
    let mut depths = vec![1, total / 4, total / 2, 3 * total / 4, total];
    depths.retain(|&k| k >= 1);
    depths.dedup();
    let mut v = vec![Randomization::Cascade(0)];
    v.extend(depths.iter().map(|&k| Randomization::Cascade(k)));
    v.extend(depths.iter().map(|&k| Randomization::Independent(k)));
    v
}

/// The figure and the CSV for the first image.
pub fn randomization_tests(
    g: &GraphModel,
    spec: &netlens::ModelSpec,
    methods: &[Box<dyn Attribution>],
    image: &image::RgbImage,
    image_name: &str,
    target: usize,
    a: &Args,
) -> Result<(image::RgbImage, String)> {
    let total = layers(g.graph()).len();
    let steps = steps(total);
    let x = images_to_tensor(std::slice::from_ref(image), &spec.normalization);
    let targets = Targets::PerImage(vec![target]);
    let work: usize = methods.iter().map(|m| m.passes(1)).sum::<usize>() * steps.len();
    let pb = common::bar(work as u64, "randomization tests (first image)");
    let mut tick = |k: usize| pb.inc(k as u64);
    let mut run = Run::new(a.batch_size as usize, &mut tick);
    let mut rows: Vec<Vec<(image::RgbImage, f64)>> = vec![Vec::new(); methods.len()];
    let mut table =
        String::from("image,method,mode,layers,of,spearman_abs,spearman_signed,ssim,hog\n");
    let mut originals: Vec<Map> = Vec::new();
    for &step in &steps {
        let model =
            randomized(g, spec, step, a.seed).context("cannot build a randomized network")?;
        let (mode, k) = match step {
            Randomization::Cascade(k) => ("cascade", k),
            Randomization::Independent(k) => ("independent", k),
        };
        for (i, m) in methods.iter().enumerate() {
            let map = m
                .attribute(&model, &x, &targets, &mut run)
                .with_context(|| format!("{} on a randomized network failed", m.name()))?
                .remove(0);
            if step == Randomization::Cascade(0) {
                originals.push(map.clone());
            }
            let o = &originals[i];
            let (mag, omag) = (map.magnitude(), o.magnitude());
            let rho = spearman(&omag, &mag)?;
            let signed = spearman(&o.values, &map.values)?;
            let ssim = map_ssim(&omag, &mag, map.height, map.width);
            let hog = hog_similarity(&omag, &mag, map.height, map.width);
            let _ = writeln!(
                table,
                "{image_name},{},{mode},{k},{total},{rho},{signed},{ssim},{hog}",
                m.name()
            );
            if mode == "cascade" {
                rows[i].push((map_picture(&map), rho));
            }
        }
    }
    pb.finish_and_clear();
    let mut fig = Figure::new(160).title(format!(
        "{}: cascading randomization (Adebayo et al. 2018), learned layers re-drawn from the \
         logits down; ρ = Spearman of |map| with the trained network's",
        spec.name
    ));
    let blank = || image::RgbImage::from_pixel(8, 8, image::Rgb([255, 255, 255]));
    let mut head = vec![Cell::new(image.clone(), "photo")];
    for step in &steps {
        let Randomization::Cascade(k) = *step else {
            continue;
        };
        let label = match k {
            0 => "trained".to_string(),
            k if k == total => format!("all {total} layers"),
            k => format!("top {k} of {total}"),
        };
        head.push(Cell::new(blank(), &label));
    }
    fig.row(None, head);
    for (m, cells) in methods.iter().zip(rows) {
        let mut row = vec![Cell::new(blank(), "")];
        row.extend(
            cells
                .into_iter()
                .map(|(pic, rho)| Cell::new(pic, &format!("ρ = {rho:.2}"))),
        );
        fig.row(Some(m.name()), row);
    }
    Ok((fig.render(), table))
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
