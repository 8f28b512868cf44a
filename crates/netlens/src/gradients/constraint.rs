//! Where the image may go: the valid pixel box and an L∞ / L2 ball (pixel units) around a
//! centre, as a projection after each step and as the rounding to 8 bits that keeps the saved
//! image inside the ball ([`crate::imaging::quantize_in_ball`]).
//!
//! The projection acts on the variable, so a constraint is for the pixel parametrization
//! ([`super::PixelParam`]); a run with another parametrization leaves it at its default (none).

use crate::imaging::quantize::{quantize, quantize_in_ball, PixelBall};
use crate::imaging::Normalization;

/// Where the image may go after a step.
#[derive(Debug, Clone, Default)]
pub struct Constraint {
    /// Clamp each channel to the valid pixel range of this normalization.
    pub pixel_box: Option<Normalization>,
    /// Stay within an L∞ ball of this radius (pixel units) around `center`.
    pub linf: Option<f32>,
    /// Stay within an L2 ball of this radius (pixel units) around `center`.
    pub l2: Option<f32>,
    /// The centre of the ball (normalized values, flat `[N, 3, H, W]`).
    pub center: Vec<f32>,
    /// Normalization used to convert pixel units to normalized ones for the balls.
    pub norm: Option<Normalization>,
}

impl Constraint {
    /// The ball, when there is one (a radius, a centre and a normalization to measure it).
    fn ball(&self) -> Option<(Normalization, PixelBall<'_>)> {
        let ball = PixelBall {
            center: &self.center,
            linf: self.linf,
            l2: self.l2,
        };
        self.norm
            .filter(|_| !self.center.is_empty() && (self.linf.is_some() || self.l2.is_some()))
            .map(|n| (n, ball))
    }

    /// Projects one image's values `th` (flat, starting at offset `offset` of the batch, so
    /// that the matching part of the centre is used; `plane` = H·W) onto the constraint: the
    /// balls first, then the pixel box.
    pub fn project(&self, th: &mut [f32], offset: usize, plane: usize) {
        let chan = |j: usize| (j / plane) % 3;
        if let (Some(norm), false) = (self.norm, self.center.is_empty()) {
            let center = &self.center[offset..offset + th.len()];
            if let Some(eps) = self.linf {
                for (j, (p, &c0)) in th.iter_mut().zip(center).enumerate() {
                    let e = eps * norm.pixel_unit(chan(j));
                    *p = p.clamp(c0 - e, c0 + e);
                }
            }
            if let Some(eps) = self.l2 {
                let d2: f32 = th
                    .iter()
                    .zip(center)
                    .enumerate()
                    .map(|(j, (p, c0))| ((p - c0) / norm.pixel_unit(chan(j))).powi(2))
                    .sum();
                let d = d2.sqrt();
                if d > eps {
                    let s = eps / d;
                    th.iter_mut()
                        .zip(center)
                        .for_each(|(p, c0)| *p = c0 + (*p - c0) * s);
                }
            }
        }
        if let Some(norm) = self.pixel_box {
            for (j, p) in th.iter_mut().enumerate() {
                let (lo, hi) = norm.range(chan(j));
                *p = p.clamp(lo, hi);
            }
        }
    }

    /// The normalized images `values` (flat `[N, 3, H, W]`) as an 8-bit file saves them,
    /// still inside the ball (see [`quantize_in_ball`]); without a ball, plain [`quantize`].
    /// `norm` is the images' normalization (the ball's, when there is one).
    pub fn quantize(&self, values: &[f32], shape: [usize; 4], norm: &Normalization) -> Vec<f32> {
        match self.ball() {
            Some((bnorm, ball)) => quantize_in_ball(values, shape, &bnorm, &ball),
            None => quantize(values, shape, norm),
        }
    }
}

/// [`Constraint::quantize`] as a function (its former name).
pub fn quantize_within(
    values: &[f32],
    shape: [usize; 4],
    norm: &Normalization,
    c: &Constraint,
) -> Vec<f32> {
    c.quantize(values, shape, norm)
}
