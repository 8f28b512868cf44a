//! The one place that names the compute backend: burn's `flex` CPU backend under `Autodiff`.
//!
//! Everything else in netlens asks this module for the device and never names a backend, so
//! swapping the engine is a one-file change. Weights are created with `from_data` on this
//! device and are therefore not tracked: backward passes compute input gradients only.

//!
//! Computation runs in float32 by default. [`set_precision`]`(Precision::F64)` makes every
//! tensor created afterwards (weights included) float64: slower, but free of the float32
//! rounding that flips ReLU6 masks near their kinks, so that gradients can be checked against
//! a float64 PyTorch reference to ~1e-9.

use burn::tensor::{DType, Device, Tensor, TensorCreationOptions, TensorData};
use std::sync::atomic::{AtomicBool, Ordering};

/// Floating-point precision of computation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Precision {
    F32,
    F64,
}

static USE_F64: AtomicBool = AtomicBool::new(false);

/// Sets the precision of tensors created from now on (load models after calling this).
pub fn set_precision(p: Precision) {
    USE_F64.store(p == Precision::F64, Ordering::SeqCst);
}

/// The current precision.
pub fn precision() -> Precision {
    if USE_F64.load(Ordering::SeqCst) {
        Precision::F64
    } else {
        Precision::F32
    }
}

fn options() -> TensorCreationOptions {
    let dtype = match precision() {
        Precision::F32 => DType::F32,
        Precision::F64 => DType::F64,
    };
    TensorCreationOptions::new(device()).with_dtype(dtype)
}

/// A float tensor of the engine's precision from row-major `f32` values.
pub fn tensor<const D: usize>(values: Vec<f32>, shape: [usize; D]) -> Tensor<D> {
    Tensor::from_data(TensorData::new(values, shape), options())
}

/// A float tensor of the engine's precision from row-major `f64` values (no float32 rounding
/// on the way when the engine runs in float64).
pub fn tensor_f64<const D: usize>(values: Vec<f64>, shape: [usize; D]) -> Tensor<D> {
    Tensor::from_data(TensorData::new(values, shape), options())
}

/// The device every tensor in netlens lives on: flex (pure-Rust CPU) with autodiff.
pub fn device() -> Device {
    Device::flex().autodiff()
}

/// Number of worker threads the engine uses (flex runs on the global rayon pool).
pub fn threads() -> usize {
    rayon::current_num_threads()
}

/// Sets the number of engine threads. Must be called before any tensor work; later calls
/// (or a pool that is already running) are ignored and the current count is returned.
pub fn set_threads(n: usize) -> usize {
    let _ = rayon::ThreadPoolBuilder::new()
        .num_threads(n.max(1))
        .build_global();
    rayon::current_num_threads()
}

static FAST_PATH: AtomicBool = AtomicBool::new(true);

/// Turns netlens's fast path on or off (on by default). When on, the networks it supports
/// (EfficientNet-Lite, SqueezeNet, VGG; float32 only) run forward and backward-to-input over
/// netlens's own CPU kernels inside one burn autodiff operation; when off, every layer runs
/// as plain burn operations — the reference the fast path is tested against.
pub fn set_fast_path(enabled: bool) {
    FAST_PATH.store(enabled, Ordering::SeqCst);
}

/// Whether the fast path is on (see [`set_fast_path`]); also off when the engine runs in
/// float64 or `NETLENS_FAST_PATH=0` is set.
pub fn fast_path() -> bool {
    static ENV_OFF: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    let env_off = *ENV_OFF.get_or_init(|| {
        std::env::var("NETLENS_FAST_PATH").is_ok_and(|v| v == "0" || v.eq_ignore_ascii_case("off"))
    });
    FAST_PATH.load(Ordering::SeqCst) && !env_off && precision() == Precision::F32
}

mod fast_op;
mod guided_op;

pub use guided_op::guided_relu;

/// Logits of `x` through a fast-path network, as one burn autodiff operation (input
/// gradients flow through it). Falls back to `plain` when the fast path is off or the
/// network cannot run on `x`'s shape.
pub fn forward_fast_or(
    net: Option<&std::sync::Arc<crate::fast::FastNet>>,
    x: Tensor<4>,
    plain: impl FnOnce(Tensor<4>) -> Tensor<2>,
) -> Tensor<2> {
    match net {
        Some(net) if fast_path() && x.dtype() == DType::F32 && net.check(x.dims()).is_ok() => {
            fast_op::fast_forward(net, x, false)
        }
        _ => plain(x),
    }
}

/// Logits of `x` through a fast-path network whose backward pass is guided backpropagation's
/// (each ReLU / ReLU6 passes back only positive gradients where its input was in range; see
/// [`crate::fast::FastNet::backward`]); `None` when the fast path is off or cannot run `x`.
pub fn forward_fast_guided(
    net: Option<&std::sync::Arc<crate::fast::FastNet>>,
    x: Tensor<4>,
) -> Option<Tensor<2>> {
    match net {
        Some(net) if fast_path() && x.dtype() == DType::F32 && net.check(x.dims()).is_ok() => {
            Some(fast_op::fast_forward(net, x, true))
        }
        _ => None,
    }
}
