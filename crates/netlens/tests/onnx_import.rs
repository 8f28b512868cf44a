//! ONNX import: small models built here with the importer's own prost messages, written to
//! a temporary folder and imported; malformed files must be errors that say what is wrong,
//! never panics. Then the PyTorch exports under `tests/fixtures/onnx/` (when present).

use netlens::graph::{ConstData, Op, Pads};
use netlens::onnx::proto::{
    attribute_type as at, data_location, data_type as dt, AttributeProto, Dimension, GraphProto,
    ModelProto, NodeProto, OperatorSetIdProto, StringStringEntryProto, TensorProto,
    TensorShapeProto, TypeProto, TypeProtoTensor, ValueInfoProto,
};
use netlens::onnx::{import, Imported};
use prost::Message;
use std::ops::Deref;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

// ---------------------------------------------------------------------------------------
// Building models.

/// A fresh folder under the system's temporary folder, removed with all it holds when the
/// guard is dropped (at the end of the test, or of the statement for a temporary).
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> Self {
        static N: AtomicUsize = AtomicUsize::new(0);
        let k = N.fetch_add(1, Ordering::SeqCst);
        let d = std::env::temp_dir().join(format!(
            "netlens-onnx-import-{}-{k}-{name}",
            std::process::id()
        ));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).expect("create temp dir");
        Self(d)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

impl Deref for TempDir {
    type Target = Path;
    fn deref(&self) -> &Path {
        &self.0
    }
}

/// A model file, `model.onnx` in a folder of its own that goes when this is dropped.
struct TempModel {
    path: PathBuf,
    _dir: TempDir,
}

impl Deref for TempModel {
    type Target = Path;
    fn deref(&self) -> &Path {
        &self.path
    }
}

/// Writes `bytes` as `model.onnx` in a fresh folder.
fn write_bytes(name: &str, bytes: &[u8]) -> TempModel {
    let dir = TempDir::new(name);
    let path = dir.join("model.onnx");
    std::fs::write(&path, bytes).expect("write model");
    TempModel { path, _dir: dir }
}

fn write(name: &str, m: &ModelProto) -> TempModel {
    write_bytes(name, &m.encode_to_vec())
}

fn f32_tensor(name: &str, dims: &[i64], data: &[f32]) -> TensorProto {
    TensorProto {
        name: name.into(),
        dims: dims.to_vec(),
        data_type: dt::FLOAT,
        raw_data: data
            .iter()
            .flat_map(|v| v.to_le_bytes())
            .collect::<Vec<u8>>()
            .into(),
        ..Default::default()
    }
}

fn i64_tensor(name: &str, dims: &[i64], data: &[i64]) -> TensorProto {
    TensorProto {
        name: name.into(),
        dims: dims.to_vec(),
        data_type: dt::INT64,
        int64_data: data.to_vec(),
        ..Default::default()
    }
}

/// A tensor value description; `None` dims are symbolic (`dim_param`).
fn value_info(name: &str, elem: i32, dims: &[Option<i64>]) -> ValueInfoProto {
    ValueInfoProto {
        name: name.into(),
        r#type: Some(TypeProto {
            tensor_type: Some(TypeProtoTensor {
                elem_type: elem,
                shape: Some(TensorShapeProto {
                    dim: dims
                        .iter()
                        .map(|d| Dimension {
                            dim_value: *d,
                            dim_param: d.is_none().then(|| "batch".to_string()),
                            ..Default::default()
                        })
                        .collect(),
                }),
            }),
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn node(
    op: &str,
    name: &str,
    inputs: &[&str],
    outputs: &[&str],
    attrs: Vec<AttributeProto>,
) -> NodeProto {
    NodeProto {
        op_type: op.into(),
        name: name.into(),
        input: inputs.iter().map(|s| s.to_string()).collect(),
        output: outputs.iter().map(|s| s.to_string()).collect(),
        attribute: attrs,
        ..Default::default()
    }
}

fn attr_int(name: &str, v: i64) -> AttributeProto {
    AttributeProto {
        name: name.into(),
        r#type: at::INT,
        i: v,
        ..Default::default()
    }
}

fn attr_ints(name: &str, v: &[i64]) -> AttributeProto {
    AttributeProto {
        name: name.into(),
        r#type: at::INTS,
        ints: v.to_vec(),
        ..Default::default()
    }
}

fn attr_float(name: &str, v: f32) -> AttributeProto {
    AttributeProto {
        name: name.into(),
        r#type: at::FLOAT,
        f: v,
        ..Default::default()
    }
}

fn attr_str(name: &str, v: &str) -> AttributeProto {
    AttributeProto {
        name: name.into(),
        r#type: at::STRING,
        s: v.as_bytes().to_vec(),
        ..Default::default()
    }
}

fn attr_tensor(name: &str, t: TensorProto) -> AttributeProto {
    AttributeProto {
        name: name.into(),
        r#type: at::TENSOR,
        t: Some(t),
        ..Default::default()
    }
}

fn model(graph: GraphProto, opset: i64) -> ModelProto {
    ModelProto {
        ir_version: 8,
        producer_name: "netlens-test".into(),
        producer_version: "1".into(),
        opset_import: vec![OperatorSetIdProto {
            domain: String::new(),
            version: opset,
        }],
        graph: Some(graph),
        ..Default::default()
    }
}

/// Deterministic small weights.
fn weights(n: usize, seed: u32) -> Vec<f32> {
    (0..n)
        .map(|i| {
            let x = (i as u32)
                .wrapping_mul(2_654_435_761)
                .wrapping_add(seed.wrapping_mul(40_503));
            ((x >> 8) % 2001) as f32 / 1000.0 - 1.0
        })
        .collect()
}

/// conv(3→4, 3×3, pad 1) → relu → global average pool → flatten → gemm(4→5).
fn tiny_graph() -> GraphProto {
    GraphProto {
        name: "tiny".into(),
        node: vec![
            node(
                "Conv",
                "conv",
                &["input", "conv.weight", "conv.bias"],
                &["conv_out"],
                vec![
                    attr_ints("kernel_shape", &[3, 3]),
                    attr_ints("pads", &[1, 1, 1, 1]),
                ],
            ),
            node("Relu", "relu", &["conv_out"], &["relu_out"], vec![]),
            node(
                "GlobalAveragePool",
                "",
                &["relu_out"],
                &["pool_out"],
                vec![],
            ),
            node("Flatten", "flatten", &["pool_out"], &["flat"], vec![]),
            node(
                "Gemm",
                "fc",
                &["flat", "fc.weight", "fc.bias"],
                &["logits"],
                vec![attr_int("transB", 1)],
            ),
        ],
        initializer: vec![
            f32_tensor("conv.weight", &[4, 3, 3, 3], &weights(108, 1)),
            f32_tensor("conv.bias", &[4], &weights(4, 2)),
            f32_tensor("fc.weight", &[5, 4], &weights(20, 3)),
            f32_tensor("fc.bias", &[5], &weights(5, 4)),
        ],
        input: vec![value_info(
            "input",
            dt::FLOAT,
            &[None, Some(3), Some(6), Some(6)],
        )],
        output: vec![value_info("logits", dt::FLOAT, &[None, Some(5)])],
        ..Default::default()
    }
}

/// The error message of importing `path`, which must fail.
fn error_of(path: &Path) -> String {
    match import(path) {
        Ok(_) => panic!("{} imported, but it should not", path.display()),
        Err(e) => e.to_string(),
    }
}

fn assert_error(path: &Path, parts: &[&str]) -> String {
    let msg = error_of(path);
    for p in parts {
        assert!(msg.contains(p), "message {msg:?} does not contain {p:?}");
    }
    assert!(!msg.contains('\n'), "message {msg:?} is not one line");
    msg
}

// ---------------------------------------------------------------------------------------
// A valid model.

#[test]
fn tiny_cnn_imports_with_its_ops_and_constants() {
    let p = write("tiny", &model(tiny_graph(), 17));
    let m = import(&p).expect("tiny model imports");
    assert_eq!(m.opset, 17);
    assert_eq!(m.producer, "netlens-test 1");
    assert!(!m.ends_in_softmax);
    assert_eq!(m.input_dims, [None, Some(3), Some(6), Some(6)]);
    let g = &m.graph;
    g.validate().expect("valid");
    let ops: Vec<&str> = g.nodes.iter().map(|n| n.op.name()).collect();
    assert_eq!(
        ops,
        ["Conv", "Relu", "GlobalAveragePool", "Flatten", "Gemm"]
    );
    assert_eq!(g.values[g.input].name, "input");
    assert_eq!(g.values[g.output].name, "logits");
    // Node names: their own, else the first output's.
    assert_eq!(g.nodes[2].name, "pool_out");
    assert_eq!(g.find("relu_out"), Some(g.nodes[1].outputs[0]));
    match &g.nodes[0].op {
        Op::Conv { window, group } => {
            assert_eq!(*group, 1);
            assert_eq!(window.kernel, [3, 3]);
            assert_eq!(window.strides, [1, 1]);
            assert_eq!(window.dilations, [1, 1]);
            assert_eq!(window.pads, Pads::Explicit([1, 1, 1, 1]));
        }
        op => panic!("first op is {op:?}"),
    }
    match &g.nodes[4].op {
        Op::Gemm {
            alpha,
            beta,
            trans_a,
            trans_b,
        } => {
            assert_eq!((*alpha, *beta, *trans_a, *trans_b), (1.0, 1.0, false, true));
        }
        op => panic!("last op is {op:?}"),
    }
    assert_eq!(g.nodes[3].op, Op::Flatten { axis: 1 });
    let w = g
        .const_of(g.nodes[0].inputs[1].expect("weight"))
        .expect("constant");
    assert_eq!(w.shape, [4, 3, 3, 3]);
    assert_eq!(w.floats().expect("float"), weights(108, 1).as_slice());
    assert_eq!(g.parameters(), 108 + 4 + 20 + 5);

    // And it computes what the layers say.
    let x = weights(3 * 36, 9);
    let reference = netlens::graph::reference::Reference::new(std::sync::Arc::new(g.clone()))
        .expect("reference");
    let y = reference
        .forward(netlens::engine::Precision::F32.tensor(x.clone(), [1, 3, 6, 6]))
        .expect("forward");
    assert_eq!(y.shape, [1, 5]);
    let got = netlens::engine::tensor_values(y.t);
    let want = tiny_forward(&x);
    for (a, b) in got.iter().zip(&want) {
        assert!((a - b).abs() < 1e-4, "{got:?} vs {want:?}");
    }
}

/// The tiny model by hand.
fn tiny_forward(x: &[f32]) -> Vec<f32> {
    let (cw, cb, fw, fb) = (
        weights(108, 1),
        weights(4, 2),
        weights(20, 3),
        weights(5, 4),
    );
    let mut pooled = [0f32; 4];
    for (o, p) in pooled.iter_mut().enumerate() {
        let mut sum = 0.0;
        for i in 0..6i32 {
            for j in 0..6i32 {
                let mut acc = cb[o];
                for c in 0..3 {
                    for ki in 0..3i32 {
                        for kj in 0..3i32 {
                            let (y, xx) = (i + ki - 1, j + kj - 1);
                            if (0..6).contains(&y) && (0..6).contains(&xx) {
                                acc += cw[((o * 3 + c) * 3 + ki as usize) * 3 + kj as usize]
                                    * x[(c * 6 + y as usize) * 6 + xx as usize];
                            }
                        }
                    }
                }
                sum += acc.max(0.0);
            }
        }
        *p = sum / 36.0;
    }
    (0..5)
        .map(|k| fb[k] + (0..4).map(|o| fw[k * 4 + o] * pooled[o]).sum::<f32>())
        .collect()
}

#[test]
fn nodes_out_of_order_are_sorted() {
    let mut g = tiny_graph();
    g.node.reverse();
    let m = import(&write("reversed", &model(g, 13))).expect("imports");
    let ops: Vec<&str> = m.graph.nodes.iter().map(|n| n.op.name()).collect();
    assert_eq!(
        ops,
        ["Conv", "Relu", "GlobalAveragePool", "Flatten", "Gemm"]
    );
}

#[test]
fn final_softmax_is_taken_off() {
    let mut g = tiny_graph();
    g.node.last_mut().expect("gemm").output = vec!["fc_out".into()];
    g.node.push(node(
        "Softmax",
        "softmax",
        &["fc_out"],
        &["probs"],
        vec![attr_int("axis", 1)],
    ));
    g.output = vec![value_info("probs", dt::FLOAT, &[None, Some(5)])];
    let m = import(&write("softmax", &model(g, 17))).expect("imports");
    assert!(m.ends_in_softmax);
    let out = &m.graph.values[m.graph.output].name;
    assert_eq!(out, "fc_out");
    assert!(m
        .graph
        .nodes
        .iter()
        .all(|n| !matches!(n.op, Op::Softmax { .. })));
}

#[test]
fn constants_clip_dropout_and_attributes() {
    // conv → Clip(0, 6) with bounds from a Constant node and an initializer → Dropout →
    // Reshape to [N, -1] (shape from value_ints) → ReduceMean over axes [1] (opset 13
    // attribute) → LeakyRelu default alpha.
    let mut g = tiny_graph();
    g.node.truncate(1);
    g.node.extend([
        node(
            "Constant",
            "",
            &[],
            &["six"],
            vec![attr_tensor("value", f32_tensor("", &[], &[6.0]))],
        ),
        node(
            "Clip",
            "clip",
            &["conv_out", "zero", "six"],
            &["clipped"],
            vec![],
        ),
        node(
            "Dropout",
            "drop",
            &["clipped"],
            &["dropped", "mask"],
            vec![],
        ),
        node(
            "Constant",
            "shape_c",
            &[],
            &["shape"],
            vec![attr_ints("value_ints", &[0, -1])],
        ),
        node(
            "Reshape",
            "reshape",
            &["dropped", "shape"],
            &["flat"],
            vec![],
        ),
        node(
            "ReduceMean",
            "mean",
            &["flat"],
            &["mean"],
            vec![attr_ints("axes", &[1]), attr_int("keepdims", 0)],
        ),
        node(
            "LeakyRelu",
            "leaky",
            &["mean"],
            &["out"],
            vec![attr_float("alpha", 0.2)],
        ),
    ]);
    g.initializer.push(f32_tensor("zero", &[], &[0.0]));
    g.output = vec![value_info("out", dt::FLOAT, &[None])];
    let m = import(&write("clip", &model(g, 13))).expect("imports");
    let gr = &m.graph;
    let ops: Vec<&Op> = gr.nodes.iter().map(|n| &n.op).collect();
    assert_eq!(
        ops[1],
        &Op::Clip {
            min: Some(0.0),
            max: Some(6.0)
        }
    );
    assert_eq!(gr.nodes[1].inputs.len(), 1, "Clip reads only x");
    assert_eq!(ops[2], &Op::Identity);
    assert_eq!(gr.nodes[2].outputs.len(), 1, "the unread mask is dropped");
    assert_eq!(ops[3], &Op::Reshape { allowzero: false });
    let shape = gr
        .const_of(gr.nodes[3].inputs[1].expect("shape"))
        .expect("constant");
    assert_eq!(shape.data, ConstData::Int(std::sync::Arc::new(vec![0, -1])));
    assert_eq!(
        ops[4],
        &Op::ReduceMean {
            axes: Some(vec![1]),
            keepdims: false,
            noop_with_empty_axes: false
        }
    );
    // 0.2 as written, not 0.2f32 widened.
    assert_eq!(ops[5], &Op::LeakyRelu { alpha: 0.2 });
}

#[test]
fn dropout_mask_that_is_read_is_an_error() {
    let mut g = tiny_graph();
    g.node.truncate(1);
    g.node.push(node(
        "Dropout",
        "drop",
        &["conv_out"],
        &["out", "mask"],
        vec![],
    ));
    g.node
        .push(node("Add", "add", &["out", "mask"], &["sum"], vec![]));
    g.output = vec![value_info("sum", dt::FLOAT, &[])];
    assert_error(
        &write("mask", &model(g, 13)),
        &["drop", "mask", "first output"],
    );
}

#[test]
fn pooling_windows_and_auto_pad() {
    let mut g = tiny_graph();
    g.node.truncate(1);
    g.node.extend([
        node(
            "MaxPool",
            "max",
            &["conv_out"],
            &["m"],
            vec![
                attr_ints("kernel_shape", &[3, 3]),
                attr_ints("strides", &[2, 2]),
                attr_int("ceil_mode", 1),
                attr_str("auto_pad", "NOTSET"),
                attr_ints("pads", &[0, 1, 0, 1]),
            ],
        ),
        node(
            "AveragePool",
            "avg",
            &["m"],
            &["a"],
            vec![
                attr_ints("kernel_shape", &[2, 2]),
                attr_str("auto_pad", "SAME_UPPER"),
                attr_int("count_include_pad", 1),
            ],
        ),
        node(
            "Conv",
            "valid",
            &["a", "w2"],
            &["c2"],
            vec![attr_str("auto_pad", "VALID"), attr_int("group", 4)],
        ),
    ]);
    g.initializer
        .push(f32_tensor("w2", &[4, 1, 1, 1], &[1.0; 4]));
    g.output = vec![value_info("c2", dt::FLOAT, &[])];
    let m = import(&write("pools", &model(g, 17))).expect("imports");
    let n = &m.graph.nodes;
    match n[1].op {
        Op::MaxPool { window } => {
            assert_eq!(window.kernel, [3, 3]);
            assert_eq!(window.strides, [2, 2]);
            assert!(window.ceil);
            assert_eq!(window.pads, Pads::Explicit([0, 1, 0, 1]));
        }
        ref op => panic!("{op:?}"),
    }
    match n[2].op {
        Op::AveragePool {
            window,
            count_include_pad,
        } => {
            assert!(count_include_pad);
            assert!(!window.ceil);
            assert_eq!(window.pads, Pads::SameUpper);
        }
        ref op => panic!("{op:?}"),
    }
    match n[3].op {
        Op::Conv { window, group } => {
            assert_eq!(group, 4);
            assert_eq!(window.kernel, [1, 1], "kernel from the weights");
            assert_eq!(window.pads, Pads::Explicit([0; 4]));
        }
        ref op => panic!("{op:?}"),
    }
}

#[test]
fn split_gets_one_output_per_part() {
    let mut g = tiny_graph();
    g.node.truncate(1);
    g.node.extend([
        node(
            "Split",
            "split",
            &["conv_out", "sizes"],
            &["a", "", "c"],
            vec![attr_int("axis", 1)],
        ),
        node("Add", "add", &["a", "c"], &["out"], vec![]),
    ]);
    g.initializer.push(i64_tensor("sizes", &[3], &[1, 2, 1]));
    g.output = vec![value_info("out", dt::FLOAT, &[])];
    let m = import(&write("split", &model(g, 13))).expect("imports");
    let s = &m.graph.nodes[1];
    assert_eq!(s.op, Op::Split { axis: 1, parts: 3 });
    assert_eq!(s.outputs.len(), 3, "an unnamed output still gets a value");
    assert_eq!(s.inputs.len(), 2);
}

#[test]
fn tensor_data_types_convert() {
    // float16 and bfloat16 weights, int32 typed field, bool raw data: all as constants.
    let half: Vec<u8> = [0x3c00u16, 0xc000, 0x0001, 0x7c00]
        .iter()
        .flat_map(|v| v.to_le_bytes())
        .collect();
    let bf: Vec<u8> = [0x3f80u16, 0xc040]
        .iter()
        .flat_map(|v| v.to_le_bytes())
        .collect();
    let mut g = tiny_graph();
    g.initializer.extend([
        TensorProto {
            name: "h".into(),
            dims: vec![4],
            data_type: dt::FLOAT16,
            raw_data: half.into(),
            ..Default::default()
        },
        TensorProto {
            name: "b".into(),
            dims: vec![2],
            data_type: dt::BFLOAT16,
            raw_data: bf.into(),
            ..Default::default()
        },
        TensorProto {
            name: "i".into(),
            dims: vec![2],
            data_type: dt::INT8,
            int32_data: vec![-3, 7],
            ..Default::default()
        },
        TensorProto {
            name: "t".into(),
            dims: vec![3],
            data_type: dt::BOOL,
            raw_data: vec![1u8, 0, 5].into(),
            ..Default::default()
        },
        TensorProto {
            name: "d".into(),
            dims: vec![1],
            data_type: dt::DOUBLE,
            double_data: vec![0.25],
            ..Default::default()
        },
    ]);
    // Read them all so they become graph values.
    g.node.push(node("Identity", "", &["h"], &["h2"], vec![]));
    g.node.push(node("Identity", "", &["b"], &["b2"], vec![]));
    g.node.push(node("Identity", "", &["i"], &["i2"], vec![]));
    g.node.push(node("Identity", "", &["t"], &["t2"], vec![]));
    g.node.push(node("Identity", "", &["d"], &["d2"], vec![]));
    let m = import(&write("types", &model(g, 17))).expect("imports");
    let c = |name: &str| {
        let v = m
            .graph
            .values
            .iter()
            .find(|v| v.name == name && v.constant.is_some())
            .expect(name);
        v.constant.clone().expect("constant")
    };
    let h = c("h");
    let h = h.floats().expect("float");
    assert_eq!(&h[..2], &[1.0, -2.0]);
    assert_eq!(h[2], 2f32.powi(-24));
    assert!(h[3].is_infinite());
    assert_eq!(c("b").floats().expect("float"), &[1.0, -3.0]);
    assert_eq!(c("i").ints().expect("int"), &[-3, 7]);
    assert_eq!(c("t").ints().expect("int"), &[1, 0, 1]);
    assert_eq!(c("d").floats().expect("float"), &[0.25]);
}

// ---------------------------------------------------------------------------------------
// Files that are not models.

#[test]
fn random_bytes_and_empty_files_are_errors() {
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let noise: Vec<u8> = (0..4096)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 24) as u8
        })
        .collect();
    assert_error(&write_bytes("noise", &noise), &["model.onnx"]);
    assert_error(
        &write_bytes("text", b"this is not protobuf\n"),
        &["model.onnx"],
    );
    assert_error(&write_bytes("empty", &[]), &["no graph"]);
}

#[test]
fn truncated_protobuf_is_an_error() {
    let bytes = model(tiny_graph(), 17).encode_to_vec();
    for cut in [bytes.len() - 1, bytes.len() / 2, bytes.len() / 3, 7] {
        let p = write_bytes("truncated", &bytes[..cut]);
        let msg = error_of(&p);
        assert!(!msg.is_empty());
    }
    assert_error(
        &write_bytes("truncated", &bytes[..bytes.len() - 3]),
        &["protobuf"],
    );
}

/// Random corruptions of a valid file import or fail, never panic.
#[test]
fn corrupted_files_never_panic() {
    let mut g = tiny_graph();
    // Some attributes, Constants and typed tensors for the corruptions to hit.
    g.node.truncate(1);
    g.node.extend([
        node(
            "Constant",
            "",
            &[],
            &["shape"],
            vec![attr_ints("value_ints", &[0, -1])],
        ),
        node(
            "Reshape",
            "reshape",
            &["conv_out", "shape"],
            &["flat"],
            vec![],
        ),
        node(
            "Gemm",
            "fc",
            &["flat", "fc2"],
            &["logits"],
            vec![attr_float("alpha", 0.5)],
        ),
    ]);
    g.initializer.push(TensorProto {
        name: "fc2".into(),
        dims: vec![144, 2],
        data_type: dt::FLOAT,
        float_data: weights(288, 5),
        ..Default::default()
    });
    let bytes = model(g, 17).encode_to_vec();
    import(&write_bytes("fuzz_base", &bytes)).expect("the base imports");
    let dir = TempDir::new("fuzz");
    let p = dir.join("model.onnx");
    let mut state = 0x2545_f491_4f6c_dd1du64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let (mut ok, mut err) = (0, 0);
    for _ in 0..3000 {
        let mut b = bytes.clone();
        for _ in 0..=(next() % 4) {
            let i = (next() % b.len() as u64) as usize;
            b[i] = match next() % 4 {
                0 => 0,
                1 => 0xff,
                2 => b[i] ^ (1 << (next() % 8)),
                _ => next() as u8,
            };
        }
        if next() % 8 == 0 {
            b.truncate((next() % b.len() as u64) as usize);
        }
        std::fs::write(&p, &b).expect("write");
        match import(&p) {
            Ok(m) => {
                m.graph.validate().expect("an import is valid");
                ok += 1;
            }
            Err(e) => {
                assert!(!e.to_string().contains('\n'), "{e}");
                err += 1;
            }
        }
    }
    assert!(ok > 0 && err > 0, "{ok} imported, {err} failed");
}

#[test]
fn a_folder_and_a_missing_file_are_errors() {
    let d = TempDir::new("folder");
    assert_error(&d, &["folder"]);
    assert_error(&d.join("missing.onnx"), &["missing.onnx"]);
}

// ---------------------------------------------------------------------------------------
// Malformed graphs.

#[test]
fn a_cycle_is_an_error() {
    let mut g = tiny_graph();
    // relu reads flatten's output: conv → relu → pool → flatten → relu.
    g.node[1].input = vec!["flat".into()];
    let msg = assert_error(
        &write("cycle", &model(g, 17)),
        &["cycle", "relu", "flatten"],
    );
    assert!(msg.contains("→"), "{msg}");
}

#[test]
fn reading_an_unknown_value_is_an_error() {
    let mut g = tiny_graph();
    g.node[1].input = vec!["nowhere".into()];
    assert_error(&write("unknown", &model(g, 17)), &["relu", "'nowhere'"]);
}

#[test]
fn duplicate_outputs_are_an_error() {
    let mut g = tiny_graph();
    g.node[1].output = vec!["conv_out".into()];
    assert_error(&write("dup", &model(g, 17)), &["conv_out", "written once"]);
}

#[test]
fn unsupported_op_names_op_node_and_supported_list() {
    let mut g = tiny_graph();
    g.node[1].op_type = "Mish".into();
    let msg = assert_error(
        &write("unsupported", &model(g, 17)),
        &["operation 'Mish' (node 'relu') is not supported; netlens supports: Add, AveragePool,"],
    );
    for op in netlens::graph::Op::SUPPORTED {
        assert!(msg.contains(op), "{op} missing from {msg}");
    }
    // Names from the file cannot break the message onto several lines.
    let mut g = tiny_graph();
    g.node[1].op_type = "Mish".into();
    g.node[1].name = "evil\nname".into();
    assert_error(&write("newline", &model(g, 17)), &["evil\\nname", "'Mish'"]);
    // Nested graphs: If is not an operation netlens runs.
    let mut g = tiny_graph();
    g.node[1].op_type = "If".into();
    g.node[1].attribute = vec![AttributeProto {
        name: "then_branch".into(),
        r#type: at::GRAPH,
        ..Default::default()
    }];
    assert_error(&write("if", &model(g, 17)), &["'If'", "not supported"]);
    // Another domain.
    let mut g = tiny_graph();
    g.node[1].domain = "com.microsoft".into();
    assert_error(&write("domain", &model(g, 17)), &["com.microsoft", "relu"]);
}

/// Every operation in `Op::SUPPORTED` maps onto the graph (a node of each, fed with the
/// input and one-element weights, imports or fails for another reason than support).
#[test]
fn every_supported_op_is_mapped() {
    for &op in Op::SUPPORTED {
        let mut g = tiny_graph();
        let inputs: &[&str] = match op {
            "Dropout" | "Constant" => &["input"],
            _ => &["input", "w", "w", "w", "w"],
        };
        let attrs = if op == "Constant" {
            vec![attr_float("value_float", 1.0)]
        } else {
            vec![
                attr_ints("kernel_shape", &[1, 1]),
                attr_int("axis", 1),
                attr_int("to", dt::FLOAT as i64),
            ]
        };
        let inputs = if op == "Constant" { &[][..] } else { inputs };
        g.node = vec![node(op, "the_node", inputs, &["out"], attrs)];
        g.initializer = vec![f32_tensor("w", &[1, 1, 1, 1], &[0.5])];
        g.output = vec![value_info("out", dt::FLOAT, &[])];
        if let Err(e) = import(&write("op", &model(g, 17))) {
            let msg = e.to_string();
            assert!(!msg.contains("is not supported"), "{op}: {msg}");
        }
    }
}

#[test]
fn unsupported_attributes_are_errors() {
    let mut g = tiny_graph();
    g.node[0].attribute = vec![attr_ints("kernel_shape", &[3, 3, 3])];
    assert_error(&write("3d", &model(g, 17)), &["conv", "2-D"]);
    let mut g = tiny_graph();
    g.node.truncate(1);
    g.node.push(node(
        "Pad",
        "pad",
        &["conv_out", "p"],
        &["out"],
        vec![attr_str("mode", "edge")],
    ));
    g.initializer.push(i64_tensor("p", &[8], &[0; 8]));
    g.output = vec![value_info("out", dt::FLOAT, &[])];
    assert_error(&write("edge", &model(g, 17)), &["pad", "edge"]);
    let mut g = tiny_graph();
    g.node.truncate(1);
    g.node.push(node(
        "Clip",
        "clip",
        &["conv_out", "conv_out"],
        &["out"],
        vec![],
    ));
    g.output = vec![value_info("out", dt::FLOAT, &[])];
    assert_error(
        &write("clipvar", &model(g, 17)),
        &["clip", "not a constant"],
    );
}

// ---------------------------------------------------------------------------------------
// Malformed tensors.

fn with_weight(name: &str, t: TensorProto) -> TempModel {
    let mut g = tiny_graph();
    g.initializer[0] = t;
    write(name, &model(g, 17))
}

#[test]
fn unknown_tensor_data_type_is_an_error() {
    let t = TensorProto {
        name: "conv.weight".into(),
        dims: vec![1],
        data_type: dt::STRING,
        string_data: vec![b"hello".to_vec()],
        ..Default::default()
    };
    assert_error(&with_weight("string", t), &["conv.weight", "STRING"]);
    let t = TensorProto {
        name: "conv.weight".into(),
        dims: vec![1],
        data_type: dt::COMPLEX64,
        raw_data: vec![0u8; 8].into(),
        ..Default::default()
    };
    assert_error(&with_weight("complex", t), &["conv.weight", "COMPLEX64"]);
    let t = TensorProto {
        name: "conv.weight".into(),
        dims: vec![1],
        data_type: 99,
        ..Default::default()
    };
    assert_error(&with_weight("t99", t), &["conv.weight", "99"]);
}

#[test]
fn raw_data_shorter_than_dims_is_an_error() {
    let t = f32_tensor("conv.weight", &[4, 3, 3, 3], &weights(100, 1));
    assert_error(
        &with_weight("short", t),
        &["conv.weight", "432 bytes", "400 bytes"],
    );
    let mut t = i64_tensor("conv.weight", &[4, 3, 3, 3], &[1, 2, 3]);
    t.data_type = dt::INT64;
    assert_error(
        &with_weight("short_typed", t),
        &["conv.weight", "int64_data"],
    );
}

#[test]
fn absurd_and_negative_dims_are_errors() {
    let t = f32_tensor("conv.weight", &[1 << 40, 1 << 40], &[1.0]);
    assert_error(&with_weight("huge", t), &["conv.weight", "2^31"]);
    let t = f32_tensor("conv.weight", &[1 << 31, 2], &[1.0]);
    assert_error(&with_weight("big", t), &["conv.weight", "2^31"]);
    let t = f32_tensor("conv.weight", &[i64::MAX, i64::MAX, 0], &[]);
    assert_error(&with_weight("overflow", t), &["conv.weight"]);
    let t = f32_tensor("conv.weight", &[-1, 4], &[1.0]);
    assert_error(&with_weight("negative", t), &["conv.weight", "negative"]);
}

/// The tiny model with its conv weight stored externally at `location`.
fn external(name: &str, location: &str, offset: i64, length: i64) -> TempModel {
    let mut t = f32_tensor("conv.weight", &[4, 3, 3, 3], &[]);
    t.data_location = data_location::EXTERNAL;
    t.external_data = vec![
        StringStringEntryProto {
            key: "location".into(),
            value: location.into(),
        },
        StringStringEntryProto {
            key: "offset".into(),
            value: offset.to_string(),
        },
        StringStringEntryProto {
            key: "length".into(),
            value: length.to_string(),
        },
    ];
    let p = with_weight(name, t);
    let data: Vec<u8> = std::iter::repeat_n(0u8, 16)
        .chain(weights(108, 1).iter().flat_map(|v| v.to_le_bytes()))
        .collect();
    std::fs::write(p.with_file_name("weights.bin"), data).expect("write data");
    p
}

#[test]
fn external_data_loads_from_the_models_folder() {
    let p = external("ext", "weights.bin", 16, 432);
    let m = import(&p).expect("imports");
    let w = m
        .graph
        .const_of(m.graph.nodes[0].inputs[1].expect("w"))
        .expect("const");
    assert_eq!(w.floats().expect("float"), weights(108, 1).as_slice());
    let p = external("ext_dot", "./weights.bin", 16, 432);
    import(&p).expect("./ is inside the folder");
}

#[test]
fn external_data_outside_the_folder_is_an_error() {
    assert_error(
        &external("dotdot", "../../etc/passwd", 0, 432),
        &["conv.weight", "outside"],
    );
    assert_error(&external("dotdot2", "sub/../../x", 0, 432), &["outside"]);
    assert_error(
        &external("absolute", "/etc/passwd", 0, 432),
        &["conv.weight", "outside"],
    );
    assert_error(
        &external("missing", "nothere.bin", 0, 432),
        &["nothere.bin"],
    );
    #[cfg(unix)]
    {
        let p = external("symlink", "link.bin", 0, 432);
        let target = TempDir::new("symlink_target");
        let outside = target.join("secret.bin");
        std::fs::write(&outside, vec![0u8; 1024]).expect("write");
        std::os::unix::fs::symlink(&outside, p.with_file_name("link.bin")).expect("symlink");
        assert_error(&p, &["outside", "link.bin"]);
        let p = external("fifo_dir", "sub", 0, 432);
        std::fs::create_dir(p.with_file_name("sub")).expect("mkdir");
        assert_error(&p, &["not a regular file"]);
    }
}

#[test]
fn external_data_past_the_end_is_an_error() {
    // The file holds 16 + 432 bytes.
    assert_error(
        &external("past", "weights.bin", 17, 432),
        &["past the end", "448 bytes"],
    );
    assert_error(
        &external("past2", "weights.bin", i64::MAX, 432),
        &["conv.weight"],
    );
    // A length that disagrees with the dims.
    assert_error(
        &external("len", "weights.bin", 0, 400),
        &["conv.weight", "400"],
    );
}

// ---------------------------------------------------------------------------------------
// Opsets, inputs, outputs.

#[test]
fn opsets_outside_13_to_21_are_errors() {
    assert_error(
        &write("op12", &model(tiny_graph(), 12)),
        &["opset 12", "13 to 21"],
    );
    assert_error(
        &write("op22", &model(tiny_graph(), 22)),
        &["opset 22", "13 to 21"],
    );
    let mut m = model(tiny_graph(), 17);
    m.opset_import.clear();
    assert_error(&write("noopset", &m), &["operator set"]);
    for v in [13, 21] {
        import(&write("opok", &model(tiny_graph(), v))).expect("opset in range");
    }
}

#[test]
fn inputs_and_outputs_are_checked() {
    let mut g = tiny_graph();
    g.input.push(value_info("mask", dt::FLOAT, &[Some(1)]));
    assert_error(
        &write("two_inputs", &model(g, 17)),
        &["2 inputs", "'input', 'mask'"],
    );
    // An initializer listed as an input is not an image input.
    let mut g = tiny_graph();
    g.input.push(value_info("conv.bias", dt::FLOAT, &[Some(4)]));
    import(&write("init_input", &model(g, 17))).expect("initializer inputs are weights");

    let mut g = tiny_graph();
    g.input = vec![value_info("input", dt::FLOAT, &[None, Some(3), Some(6)])];
    assert_error(&write("rank3", &model(g, 17)), &["rank 3", "[N, 3, H, W]"]);
    let mut g = tiny_graph();
    g.input = vec![value_info(
        "input",
        dt::FLOAT,
        &[None, Some(1), Some(6), Some(6)],
    )];
    assert_error(&write("gray", &model(g, 17)), &["1 channels"]);
    let mut g = tiny_graph();
    g.input = vec![value_info(
        "input",
        dt::INT64,
        &[None, Some(3), Some(6), Some(6)],
    )];
    assert_error(&write("int_input", &model(g, 17)), &["INT64"]);
    let mut g = tiny_graph();
    g.input = vec![value_info(
        "input",
        dt::FLOAT16,
        &[Some(1), Some(3), None, None],
    )];
    let m = import(&write("half_input", &model(g, 17))).expect("float16 input");
    assert_eq!(m.input_dims, [Some(1), Some(3), None, None]);

    let mut g = tiny_graph();
    g.output.push(value_info("flat", dt::FLOAT, &[]));
    assert_error(&write("two_outputs", &model(g, 17)), &["2 outputs"]);
    let mut g = tiny_graph();
    g.output = vec![value_info("conv.weight", dt::FLOAT, &[])];
    assert_error(&write("weight_output", &model(g, 17)), &["conv.weight"]);
}

// ---------------------------------------------------------------------------------------
// PyTorch exports.

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/onnx");

/// Every `<case>/model.onnx` under the fixtures folder.
fn fixture_cases() -> Vec<(String, PathBuf)> {
    let Ok(entries) = std::fs::read_dir(FIXTURES) else {
        return Vec::new();
    };
    let mut cases: Vec<(String, PathBuf)> = entries
        .flatten()
        .map(|e| e.path().join("model.onnx"))
        .filter(|p| p.is_file())
        .map(|p| {
            let case = p
                .parent()
                .and_then(Path::file_name)
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default();
            (case, p)
        })
        .collect();
    cases.sort();
    cases
}

fn manifest(case_dir: &Path) -> Option<serde_json::Value> {
    let text = std::fs::read_to_string(case_dir.join("manifest.json")).ok()?;
    serde_json::from_str(&text).ok()
}

/// Imports a fixture (a failure names the case).
fn import_fixture(case: &str, p: &Path) -> Imported {
    import(p).unwrap_or_else(|e| panic!("{case}: {e}"))
}

#[test]
fn every_fixture_imports_and_validates() {
    let cases = fixture_cases();
    if cases.is_empty() {
        eprintln!("no ONNX fixtures under {FIXTURES}");
        return;
    }
    for (case, p) in &cases {
        let m = import_fixture(case, p);
        m.graph.validate().unwrap_or_else(|e| panic!("{case}: {e}"));
        assert_eq!(m.input_dims[1], Some(3), "{case}");
        assert_eq!(m.ends_in_softmax, case.ends_with("_softmax"), "{case}");
        assert_eq!(m.graph.values[m.graph.input].name, "input", "{case}");
        assert_eq!(
            m.graph.values[m.graph.output].name,
            if m.ends_in_softmax {
                m.graph.values[m.graph.output].name.as_str()
            } else {
                "logits"
            },
            "{case}"
        );
        assert!(m.graph.parameters() > 0, "{case}");
        let Some(man) = manifest(p.parent().expect("case dir")) else {
            continue;
        };
        assert_eq!(Some(m.opset), man["opset"].as_i64(), "{case}");
        if let Some(dynamic) = man["dynamic_batch"].as_bool() {
            assert_eq!(m.input_dims[0].is_none(), dynamic, "{case}");
        }
        if let Some(size) = man["input_size"].as_u64() {
            let s = Some(size as usize);
            assert_eq!([m.input_dims[2], m.input_dims[3]], [s, s], "{case}");
        }
        // Every operation of the file is a node of the graph, but Constants (values now)
        // and a final Softmax (taken off).
        if let Some(list) = man["op_types"].as_array() {
            for entry in list {
                let (Some(op), Some(count)) = (entry["op"].as_str(), entry["count"].as_u64())
                else {
                    continue;
                };
                let mut want = count as usize;
                if op == "Constant" {
                    want = 0;
                }
                if op == "Softmax" && m.ends_in_softmax {
                    want -= 1;
                }
                let op = if op == "Dropout" { "Identity" } else { op };
                let got = m.graph.nodes.iter().filter(|n| n.op.name() == op).count();
                assert_eq!(got, want, "{case}: {op} nodes");
            }
        }
    }
    // The external-data export holds the same weights as the embedded one.
    let find = |name: &str| {
        cases
            .iter()
            .find(|(c, _)| c == name)
            .map(|(_, p)| p.clone())
    };
    if let (Some(a), Some(b)) = (find("resnet18_tiny"), find("resnet18_tiny_external")) {
        let (a, b) = (import(&a).expect("embedded"), import(&b).expect("external"));
        assert_eq!(a.graph.parameters(), b.graph.parameters());
        assert!(b.graph.parameters() > 100_000);
        let consts = |g: &netlens::graph::Graph| {
            let mut v: Vec<(String, netlens::graph::Const)> = g
                .values
                .iter()
                .filter_map(|v| Some((v.name.clone(), v.constant.clone()?)))
                .collect();
            v.sort_by(|x, y| x.0.cmp(&y.0));
            v
        };
        assert_eq!(
            consts(&a.graph),
            consts(&b.graph),
            "external weights differ"
        );
    }
}

/// The imported graphs compute PyTorch's logits (float64 reference, float32 run here).
#[test]
fn fixtures_compute_pytorch_logits() {
    let mut checked = 0;
    let cases = fixture_cases();
    for (case, p) in &cases {
        let dir = p.parent().expect("case dir");
        if !dir.join("logits.npy").is_file() {
            continue;
        }
        let x: ndarray::ArrayD<f32> = ndarray_npy::read_npy(dir.join("input.npy"))
            .unwrap_or_else(|e| panic!("{case}: input.npy: {e}"));
        let logits: ndarray::ArrayD<f64> = ndarray_npy::read_npy(dir.join("logits.npy"))
            .unwrap_or_else(|e| panic!("{case}: logits.npy: {e}"));
        let m = import_fixture(case, p);
        let shape: [usize; 4] = x.shape().try_into().expect("4-D input");
        let input = netlens::engine::Precision::F32.tensor(x.iter().copied().collect(), shape);
        let r = netlens::graph::reference::Reference::new(std::sync::Arc::new(m.graph))
            .expect("reference");
        let y = r.forward(input).unwrap_or_else(|e| panic!("{case}: {e}"));
        assert_eq!(y.shape, logits.shape(), "{case}");
        let got = netlens::engine::tensor_values(y.t);
        let scale = logits.iter().fold(1f64, |a, &b| a.max(b.abs()));
        let worst = got
            .iter()
            .zip(logits.iter())
            .map(|(&a, &b)| (f64::from(a) - b).abs())
            .fold(0f64, f64::max);
        assert!(
            worst < 1e-3 * scale,
            "{case}: logits differ by {worst} (scale {scale})"
        );
        eprintln!("{case}: logits within {worst:.2e} of PyTorch's");
        checked += 1;
    }
    if !cases.is_empty() {
        assert!(checked > 0, "no fixture has logits.npy");
    }
}
