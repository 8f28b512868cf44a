//! Grad-CAM (Selvaraju et al. 2017) on a convolutional layer, the model's last block by
//! default ([`Classifier::cam_layer`]).
//!
//! The network is cut at the layer: its activation A `[K, h, w]` becomes a leaf that requires
//! gradients, the rest of the network runs from it, and the target score's gradient with
//! respect to A is averaged over space to weigh each channel. The map is
//! `ReLU(Σ_k w_k A_k)`, upsampled bilinearly to the input size exactly as PyTorch's
//! `F.interpolate(mode="bilinear", align_corners=False)`, not normalized. As in
//! pytorch-grad-cam, [`GradCam::channel_weights`] is the one place a CAM variant differs.

use super::{check_shape, flat, Attribution, Map, Run, Targets};
use crate::engine;
use crate::error::{Error, Result};
use crate::gradients::{ClassScore, Objective};
use crate::imaging::tensor::tensor_values;
use crate::models::Classifier;
use burn::tensor::Tensor;

/// Grad-CAM on `layer` (`None`: the model's [`Classifier::cam_layer`]).
#[derive(Debug, Clone, Default)]
pub struct GradCam {
    pub layer: Option<String>,
}

impl GradCam {
    /// Grad-CAM's channel weights: the spatial mean of the gradient of each `plane`-sized
    /// channel, in the order the gradient holds them (image-major).
    fn channel_weights(&self, grads: &[f32], plane: usize) -> Vec<f32> {
        grads
            .chunks(plane.max(1))
            .map(|g| (g.iter().map(|&v| f64::from(v)).sum::<f64>() / g.len() as f64) as f32)
            .collect()
    }
}

/// Bilinear resize of one `h`×`w` plane to `oh`×`ow`, as PyTorch's
/// `F.interpolate(mode="bilinear", align_corners=False)`.
pub fn upsample_bilinear(src: &[f32], h: usize, w: usize, oh: usize, ow: usize) -> Vec<f32> {
    // Source coordinate of output index o: (o + 0.5)·in/out − 0.5, clamped at 0.
    let axis = |o: usize, inn: usize, out: usize| {
        let s = ((o as f64 + 0.5) * inn as f64 / out as f64 - 0.5).max(0.0);
        let i0 = (s.floor() as usize).min(inn - 1);
        let i1 = (i0 + 1).min(inn - 1);
        (i0, i1, s - i0 as f64)
    };
    let cols: Vec<_> = (0..ow).map(|x| axis(x, w, ow)).collect();
    let mut out = Vec::with_capacity(oh * ow);
    for y in 0..oh {
        let (y0, y1, ly) = axis(y, h, oh);
        for &(x0, x1, lx) in &cols {
            let v = |yy: usize, xx: usize| f64::from(src[yy * w + xx]);
            let top = (1.0 - lx) * v(y0, x0) + lx * v(y0, x1);
            let bot = (1.0 - lx) * v(y1, x0) + lx * v(y1, x1);
            out.push(((1.0 - ly) * top + ly * bot) as f32);
        }
    }
    out
}

impl Attribution for GradCam {
    fn name(&self) -> String {
        "grad-cam".into()
    }

    fn passes(&self, n: usize) -> usize {
        n
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
        let t = targets.resolve(shape[0], model.classes())?;
        let layer = self.layer.clone().unwrap_or_else(|| model.cam_layer());
        let [n, c, h, w] = shape;
        let per = c * h * w;
        let mut maps = Vec::with_capacity(n);
        for start in (0..n).step_by(run.batch_size) {
            let end = (start + run.batch_size).min(n);
            let b = end - start;
            let xb = engine::tensor(x[start * per..end * per].to_vec(), [b, c, h, w]);
            // The activation as a leaf: gradients stop there.
            let a = model.forward_to(xb, &layer)?.detach().require_grad();
            let [_, k, ah, aw] = a.dims();
            let logits = model.forward_from(a.clone(), &layer)?;
            let objective = ClassScore {
                targets: t[start..end].to_vec(),
            };
            let score = objective.evaluate(logits, &a);
            let grads = score.sum().backward();
            let g = a.grad(&grads).ok_or_else(|| {
                Error::Invalid(format!("the class score does not depend on layer {layer}"))
            })?;
            let (g, av) = (tensor_values(g), tensor_values(a.detach()));
            let plane = ah * aw;
            let wts = self.channel_weights(&g, plane);
            for j in 0..b {
                let mut cam = vec![0f64; plane];
                for ch in 0..k {
                    let wk = f64::from(wts[j * k + ch]);
                    let act = &av[(j * k + ch) * plane..(j * k + ch + 1) * plane];
                    cam.iter_mut()
                        .zip(act)
                        .for_each(|(m, &v)| *m += wk * f64::from(v));
                }
                let cam: Vec<f32> = cam.into_iter().map(|v| v.max(0.0) as f32).collect();
                maps.push(Map {
                    width: w,
                    height: h,
                    values: upsample_bilinear(&cam, ah, aw, h, w),
                    target: t[start + j],
                    signed: false,
                    delta: None,
                });
            }
            (run.progress)(b);
        }
        Ok(maps)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upsample_matches_pytorch() {
        // torch.nn.functional.interpolate(torch.tensor([[[[0.,1.],[2.,3.]]]]), size=(4,4),
        //   mode="bilinear", align_corners=False)
        let got = upsample_bilinear(&[0.0, 1.0, 2.0, 3.0], 2, 2, 4, 4);
        let want = [
            0.0, 0.25, 0.75, 1.0, 0.5, 0.75, 1.25, 1.5, 1.5, 1.75, 2.25, 2.5, 2.0, 2.25, 2.75, 3.0,
        ];
        for (a, b) in got.iter().zip(want) {
            assert!((a - b).abs() < 1e-6, "{got:?}");
        }
    }
}
