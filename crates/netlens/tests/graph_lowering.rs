//! The fast path against the reference interpreter, on graphs written the way ONNX exporters
//! write them: a zero `Pad` before a convolution (asymmetric, as TF "SAME" is exported),
//! `BatchNormalization` after a convolution, ReLU6 as `Clip(0, 6)`, a flatten computed with
//! `Shape`/`Gather`/`Concat`/`Reshape`, a dense layer as `MatMul` + `Add`, a 1×1
//! `AveragePool`. Random weights, odd sizes, batches of 1 and 3: logits and input gradients
//! agree to 1e-5 relative (L2), the bound `fast_path.rs` uses for single layers. And a graph
//! the fast path cannot run (a residual add followed by a tanh) says why and still runs.

mod common;

use common::graph_builder::{fast_and_plain, run, spec, G};
use common::rel_l2;
use netlens::graph::{Const, Graph, Op, Pads, Window};
use netlens::models::GraphModel;
use rand::SeedableRng;

/// Pad(0,0,0,1,1 style) → Conv → BN → Clip, depthwise with SAME, residual, 1×1 average pool,
/// global average via ReduceMean, a Shape-computed flatten, MatMul + Add, Gemm.
fn exporter_style(seed: u64) -> Graph {
    let mut b = G {
        g: Graph::new("input"),
        rng: rand::rngs::StdRng::seed_from_u64(seed),
    };
    let r = b.stem_and_block(16);
    let window = Window {
        kernel: [1, 1],
        strides: [1, 1],
        dilations: [1, 1],
        pads: Pads::Explicit([0; 4]),
        ceil: false,
    };
    let a = b.g.node(
        Op::AveragePool {
            window,
            count_include_pad: false,
        },
        &[r],
        "avgpool",
    );
    let m = b.g.node(
        Op::ReduceMean {
            axes: Some(vec![2, 3]),
            keepdims: true,
            noop_with_empty_axes: false,
        },
        &[a],
        "gap",
    );
    // flatten as torch.onnx writes x.view(x.size(0), -1)
    let shape = b.g.node(
        Op::Shape {
            start: 0,
            end: None,
        },
        &[m],
        "shape",
    );
    let zero = b.g.constant("zero", Const::int(vec![], vec![0]));
    let n = b.g.node(Op::Gather { axis: 0 }, &[shape, zero], "n");
    let ax = b.ints("ax", vec![0]);
    let n1 = b.g.node(Op::Unsqueeze, &[n, ax], "n1");
    let minus = b.ints("minus1", vec![-1]);
    let target = b.g.node(Op::Concat { axis: 0 }, &[n1, minus], "target");
    let f =
        b.g.node(Op::Reshape { allowzero: false }, &[m, target], "flatten");
    let w = b.rand("fc1.w", &[8, 12], 0.5);
    let mm = b.g.node(Op::MatMul, &[f, w], "fc1.mm");
    let bias = b.rand("fc1.b", &[12], 0.2);
    let h = b.g.node(Op::Add, &[mm, bias], "fc1");
    let h = b.g.node(Op::Relu, &[h], "fc1.act");
    let w2 = b.rand("fc2.w", &[7, 12], 0.5);
    let b2 = b.rand("fc2.b", &[7], 0.2);
    let y = b.g.node(
        Op::Gemm {
            alpha: 1.0,
            beta: 1.0,
            trans_a: false,
            trans_b: true,
        },
        &[h, w2, b2],
        "logits",
    );
    b.g.output = y;
    b.g
}

#[test]
fn exporter_style_graphs_lower_exactly() {
    for (size, seed) in [(17usize, 1u64), (24, 2), (31, 3)] {
        let (m, plain) = fast_and_plain(spec(size as u32), exporter_style(seed));
        assert_eq!(m.fast_path_unsupported(), None, "size {size}");
        for n in [1, 3] {
            let (fy, fg) = run(&m, n, size, seed + 10);
            let (py, pg) = run(&plain, n, size, seed + 10);
            let (ey, eg) = (rel_l2(&fy, &py), rel_l2(&fg, &pg));
            eprintln!("{size}px batch {n}: logits {ey:.1e}, input gradient {eg:.1e}");
            assert!(
                ey < 1e-5 && eg < 1e-5,
                "{size}px batch {n}: {ey:.2e} {eg:.2e}"
            );
        }
    }
}

/// `exporter_style` with a node of `op` inserted after the residual add (its output renamed).
fn after_residual(seed: u64, op: Op) -> Graph {
    let mut g = exporter_style(seed);
    let add = g.find("residual").unwrap();
    let act = g.value("residual.act");
    let i = g.nodes.iter().position(|n| n.outputs == [add]).unwrap();
    for n in g.nodes.iter_mut().skip(i + 1) {
        for v in n.inputs.iter_mut().flatten() {
            if *v == add {
                *v = act;
            }
        }
    }
    g.nodes.insert(
        i + 1,
        netlens::graph::Node {
            name: "residual.act".into(),
            op,
            inputs: vec![Some(add)],
            outputs: vec![act],
        },
    );
    g
}

#[test]
fn a_relu_after_a_residual_add_lowers_into_the_add() {
    // ResNet's block ends in relu(x + shortcut): one fast-path node with its mask. A smooth
    // activation there (its derivative saved as floats) lowers the same way.
    let norm = |v: &[f32]| v.iter().map(|x| x * x).sum::<f32>().sqrt();
    for (seed, n, op) in [
        (1u64, 1usize, Op::Relu),
        (2, 3, Op::Relu),
        (3, 2, Op::Relu),
        (4, 2, Op::HardSwish),
        (5, 3, Op::Sigmoid),
    ] {
        let (m, plain) = fast_and_plain(spec(20), after_residual(seed, op));
        assert_eq!(m.fast_path_unsupported(), None);
        let (fy, fg) = run(&m, n, 20, seed + 10);
        let (py, pg) = run(&plain, n, 20, seed + 10);
        let (ey, eg) = (rel_l2(&fy, &py), rel_l2(&fg, &pg));
        eprintln!("activation after the add, seed {seed} batch {n}: logits {ey:.1e}, input gradient {eg:.1e} (|g| {})", norm(&pg));
        assert!(
            norm(&pg) > 0.0,
            "seed {seed}: a zero gradient tests nothing"
        );
        assert!(
            ey < 1e-5 && eg < 1e-5,
            "seed {seed} batch {n}: {ey:.2e} {eg:.2e}"
        );
    }
}

#[test]
fn unsupported_graphs_say_why_and_run_on_the_reference() {
    // A tanh after the residual add: no fast-path kernel for it.
    let m = GraphModel::new(spec(20), after_residual(4, Op::Tanh), None).unwrap();
    let why = m.fast_path_unsupported().unwrap();
    assert!(
        why.contains("residual.act") || why.contains("Tanh"),
        "{why}"
    );
    let (y, _) = run(&m, 2, 20, 5);
    assert!(y.iter().all(|v| v.is_finite()));
}
