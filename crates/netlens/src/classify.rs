//! Classification: logits without a graph, softmax, top-k and argmax, and top-k
//! classification of model-ready images in batches.

use crate::engine::tensor_values;
use crate::imaging::images_to_tensor_as;
use crate::models::Classifier;
use burn::tensor::Tensor;
use image::RgbImage;

/// Logits `[N, K]` (flat) of a normalized batch, without recording a graph.
pub fn logits(model: &dyn Classifier, x: Tensor<4>) -> Vec<f32> {
    tensor_values(model.forward(x.detach()))
}

/// Softmax of each row of flat `[N, K]` logits, in f64 for accuracy.
pub fn softmax_rows(logits: &[f32], k: usize) -> Vec<Vec<f64>> {
    logits
        .chunks(k)
        .map(|row| {
            let m = row.iter().cloned().fold(f32::NEG_INFINITY, f32::max) as f64;
            let e: Vec<f64> = row.iter().map(|&v| (v as f64 - m).exp()).collect();
            let s: f64 = e.iter().sum();
            e.into_iter().map(|v| v / s).collect()
        })
        .collect()
}

/// Indices of the `k` largest values, largest first.
pub fn top_k(values: &[f64], k: usize) -> Vec<usize> {
    let mut idx: Vec<usize> = (0..values.len()).collect();
    idx.sort_by(|&a, &b| values[b].total_cmp(&values[a]));
    idx.truncate(k);
    idx
}

/// Index of the largest value (the first one on ties; 0 for an empty row).
pub fn argmax(row: &[f32]) -> usize {
    row.iter()
        .enumerate()
        .fold((0, f32::NEG_INFINITY), |(bi, bv), (i, &v)| {
            if v > bv {
                (i, v)
            } else {
                (bi, bv)
            }
        })
        .0
}

/// One image's prediction.
#[derive(Debug, Clone)]
pub struct Prediction {
    /// (class, probability), most probable first.
    pub top: Vec<(usize, f64)>,
    /// All logits.
    pub logits: Vec<f32>,
    /// All probabilities.
    pub probs: Vec<f64>,
}

impl Prediction {
    /// The most probable class.
    pub fn class(&self) -> usize {
        self.top.first().map(|t| t.0).unwrap_or(0)
    }
}

/// Classifies images already at the model's input size, `batch` at a time.
pub fn classify(
    model: &dyn Classifier,
    images: &[RgbImage],
    k: usize,
    batch: usize,
) -> Vec<Prediction> {
    let norm = model.spec().normalization;
    let mut out = Vec::with_capacity(images.len());
    for chunk in images.chunks(batch.max(1)) {
        let l = logits(model, images_to_tensor_as(model.precision(), chunk, &norm));
        let classes = l.len() / chunk.len();
        for (row, probs) in l.chunks(classes).zip(softmax_rows(&l, classes)) {
            let top = top_k(&probs, k)
                .into_iter()
                .map(|c| (c, probs[c]))
                .collect();
            out.push(Prediction {
                top,
                logits: row.to_vec(),
                probs,
            });
        }
    }
    out
}
