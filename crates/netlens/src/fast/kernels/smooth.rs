//! Smooth activations (sigmoid, SiLU, hardsigmoid, hardswish) over a layer's output, on all
//! threads, and their backward: the gradient times the float derivative saved by the forward
//! pass (their derivative is not 0/1, so the byte masks of the ReLU family cannot hold it).

use super::{dispatch, flush, Act, Mac, Simd};
use rayon::prelude::*;

const CHUNK: usize = 1 << 13;

/// `y = act(y)` in place; with `deriv`, also `deriv = act'(z)` of the value before.
pub fn activate(act: Act, y: &mut [f32], deriv: Option<&mut [f32]>) {
    match deriv {
        Some(d) => {
            let n = y.len();
            y.par_chunks_mut(CHUNK)
                .zip(d[..n].par_chunks_mut(CHUNK))
                .for_each(|(y, d)| dispatch(Chunk { act, y, d: Some(d) }))
        }
        None => y
            .par_chunks_mut(CHUNK)
            .for_each(|y| dispatch(Chunk { act, y, d: None })),
    }
}

/// One chunk of [`activate`], compiled for the widest vectors the CPU has.
struct Chunk<'a> {
    act: Act,
    y: &'a mut [f32],
    d: Option<&'a mut [f32]>,
}

impl Simd for Chunk<'_> {
    type Output = ();
    #[inline(always)]
    fn run<M: Mac>(self) {
        row(self.act, self.y, self.d, 0.0);
    }
}

/// `y = act(y + bias)` over one row, with the derivative into `d` when given: one loop per
/// activation, so that each vectorizes without a branch inside (callers inline it into
/// their AVX2 + FMA copies; the dense convolution's epilogue calls it on its output tiles).
#[inline(always)]
pub(crate) fn row(act: Act, y: &mut [f32], d: Option<&mut [f32]>, bias: f32) {
    #[inline(always)]
    fn each(y: &mut [f32], d: Option<&mut [f32]>, b: f32, f: impl Fn(f32) -> (f32, f32)) {
        match d {
            Some(d) => {
                for (v, dv) in y.iter_mut().zip(d) {
                    (*v, *dv) = f(*v + b);
                }
            }
            None => {
                for v in y {
                    *v = f(*v + b).0;
                }
            }
        }
    }
    match act {
        Act::Sigmoid => each(y, d, bias, |z| Act::Sigmoid.smooth(z)),
        Act::Silu => each(y, d, bias, |z| Act::Silu.smooth(z)),
        Act::HardSigmoid => each(y, d, bias, |z| Act::HardSigmoid.smooth(z)),
        Act::HardSwish => each(y, d, bias, |z| Act::HardSwish.smooth(z)),
        _ => each(y, d, bias, |z| (z, 1.0)),
    }
}

/// `g *= deriv`, in place (subnormal products flushed to zero, see [`flush`]).
pub fn apply_derivative(g: &mut [f32], deriv: &[f32]) {
    let n = g.len();
    g.par_chunks_mut(CHUNK)
        .zip(deriv[..n].par_chunks(CHUNK))
        .for_each(|(g, d)| {
            for (v, d) in g.iter_mut().zip(d) {
                *v = flush(*v * d);
            }
        });
}

/// Plain references for the unit tests, in float64 from the definitions.
pub mod reference {
    use super::Act;

    /// `(act(z), act'(z))`.
    pub fn smooth(act: Act, z: f32) -> (f32, f32) {
        let z = f64::from(z);
        let sig = |z: f64| 1.0 / (1.0 + (-z).exp());
        let hsig = |z: f64| (z / 6.0 + 0.5).clamp(0.0, 1.0);
        let (y, d) = match act {
            Act::Sigmoid => (sig(z), sig(z) * (1.0 - sig(z))),
            Act::Silu => (z * sig(z), sig(z) + z * sig(z) * (1.0 - sig(z))),
            Act::HardSigmoid => (hsig(z), if z.abs() < 3.0 { 1.0 / 6.0 } else { 0.0 }),
            Act::HardSwish => {
                let d = if z <= -3.0 {
                    0.0
                } else if z >= 3.0 {
                    1.0
                } else {
                    hsig(z) + z / 6.0
                };
                (z * hsig(z), d)
            }
            _ => (z, 1.0),
        };
        (y as f32, d as f32)
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{assert_close, random};
    use super::*;

    const SMOOTH: [Act; 4] = [Act::Sigmoid, Act::Silu, Act::HardSigmoid, Act::HardSwish];

    #[test]
    fn activations_and_derivatives_match_reference() {
        // More than one chunk and not a multiple of one; values over [-8, 8) reach every
        // piece of the hard activations and both tails of the sigmoid.
        let z: Vec<f32> = random(3 * CHUNK + 37, 5).iter().map(|v| 8.0 * v).collect();
        for act in SMOOTH {
            let (want_y, want_d): (Vec<f32>, Vec<f32>) =
                z.iter().map(|&v| reference::smooth(act, v)).unzip();
            let mut y = z.clone();
            let mut d = vec![0.0; z.len()];
            activate(act, &mut y, Some(&mut d));
            assert_close(&y, &want_y, 1e-6);
            assert_close(&d, &want_d, 1e-6);
            let mut y2 = z.clone();
            activate(act, &mut y2, None);
            assert_eq!(y2, y, "{act:?}: the unsaved pass computes the same values");
            let g = random(z.len(), 6);
            let mut got = g.clone();
            apply_derivative(&mut got, &d);
            let want: Vec<f32> = g.iter().zip(&want_d).map(|(g, d)| g * d).collect();
            assert_close(&got, &want, 1e-6);
        }
    }

    #[test]
    fn exp_is_accurate_to_a_few_ulps() {
        for i in -87_000..88_000 {
            let x = i as f32 * 1e-3 + 1.7e-4;
            let (got, want) = (f64::from(super::super::exp(x)), f64::from(x).exp());
            assert!(
                ((got - want) / want).abs() < 3e-7,
                "exp({x}) = {got}, not {want}"
            );
        }
        assert_eq!(super::super::exp(-200.0), super::super::exp(-87.0));
        assert!(super::super::exp(200.0).is_finite());
    }

    #[test]
    fn derivatives_match_finite_differences() {
        // Away from the hard activations' kinks (±3), where a central difference is exact
        // up to rounding.
        for act in SMOOTH {
            for &z in &[-7.5f32, -2.9, -1.3, -0.2, 0.0, 0.4, 1.7, 2.6, 5.5] {
                let h = 1e-3f64;
                let f = |v: f64| {
                    let x = v as f32;
                    f64::from(reference::smooth(act, x).0)
                };
                let fd = (f(f64::from(z) + h) - f(f64::from(z) - h)) / (2.0 * h);
                let d = f64::from(act.smooth(z).1);
                assert!((fd - d).abs() < 2e-3, "{act:?} at {z}: {d} vs {fd}");
            }
        }
    }
}
