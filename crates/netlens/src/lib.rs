//! netlens: what a pretrained image classifier looks at and what it has learned.
//!
//! Saliency maps, fooling images and class visualizations on real ImageNet networks, on a
//! plain CPU. Data flows one way: file → [`imaging`] → [`batch::ImageBatch`] → tensor →
//! [`models`] → [`gradients`] → [`batch::ImageBatch`] → method → [`imaging`] → file. Methods
//! take and return host images as one type, [`batch::ImageBatch`] (values + `[B, C, H, W]`,
//! image and channel views); a batch is a tensor only between the model and the gradient
//! ([`engine::tensor_values`] brings results back). The burn backend is named only in
//! [`engine`].
//!
//! Every CNN is a [`graph::Graph`] of named values and ONNX operations: the zoo's are built
//! from their weight files ([`models`]), a user's is imported from an ONNX file ([`onnx`]).
//! [`graph::reference`] runs a graph as burn operations with autodiff (float32 or float64, the
//! oracle), [`graph::lower`] maps it onto the [`fast`] path's kernels when it can (whole
//! passes, and spans to and from a tapped layer for Grad-CAM); the zoo's ViT-B/16 is its own
//! model with its own fast path ([`fast::vit`]). Precision
//! and the fast path are chosen per model when it is loaded ([`engine::LoadOptions`]); every
//! tensor made for a model is made in its [`engine::Precision`].
//!
//! The methods: [`saliency`] (attributions, one interface) and [`metrics`] (how far to trust
//! a map), [`adversarial`] (fooling images), [`synthesis`] (class visualization), all driven
//! through [`gradients`]; [`evaluate`] runs the metrics over methods and images (`netlens
//! evaluate`, `netlens.evaluate`). Around them: [`files`] writes every output atomically and
//! reads inputs bounded, [`streaming`] sizes the chunks commands hold at once,
//! [`saliency_files`] names and draws a map's files, [`bench`] is `netlens bench`'s protocol
//! and records.

pub mod adversarial;
pub mod batch;
pub mod bench;
pub mod classify;
pub mod engine;
pub mod error;
pub mod evaluate;
pub mod fast;
pub mod files;
pub mod gradients;
pub mod graph;
pub mod imaging;
pub mod labels;
pub mod metrics;
pub mod models;
pub mod onnx;
pub mod saliency;
pub mod saliency_files;
pub mod streaming;
pub mod synthesis;
pub mod weights;

pub use error::{Error, Result};
pub use models::{Classifier, ModelSpec};
