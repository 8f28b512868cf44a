//! The CPU kernels of the fast path, on row-major float32 NCHW buffers, one file per kind:
//!
//! - [`gemm_conv`]: dense and 1×1 convolutions as `gemm` products (tiled im2col) with a
//!   fused bias + activation + mask epilogue, and their backward-data;
//! - [`depthwise`]: direct whole-plane depthwise convolution, forward and backward-data
//!   (stride 2 split into phases instead of zero-filling);
//! - [`depthwise_lanes`]: the same on small planes, eight channels interleaved per vector
//!   (chosen by [`depthwise`]);
//! - [`dense`]: weight-streaming dense layers;
//! - [`pool`]: max-pooling with saved argmax;
//! - [`elementwise`]: activation masks, residual adds;
//! - [`smooth`]: SiLU, sigmoid, hardswish and hardsigmoid with their float derivatives;
//! - [`scale`]: squeeze-excitation's per-channel scale, forward and backward into both inputs.
//!
//! Next to each kernel is a plain, obviously correct `reference` version that its unit
//! tests compare it against. Kernels that need SIMD take their arguments as a struct
//! implementing [`Simd`], run by [`dispatch`] (AVX2 + FMA when the CPU has them); one, the
//! interleaved depthwise backward, keeps its own AVX2 + FMA entry with every buffer an
//! argument, measured twice as fast at stride 2 (see `depthwise_lanes`). Work is
//! split into independent tasks over rayon's global pool (the threads burn uses), and
//! scratch memory is thread-local and reused, so a loop of passes does not allocate in its
//! steady state.

pub mod dense;
pub mod depthwise;
mod depthwise_lanes;
pub mod elementwise;
pub mod gemm_conv;
pub mod pool;
pub mod scale;
pub mod smooth;
pub mod winograd;

pub use dense::{dense_backward, dense_forward, DenseLayer};
pub use depthwise::{depthwise_backward, depthwise_forward, DepthwiseLayer, MAX_DEPTHWISE_KERNEL};
pub use elementwise::{add, add_act, add_into, apply_guided_mask, apply_mask};
pub(crate) use elementwise::{mask_slice, masked_copy};
pub use gemm_conv::{
    conv_backward_col2im, conv_forward, conv_forward_keep, conv_forward_smooth, pointwise_backward,
    ConvGeom, ConvLayer, Transposed,
};
pub use pool::{max_pool_backward, max_pool_forward, PoolGeom};
pub use scale::{scale_backward, scale_forward};

use rayon::prelude::*;
use std::cell::RefCell;

/// An activation fused into a layer's output.
///
/// Two kinds: the piecewise-linear ReLU family, whose derivative is 0 or 1 and is saved as a
/// byte mask (computed inside the kernels' epilogues by [`Act::apply`]), and the smooth
/// activations of MobileNetV3 and EfficientNet, whose derivative is saved as one float per
/// element (computed by [`smooth::activate`] over the layer's output, see [`Act::smooth`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Act {
    None,
    /// `max(x, 0)`; gradient where `x > 0`.
    Relu,
    /// `relu(x) − relu(x − 6)` (= hardtanh(0, 6)); gradient where `0 < x ≤ 6`, as the plain
    /// burn path computes it.
    Relu6,
    /// `σ(x) = 1 / (1 + e⁻ˣ)` (squeeze-excitation's gate in EfficientNet).
    Sigmoid,
    /// SiLU / swish, `x · σ(x)` (ONNX writes it as `Sigmoid` and `Mul`).
    Silu,
    /// PyTorch's hardsigmoid, `clamp(x / 6 + 1/2, 0, 1)` (MobileNetV3's gate).
    HardSigmoid,
    /// `x · hardsigmoid(x)`.
    HardSwish,
}

impl Act {
    /// The activation of `z` and its 0/1 gradient, branch-free so that loops vectorize.
    /// Only for the ReLU family; kernels are handed [`Act::masked`], never a smooth one.
    #[inline(always)]
    pub(crate) fn apply(self, z: f32) -> (f32, u8) {
        match self {
            Act::Relu => {
                let pos = z > 0.0;
                (if pos { z } else { 0.0 }, u8::from(pos))
            }
            Act::Relu6 => {
                let pos = z > 0.0;
                let low = z <= 6.0;
                let y = if low { z } else { 6.0 };
                (if pos { y } else { 0.0 }, u8::from(pos & low))
            }
            _ => (z, 1),
        }
    }

    /// Whether the derivative is not 0/1 and is saved as a float per element.
    pub fn is_smooth(self) -> bool {
        matches!(
            self,
            Act::Sigmoid | Act::Silu | Act::HardSigmoid | Act::HardSwish
        )
    }

    /// Whether a byte mask is saved (the ReLU family).
    pub fn has_mask(self) -> bool {
        matches!(self, Act::Relu | Act::Relu6)
    }

    /// The part a kernel's epilogue applies: the activation itself for the ReLU family,
    /// none for a smooth activation (applied afterwards by [`smooth::activate`]).
    pub fn masked(self) -> Act {
        if self.is_smooth() {
            Act::None
        } else {
            self
        }
    }

    /// A smooth activation of `z` and its derivative (the identity for the others), both
    /// [`flush`]ed to zero where subnormal.
    /// At the kinks of the hard ones the derivative is the one-sided value PyTorch uses:
    /// hardsigmoid's is `1/6` only strictly inside `(−3, 3)`, hardswish's is `0` at or below
    /// `−3`, `1` at or above `3`.
    #[inline(always)]
    pub fn smooth(self, z: f32) -> (f32, f32) {
        let (y, d) = self.smooth_exact(z);
        (flush(y), flush(d))
    }

    #[inline(always)]
    fn smooth_exact(self, z: f32) -> (f32, f32) {
        const SIXTH: f32 = 1.0 / 6.0;
        match self {
            Act::Sigmoid => {
                let s = 1.0 / (1.0 + exp(-z));
                (s, s * (1.0 - s))
            }
            Act::Silu => {
                let s = 1.0 / (1.0 + exp(-z));
                (z * s, s * (1.0 + z * (1.0 - s)))
            }
            Act::HardSigmoid => {
                let h = z * SIXTH + 0.5;
                let inside = z > -3.0 && z < 3.0;
                (h.clamp(0.0, 1.0), if inside { SIXTH } else { 0.0 })
            }
            Act::HardSwish => {
                let h = (z * SIXTH + 0.5).clamp(0.0, 1.0);
                let d = if z <= -3.0 {
                    0.0
                } else if z >= 3.0 {
                    1.0
                } else {
                    z * (2.0 * SIXTH) + 0.5
                };
                (z * h, d)
            }
            _ => (z, 1.0),
        }
    }
}

/// `eˣ` to about one unit in the last place, branch-free so that loops over it vectorize
/// (the C library's `expf` is a call per element): `2ⁿ · p(r)` with `n = round(x / ln 2)`,
/// `r = x − n ln 2` (ln 2 in two parts) and Cephes' degree-6 polynomial for `eʳ` on
/// `[−ln2/2, ln2/2]`. Inputs are clamped to `[−87, 88]`, where `2ⁿ` is a normal float, so
/// the result saturates at `e⁸⁸` and `e⁻⁸⁷` instead of reaching infinity or zero.
#[inline(always)]
pub(crate) fn exp(x: f32) -> f32 {
    const LOG2E: f32 = std::f32::consts::LOG2_E;
    const LN2_HI: f32 = 0.693_359_4;
    const LN2_LO: f32 = -2.121_944_4e-4;
    // Adding and subtracting 1.5·2²³ rounds to the nearest integer.
    const ROUND: f32 = 12_582_912.0;
    let x = x.clamp(-87.0, 88.0);
    let n = (x * LOG2E + ROUND) - ROUND;
    let r = x - n * LN2_HI - n * LN2_LO;
    let mut p = 1.987_569_1e-4f32;
    p = p * r + 1.398_199_9e-3;
    p = p * r + 8.333_452e-3;
    p = p * r + 4.166_579_6e-2;
    p = p * r + 1.666_666_5e-1;
    p = p * r + 0.5;
    let e = p * r * r + r + 1.0;
    // SAFETY: `n` is an integer in [−126, 127] (x was clamped), so the conversion is exact;
    // the unchecked form compiles to one vector instruction where `as` (saturating) does not
    // vectorize.
    let n = unsafe { n.to_int_unchecked::<i32>() };
    let scale = f32::from_bits(((n + 127) as u32) << 23);
    e * scale
}

/// `v`, or zero where it is subnormal (below `f32::MIN_POSITIVE` in magnitude). Products of a
/// saturated sigmoid gate (`σ(−90)` ≈ 1e-39) reach that range, and every multiply that
/// reads a subnormal takes a microcode assist on x86: with them, EfficientNet-B0's last
/// 1×1 convolutions ran 10–25× slower (11 ms instead of 0.45 ms). The smooth activations and
/// the per-channel scale flush what they write; the error is below 1.2e-38 absolute.
#[inline(always)]
pub(crate) fn flush(v: f32) -> f32 {
    if v.abs() < f32::MIN_POSITIVE {
        0.0
    } else {
        v
    }
}

/// A raw pointer that tasks writing disjoint regions may share.
#[derive(Clone, Copy)]
pub(crate) struct SendPtr<T>(pub *mut T);
unsafe impl<T> Send for SendPtr<T> {}
unsafe impl<T> Sync for SendPtr<T> {}

impl<T> SendPtr<T> {
    #[inline(always)]
    pub(crate) fn at(self, offset: usize) -> *mut T {
        // SAFETY: callers only form offsets inside the buffer the pointer came from.
        unsafe { self.0.add(offset) }
    }
}

thread_local! {
    static SCRATCH: RefCell<Vec<f32>> = const { RefCell::new(Vec::new()) };
    static SCRATCH2: RefCell<Vec<f32>> = const { RefCell::new(Vec::new()) };
}

/// Multiply-accumulate `a + w·s`: fused on CPUs with FMA (inside the `avx2,fma`
/// compiled copies of the kernels), separate multiply and add elsewhere.
pub(crate) trait Mac {
    fn mac(a: f32, w: f32, s: f32) -> f32;
}
pub(crate) struct Fused;
pub(crate) struct Separate;
impl Mac for Fused {
    #[inline(always)]
    fn mac(a: f32, w: f32, s: f32) -> f32 {
        w.mul_add(s, a)
    }
}
impl Mac for Separate {
    #[inline(always)]
    fn mac(a: f32, w: f32, s: f32) -> f32 {
        a + w * s
    }
}

#[inline(always)]
pub(crate) fn has_avx2_fma() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// A kernel compiled twice: its [`run`](Simd::run) body is `#[inline(always)]` and generic
/// over [`Mac`], and [`dispatch`] runs it as `run::<Fused>` inside an AVX2 + FMA compiled
/// function when the CPU has those features (so the whole body is vectorized 8 wide), and
/// as `run::<Separate>` otherwise. The kernel's arguments are the fields of the struct that
/// implements this, written once.
pub(crate) trait Simd {
    type Output;
    fn run<M: Mac>(self) -> Self::Output;
}

/// Runs `kernel` in the widest compiled copy the CPU supports (see [`Simd`]).
pub(crate) fn dispatch<K: Simd>(kernel: K) -> K::Output {
    #[cfg(target_arch = "x86_64")]
    {
        #[target_feature(enable = "avx2,fma")]
        unsafe fn wide<K: Simd>(kernel: K) -> K::Output {
            kernel.run::<Fused>()
        }
        if has_avx2_fma() {
            // SAFETY: the CPU features were just detected.
            return unsafe { wide(kernel) };
        }
    }
    kernel.run::<Separate>()
}

/// Runs `kernel` like [`dispatch`], but in an AVX-512 compiled copy (16 lanes) where the CPU
/// has AVX-512F: only for kernels whose results cannot depend on the vector width — no
/// arithmetic that rounds, only comparisons and copies (the max-pools: each value and argmax
/// is one of the inputs, chosen by the same rule in every lane), so that every machine
/// gives the same bytes.
pub(crate) fn dispatch_exact<K: Simd>(kernel: K) -> K::Output {
    #[cfg(target_arch = "x86_64")]
    {
        #[target_feature(enable = "avx512f,avx2,fma")]
        unsafe fn wide512<K: Simd>(kernel: K) -> K::Output {
            kernel.run::<Fused>()
        }
        if has_avx2_fma() && std::is_x86_feature_detected!("avx512f") {
            // SAFETY: the CPU features were just detected.
            return unsafe { wide512(kernel) };
        }
    }
    dispatch(kernel)
}

/// Runs `f` with a thread-local scratch buffer of at least `n` floats (contents arbitrary).
/// The buffer is taken out of its thread-local slot and put back afterwards, so that `f` is
/// called (and inlined) right here — inside the kernel's AVX2 + FMA copy — rather than
/// inside `LocalKey::with`, and so that a task a waiting thread steals while the buffer is
/// out simply gets a fresh one.
#[inline(always)]
pub(crate) fn with_scratch<R>(n: usize, f: impl FnOnce(&mut [f32]) -> R) -> R {
    scratch(&SCRATCH, n, f)
}

#[inline(always)]
pub(crate) fn with_scratch2<R>(n: usize, f: impl FnOnce(&mut [f32]) -> R) -> R {
    scratch(&SCRATCH2, n, f)
}

type Slot = std::thread::LocalKey<RefCell<Vec<f32>>>;

#[inline(always)]
fn scratch<R>(slot: &'static Slot, n: usize, f: impl FnOnce(&mut [f32]) -> R) -> R {
    let mut v = slot.with(|c| std::mem::take(&mut *c.borrow_mut()));
    if v.len() < n {
        v.resize(n, 0.0);
    }
    let r = f(&mut v[..n]);
    slot.with(|c| {
        let mut c = c.borrow_mut();
        if c.len() < v.len() {
            *c = v;
        }
    });
    r
}

/// Runs `f(i, plane, side)` on every output plane `i` of `planes` (`size` values each), in
/// parallel, with the matching plane of an optional per-value side output (a mask, an
/// argmax).
pub(crate) fn for_each_plane<T: Send>(
    y: &mut [f32],
    side: Option<&mut [T]>,
    size: usize,
    planes: usize,
    f: impl Fn(usize, &mut [f32], Option<&mut [T]>) + Sync + Send,
) {
    match side {
        Some(side) => y[..planes * size]
            .par_chunks_mut(size)
            .zip(side[..planes * size].par_chunks_mut(size))
            .enumerate()
            .for_each(|(i, (yo, s))| f(i, yo, Some(s))),
        None => y[..planes * size]
            .par_chunks_mut(size)
            .enumerate()
            .for_each(|(i, yo)| f(i, yo, None)),
    }
}

/// `a` `[rows, cols]` row-major, transposed (the `Wᵀ` copies the backward products read).
pub fn transpose(a: &[f32], rows: usize, cols: usize) -> Vec<f32> {
    let mut t = vec![0.0; a.len()];
    for (r, row) in a.chunks_exact(cols).enumerate().take(rows) {
        for (j, &v) in row.iter().enumerate() {
            t[j * rows + r] = v;
        }
    }
    t
}

/// Test data shared by the kernels' unit tests.
#[cfg(test)]
pub(crate) mod testing {
    /// `f` run on a rayon pool of exactly `threads` threads.
    pub fn on_threads<R: Send>(threads: usize, f: impl FnOnce() -> R + Send) -> R {
        rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .expect("a thread pool")
            .install(f)
    }

    /// `n` pseudo-random values in `[-1, 1)` (a fixed xorshift sequence per `seed`).
    pub fn random(n: usize, seed: u64) -> Vec<f32> {
        let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
        (0..n)
            .map(|_| {
                s ^= s << 13;
                s ^= s >> 7;
                s ^= s << 17;
                (s >> 40) as f32 / (1u64 << 23) as f32 - 1.0
            })
            .collect()
    }

    /// `n` pseudo-random 0/1 mask values.
    pub fn random_mask(n: usize, seed: u64) -> Vec<u8> {
        random(n, seed)
            .iter()
            .map(|&v| u8::from(v > -0.3))
            .collect()
    }

    /// Asserts `got` is within `tol` of `want`, relative to `want`'s largest magnitude.
    #[track_caller]
    pub fn assert_close(got: &[f32], want: &[f32], tol: f32) {
        assert_eq!(got.len(), want.len());
        let scale = want.iter().fold(1.0f32, |m, v| m.max(v.abs()));
        for (i, (g, w)) in got.iter().zip(want).enumerate() {
            assert!(
                (g - w).abs() <= tol * scale,
                "value {i}: {g} vs reference {w} (scale {scale})"
            );
        }
    }
}
