//! The fast path: forward and backward-to-input of a whole CNN over netlens's own kernels.
//!
//! A model that is made only of the layers listed in [`Graph`] (dense, 1×1 and depthwise
//! convolutions with a fused activation, residual adds, per-channel scales
//! (squeeze-excitation), max-pool, channel concatenation, global average pool, dense layers) describes itself once as a graph; the engine runs
//! that graph as a single burn autodiff operation (see `engine::fast_forward`), so methods
//! keep seeing one [`Classifier`](crate::Classifier) interface and burn's autodiff still
//! differentiates whatever objective they put on the logits.
//!
//! Only input gradients are computed — weights are constants — so the backward pass needs no
//! activations, only each ReLU / ReLU6's 0/1 gradient mask (one byte per element), each
//! smooth activation's derivative (SiLU, hardswish, ...: one float per element), each
//! max-pool's argmax and each per-channel scale's inputs, saved by the forward pass.
//! Activation and gradient buffers come from a pool sized by the first pass at a given input
//! shape and reused afterwards. A pass can also run a [`Span`] of the network — input to a
//! tapped value, or tapped value to logits, its backward pass stopping there — which is how
//! layer taps (`forward_to` / `forward_from`, Grad-CAM) run here; the lowering records which
//! fast value computes each graph value ([`Graph::source_value`]).
//!
//! The files: `graph` (building the layer graph), `layout` (shapes and geometry at one
//! input shape), `buffers` (the pools), `net` ([`FastNet`]: the forward and backward passes
//! over a batch), `run` (each layer's kernel calls), `profile` (per-node timing for
//! `netlens bench --profile`), `warm` (a pass on the pool with its
//! threads kept awake), and [`kernels`].

mod buffers;
mod graph;
pub mod kernels;
mod layout;
mod net;
pub mod profile;
mod run;
pub mod vit;
mod warm;

pub use graph::{ConvParams, Graph, LinearParams, Pad, Unsupported, Value};
pub use net::{FastNet, Saved, Span};
