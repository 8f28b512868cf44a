//! Elementwise kernels on all threads: a gradient times its saved activation mask (plain, or
//! guided backpropagation's positive part), and the sums of residual connections.

use super::{dispatch, Act, Mac, Simd};
use rayon::prelude::*;

/// Multiplies a gradient by a saved activation mask, in place, on all threads.
pub fn apply_mask(g: &mut [f32], mask: &[u8]) {
    const CHUNK: usize = 1 << 14;
    g.par_chunks_mut(CHUNK)
        .zip(mask.par_chunks(CHUNK))
        .for_each(|(g, m)| mask_slice(g, m));
}

/// `g *= mask` element by element on this thread, in the widest compiled copy: the one
/// rule every kernel that applies an activation mask as it writes a gradient uses, so that
/// each gives [`apply_mask`]'s bytes (`−0.0` for a masked negative value, NaN for a masked
/// NaN or infinity).
pub(crate) fn mask_slice(g: &mut [f32], mask: &[u8]) {
    dispatch(MaskInto {
        dst: g,
        src: None,
        mask,
    })
}

/// `dst = src · mask` element by element on this thread ([`mask_slice`] fused with a copy).
pub(crate) fn masked_copy(dst: &mut [f32], src: &[f32], mask: &[u8]) {
    dispatch(MaskInto {
        dst,
        src: Some(src),
        mask,
    })
}

/// The body of [`mask_slice`] and [`masked_copy`].
struct MaskInto<'a> {
    dst: &'a mut [f32],
    src: Option<&'a [f32]>,
    mask: &'a [u8],
}

impl Simd for MaskInto<'_> {
    type Output = ();
    #[inline(always)]
    fn run<M: Mac>(self) {
        let Self { dst, src, mask } = self;
        match src {
            Some(src) => {
                for ((d, &s), &m) in dst.iter_mut().zip(src).zip(mask) {
                    *d = s * f32::from(m);
                }
            }
            None => {
                for (d, &m) in dst.iter_mut().zip(mask) {
                    *d *= f32::from(m);
                }
            }
        }
    }
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

/// `out = act(a + b)` on all threads, for a ReLU-family `act` (or none), writing its 0/1
/// gradient mask when given: the residual sum and its activation in one pass (the same
/// values as [`add`] followed by the activation, element by element).
pub fn add_act(a: &[f32], b: &[f32], out: &mut [f32], act: Act, mask: Option<&mut [u8]>) {
    const CHUNK: usize = 1 << 14;
    debug_assert!(!act.is_smooth());
    let n = out.len();
    let (a, b) = (&a[..n], &b[..n]);
    match mask {
        Some(m) => out
            .par_chunks_mut(CHUNK)
            .zip(m[..n].par_chunks_mut(CHUNK))
            .zip(a.par_chunks(CHUNK).zip(b.par_chunks(CHUNK)))
            .for_each(|((o, m), (a, b))| {
                dispatch(AddAct {
                    a,
                    b,
                    o,
                    m: Some(m),
                    act,
                })
            }),
        None => out
            .par_chunks_mut(CHUNK)
            .zip(a.par_chunks(CHUNK).zip(b.par_chunks(CHUNK)))
            .for_each(|(o, (a, b))| {
                dispatch(AddAct {
                    a,
                    b,
                    o,
                    m: None,
                    act,
                })
            }),
    }
}

/// One chunk of [`add_act`].
struct AddAct<'a> {
    a: &'a [f32],
    b: &'a [f32],
    o: &'a mut [f32],
    m: Option<&'a mut [u8]>,
    act: Act,
}

impl Simd for AddAct<'_> {
    type Output = ();
    #[inline(always)]
    fn run<M: Mac>(self) {
        let Self { a, b, o, m, act } = self;
        // One loop per activation, so that each vectorizes without a branch inside.
        macro_rules! body {
            ($act:expr) => {
                match m {
                    Some(m) => {
                        for (((o, m), a), b) in o.iter_mut().zip(m.iter_mut()).zip(a).zip(b) {
                            (*o, *m) = $act.apply(a + b);
                        }
                    }
                    None => {
                        for ((o, a), b) in o.iter_mut().zip(a).zip(b) {
                            *o = $act.apply(a + b).0;
                        }
                    }
                }
            };
        }
        match act {
            Act::Relu => body!(Act::Relu),
            Act::Relu6 => body!(Act::Relu6),
            _ => body!(Act::None),
        }
    }
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

    #[test]
    fn fused_add_and_activation_match_the_two_passes() {
        let (a, mut b) = (random(N, 5), random(N, 6));
        // Values at the ReLU6 corners and non-finite sums too.
        b[..6].copy_from_slice(&[
            -a[0],
            6.0 - a[1],
            f32::NAN,
            f32::INFINITY,
            -f32::INFINITY,
            0.0,
        ]);
        for act in [Act::None, Act::Relu, Act::Relu6] {
            let mut want = vec![0.0; N];
            add(&a, &b, &mut want);
            let want_mask: Vec<u8> = want.iter().map(|&z| act.apply(z).1).collect();
            want.iter_mut().for_each(|z| *z = act.apply(*z).0);
            let (mut out, mut mask) = (vec![0.0; N], vec![9u8; N]);
            add_act(&a, &b, &mut out, act, Some(&mut mask));
            let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
            assert_eq!(bits(&out), bits(&want), "{act:?}");
            assert_eq!(mask, want_mask, "{act:?}");
            let mut plain = vec![0.0; N];
            add_act(&a, &b, &mut plain, act, None);
            assert_eq!(bits(&plain), bits(&want), "{act:?}");
        }
    }
}
