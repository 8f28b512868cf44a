//! A [`Classifier`] defined by a [`Graph`]: every zoo CNN and every ONNX file.
//!
//! `forward` runs on the fast path when the graph lowers onto it (and the batch fits), on the
//! reference interpreter otherwise; `forward_to` / `forward_from` and the layer list come
//! from the graph's named values ([`crate::graph::analysis`]). At construction the graph is
//! run once on a blank batch at the model's input size, which checks every node's shapes
//! and records each layer's output shape, so that later passes at that size cannot fail.
//! The model computes in the precision of its [`LoadOptions`] (constants are made in it,
//! inputs of the other precision are cast on entry) and builds its fast network only when
//! those options allow it.

use super::{Classifier, FastSlot, ModelSpec};
use crate::engine::{self, LoadOptions};
use crate::error::{Error, Result};
use crate::graph::analysis::{self, Layer};
use crate::graph::reference::{Float, Reference};
use crate::graph::{fold, lower, Graph, Op};
use burn::tensor::Tensor;
use std::sync::Arc;

/// A network given as a graph.
pub struct GraphModel {
    spec: ModelSpec,
    reference: Reference,
    fast: FastSlot,
    layers: Vec<Layer>,
    cam_layer: Option<String>,
    classes: usize,
    /// Every value's shape at batch 1.
    shapes: Vec<Option<Vec<usize>>>,
    softmax_left_out: bool,
    options: LoadOptions,
}

impl GraphModel {
    /// Checks `graph` on a blank batch of `spec`'s input size and wraps it, with the default
    /// [`LoadOptions`]; `cam_layer` overrides the automatic choice of Grad-CAM's layer.
    pub fn new(spec: ModelSpec, graph: Graph, cam_layer: Option<String>) -> Result<Self> {
        Self::with_options(spec, graph, cam_layer, LoadOptions::default())
    }

    /// [`GraphModel::new`] in the precision and on the path `options` choose.
    pub fn with_options(
        spec: ModelSpec,
        mut graph: Graph,
        cam_layer: Option<String>,
        options: LoadOptions,
    ) -> Result<Self> {
        let p = options.precision;
        fold::constants_in(&mut graph, p)?;
        let mut reference = Reference::with_precision(Arc::new(graph), p)?;
        let s = spec.input_size as usize;
        let blank = |n: usize| p.tensor(vec![0.0; n * 3 * s * s], [n, 3, s, s]);
        let shapes = reference.shapes(blank(1))?;
        let g = reference.graph();
        let classes = match shapes[g.output].as_deref() {
            Some([1, k]) => *k,
            other => {
                return Err(Error::Graph(format!(
                    "the network's output must be [N, classes] logits; at batch 1 it is {other:?}"
                )))
            }
        };
        // Graphs that compute shapes may bake a batch size in: check a second one.
        let shape_ops = g.nodes.iter().any(|n| {
            matches!(
                n.op,
                Op::Shape { .. } | Op::Reshape { .. } | Op::Expand | Op::ConstantOfShape { .. }
            )
        });
        if shape_ops {
            reference.forward(blank(2)).map_err(|e| {
                Error::Graph(format!(
                    "the network runs on one image but not on a batch of two ({e}); export it \
                     with a dynamic batch axis"
                ))
            })?;
        }
        let layers = analysis::layers(g, &shapes);
        reference.release_constants();
        if let Some(l) = &cam_layer {
            if !layers.iter().any(|x| &x.name == l) {
                return Err(Error::Graph(format!(
                    "CAM layer '{l}' is not a tappable layer"
                )));
            }
        }
        Ok(Self {
            spec,
            reference,
            fast: FastSlot::new(&options),
            layers,
            cam_layer,
            classes,
            shapes,
            softmax_left_out: false,
            options,
        })
    }

    /// Records that the file's final Softmax was taken off the graph.
    pub fn with_softmax_left_out(mut self, left_out: bool) -> Self {
        self.softmax_left_out = left_out;
        self
    }

    /// The graph.
    pub fn graph(&self) -> &Graph {
        self.reference.graph()
    }

    /// Why the fast path cannot run this network (`None` when it can).
    pub fn fast_path_unsupported(&self) -> Option<String> {
        lower::lower(self.graph(), &self.shapes).err().map(|u| u.0)
    }

    /// A tappable layer by its value's name or by the name of the node computing it.
    fn tap(&self, layer: &str) -> Result<&Layer> {
        let by_node = self.graph().find(layer);
        let found = self
            .layers
            .iter()
            .find(|l| l.name == layer)
            .or_else(|| self.layers.iter().find(|l| Some(l.value) == by_node));
        found.ok_or_else(|| {
            let names: Vec<&str> = self.layers.iter().map(|l| l.name.as_str()).collect();
            let shown = if names.len() > 12 {
                format!(
                    "{}, ... ({} in all; `netlens layers {}` lists them)",
                    names[names.len() - 12..].join(", "),
                    names.len(),
                    self.spec.name
                )
            } else {
                names.join(", ")
            };
            Error::Invalid(format!(
                "no tappable layer '{layer}' in {}; layers: {shown}",
                self.spec.name
            ))
        })
    }
}

impl Classifier for GraphModel {
    fn spec(&self) -> &ModelSpec {
        &self.spec
    }

    fn forward_flops(&self) -> Option<u64> {
        // `shapes` are at batch 1.
        Some(crate::graph::flops::forward(self.graph(), &self.shapes)).filter(|&f| f > 0)
    }

    fn load_options(&self) -> LoadOptions {
        self.options
    }

    fn fast_path_unsupported(&self) -> Option<String> {
        // The inherent method (which tests call without the trait in scope).
        GraphModel::fast_path_unsupported(self)
    }

    fn forward(&self, x: Tensor<4>) -> Tensor<2> {
        let x = self.options.precision.cast(x);
        let fast = self
            .fast
            .get(|| Some(lower::lower(self.graph(), &self.shapes)));
        engine::forward_fast_or(fast, x, |x| {
            let dims = x.dims();
            match self.reference.forward(x).and_then(|y| y.rank::<2>()) {
                Ok(y) => y,
                // The graph was run at construction; inputs of the model's size cannot fail.
                Err(e) => panic!(
                    "{} failed on a batch of shape {dims:?}: {e}",
                    self.spec.name
                ),
            }
        })
    }

    fn forward_guided(&self, x: Tensor<4>) -> Result<Tensor<2>> {
        let relu = |op: &Op| matches!(op, Op::Relu | Op::Clip { min: Some(0.0), .. });
        if !self.graph().nodes.iter().any(|n| relu(&n.op)) {
            return Err(Error::Invalid(format!(
                "guided backpropagation needs ReLU activations; {} has none",
                self.spec.name
            )));
        }
        let x = self.options.precision.cast(x);
        let fast = self
            .fast
            .get(|| Some(lower::lower(self.graph(), &self.shapes)));
        match engine::forward_fast_guided(fast, x.clone()) {
            Some(y) => Ok(y),
            None => self.reference.forward_guided(x)?.rank::<2>(),
        }
    }

    fn classes(&self) -> usize {
        self.classes
    }

    fn softmax_left_out(&self) -> bool {
        self.softmax_left_out
    }

    fn layers(&self) -> Vec<String> {
        self.layers.iter().map(|l| l.name.clone()).collect()
    }

    fn layer_info(&self) -> Vec<Layer> {
        self.layers.clone()
    }

    fn cam_layer(&self) -> String {
        self.cam_layer
            .clone()
            .or_else(|| analysis::default_cam_layer(&self.layers).map(|l| l.name.clone()))
            .unwrap_or_default()
    }

    fn forward_to(&self, x: Tensor<4>, layer: &str) -> Result<Tensor<4>> {
        let v = self.tap(layer)?.value;
        let x = self.options.precision.cast(x);
        self.reference.forward_to(x, v)?.rank::<4>()
    }

    fn forward_from(&self, a: Tensor<4>, layer: &str) -> Result<Tensor<2>> {
        let v = self.tap(layer)?.value;
        let n = a.dims()[0];
        let s = self.spec.input_size as usize;
        self.reference
            .forward_from(Float::new(self.options.precision.cast(a)), v, [n, 3, s, s])?
            .rank::<2>()
    }
}
