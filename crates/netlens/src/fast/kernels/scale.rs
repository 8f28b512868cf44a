//! Squeeze-excitation's per-channel scale `y[n, c, ·] = x[n, c, ·] · s[n, c]`, forward and
//! backward into both inputs: `dx = dy · s`, `ds[n, c] = Σ dy · x` over the plane. One task
//! per plane on all threads. What they write is [`flush`]ed: a saturated gate times a small
//! value is subnormal, and would slow every layer after it.

use super::flush;
use rayon::prelude::*;

/// `y = x · s` with one scale per plane of `hw` values (subnormal products flushed to zero).
pub fn scale_forward(x: &[f32], s: &[f32], y: &mut [f32], hw: usize) {
    let planes = s.len();
    y[..planes * hw]
        .par_chunks_mut(hw)
        .zip(x[..planes * hw].par_chunks(hw))
        .zip(&s[..planes])
        .for_each(|((y, x), &s)| {
            for (y, x) in y.iter_mut().zip(x) {
                *y = flush(x * s);
            }
        });
}

/// The gradients of [`scale_forward`]'s inputs given `dy`: `dx (+)= dy · s` and
/// `ds (+)= Σ dy · x` per plane (`+=` where `acc_dx` / `acc_ds`).
#[allow(clippy::too_many_arguments)]
pub fn scale_backward(
    dy: &[f32],
    x: &[f32],
    s: &[f32],
    dx: &mut [f32],
    acc_dx: bool,
    ds: &mut [f32],
    acc_ds: bool,
    hw: usize,
) {
    let planes = s.len();
    dx[..planes * hw]
        .par_chunks_mut(hw)
        .zip(dy[..planes * hw].par_chunks(hw))
        .zip(x[..planes * hw].par_chunks(hw))
        .zip(s.par_iter().zip(&mut ds[..planes]))
        .for_each(|(((dx, dy), x), (&s, ds))| {
            // Eight partial sums, so that the reduction vectorizes.
            let mut acc = [0.0f32; 8];
            let mut i = 0;
            while i + 8 <= hw {
                for l in 0..8 {
                    acc[l] += dy[i + l] * x[i + l];
                }
                i += 8;
            }
            let mut sum: f32 = acc.iter().sum();
            for k in i..hw {
                sum += dy[k] * x[k];
            }
            *ds = flush(if acc_ds { *ds + sum } else { sum });
            if acc_dx {
                dx.iter_mut()
                    .zip(dy)
                    .for_each(|(d, g)| *d = flush(*d + g * s));
            } else {
                dx.iter_mut().zip(dy).for_each(|(d, g)| *d = flush(g * s));
            }
        });
}

/// Plain references for the unit tests (sums in float64).
pub mod reference {
    pub fn scale_backward(dy: &[f32], x: &[f32], s: &[f32], hw: usize) -> (Vec<f32>, Vec<f32>) {
        let mut dx = vec![0.0; dy.len()];
        let mut ds = vec![0.0; s.len()];
        for p in 0..s.len() {
            let mut sum = 0.0f64;
            for i in p * hw..(p + 1) * hw {
                dx[i] = dy[i] * s[p];
                sum += f64::from(dy[i]) * f64::from(x[i]);
            }
            ds[p] = sum as f32;
        }
        (dx, ds)
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{assert_close, random};
    use super::*;

    #[test]
    fn scale_matches_reference_on_odd_planes() {
        // Planes of 1 (a squeeze-excitation on a 1×1 map), 7·7 and 13·11 values: partial
        // groups of eight everywhere; 3 images of 5 channels.
        for (hw, seed) in [(1usize, 1u64), (49, 2), (143, 3)] {
            let planes = 3 * 5;
            let x = random(planes * hw, seed);
            let s = random(planes, seed + 10);
            let dy = random(planes * hw, seed + 20);
            let mut y = vec![0.0; planes * hw];
            scale_forward(&x, &s, &mut y, hw);
            let want: Vec<f32> = (0..planes * hw).map(|i| x[i] * s[i / hw]).collect();
            assert_eq!(y, want);
            let (want_dx, want_ds) = reference::scale_backward(&dy, &x, &s, hw);
            let (mut dx, mut ds) = (vec![7.0; planes * hw], vec![7.0; planes]);
            scale_backward(&dy, &x, &s, &mut dx, false, &mut ds, false, hw);
            assert_close(&dx, &want_dx, 1e-6);
            assert_close(&ds, &want_ds, 1e-5);
            // Accumulating adds onto what is there.
            let (base_dx, base_ds) = (random(planes * hw, seed + 30), random(planes, seed + 40));
            let (mut dx, mut ds) = (base_dx.clone(), base_ds.clone());
            scale_backward(&dy, &x, &s, &mut dx, true, &mut ds, true, hw);
            let sum =
                |a: &[f32], b: &[f32]| a.iter().zip(b).map(|(a, b)| a + b).collect::<Vec<_>>();
            assert_close(&dx, &sum(&base_dx, &want_dx), 1e-6);
            assert_close(&ds, &sum(&base_ds, &want_ds), 1e-5);
        }
    }

    #[test]
    fn subnormal_products_are_flushed_to_zero() {
        let (x, s) = ([0.5f32, 1e-3, 2.0], [2e-38f32]);
        let mut y = [1.0; 3];
        scale_forward(&x, &s, &mut y, 3);
        assert_eq!(y, [0.0, 0.0, 4e-38]);
        let (mut dx, mut ds) = ([1.0; 3], [1.0]);
        scale_backward(&[1e-3, 0.5, 1.0], &x, &s, &mut dx, false, &mut ds, false, 3);
        assert_eq!(dx, [0.0, 0.0, 2e-38]);
    }
}
