//! What an 8-bit image saves: normalized values rounded to whole pixel values in 0–255, and the
//! same rounding kept inside an L∞ / L2 ball around a centre image (so that a fooling image
//! still respects its budget once saved).

use super::Normalization;
use crate::batch::ImageBatch;

/// Rounds normalized images to what an 8-bit image saves: clamp to 0–255 and quantize.
pub fn quantize(x: &ImageBatch, norm: &Normalization) -> ImageBatch {
    let mut out = x.clone();
    for i in 0..out.len() {
        for (c, plane) in out.channels_mut(i) {
            for v in plane {
                *v = norm.apply(c, norm.invert(c, *v).round().clamp(0.0, 255.0));
            }
        }
    }
    out
}

/// A ball around a centre image, measured in 0–255 pixel units.
#[derive(Debug, Clone, Copy)]
pub struct PixelBall<'a> {
    /// The centre (normalized images, shaped like the images rounded).
    pub center: &'a ImageBatch,
    /// L∞ radius.
    pub linf: Option<f32>,
    /// L2 radius (per image).
    pub l2: Option<f32>,
}

/// [`quantize`], then kept inside `ball` as measured on the saved 8-bit values: a pixel that
/// rounding pushed outside the L∞ ball is rounded towards the centre instead, and while the
/// saved image is outside the L2 ball, the pixels that rounding moved away from the centre are
/// rounded towards it (largest gain first). Without a radius this is exactly [`quantize`].
/// Values must already lie inside the ball (as after a projected step).
pub fn quantize_in_ball(x: &ImageBatch, norm: &Normalization, ball: &PixelBall) -> ImageBatch {
    if ball.center.is_empty() || (ball.linf.is_none() && ball.l2.is_none()) {
        return quantize(x, norm);
    }
    let mut out = x.clone();
    for i in 0..x.len().min(ball.center.len()) {
        // Pixel values: unrounded, centre, nearest rounding, rounding towards the centre.
        let v: Vec<f32> = x
            .channels(i)
            .flat_map(|(c, plane)| plane.iter().map(move |&x| norm.invert(c, x)))
            .collect();
        // The centre is normally an 8-bit image: snap its float round-off to the integer.
        let snap = |x: f32| {
            if (x - x.round()).abs() < 1e-3 {
                x.round()
            } else {
                x
            }
        };
        let p0: Vec<f32> = ball
            .center
            .channels(i)
            .flat_map(|(c, plane)| plane.iter().map(move |&x| snap(norm.invert(c, x))))
            .collect();
        let inward = |j: usize| {
            let r = if v[j] > p0[j] {
                v[j].floor()
            } else {
                v[j].ceil()
            };
            r.clamp(0.0, 255.0)
        };
        let mut q: Vec<f32> = v.iter().map(|x| x.round().clamp(0.0, 255.0)).collect();
        if let Some(eps) = ball.linf {
            for j in 0..q.len() {
                if (q[j] - p0[j]).abs() > eps {
                    q[j] = inward(j);
                }
            }
        }
        if let Some(eps) = ball.l2 {
            let d2 = |q: &[f32]| q.iter().zip(&p0).map(|(a, b)| (a - b).powi(2)).sum::<f32>();
            let mut total = d2(&q);
            if total > eps * eps {
                let mut gains: Vec<(f32, usize)> = (0..q.len())
                    .filter_map(|j| {
                        let g = (q[j] - p0[j]).powi(2) - (inward(j) - p0[j]).powi(2);
                        (g > 0.0).then_some((g, j))
                    })
                    .collect();
                gains.sort_by(|a, b| b.0.total_cmp(&a.0));
                for (g, j) in gains {
                    if total <= eps * eps {
                        break;
                    }
                    q[j] = inward(j);
                    total -= g;
                }
            }
        }
        let mut q = q.into_iter();
        for (c, plane) in out.channels_mut(i) {
            for (v, p) in plane.iter_mut().zip(q.by_ref()) {
                *v = norm.apply(c, p);
            }
        }
    }
    out
}
