//! Guided Grad-CAM (Selvaraju et al. 2017, "Grad-CAM: Visual Explanations from Deep Networks
//! via Gradient-based Localization", section 3.1): the Guided Backpropagation map times the
//! Grad-CAM map upsampled to the input size, as Captum's `GuidedGradCam` (guided gradient ×
//! CAM, per channel; here reduced to `max_c |·|`, which for a CAM ≥ 0 is the CAM times
//! [`GuidedBackprop`]'s map).
//!
//! The CAM is netlens's [`GradCam`] on the same layer, upsampled bilinearly
//! (`align_corners=False`, as the paper's bilinear upsampling and pytorch-grad-cam). Captum's
//! `GuidedGradCam.attribute` defaults to `interpolate_mode="nearest"`; the reference script
//! passes `interpolate_mode="bilinear"` so that the two agree.

use super::{Attribution, Batch, GradCam, GuidedBackprop, Map, Run};
use crate::error::Result;
use crate::models::Classifier;

/// Guided Backprop × Grad-CAM on `cam.layer` (`None`: the model's last convolutional block).
#[derive(Debug, Clone, Default)]
pub struct GuidedGradCam {
    pub cam: GradCam,
}

impl Attribution for GuidedGradCam {
    fn name(&self) -> String {
        "guided-grad-cam".into()
    }

    /// One guided backward pass and one Grad-CAM pass per image.
    fn passes(&self, n: usize) -> usize {
        2 * n
    }

    fn step(&self, model: &dyn Classifier, batch: &Batch, run: &mut Run) -> Result<Vec<Map>> {
        let guided = GuidedBackprop.step(model, batch, run)?;
        let cams = self.cam.step(model, batch, run)?;
        Ok(guided
            .into_iter()
            .zip(cams)
            .map(|(mut g, cam)| {
                g.values
                    .iter_mut()
                    .zip(&cam.values)
                    .for_each(|(v, c)| *v *= c);
                g
            })
            .collect())
    }
}
