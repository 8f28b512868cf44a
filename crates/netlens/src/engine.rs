//! The one place that names the compute backend: burn's `flex` CPU backend under `Autodiff`.
//!
//! Everything else in netlens asks this module for the device and never names a backend, so
//! swapping the engine is a one-file change. Weights are created with `from_data` on this
//! device and are therefore not tracked: backward passes compute input gradients only.
//!
//! Precision and the fast path are properties of a loaded model, chosen by the
//! [`LoadOptions`] it was loaded with (there is no process-wide setting): a float64 model and
//! a float32 model of the same weights can live side by side. Float64 is slower, but free of
//! the float32 rounding that flips ReLU6 masks near their kinks, so that gradients can be
//! checked against a float64 PyTorch reference to ~1e-9. Code that makes tensors for a model
//! makes them in that model's [`Precision`] (`model.precision().tensor(...)`); a model casts
//! an input of the other precision on entry.

use burn::tensor::{DType, Device, Tensor, TensorCreationOptions, TensorData};

/// Floating-point precision of a model's computation (its weights, activations and the
/// tensors methods make for it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Precision {
    /// Float32: the default, and the only precision the fast path runs in.
    #[default]
    F32,
    /// Float64: the reference precision of the parity tests.
    F64,
}

impl Precision {
    /// burn's element type for this precision.
    pub fn dtype(self) -> DType {
        match self {
            Precision::F32 => DType::F32,
            Precision::F64 => DType::F64,
        }
    }

    /// The precision of a tensor (float64 tensors answer `F64`, every other `F32`).
    pub fn of<const D: usize>(t: &Tensor<D>) -> Precision {
        if t.dtype() == DType::F64 {
            Precision::F64
        } else {
            Precision::F32
        }
    }

    fn options(self) -> TensorCreationOptions {
        TensorCreationOptions::new(device()).with_dtype(self.dtype())
    }

    /// A float tensor of this precision from row-major `f32` values.
    pub fn tensor<const D: usize>(self, values: Vec<f32>, shape: [usize; D]) -> Tensor<D> {
        Tensor::from_data(TensorData::new(values, shape), self.options())
    }

    /// A float tensor of this precision from row-major `f64` values (no float32 rounding on
    /// the way in float64).
    pub fn tensor_f64<const D: usize>(self, values: Vec<f64>, shape: [usize; D]) -> Tensor<D> {
        Tensor::from_data(TensorData::new(values, shape), self.options())
    }

    /// `t` in this precision (itself when it already is; the cast is differentiable, so
    /// gradients flow back in the caller's precision).
    pub fn cast<const D: usize>(self, t: Tensor<D>) -> Tensor<D> {
        if t.dtype() == self.dtype() {
            t
        } else {
            t.cast(self.dtype())
        }
    }
}

/// How a model is loaded: its precision and whether it may run on netlens's fast path.
///
/// The fast path (EfficientNet-Lite, SqueezeNet, VGG and ONNX graphs it supports) runs
/// forward and backward-to-input over netlens's own CPU kernels inside one burn autodiff
/// operation; without it every layer runs as plain burn operations, the reference the fast
/// path is tested against. It is used iff `fast_path` is on and the model runs in float32.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LoadOptions {
    pub precision: Precision,
    /// Allow the fast path; default on unless the environment sets `NETLENS_FAST_PATH=0`
    /// (or `off`), the switch CLI users and CI keep.
    pub fast_path: bool,
}

impl Default for LoadOptions {
    fn default() -> Self {
        Self {
            precision: Precision::F32,
            fast_path: fast_path_default(),
        }
    }
}

impl LoadOptions {
    /// The defaults in `precision` (float64 turns the fast path off by itself).
    pub fn in_precision(precision: Precision) -> Self {
        Self {
            precision,
            ..Self::default()
        }
    }

    /// The defaults with the fast path allowed or not (`false`: the plain burn path).
    pub fn with_fast_path(fast_path: bool) -> Self {
        Self {
            fast_path,
            ..Self::default()
        }
    }

    /// Whether a model loaded with these options runs on the fast path (where its network
    /// supports it): allowed and float32.
    pub fn fast_path_active(&self) -> bool {
        self.fast_path && self.precision == Precision::F32
    }
}

/// The fast path's default: on, unless `NETLENS_FAST_PATH` is `0` or `off`.
pub fn fast_path_default() -> bool {
    static ENV_OFF: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    !*ENV_OFF.get_or_init(|| {
        std::env::var("NETLENS_FAST_PATH").is_ok_and(|v| v == "0" || v.eq_ignore_ascii_case("off"))
    })
}

/// Flat values of a tensor as `f32` (any rank, either precision): how a result leaves the
/// engine for the host.
pub fn tensor_values<const D: usize>(t: Tensor<D>) -> Vec<f32> {
    t.into_data()
        .convert::<f32>()
        .try_into_vec::<f32>()
        .unwrap_or_default()
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

mod fast_op;
mod guided_op;
mod vit_op;

pub use guided_op::guided_relu;
pub use vit_op::vit_forward;

/// Logits of `x` through a fast-path network, as one burn autodiff operation (input
/// gradients flow through it). Falls back to `plain` when the model has no fast network
/// (its options turned the path off) or the network cannot run on `x`'s shape.
pub fn forward_fast_or(
    net: Option<&std::sync::Arc<crate::fast::FastNet>>,
    x: Tensor<4>,
    plain: impl FnOnce(Tensor<4>) -> Tensor<2>,
) -> Tensor<2> {
    match net {
        Some(net) if x.dtype() == DType::F32 && net.check(x.dims()).is_ok() => {
            fast_op::fast_forward(net, x, false)
        }
        _ => plain(x),
    }
}

/// The batch's value at fast value `to` of a fast-path network (a layer tap's activation,
/// `[N, C, h, w]`), differentiable with respect to `x`; the caller has checked
/// `net.check_span(Span { from: 0, to }, x.dims())` and that `x` is float32.
pub fn forward_fast_to(
    net: &std::sync::Arc<crate::fast::FastNet>,
    x: Tensor<4>,
    to: usize,
) -> Tensor<4> {
    fast_op::fast_forward_to(net, x, to)
}

/// The logits of a fast-path network computed from `a`, the value at fast value `from` of a
/// batch of images of `[C, H, W]` = `image`; its backward pass stops at `a` (Grad-CAM's
/// gradient). The caller has checked the span, `a`'s shape and dtype.
pub fn forward_fast_from(
    net: &std::sync::Arc<crate::fast::FastNet>,
    a: Tensor<4>,
    from: usize,
    image: [usize; 3],
) -> Tensor<2> {
    fast_op::fast_forward_from(net, a, from, image)
}

/// Logits of `x` through a fast-path network whose backward pass is guided backpropagation's
/// (each ReLU / ReLU6 passes back only positive gradients where its input was in range; see
/// [`crate::fast::FastNet::backward`]); `None` when the model has no fast network or it
/// cannot run `x`.
pub fn forward_fast_guided(
    net: Option<&std::sync::Arc<crate::fast::FastNet>>,
    x: Tensor<4>,
) -> Option<Tensor<2>> {
    match net {
        Some(net) if x.dtype() == DType::F32 && net.check(x.dims()).is_ok() => {
            Some(fast_op::fast_forward(net, x, true))
        }
        _ => None,
    }
}
