//! Which [`Op`] an ONNX node becomes, with its attributes read and checked, and how many
//! inputs the operation needs. The mapping is a method of the [`Builder`]: some settings
//! come from constant inputs (a Conv's kernel from its weights, Clip's bounds, Dropout's
//! training mode), which only the builder knows.

use super::attrs::{Attrs, MAX_WINDOW};
use super::build::Builder;
use super::import::{input_name, R};
use super::proto::{data_type as dt, NodeProto};
use super::tensor::tensor_const;
use crate::graph::{Const, ElemType, Op};

impl Builder<'_> {
    /// The operation of a (non-Constant) node, with its attributes.
    pub(super) fn op(&mut self, n: &NodeProto, a: &Attrs) -> R<Op> {
        Ok(match n.op_type.as_str() {
            "Conv" => {
                let from_weights = match self.constant(input_name(n, 1)) {
                    Some(w) => match w.shape.as_slice() {
                        [_, _, kh, kw] => Some([*kh, *kw]),
                        s => {
                            return Err(format!(
                                "{}weights of rank {}; netlens supports 2-D convolutions only",
                                a.at(),
                                s.len()
                            ))
                        }
                    },
                    None => None,
                };
                let group = a.int("group", 1)?;
                if !(1..=MAX_WINDOW).contains(&group) {
                    return Err(format!("{}group {group}", a.at()));
                }
                Op::Conv {
                    window: a.window(from_weights, false)?,
                    group: group as usize,
                }
            }
            "MaxPool" => Op::MaxPool {
                window: a.window(None, true)?,
            },
            "AveragePool" => Op::AveragePool {
                window: a.window(None, true)?,
                count_include_pad: a.flag("count_include_pad", false)?,
            },
            "GlobalAveragePool" => Op::GlobalAveragePool,
            "GlobalMaxPool" => Op::GlobalMaxPool,
            "BatchNormalization" => {
                if a.flag("training_mode", false)? {
                    return Err(format!(
                        "{}training_mode=1; netlens runs BatchNormalization in inference form",
                        a.at()
                    ));
                }
                Op::BatchNorm {
                    eps: a.float("epsilon", 1e-5)?,
                }
            }
            "Gemm" => Op::Gemm {
                alpha: a.float("alpha", 1.0)?,
                beta: a.float("beta", 1.0)?,
                trans_a: a.flag("transA", false)?,
                trans_b: a.flag("transB", false)?,
            },
            "MatMul" => Op::MatMul,
            "Add" => Op::Add,
            "Sub" => Op::Sub,
            "Mul" => Op::Mul,
            "Div" => Op::Div,
            "Pow" => Op::Pow,
            "Relu" => Op::Relu,
            "Clip" => {
                let bound = |i: usize, which: &str| -> R<Option<f64>> {
                    let name = input_name(n, i);
                    if name.is_empty() {
                        return Ok(None);
                    }
                    let c = self.constant(name).ok_or_else(|| {
                        format!("{}the {which} bound '{name}' is not a constant", a.at())
                    })?;
                    scalar(c).map(Some).ok_or_else(|| {
                        format!("{}the {which} bound '{name}' is not a scalar", a.at())
                    })
                };
                Op::Clip {
                    min: bound(1, "min")?,
                    max: bound(2, "max")?,
                }
            }
            "LeakyRelu" => Op::LeakyRelu {
                alpha: a.float("alpha", 0.01)?,
            },
            "Sigmoid" => Op::Sigmoid,
            "HardSigmoid" => Op::HardSigmoid {
                alpha: a.float("alpha", 0.2)?,
                beta: a.float("beta", 0.5)?,
            },
            "HardSwish" => Op::HardSwish,
            "Tanh" => Op::Tanh,
            "Erf" => Op::Erf,
            "Sqrt" => Op::Sqrt,
            "Exp" => Op::Exp,
            "Neg" => Op::Neg,
            "Reciprocal" => Op::Reciprocal,
            "Gelu" => match a.string("approximate")?.as_deref() {
                None | Some("none") => Op::Gelu { tanh: false },
                Some("tanh") => Op::Gelu { tanh: true },
                Some(other) => {
                    return Err(format!("{}approximate '{other}' (none or tanh)", a.at()))
                }
            },
            "Softmax" => Op::Softmax {
                axis: a.int("axis", -1)?,
            },
            "LogSoftmax" => Op::LogSoftmax {
                axis: a.int("axis", -1)?,
            },
            "Concat" => Op::Concat {
                axis: a
                    .int_opt("axis")?
                    .ok_or_else(|| format!("{}the axis attribute is missing", a.at()))?,
            },
            "Flatten" => Op::Flatten {
                axis: a.int("axis", 1)?,
            },
            "Reshape" => Op::Reshape {
                allowzero: a.flag("allowzero", false)?,
            },
            "Transpose" => Op::Transpose {
                perm: match a.ints("perm")? {
                    None => None,
                    Some(p) => {
                        let mut seen = vec![false; p.len()];
                        let mut perm = Vec::with_capacity(p.len());
                        for &d in p {
                            let slot = usize::try_from(d).ok().and_then(|i| seen.get_mut(i));
                            match slot {
                                Some(s) if !*s => *s = true,
                                _ => {
                                    return Err(format!(
                                        "{}perm {p:?} is not a permutation",
                                        a.at()
                                    ))
                                }
                            }
                            perm.push(d as usize);
                        }
                        Some(perm)
                    }
                },
            },
            "Squeeze" => Op::Squeeze,
            "Unsqueeze" => Op::Unsqueeze,
            "Slice" => Op::Slice,
            "Gather" => Op::Gather {
                axis: a.int("axis", 0)?,
            },
            "Shape" => Op::Shape {
                start: a.int("start", 0)?,
                end: a.int_opt("end")?,
            },
            "Expand" => Op::Expand,
            "ReduceMean" | "ReduceSum" => {
                let axes = a.ints("axes")?.map(<[i64]>::to_vec);
                let keepdims = a.flag("keepdims", true)?;
                let noop_with_empty_axes = a.flag("noop_with_empty_axes", false)?;
                if n.op_type == "ReduceMean" {
                    Op::ReduceMean {
                        axes,
                        keepdims,
                        noop_with_empty_axes,
                    }
                } else {
                    Op::ReduceSum {
                        axes,
                        keepdims,
                        noop_with_empty_axes,
                    }
                }
            }
            "LayerNormalization" => Op::LayerNorm {
                axis: a.int("axis", -1)?,
                eps: a.float("epsilon", 1e-5)?,
            },
            "Identity" => Op::Identity,
            "Dropout" => {
                let mode = input_name(n, 2);
                if !mode.is_empty() {
                    match self.constant(mode).and_then(scalar) {
                        Some(0.0) => {}
                        Some(_) => {
                            return Err(format!(
                                "{}training_mode is true; netlens runs Dropout in inference form",
                                a.at()
                            ))
                        }
                        None => {
                            return Err(format!(
                                "{}training_mode '{mode}' is not a constant",
                                a.at()
                            ))
                        }
                    }
                }
                Op::Identity
            }
            "Cast" => {
                let to = a
                    .int_opt("to")?
                    .ok_or_else(|| format!("{}the 'to' attribute is missing", a.at()))?;
                let to32 = i32::try_from(to).unwrap_or(-1);
                Op::Cast {
                    to: match to32 {
                        dt::FLOAT | dt::FLOAT16 | dt::DOUBLE | dt::BFLOAT16 => ElemType::Float,
                        dt::BOOL => ElemType::Bool,
                        dt::INT8
                        | dt::UINT8
                        | dt::INT16
                        | dt::UINT16
                        | dt::INT32
                        | dt::UINT32
                        | dt::INT64
                        | dt::UINT64 => ElemType::Int,
                        other => {
                            return Err(format!(
                                "{}cast to {} is not supported",
                                a.at(),
                                dt::name(other)
                            ))
                        }
                    },
                }
            }
            "ConstantOfShape" => match a.tensor("value")? {
                None => Op::ConstantOfShape {
                    value: 0.0,
                    int: false,
                },
                Some(t) => {
                    let what = format!("the value of node '{}'", a.node);
                    let c = tensor_const(t, &what, &mut self.ext)?;
                    if c.len() != 1 {
                        return Err(format!(
                            "{}value has {} elements; it must have one",
                            a.at(),
                            c.len()
                        ));
                    }
                    Op::ConstantOfShape {
                        value: scalar(&c).ok_or_else(|| format!("{}value of no type", a.at()))?,
                        int: c.ints().is_some(),
                    }
                }
            },
            "Equal" => Op::Equal,
            "Where" => Op::Where,
            "Split" => {
                let outputs = n.output.len();
                let parts = match a.int_opt("num_outputs")? {
                    None => outputs,
                    Some(k) if usize::try_from(k).ok() == Some(outputs) => outputs,
                    Some(k) => {
                        return Err(format!(
                            "{}num_outputs is {k} but the node has {outputs} outputs",
                            a.at()
                        ))
                    }
                };
                Op::Split {
                    axis: a.int("axis", 0)?,
                    parts,
                }
            }
            "Range" => Op::Range,
            "Mod" => Op::Mod {
                fmod: a.flag("fmod", false)?,
            },
            "Pad" => match a.string("mode")?.as_deref() {
                None | Some("constant") => Op::Pad { reflect: false },
                Some("reflect") => Op::Pad { reflect: true },
                Some(other) => {
                    return Err(format!(
                        "{}Pad mode '{other}' is not supported (constant and reflect are)",
                        a.at()
                    ))
                }
            },
            other => {
                return Err(format!(
                    "operation '{other}' (node '{}') is not supported; netlens supports: {}",
                    a.node,
                    Op::SUPPORTED.join(", ")
                ));
            }
        })
    }
}

/// How many leading inputs an operation cannot do without.
pub(super) fn required_inputs(op: &Op) -> usize {
    match op {
        Op::BatchNorm { .. } => 5,
        Op::Where | Op::Range | Op::Slice => 3,
        Op::Conv { .. }
        | Op::Gemm { .. }
        | Op::MatMul
        | Op::Add
        | Op::Sub
        | Op::Mul
        | Op::Div
        | Op::Pow
        | Op::Equal
        | Op::Mod { .. }
        | Op::Reshape { .. }
        | Op::Unsqueeze
        | Op::Gather { .. }
        | Op::Expand
        | Op::LayerNorm { .. }
        | Op::Pad { .. } => 2,
        _ => 1,
    }
}

/// The one value of a one-element constant, as a float.
fn scalar(c: &Const) -> Option<f64> {
    if c.len() != 1 {
        return None;
    }
    match (c.floats(), c.ints()) {
        (Some(f), _) => f.first().map(|&v| f64::from(v)),
        (_, Some(i)) => i.first().map(|&v| v as f64),
        _ => None,
    }
}
