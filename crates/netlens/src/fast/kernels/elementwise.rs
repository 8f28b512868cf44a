//! Elementwise kernels on all threads: a gradient times its saved activation mask (plain, or
//! guided backpropagation's positive part), and the sums of residual connections.

use rayon::prelude::*;

/// Multiplies a gradient by a saved activation mask, in place, on all threads.
pub fn apply_mask(g: &mut [f32], mask: &[u8]) {
    const CHUNK: usize = 1 << 14;
    g.par_chunks_mut(CHUNK)
        .zip(mask.par_chunks(CHUNK))
        .for_each(|(g, m)| {
            for (v, &m) in g.iter_mut().zip(m) {
                *v *= f32::from(m);
            }
        });
}

/// Guided backpropagation's rule at an activation, in place, on all threads: the gradient
/// passes where the saved mask is set and the gradient itself is positive.
pub fn apply_guided_mask(g: &mut [f32], mask: &[u8]) {
    const CHUNK: usize = 1 << 14;
    g.par_chunks_mut(CHUNK)
        .zip(mask.par_chunks(CHUNK))
        .for_each(|(g, m)| {
            for (v, &m) in g.iter_mut().zip(m) {
                *v = if m != 0 && *v > 0.0 { *v } else { 0.0 };
            }
        });
}

/// `dst (+)= src` on all threads.
pub fn add_into(dst: &mut [f32], src: &[f32], accumulate: bool) {
    const CHUNK: usize = 1 << 14;
    dst.par_chunks_mut(CHUNK)
        .zip(src.par_chunks(CHUNK))
        .for_each(|(d, s)| {
            if accumulate {
                for (d, s) in d.iter_mut().zip(s) {
                    *d += s;
                }
            } else {
                d.copy_from_slice(s);
            }
        });
}

/// `out = a + b` on all threads.
pub fn add(a: &[f32], b: &[f32], out: &mut [f32]) {
    const CHUNK: usize = 1 << 14;
    out.par_chunks_mut(CHUNK)
        .zip(a.par_chunks(CHUNK).zip(b.par_chunks(CHUNK)))
        .for_each(|(o, (a, b))| {
            for ((o, a), b) in o.iter_mut().zip(a).zip(b) {
                *o = a + b;
            }
        });
}

/// Plain references for the unit tests.
pub mod reference {
    pub fn apply_mask(g: &mut [f32], mask: &[u8]) {
        for (v, &m) in g.iter_mut().zip(mask) {
            if m == 0 {
                *v = 0.0;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{random, random_mask};
    use super::*;

    const N: usize = 40_000; // more than two chunks, not a multiple of one

    #[test]
    fn mask_matches_reference() {
        let mut g = random(N, 1);
        let m = random_mask(N, 2);
        let mut want = g.clone();
        reference::apply_mask(&mut want, &m);
        apply_mask(&mut g, &m);
        assert_eq!(g, want);
    }

    #[test]
    fn adds_match_reference() {
        let (a, b) = (random(N, 3), random(N, 4));
        let want: Vec<f32> = a.iter().zip(&b).map(|(a, b)| a + b).collect();
        let mut out = vec![0.0; N];
        add(&a, &b, &mut out);
        assert_eq!(out, want);
        let mut d = a.clone();
        add_into(&mut d, &b, true);
        assert_eq!(d, want);
        add_into(&mut d, &b, false);
        assert_eq!(d, b);
    }
}
