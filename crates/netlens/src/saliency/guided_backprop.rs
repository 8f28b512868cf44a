//! Guided Backpropagation (Springenberg, Dosovitskiy, Brox & Riedmiller 2015, "Striving for
//! Simplicity: The All Convolutional Net", section 3.4), as Captum's `GuidedBackprop`: the
//! input gradient of the target score, where every ReLU on the way back passes only the
//! positive part of its gradient, and only where its forward input was positive.
//!
//! EfficientNet-Lite's activations are ReLU6 (`Clip(0, 6)`), which Captum does not hook
//! (it overrides `nn.ReLU` only). netlens applies the natural extension at every ReLU6: the
//! gradient passes where `0 < x ≤ 6` (the activation's own derivative; PyTorch's hardtanh
//! takes `0 < x < 6`, the same but on a measure-zero set) and where it is positive. The
//! reference script (`tools/reference/guided_fixtures.py`) runs Captum with each `nn.ReLU6`
//! replaced by an `nn.ReLU` subclass computing ReLU6, so that Captum's hook applies to it.
//!
//! The rule is a backward mode of the network ([`Classifier::forward_guided`]): the fast path
//! applies it to each activation's saved mask, the reference interpreter (ONNX graphs the
//! fast path cannot run, float64) runs ReLU and `Clip(0, ·)` as a guided operation
//! ([`crate::engine::guided_relu`]). Other activations (sigmoid, SiLU) keep their plain
//! gradient, as under Captum; networks without any ReLU (vision transformers) are refused.
//! The map is reduced
//! as [`super::Vanilla`]'s (`max_c |g_c|`), so the two compare directly in sanity checks; the
//! per-channel gradient is [`super::guided_class_gradients`].
//!
//! [`Classifier::forward_guided`]: crate::models::Classifier::forward_guided

use super::{FromGradient, Vanilla};

/// `max_c |guided gradient_c|`.
#[derive(Debug, Clone, Copy, Default)]
pub struct GuidedBackprop;

impl FromGradient for GuidedBackprop {
    fn name(&self) -> String {
        "guided-backprop".into()
    }
    fn signed(&self) -> bool {
        false
    }
    fn reduce(&self, grad: &[f32], input: &[f32], plane: usize) -> Vec<f32> {
        Vanilla.reduce(grad, input, plane)
    }
    fn guided(&self) -> bool {
        true
    }
}
