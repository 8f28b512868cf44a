//! Differentiable image transforms for class visualization ("transformation robustness").
//!
//! Each transform draws its randomness from the run's seeded generator and is built from
//! differentiable tensor ops (roll, pad, slice, gather), so the gradient flows back through it
//! to the image: the loop optimizes the image such that the network likes *every* jittered,
//! scaled and rotated version of it.
//!
//! - [`Roll`]: CS231n's jitter, a circular shift by random offsets in `[0, max]`.
//! - [`Pad`], [`Crop`], [`RandomScale`], [`RandomRotate`], [`Resize`]: Lucid's
//!   `standard_transforms` (pad 12, jitter 8, scale 0.9–1.1, rotate ±10°, jitter 4), then a
//!   resize back to the model's input size.
//!
//! Scale, rotation and resize share one bilinear resampler ([`warp`]): each output pixel is a
//! weighted sum of four gathered input pixels, with the indices and weights computed here and
//! the gathers differentiated by burn. Points that fall outside the input read 0, the
//! normalized mean colour.

use crate::engine::{self, Precision};
use crate::gradients::Transform;
use crate::imaging::Normalization;
use burn::tensor::ops::PadMode;
use burn::tensor::{Int, Tensor, TensorData};
use rand::rngs::StdRng;
use rand::Rng;

/// CS231n's jitter: roll the image by `ox ∈ [0, max]` columns and `oy ∈ [0, max]` rows
/// (drawn in that order, as `random.randint` does in the assignment), wrapping around.
#[derive(Debug, Clone, Copy)]
pub struct Roll {
    pub max: usize,
}

impl Transform for Roll {
    fn apply(&self, x: Tensor<4>, rng: &mut StdRng) -> Tensor<4> {
        let ox = rng.random_range(0..=self.max) as i64;
        let oy = rng.random_range(0..=self.max) as i64;
        // torch.roll(img, shifts=(ox, oy), dims=(3, 2))
        x.roll(&[ox, oy], &[3, 2])
    }
}

/// Pads every side by `px` pixels of the constant pixel value `pixel` (0–255).
#[derive(Debug, Clone, Copy)]
pub struct Pad {
    pub px: usize,
    pub pixel: f32,
    pub norm: Normalization,
}

impl Transform for Pad {
    fn apply(&self, x: Tensor<4>, _rng: &mut StdRng) -> Tensor<4> {
        if self.px == 0 {
            return x;
        }
        // pad(x − c, 0) + c pads each channel with its own normalized constant c.
        let c = Precision::of(&x).tensor(
            (0..3).map(|k| self.norm.apply(k, self.pixel)).collect(),
            [1, 3, 1, 1],
        );
        let p = self.px;
        (x - c.clone()).pad((p, p, p, p), PadMode::Constant(0.0)) + c
    }
}

/// Lucid's jitter: a random crop `d` pixels smaller in each dimension (offsets in `[0, d]`).
#[derive(Debug, Clone, Copy)]
pub struct Crop {
    pub d: usize,
}

impl Transform for Crop {
    fn apply(&self, x: Tensor<4>, rng: &mut StdRng) -> Tensor<4> {
        let [_, _, h, w] = x.dims();
        let d = self.d.min(h.saturating_sub(1)).min(w.saturating_sub(1));
        if d == 0 {
            return x;
        }
        let dx = rng.random_range(0..=d);
        let dy = rng.random_range(0..=d);
        x.narrow(2, dy, h - d).narrow(3, dx, w - d)
    }
}

/// Resizes by a factor drawn uniformly from `scales` (bilinear).
#[derive(Debug, Clone)]
pub struct RandomScale {
    pub scales: Vec<f32>,
}

impl Transform for RandomScale {
    fn apply(&self, x: Tensor<4>, rng: &mut StdRng) -> Tensor<4> {
        if self.scales.is_empty() {
            return x;
        }
        let s = f64::from(self.scales[rng.random_range(0..self.scales.len())]);
        let [_, _, h, w] = x.dims();
        let (oh, ow) = (
            ((h as f64 * s).round() as usize).max(1),
            ((w as f64 * s).round() as usize).max(1),
        );
        resize(x, oh, ow)
    }
}

/// Rotates about the centre by an angle (degrees) drawn uniformly from `degrees` (bilinear;
/// corners that come from outside read the normalized value 0).
#[derive(Debug, Clone)]
pub struct RandomRotate {
    pub degrees: Vec<f32>,
}

impl Transform for RandomRotate {
    fn apply(&self, x: Tensor<4>, rng: &mut StdRng) -> Tensor<4> {
        if self.degrees.is_empty() {
            return x;
        }
        let a = f64::from(self.degrees[rng.random_range(0..self.degrees.len())]);
        if a == 0.0 {
            return x;
        }
        let [_, _, h, w] = x.dims();
        let (cx, cy) = ((w as f64 - 1.0) / 2.0, (h as f64 - 1.0) / 2.0);
        let (sin, cos) = a.to_radians().sin_cos();
        // Output (u, v) reads the input at the inverse rotation of (u, v) about the centre.
        warp(x, h, w, |u, v| {
            let (du, dv) = (u - cx, v - cy);
            (cx + cos * du + sin * dv, cy - sin * du + cos * dv)
        })
    }
}

/// Resizes to `size`×`size` (bilinear, half-pixel centres); a no-op at that size already.
#[derive(Debug, Clone, Copy)]
pub struct Resize {
    pub size: usize,
}

impl Transform for Resize {
    fn apply(&self, x: Tensor<4>, _rng: &mut StdRng) -> Tensor<4> {
        resize(x, self.size, self.size)
    }
}

/// Bilinear resize with half-pixel centres (`align_corners=False`, no antialiasing).
pub fn resize(x: Tensor<4>, oh: usize, ow: usize) -> Tensor<4> {
    let [_, _, h, w] = x.dims();
    if (oh, ow) == (h, w) {
        return x;
    }
    let (sy, sx) = (h as f64 / oh as f64, w as f64 / ow as f64);
    warp(x, oh, ow, |u, v| {
        ((u + 0.5) * sx - 0.5, (v + 0.5) * sy - 0.5)
    })
}

/// Bilinear resampling of `x` `[N, C, H, W]` onto an `oh`×`ow` grid: output pixel `(u, v)`
/// (column, row) reads the input at `map(u, v)` in input pixel coordinates (pixel centres at
/// integers). Input points outside the image contribute 0. Differentiable in `x`.
pub fn warp(x: Tensor<4>, oh: usize, ow: usize, map: impl Fn(f64, f64) -> (f64, f64)) -> Tensor<4> {
    let [n, c, h, w] = x.dims();
    let p = Precision::of(&x);
    let len = oh * ow;
    let mut idx: [Vec<i64>; 4] = std::array::from_fn(|_| vec![0i64; len]);
    let mut wt: [Vec<f32>; 4] = std::array::from_fn(|_| vec![0f32; len]);
    for v in 0..oh {
        for u in 0..ow {
            let o = v * ow + u;
            let (sx, sy) = map(u as f64, v as f64);
            let (x0, y0) = (sx.floor(), sy.floor());
            let (fx, fy) = (sx - x0, sy - y0);
            let corners = [
                (x0, y0, (1.0 - fx) * (1.0 - fy)),
                (x0 + 1.0, y0, fx * (1.0 - fy)),
                (x0, y0 + 1.0, (1.0 - fx) * fy),
                (x0 + 1.0, y0 + 1.0, fx * fy),
            ];
            for (k, (cx, cy, cw)) in corners.into_iter().enumerate() {
                if cx >= 0.0 && cy >= 0.0 && cx < w as f64 && cy < h as f64 && cw != 0.0 {
                    idx[k][o] = cy as i64 * w as i64 + cx as i64;
                    wt[k][o] = cw as f32;
                }
            }
        }
    }
    let flat = x.reshape([n, c, h * w]);
    let mut out: Option<Tensor<3>> = None;
    for (i, wv) in idx.into_iter().zip(wt) {
        if wv.iter().all(|&v| v == 0.0) {
            continue;
        }
        let it = Tensor::<1, Int>::from_data(TensorData::new(i, [len]), &engine::device());
        let term = flat.clone().select(2, it) * p.tensor(wv, [1, 1, len]);
        out = Some(match out {
            Some(acc) => acc + term,
            None => term,
        });
    }
    // Everything outside: zeros that still depend on `x` (with a zero gradient).
    out.unwrap_or_else(|| (flat.narrow(2, 0, 1) * 0.0).repeat_dim(2, len))
        .reshape([n, c, oh, ow])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::tensor_values;
    use rand::SeedableRng;

    fn ramp(h: usize, w: usize) -> Tensor<4> {
        Precision::F32.tensor((0..3 * h * w).map(|i| i as f32).collect(), [1, 3, h, w])
    }

    #[test]
    fn identity_warp_and_resize() {
        let x = ramp(5, 7);
        let y = tensor_values(warp(x.clone(), 5, 7, |u, v| (u, v)));
        assert_eq!(y, tensor_values(x.clone()));
        assert_eq!(resize(x, 10, 14).dims(), [1, 3, 10, 14]);
    }

    #[test]
    fn roll_wraps_like_torch() {
        // shifting by (ox, oy) moves pixel (0, 0) to (ox, oy)
        let x = ramp(4, 6);
        let mut rng = StdRng::seed_from_u64(3);
        let mut probe = StdRng::seed_from_u64(3);
        let ox = probe.random_range(0..=2usize);
        let oy = probe.random_range(0..=2usize);
        let y = tensor_values(Roll { max: 2 }.apply(x, &mut rng));
        assert_eq!(y[oy * 6 + ox], 0.0);
    }

    #[test]
    fn warp_gradient_is_its_adjoint() {
        // <warp(x), r> is linear in x, so its gradient g satisfies <warp(y), r> = <y, g>.
        let (h, w) = (6, 7);
        let n = 3 * h * w;
        let map = |u: f64, v: f64| (0.9 * u + 0.3 * v - 0.4, -0.2 * u + 1.1 * v + 0.25);
        let r = Precision::F32.tensor(
            (0..n).map(|i| (i * 37 % 11) as f32 - 5.0).collect(),
            [1, 3, h, w],
        );
        let x = Precision::F32
            .tensor(vec![0.5; n], [1, 3, h, w])
            .require_grad();
        let grads = (warp(x.clone(), h, w, map) * r.clone()).sum().backward();
        let g = tensor_values(x.grad(&grads).expect("gradient"));
        let y: Vec<f32> = (0..n).map(|i| (i * 13 % 7) as f32 * 0.3).collect();
        let lhs: f32 =
            tensor_values(warp(Precision::F32.tensor(y.clone(), [1, 3, h, w]), h, w, map) * r)
                .iter()
                .sum();
        let rhs: f32 = y.iter().zip(&g).map(|(a, b)| a * b).sum();
        assert!(
            (lhs - rhs).abs() < 1e-4 * lhs.abs().max(1.0),
            "{lhs} vs {rhs}"
        );
        assert!(g.iter().any(|&v| v != 0.0));
    }

    #[test]
    fn rotate_by_180_flips() {
        let x = ramp(4, 6);
        let (sin, cos) = std::f64::consts::PI.sin_cos();
        let (cx, cy) = (2.5, 1.5);
        let y = tensor_values(warp(x, 4, 6, |u, v| {
            let (du, dv) = (u - cx, v - cy);
            (cx + cos * du + sin * dv, cy - sin * du + cos * dv)
        }));
        // output (0, 0) reads input (5, 3) = 3 * 6 + 5
        assert!((y[0] - 23.0).abs() < 1e-4, "{}", y[0]);
    }
}
