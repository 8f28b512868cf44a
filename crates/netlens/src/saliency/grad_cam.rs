//! Class activation maps on a layer, the model's last convolutional block by default
//! ([`Classifier::cam_layer`]), after pytorch-grad-cam's `BaseCAM`: one template, [`Cam`],
//! and one small override per method, [`CamWeights`] (its `get_cam_weights`).
//!
//! The network is cut at the layer: its activation A `[K, h, w]` becomes a leaf that requires
//! gradients, the rest of the network runs from it, and the target score's gradient with
//! respect to A goes, with A, to the method's channel weights w. The map is
//! `ReLU(Σ_k w_k A_k)`, upsampled bilinearly to the input size exactly as PyTorch's
//! `F.interpolate(mode="bilinear", align_corners=False)`
//! ([`crate::imaging::resample::upsample_bilinear`]), not normalized. Grad-CAM (Selvaraju et
//! al. 2017) weighs each channel by its gradient's spatial mean ([`GradCamWeights`]).

use super::{Attribution, Batch, Map, Run};
use crate::engine::tensor_values;
use crate::error::{Error, Result};
use crate::gradients::{ClassScore, Objective};
use crate::imaging::resample::upsample_bilinear;
use crate::models::Classifier;

/// Grad-CAM's settings; `Default` is the library's (and the CLI's) default.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct GradCamConfig {
    /// The layer to explain from, any name [`Classifier::layers`] lists (`None`: the model's
    /// [`Classifier::cam_layer`]).
    pub layer: Option<String>,
}

/// What one CAM method adds to the template (pytorch-grad-cam's `get_cam_weights`).
pub trait CamWeights {
    /// The method's name.
    fn name(&self) -> String;
    /// The weight of each of one image's K channels, from the target score's gradient with
    /// respect to the layer's activation and the activation itself (both `[K, plane]`).
    fn cam_weights(&self, grads: &[f32], activations: &[f32], plane: usize) -> Vec<f32>;
}

/// The CAM template on `layer` (`None`: the model's [`Classifier::cam_layer`]), with the
/// channel weights of `weights`.
#[derive(Debug, Clone, Default)]
pub struct Cam<W> {
    pub layer: Option<String>,
    pub weights: W,
}

impl<W: Default> Cam<W> {
    /// The method on `layer` (`None`: the model's default layer).
    pub fn on(layer: Option<String>) -> Self {
        Self {
            layer,
            weights: W::default(),
        }
    }
}

/// Grad-CAM's channel weights: the spatial mean of each channel's gradient.
#[derive(Debug, Clone, Copy, Default)]
pub struct GradCamWeights;

impl CamWeights for GradCamWeights {
    fn name(&self) -> String {
        "grad-cam".into()
    }
    fn cam_weights(&self, grads: &[f32], _activations: &[f32], plane: usize) -> Vec<f32> {
        grads
            .chunks(plane.max(1))
            .map(|g| (g.iter().map(|&v| f64::from(v)).sum::<f64>() / g.len() as f64) as f32)
            .collect()
    }
}

/// Grad-CAM on `layer` (`None`: the model's [`Classifier::cam_layer`]).
pub type GradCam = Cam<GradCamWeights>;

impl<W: CamWeights> Attribution for Cam<W> {
    fn name(&self) -> String {
        self.weights.name()
    }

    fn step(&self, model: &dyn Classifier, batch: &Batch, run: &mut Run) -> Result<Vec<Map>> {
        let layer = self.layer.clone().unwrap_or_else(|| model.cam_layer());
        let [b, _, h, w] = batch.inputs.shape();
        // The activation as a leaf: gradients stop there.
        let a = model
            .forward_to(batch.tensor(), &layer)?
            .detach()
            .require_grad();
        let [_, k, ah, aw] = a.dims();
        let logits = model.forward_from(a.clone(), &layer)?;
        let objective = ClassScore {
            targets: batch.targets.to_vec(),
        };
        let score = objective.evaluate(logits, &a);
        let grads = score.sum().backward();
        let g = a.grad(&grads).ok_or_else(|| {
            Error::Invalid(format!("the class score does not depend on layer {layer}"))
        })?;
        let (g, av) = (tensor_values(g), tensor_values(a.detach()));
        let plane = ah * aw;
        let per = k * plane;
        let mut maps = Vec::with_capacity(b);
        for j in 0..b {
            let (gj, aj) = (&g[j * per..(j + 1) * per], &av[j * per..(j + 1) * per]);
            let wts = self.weights.cam_weights(gj, aj, plane);
            let mut cam = vec![0f64; plane];
            for (&wk, act) in wts.iter().zip(aj.chunks(plane.max(1))) {
                let wk = f64::from(wk);
                cam.iter_mut()
                    .zip(act)
                    .for_each(|(m, &v)| *m += wk * f64::from(v));
            }
            let cam: Vec<f32> = cam.into_iter().map(|v| v.max(0.0) as f32).collect();
            maps.push(batch.map(j, upsample_bilinear(&cam, ah, aw, h, w), false));
        }
        (run.progress)(b);
        Ok(maps)
    }
}
