//! Step rules of the ascent loop and the per-image state they carry between iterations.
//!
//! A [`Step`] says how θ moves along the gradient `g` of the objective (ascent); an
//! [`Optimizer`] applies it to one image at a time and owns what a rule remembers (Adam's
//! moments and step count), so the loop itself holds no optimizer state. Images in a batch are
//! independent: each has its own norm, its own moments and its own step count (an image that
//! has finished stops stepping while the others go on).
//!
//! The normalized rules share one norm, [`l2_norm`], summed in f64.

use crate::batch::ImageBatch;

/// How a step is taken from the gradient `g` of the objective (ascent).
#[derive(Debug, Clone)]
pub enum Step {
    /// `θ += lr · g / ‖g‖₂`, the norm taken per image (CS231n).
    NormalizedL2 { lr: f32 },
    /// `θ += size_c · sign(g)` with a per-channel size (FGSM, L∞ PGD).
    Sign { size: [f32; 3] },
    /// `θ += size · g / ‖g‖₂` measured in pixel units (L2 PGD): the per-channel scale turns
    /// pixel units into normalized units.
    PixelL2 { size: f32, scale: [f32; 3] },
    /// Adam (Kingma & Ba 2015) on the variable, ascending.
    Adam {
        lr: f32,
        beta1: f32,
        beta2: f32,
        eps: f32,
    },
}

/// The L2 norm of `values`, floored at 1e-12 so that a zero gradient takes no step. Squares
/// are summed in f64: a float32 running sum over an image's ~1.5e5 values drifts by ~1e-5
/// relative, which the normalized steps would carry into every pixel (the CS231n loops are
/// checked against PyTorch's float64 replay).
pub fn l2_norm(values: impl Iterator<Item = f32>) -> f32 {
    (values.map(|v| f64::from(v).powi(2)).sum::<f64>().sqrt() as f32).max(1e-12)
}

/// One image's optimizer state.
#[derive(Debug, Clone, Default)]
struct ImageState {
    /// Steps taken so far (Adam's bias correction counts them).
    steps: usize,
    /// Adam's first and second moments (empty for the stateless rules).
    m: Vec<f32>,
    v: Vec<f32>,
}

/// A step rule with each image's state, for a batch of variables of shape `[N, C, H, W]`.
#[derive(Debug, Clone)]
pub struct Optimizer {
    step: Step,
    images: Vec<ImageState>,
}

impl Optimizer {
    /// A fresh optimizer for `shape[0]` variables of shape `shape[1..]`.
    pub fn new(step: Step, shape: [usize; 4]) -> Self {
        let [n, c, h, w] = shape;
        let per = c * h * w;
        let state = |_| match step {
            Step::Adam { .. } => ImageState {
                steps: 0,
                m: vec![0.0; per],
                v: vec![0.0; per],
            },
            _ => ImageState::default(),
        };
        let images = (0..n).map(state).collect();
        Self { step, images }
    }

    /// Steps image `i` of the variable `theta` up image `i` of its gradient `grad`.
    pub fn step(&mut self, i: usize, theta: &mut ImageBatch, grad: &ImageBatch) {
        let st = &mut self.images[i];
        st.steps += 1;
        match &self.step {
            Step::NormalizedL2 { lr } => {
                let g = grad.image(i);
                let norm = l2_norm(g.iter().copied());
                theta
                    .image_mut(i)
                    .iter_mut()
                    .zip(g)
                    .for_each(|(p, gv)| *p += lr * gv / norm);
            }
            Step::Sign { size } => {
                for (c, plane) in theta.channels_mut(i) {
                    for (p, gv) in plane.iter_mut().zip(grad.channel(i, c)) {
                        *p += size[c] * gv.signum() * f32::from(*gv != 0.0);
                    }
                }
            }
            Step::PixelL2 { size, scale } => {
                // ‖g‖ measured in pixel units: δ_px = δ_norm / scale_c.
                let norm = l2_norm(
                    grad.channels(i)
                        .flat_map(|(c, plane)| plane.iter().map(move |v| v * scale[c])),
                );
                for (c, plane) in theta.channels_mut(i) {
                    let s = scale[c];
                    for (p, gv) in plane.iter_mut().zip(grad.channel(i, c)) {
                        // step along g in pixel space, converted back to normalized units
                        *p += size * (gv * s / norm) * s;
                    }
                }
            }
            Step::Adam {
                lr,
                beta1,
                beta2,
                eps,
            } => {
                let tt = st.steps as i32;
                let (c1, c2) = (1.0 - beta1.powi(tt), 1.0 - beta2.powi(tt));
                let image = theta.image_mut(i).iter_mut().zip(grad.image(i));
                for (j, (p, &g)) in image.enumerate() {
                    st.m[j] = beta1 * st.m[j] + (1.0 - beta1) * g;
                    st.v[j] = beta2 * st.v[j] + (1.0 - beta2) * g * g;
                    *p += lr * (st.m[j] / c1) / ((st.v[j] / c2).sqrt() + eps);
                }
            }
        }
    }

    /// Steps image `i` has taken.
    pub fn steps(&self, i: usize) -> usize {
        self.images[i].steps
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A batch of `shape` with `values`.
    fn batch(values: &[f32], shape: [usize; 4]) -> ImageBatch {
        ImageBatch::new(values.to_vec(), shape).unwrap()
    }

    #[test]
    fn normalized_steps_have_the_step_length() {
        let shape = [1, 1, 2, 2];
        let g = batch(&[3.0, 0.0, -4.0, 0.0], shape);
        let mut th = batch(&[0.0; 4], shape);
        let mut o = Optimizer::new(Step::NormalizedL2 { lr: 2.0 }, shape);
        o.step(0, &mut th, &g);
        assert_eq!(th.values(), [1.2, 0.0, -1.6, 0.0]);
        // Pixel-unit L2 with scale 1 is the same rule.
        let mut th2 = batch(&[0.0; 4], shape);
        let step = Step::PixelL2 {
            size: 2.0,
            scale: [1.0; 3],
        };
        Optimizer::new(step, shape).step(0, &mut th2, &g);
        assert_eq!(th, th2);
        // A zero gradient takes no step.
        o.step(0, &mut th, &batch(&[0.0; 4], shape));
        assert_eq!(th.values(), [1.2, 0.0, -1.6, 0.0]);
        assert_eq!(o.steps(0), 2);
    }

    #[test]
    fn sign_steps_take_each_channels_size() {
        let shape = [1, 3, 1, 1];
        let mut th = batch(&[0.0; 3], shape);
        let step = Step::Sign {
            size: [1.0, 2.0, 4.0],
        };
        Optimizer::new(step, shape).step(0, &mut th, &batch(&[0.5, -3.0, 0.0], shape));
        assert_eq!(th.values(), [1.0, -2.0, 0.0]);
    }

    #[test]
    fn adam_state_is_per_image() {
        let step = Step::Adam {
            lr: 0.1,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
        };
        let shape = [2, 1, 1, 2];
        let mut o = Optimizer::new(step, shape);
        let g = batch(&[1.0, -2.0, 1.0, -2.0], shape);
        let mut th = batch(&[0.0; 4], shape);
        // Image 0 steps twice, image 1 once: image 1's first step equals image 0's first.
        o.step(0, &mut th, &g);
        let first = th.image(0).to_vec();
        o.step(0, &mut th, &g);
        o.step(1, &mut th, &g);
        assert_eq!(th.image(1), first);
        assert_eq!((o.steps(0), o.steps(1)), (2, 1));
        // Adam's first step is lr · sign(g) (up to eps).
        assert!((first[0] - 0.1).abs() < 1e-6 && (first[1] + 0.1).abs() < 1e-6);
    }
}
