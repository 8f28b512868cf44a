//! Do fooling images made for one network fool another? (CS231n Q7)
//!
//! Each photo is fitted to the crafting model's input size, attacked there, saved as 8-bit,
//! and that saved image is fitted again (the normal resize/crop pipeline) to every tested
//! model's input size and classified. Targeted: success = the tested model says the target.
//! Untargeted: success = the tested model no longer gives its own clean top-1 class.

use super::attack::{attack, Attack, AttackMethod, Fooled, Goal, Tick};
use crate::classify::classify;
use crate::error::{Error, Result};
use crate::imaging::fit_with;
use crate::models::Classifier;
use image::RgbImage;

/// The success matrix and what stands behind it.
#[derive(Debug, Clone)]
pub struct Transfer {
    /// Model names, in the order of rows (crafted on) and columns (tested on).
    pub models: Vec<String>,
    /// `success[i][j]`: images crafted on model i that fool model j.
    pub success: Vec<Vec<usize>>,
    /// `predictions[i][j][k]`: model j's top-1 class on image k crafted on model i.
    pub predictions: Vec<Vec<Vec<usize>>>,
    /// The attack results on each crafting model.
    pub crafted: Vec<Vec<Fooled>>,
    /// Images per cell.
    pub images: usize,
}

impl Transfer {
    /// Success rate of cell (i, j).
    pub fn rate(&self, i: usize, j: usize) -> f64 {
        self.success[i][j] as f64 / self.images.max(1) as f64
    }
}

/// Crafts with `method` on each model and tests on every model. `target` is the class to
/// reach (targeted) or `None` (untargeted). `tick` gets `(crafting model index, batch, tick)`.
pub fn transfer(
    models: &[&dyn Classifier],
    photos: &[RgbImage],
    target: Option<usize>,
    method: AttackMethod,
    batch: usize,
    tick: &mut dyn FnMut(usize, usize, Tick),
) -> Result<Transfer> {
    if models.is_empty() || photos.is_empty() {
        return Err(Error::Invalid(
            "transfer needs at least one model and one image".into(),
        ));
    }
    let fitted = |m: &dyn Classifier, imgs: &[RgbImage]| -> Vec<RgbImage> {
        imgs.iter()
            .map(|i| fit_with(i, m.spec().resize, m.spec().input_size).0)
            .collect()
    };
    // Each tested model's clean prediction on the photo fitted for it.
    let clean: Vec<Vec<usize>> = models
        .iter()
        .map(|m| {
            classify(*m, &fitted(*m, photos), 1, batch)
                .iter()
                .map(|p| p.class())
                .collect()
        })
        .collect();
    let goal = match target {
        Some(t) => Goal::Targets(vec![t; photos.len()]),
        None => Goal::Untargeted,
    };
    let mut out = Transfer {
        models: models.iter().map(|m| m.spec().name.to_string()).collect(),
        success: Vec::new(),
        predictions: Vec::new(),
        crafted: Vec::new(),
        images: photos.len(),
    };
    for (i, crafter) in models.iter().enumerate() {
        let a = Attack {
            method,
            goal: goal.clone(),
            batch,
        };
        let fooled = attack(*crafter, &fitted(*crafter, photos), &a, &mut |b, t| {
            tick(i, b, t)
        })?;
        let saved: Vec<RgbImage> = fooled.iter().map(|f| f.image.clone()).collect();
        let mut row = Vec::new();
        let mut preds = Vec::new();
        for (j, tested) in models.iter().enumerate() {
            let p: Vec<usize> = classify(*tested, &fitted(*tested, &saved), 1, batch)
                .iter()
                .map(|p| p.class())
                .collect();
            let hits = p
                .iter()
                .enumerate()
                .filter(|&(k, &c)| match target {
                    Some(t) => c == t,
                    None => c != clean[j][k],
                })
                .count();
            row.push(hits);
            preds.push(p);
        }
        out.success.push(row);
        out.predictions.push(preds);
        out.crafted.push(fooled);
    }
    Ok(out)
}
