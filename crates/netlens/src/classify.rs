//! Top-k classification of model-ready images, in batches.

use crate::gradients::{logits, softmax_rows, top_k};
use crate::imaging::images_to_tensor;
use crate::models::Classifier;
use image::RgbImage;

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
        let l = logits(model, images_to_tensor(chunk, &norm));
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
