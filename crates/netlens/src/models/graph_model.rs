//! A [`Classifier`] defined by a [`Graph`]: every zoo CNN and every ONNX file.
//!
//! `forward` runs on the fast path when the graph lowers onto it (and the batch fits), on the
//! reference interpreter otherwise; `forward_to` / `forward_from` and the layer list come
//! from the graph's named values ([`crate::graph::analysis`]). A tap runs on the fast path
//! too when its value survived the lowering (a layer's output after its fused BatchNorm and
//! activation, a residual add, a pool); a value fused away (a convolution's output before
//! its BatchNorm or activation) runs on the reference interpreter, and
//! [`GraphModel::fast_tap_unsupported`] says why. At construction the graph is
//! run once on a blank batch at the model's input size, which checks every node's shapes
//! and records each layer's output shape, so that later passes at that size cannot fail.
//! The model computes in the precision of its [`LoadOptions`] (constants are made in it,
//! inputs of the other precision are cast on entry) and builds its fast network only when
//! those options allow it.

use super::{Classifier, FastSlot, ModelSpec};
use crate::engine::{self, LoadOptions};
use crate::error::{Error, Result};
use crate::fast::{FastNet, Span};
use crate::graph::analysis::{self, Layer};
use crate::graph::reference::{Float, Reference};
use crate::graph::{fold, lower, Graph, Op};
use burn::tensor::{DType, Tensor};
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

    /// Why a tap on `layer` runs on the reference interpreter instead of the fast path
    /// (`Ok(None)`: it runs on the fast path at the model's input size); an error when the
    /// model has no such layer.
    pub fn fast_tap_unsupported(&self, layer: &str) -> Result<Option<String>> {
        let v = self.tap(layer)?.value;
        let s = self.spec.input_size as usize;
        Ok(self.fast_tap(v, [1, 3, s, s]).err())
    }

    /// The fast network and the fast value of graph value `v` (a tappable layer) for a
    /// batch of images of `shape`, or why the tap cannot run on the fast path.
    fn fast_tap(
        &self,
        v: crate::graph::ValueId,
        shape: [usize; 4],
    ) -> std::result::Result<(&Arc<FastNet>, usize), String> {
        let net = self
            .fast
            .get(|| Some(lower::lower(self.graph(), &self.shapes)))
            .ok_or_else(|| {
                // Cheap: this runs on every tap (`fast_path_unsupported` would lower the
                // graph again to say why).
                if self.options.fast_path_active() {
                    "the network is not on the fast path (`netlens layers` says why)".to_string()
                } else {
                    "the model was loaded with the fast path off (or in float64)".to_string()
                }
            })?;
        let name = &self.graph().values[v].name;
        let fv = net.source_value(v).ok_or_else(|| {
            format!(
                "'{name}' is fused into the layer after it on the fast path (a convolution's \
                 output before its BatchNorm or activation); tap the value after them"
            )
        })?;
        let whole = net.whole();
        if fv == 0 || fv >= whole.to {
            return Err(format!("'{name}' is the network's input or output"));
        }
        // Aliases that change the shape (a Pad folded into the convolution after it) are
        // not the tapped value.
        let s = self.spec.input_size as usize;
        let fast_shape = net.value_shape([1, 3, s, s], fv).map_err(|u| u.0)?;
        if self.shapes.get(v).and_then(Option::as_deref) != Some(&fast_shape[..]) {
            return Err(format!(
                "'{name}' has another shape on the fast path (a padding folded into the \
                 convolution after it)"
            ));
        }
        for span in [
            Span { from: 0, to: fv },
            Span {
                from: fv,
                to: whole.to,
            },
        ] {
            net.check_span(span, shape).map_err(|u| u.0)?;
        }
        Ok((net, fv))
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

    fn tap_fast_path_unsupported(&self, layer: &str) -> Option<String> {
        self.fast_tap_unsupported(layer)
            .unwrap_or_else(|e| Some(e.to_string()))
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
        if x.dtype() == DType::F32 {
            if let Ok((net, fv)) = self.fast_tap(v, x.dims()) {
                return Ok(engine::forward_fast_to(net, x, fv));
            }
        }
        self.reference.forward_to(x, v)?.rank::<4>()
    }

    fn forward_from(&self, a: Tensor<4>, layer: &str) -> Result<Tensor<2>> {
        let v = self.tap(layer)?.value;
        let n = a.dims()[0];
        let s = self.spec.input_size as usize;
        let a = self.options.precision.cast(a);
        let image = [n, 3, s, s];
        if a.dtype() == DType::F32 {
            if let Ok((net, fv)) = self.fast_tap(v, image) {
                // An activation of another size (from images of another size) runs on the
                // reference interpreter, as before.
                if net.value_shape(image, fv).ok() == Some(a.dims()) {
                    return Ok(engine::forward_fast_from(net, a, fv, [3, s, s]));
                }
            }
        }
        self.reference
            .forward_from(Float::new(a), v, image)?
            .rank::<2>()
    }
}
