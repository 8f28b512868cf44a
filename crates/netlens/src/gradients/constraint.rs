//! Where the image may go: the valid pixel box and an L∞ / L2 ball (pixel units) around a
//! centre, as a projection after each step and as the rounding to 8 bits that keeps the saved
//! image inside the ball ([`crate::imaging::quantize_in_ball`]).
//!
//! The projection acts on the variable, so a constraint is for the pixel parametrization
//! ([`super::PixelParam`]); a run with another parametrization leaves it at its default (none).

use crate::batch::ImageBatch;
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
    /// The centre of the ball (normalized images, shaped like the variable).
    pub center: Option<ImageBatch>,
    /// Normalization used to convert pixel units to normalized ones for the balls.
    pub norm: Option<Normalization>,
}

impl Constraint {
    /// The ball, when there is one (a radius, a centre and a normalization to measure it).
    fn ball(&self) -> Option<(Normalization, PixelBall<'_>)> {
        let center = self.center.as_ref().filter(|c| !c.is_empty())?;
        let ball = PixelBall {
            center,
            linf: self.linf,
            l2: self.l2,
        };
        self.norm
            .filter(|_| self.linf.is_some() || self.l2.is_some())
            .map(|n| (n, ball))
    }

    /// Projects image `i` of the variable `theta` onto the constraint (against image `i` of
    /// the centre): the balls first, then the pixel box.
    pub fn project(&self, theta: &mut ImageBatch, i: usize) {
        let center = self.center.as_ref().filter(|c| !c.is_empty());
        if let (Some(norm), Some(center)) = (self.norm, center) {
            if let Some(eps) = self.linf {
                for (c, plane) in theta.channels_mut(i) {
                    let e = eps * norm.pixel_unit(c);
                    for (p, &c0) in plane.iter_mut().zip(center.channel(i, c)) {
                        *p = p.clamp(c0 - e, c0 + e);
                    }
                }
            }
            if let Some(eps) = self.l2 {
                let d2: f32 = theta
                    .channels(i)
                    .flat_map(|(c, plane)| {
                        let unit = norm.pixel_unit(c);
                        plane
                            .iter()
                            .zip(center.channel(i, c))
                            .map(move |(p, c0)| ((p - c0) / unit).powi(2))
                    })
                    .sum();
                let d = d2.sqrt();
                if d > eps {
                    let s = eps / d;
                    theta
                        .image_mut(i)
                        .iter_mut()
                        .zip(center.image(i))
                        .for_each(|(p, c0)| *p = c0 + (*p - c0) * s);
                }
            }
        }
        if let Some(norm) = self.pixel_box {
            for (c, plane) in theta.channels_mut(i) {
                let (lo, hi) = norm.range(c);
                plane.iter_mut().for_each(|p| *p = p.clamp(lo, hi));
            }
        }
    }

    /// The normalized images `x` as an 8-bit file saves them, still inside the ball (see
    /// [`quantize_in_ball`]); without a ball, plain [`quantize`]. `norm` is the images'
    /// normalization (the ball's, when there is one).
    pub fn quantize(&self, x: &ImageBatch, norm: &Normalization) -> ImageBatch {
        match self.ball() {
            Some((bnorm, ball)) => quantize_in_ball(x, &bnorm, &ball),
            None => quantize(x, norm),
        }
    }
}

/// [`Constraint::quantize`] as a function (its former name).
pub fn quantize_within(x: &ImageBatch, norm: &Normalization, c: &Constraint) -> ImageBatch {
    c.quantize(x, norm)
}
