//! Building small graphs the way ONNX exporters write them, with seeded random weights, for
//! the tests that run them on the fast path and on the reference interpreter.

use netlens::engine::{LoadOptions, Precision};
use netlens::gradients::{input_gradient, ClassScore};
use netlens::graph::{Const, Graph, Op, Pads, Window};
use netlens::imaging::Normalization;
use netlens::models::{Arch, GraphModel, ModelSpec};
use netlens::weights::WeightSource;
use rand::{Rng, SeedableRng};

pub struct G {
    pub g: Graph,
    pub rng: rand::rngs::StdRng,
}

impl G {
    pub fn rand(&mut self, name: &str, shape: &[usize], scale: f32) -> usize {
        let n: usize = shape.iter().product();
        let v = (0..n)
            .map(|_| self.rng.random_range(-scale..scale))
            .collect();
        self.g.constant(name, Const::float(shape.to_vec(), v))
    }
    /// The start of an exporter-style network on the graph's input: a zero `Pad` (TF
    /// "SAME" written out) → 3×3 stride-2 stem (3 → 8) → BatchNorm → `Clip(0, 6)`, then an
    /// inverted residual block (1×1 expansion to `expand` channels, ReLU6, 5×5 depthwise with
    /// SAME padding, BatchNorm, ReLU6, 1×1 projection) added to the stem: the value named
    /// `residual`.
    pub fn stem_and_block(&mut self, expand: usize) -> usize {
        let x = self.g.input;
        let pads = self.ints("pads", vec![0, 0, 0, 0, 0, 0, 1, 1]);
        let p = self.g.node(Op::Pad { reflect: false }, &[x, pads], "pad");
        let c = self.conv(p, [3, 8, 3, 2, 1], Pads::Explicit([0; 4]), "stem");
        let c = self.bn(c, 8, "stem.bn");
        let h = self.relu6(c, "stem.act");
        let e = self.conv(h, [8, expand, 1, 1, 1], Pads::Explicit([0; 4]), "expand");
        let e = self.relu6(e, "expand.act");
        let dw = [expand, expand, 5, 1, expand];
        let d = self.conv(e, dw, Pads::SameUpper, "dw");
        let d = self.bn(d, expand, "dw.bn");
        let d = self.relu6(d, "dw.act");
        let pr = self.conv(d, [expand, 8, 1, 1, 1], Pads::Explicit([0; 4]), "project");
        self.g.node(Op::Add, &[pr, h], "residual")
    }
    /// A dense layer as exporters write `nn.Linear`: `Gemm(x, W[outputs, inputs], b)` with
    /// `transB`, named `name` (its weights `name.w`, `name.b`).
    pub fn gemm(&mut self, x: usize, inputs: usize, outputs: usize, name: &str) -> usize {
        let w = self.rand(&format!("{name}.w"), &[outputs, inputs], 0.5);
        let b = self.rand(&format!("{name}.b"), &[outputs], 0.2);
        self.g.node(
            Op::Gemm {
                alpha: 1.0,
                beta: 1.0,
                trans_a: false,
                trans_b: true,
            },
            &[x, w, b],
            name,
        )
    }
    /// `[cin, cout, kernel, stride, groups]`.
    pub fn conv(&mut self, x: usize, c: [usize; 5], pads: Pads, name: &str) -> usize {
        let [cin, cout, k, s, group] = c;
        let fan = (cin / group * k * k) as f32;
        let w = self.rand(
            &format!("{name}.w"),
            &[cout, cin / group, k, k],
            (3.0 / fan).sqrt(),
        );
        let b = self.rand(&format!("{name}.b"), &[cout], 0.3);
        let window = Window {
            kernel: [k, k],
            strides: [s, s],
            dilations: [1, 1],
            pads,
            ceil: false,
        };
        self.g.node(Op::Conv { window, group }, &[x, w, b], name)
    }
    pub fn bn(&mut self, x: usize, c: usize, name: &str) -> usize {
        let gamma = self.rand(&format!("{name}.g"), &[c], 1.0);
        let beta = self.rand(&format!("{name}.b"), &[c], 0.5);
        let mean = self.rand(&format!("{name}.m"), &[c], 0.5);
        let var: Vec<f32> = (0..c).map(|_| self.rng.random_range(0.5..2.0)).collect();
        let var = self
            .g
            .constant(&format!("{name}.v"), Const::float(vec![c], var));
        self.g.node(
            Op::BatchNorm { eps: 1e-3 },
            &[x, gamma, beta, mean, var],
            name,
        )
    }
    pub fn relu6(&mut self, x: usize, name: &str) -> usize {
        self.g.node(
            Op::Clip {
                min: Some(0.0),
                max: Some(6.0),
            },
            &[x],
            name,
        )
    }
    pub fn ints(&mut self, name: &str, v: Vec<i64>) -> usize {
        let n = v.len();
        self.g.constant(name, Const::int(vec![n], v))
    }
}

pub fn spec(size: u32) -> ModelSpec {
    ModelSpec {
        name: "graph-test",
        arch: Arch::Onnx,
        input_size: size,
        resize: size,
        normalization: Normalization::LITE,
        weights: WeightSource::InModelFile,
        summary: "test graph",
    }
}

/// The graph as two models: on the fast path and on the plain burn path.
pub fn fast_and_plain(spec: ModelSpec, g: Graph) -> (GraphModel, GraphModel) {
    let load = |fast: bool| {
        GraphModel::with_options(
            spec.clone(),
            g.clone(),
            None,
            LoadOptions::with_fast_path(fast),
        )
        .unwrap()
    };
    (load(true), load(false))
}

/// Logits and input gradient (objective: class `i % 7` of image `i`) of a random batch.
pub fn run(m: &GraphModel, n: usize, size: usize, seed: u64) -> (Vec<f32>, Vec<f32>) {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let x = Precision::F32.tensor(
        (0..n * 3 * size * size)
            .map(|_| rng.random_range(-1.0..1.0))
            .collect(),
        [n, 3, size, size],
    );
    let targets = (0..n).map(|i| i % 7).collect();
    let g = input_gradient(m, x, &ClassScore { targets }).unwrap();
    (g.logits, g.grad)
}
