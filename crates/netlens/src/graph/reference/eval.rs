//! One node of the reference interpreter: ONNX semantics per operation.
//!
//! About 670 lines: one arm per supported ONNX operation (~100 arms of a few lines each) in
//! one dispatch, so an operation's semantics are read in one place; the float and integer
//! arithmetic they call live in `float_ops` / `int_ops`.

use super::float_ops as f;
use super::int_ops as i;
use super::value::{axis, checked_numel, dims_of, node_err, Float, Int, Val};
use super::Reference;
use crate::engine::tensor_values;
use crate::engine::Precision;
use crate::error::Result;
use crate::graph::{ElemType, Node, Op};
use burn::tensor::activation as act;

/// Integer view of a value: integers as they are, small float values rounded (shape
/// arithmetic sometimes passes through float casts).
fn ints(v: &Val) -> Option<Int> {
    match v {
        Val::I(x) => Some(x.clone()),
        Val::F(x) if x.numel() <= 64 => Some(Int {
            data: tensor_values(x.t.clone())
                .into_iter()
                .map(|v| v as i64)
                .collect(),
            shape: x.shape.clone(),
        }),
        _ => None,
    }
}

fn to_float(x: &Int, p: Precision) -> Result<Float> {
    let n = x.data.len();
    let t = p.tensor_f64(x.data.iter().map(|&v| v as f64).collect(), [n]);
    Float::with_shape(t.reshape([1, 1, 1, 1, 1, n]), x.shape.clone())
}

/// Runs `n` on its inputs (`None`: omitted optional input); with `guided`, ReLU and
/// `Clip(0, ·)` take guided backpropagation's backward ([`crate::engine::guided_relu`]).
pub fn node(r: &Reference, n: &Node, ins: &[Option<Val>], guided: bool) -> Result<Vec<Val>> {
    let op = n.op.name();
    let e = |m: &str| node_err(&n.name, op, m);
    // What cannot be computed here propagates.
    let unavailable = ins.iter().flatten().any(|v| match v {
        Val::Missing => true,
        Val::ShapeOnly(_) => !matches!(n.op, Op::Shape { .. }),
        _ => false,
    });
    if unavailable {
        return Ok(vec![Val::Missing; n.outputs.len()]);
    }
    let get = |k: usize| -> Result<&Val> {
        ins.get(k)
            .and_then(Option::as_ref)
            .ok_or_else(|| e(&format!("input {k} is missing")))
    };
    let fl = |k: usize| -> Result<Float> {
        match get(k)? {
            Val::F(x) => Ok(x.clone()),
            Val::I(x) => to_float(x, r.precision()),
            _ => Err(e("unexpected input")),
        }
    };
    let int = |k: usize| -> Result<Int> {
        ints(get(k)?).ok_or_else(|| e(&format!("input {k} must be a small integer tensor")))
    };
    let opt_fl = |k: usize| -> Result<Option<Float>> {
        match ins.get(k).and_then(Option::as_ref) {
            None => Ok(None),
            Some(_) => fl(k).map(Some),
        }
    };
    let is_int = |k: usize| matches!(ins.get(k).and_then(Option::as_ref), Some(Val::I(_)));
    let all_int = ins.iter().flatten().all(|v| matches!(v, Val::I(_)));
    let wrap = |r: Result<Float>| -> Result<Vec<Val>> {
        r.map(|x| vec![Val::F(x)])
            .map_err(|err| e(&err.to_string()))
    };
    let one = |x: Float| Ok(vec![Val::F(x)]);
    let _ = r;

    match &n.op {
        Op::Conv { window, group } => {
            let b = opt_fl(2)?;
            wrap(f::conv(&fl(0)?, &fl(1)?, b.as_ref(), window, *group))
        }
        Op::BatchNorm { eps } => {
            let x = fl(0)?;
            let c = *x.shape.get(1).ok_or_else(|| e("input without channels"))?;
            let mut stats = Vec::new();
            for k in 1..5 {
                let s = fl(k)?;
                if s.shape != [c] {
                    return Err(e("statistics of the wrong size"));
                }
                stats.push(tensor_values(s.t));
            }
            // y = x·a + b with a = γ/√(σ²+ε), b = β − μ·a, computed in float64.
            let a: Vec<f64> = (0..c)
                .map(|j| f64::from(stats[0][j]) / (f64::from(stats[3][j]) + eps).sqrt())
                .collect();
            let b: Vec<f64> = (0..c)
                .map(|j| f64::from(stats[1][j]) - f64::from(stats[2][j]) * a[j])
                .collect();
            let mut shape = vec![1; x.shape.len()];
            shape[1] = c;
            let at = Float::with_shape(
                r.precision().tensor_f64(a, [c]).reshape([1, 1, 1, 1, 1, c]),
                shape.clone(),
            )?;
            let bt = Float::with_shape(
                r.precision().tensor_f64(b, [c]).reshape([1, 1, 1, 1, 1, c]),
                shape,
            )?;
            let y = f::binary(&x, &at, |p, q| p * q)?;
            wrap(f::binary(&y, &bt, |p, q| p + q))
        }
        Op::Gemm {
            alpha,
            beta,
            trans_a,
            trans_b,
        } => {
            let (mut a, mut b) = (fl(0)?, fl(1)?);
            if a.shape.len() != 2 || b.shape.len() != 2 {
                return Err(e("Gemm operands must be 2-D"));
            }
            if *trans_a {
                a = f::transpose(&a, &[1, 0])?;
            }
            if *trans_b {
                b = f::transpose(&b, &[1, 0])?;
            }
            let mut y = f::matmul(&a, &b).map_err(|x| e(&x.to_string()))?;
            if *alpha != 1.0 {
                let s = *alpha;
                y = f::unary(&y, |t| t * s);
            }
            if let Some(c) = opt_fl(2)? {
                let s = *beta;
                let c = if s != 1.0 { f::unary(&c, |t| t * s) } else { c };
                y = f::binary(&y, &c, |p, q| p + q).map_err(|x| e(&x.to_string()))?;
            }
            one(y)
        }
        Op::MatMul => wrap(f::matmul(&fl(0)?, &fl(1)?)),
        Op::Add | Op::Sub | Op::Mul | Op::Div | Op::Equal if all_int => {
            let (a, b) = (int(0)?, int(1)?);
            let r = match n.op {
                Op::Add => i::binary(&a, &b, |x, y| Ok(x.wrapping_add(y))),
                Op::Sub => i::binary(&a, &b, |x, y| Ok(x.wrapping_sub(y))),
                Op::Mul => i::binary(&a, &b, |x, y| Ok(x.wrapping_mul(y))),
                Op::Div => i::binary(&a, &b, |x, y| {
                    x.checked_div(y)
                        .ok_or_else(|| e("integer division by zero"))
                }),
                _ => i::binary(&a, &b, |x, y| Ok(i64::from(x == y))),
            };
            Ok(vec![Val::I(r.map_err(|x| e(&x.to_string()))?)])
        }
        Op::Add => wrap(f::binary(&fl(0)?, &fl(1)?, |a, b| a + b)),
        Op::Sub => wrap(f::binary(&fl(0)?, &fl(1)?, |a, b| a - b)),
        Op::Mul => wrap(f::binary(&fl(0)?, &fl(1)?, |a, b| a * b)),
        Op::Div => wrap(f::binary(&fl(0)?, &fl(1)?, |a, b| a / b)),
        Op::Equal => Err(e("Equal of float tensors")),
        Op::Mod { fmod } => {
            if !all_int {
                return Err(e("Mod of float tensors"));
            }
            let fmod = *fmod;
            let r = i::binary(&int(0)?, &int(1)?, |x, y| {
                let m = x.checked_rem(y).ok_or_else(|| e("Mod by zero"))?;
                Ok(if !fmod && m != 0 && (m < 0) != (y < 0) {
                    m + y
                } else {
                    m
                })
            })
            .map_err(|x| e(&x.to_string()))?;
            Ok(vec![Val::I(r)])
        }
        Op::Pow => {
            let x = fl(0)?;
            let p = fl(1)?;
            if p.numel() != 1 {
                return Err(e("only a scalar exponent is supported"));
            }
            let v = f64::from(tensor_values(p.t)[0]);
            one(if v == 2.0 {
                f::unary(&x, |t| t.clone() * t)
            } else {
                f::unary(&x, |t| t.powf_scalar(v))
            })
        }
        Op::Relu if guided => one(f::clip(&fl(0)?, Some(0.0), None, true)),
        Op::Relu => one(f::unary(&fl(0)?, act::relu)),
        Op::Clip { min, max } => one(f::clip(&fl(0)?, *min, *max, guided)),
        Op::LeakyRelu { alpha } => {
            let a = *alpha;
            one(f::unary(&fl(0)?, |t| act::leaky_relu(t, a)))
        }
        Op::Sigmoid => one(f::unary(&fl(0)?, act::sigmoid)),
        Op::HardSigmoid { alpha, beta } => {
            // A float attribute cannot hold 1/6, which is what exporters of PyTorch's
            // hardsigmoid mean by 0.16666667.
            let a = if *alpha as f32 == (1.0f64 / 6.0) as f32 {
                1.0 / 6.0
            } else {
                *alpha
            };
            let b = *beta;
            one(f::unary(&fl(0)?, |t| hard_sigmoid(t, a, b)))
        }
        Op::HardSwish => one(f::unary(&fl(0)?, |t| {
            t.clone() * hard_sigmoid(t, 1.0 / 6.0, 0.5)
        })),
        Op::Tanh => one(f::unary(&fl(0)?, |t| t.tanh())),
        Op::Erf => one(f::unary(&fl(0)?, |t| t.erf())),
        Op::Sqrt => one(f::unary(&fl(0)?, |t| t.sqrt())),
        Op::Exp => one(f::unary(&fl(0)?, |t| t.exp())),
        Op::Neg if all_int => {
            let x = int(0)?;
            Ok(vec![Val::I(Int {
                data: x.data.iter().map(|v| v.wrapping_neg()).collect(),
                shape: x.shape,
            })])
        }
        Op::Neg => one(f::unary(&fl(0)?, |t| t.neg())),
        Op::Reciprocal => one(f::unary(&fl(0)?, |t| t.recip())),
        Op::Gelu { tanh } => one(f::unary(&fl(0)?, |t| {
            if *tanh {
                act::gelu_approximate(t)
            } else {
                act::gelu(t)
            }
        })),
        Op::Softmax { axis: a } | Op::LogSoftmax { axis: a } => {
            let x = fl(0)?;
            let ax = axis(*a, x.shape.len()).map_err(|x| e(&x.to_string()))?;
            one(f::softmax(&x, ax, matches!(n.op, Op::LogSoftmax { .. })))
        }
        Op::MaxPool { window } => wrap(f::pool(&fl(0)?, window, true, false)),
        Op::AveragePool {
            window,
            count_include_pad,
        } => wrap(f::pool(&fl(0)?, window, false, *count_include_pad)),
        Op::GlobalAveragePool | Op::GlobalMaxPool => {
            let x = fl(0)?;
            if x.shape.len() < 3 {
                return Err(e("global pooling needs a spatial value"));
            }
            let axes: Vec<usize> = (2..x.shape.len()).collect();
            if matches!(n.op, Op::GlobalAveragePool) {
                wrap(f::reduce(&x, &axes, true, true))
            } else {
                let mut t = x.t.clone();
                for &a in &axes {
                    t = t.max_dim(x.padded_axis(a));
                }
                let mut shape = x.shape.clone();
                for &a in &axes {
                    shape[a] = 1;
                }
                wrap(Float::with_shape(t, shape))
            }
        }
        Op::AdaptiveAvgPool { out } => {
            let x4 = fl(0)?.rank::<4>().map_err(|x| e(&x.to_string()))?;
            one(Float::new(burn::tensor::module::adaptive_avg_pool2d(
                x4, *out,
            )))
        }
        Op::Concat { axis: a } => {
            if all_int {
                let xs: Vec<Int> = (0..ins.len()).map(int).collect::<Result<_>>()?;
                let refs: Vec<&Int> = xs.iter().collect();
                return Ok(vec![Val::I(
                    i::concat(&refs, *a).map_err(|x| e(&x.to_string()))?,
                )]);
            }
            let xs: Vec<Float> = (0..ins.len()).map(fl).collect::<Result<_>>()?;
            let refs: Vec<&Float> = xs.iter().collect();
            wrap(f::concat(&refs, *a))
        }
        Op::Flatten { axis: a } => {
            let s = get(0)?.shape().ok_or_else(|| e("unknown shape"))?.to_vec();
            let ax = if *a == s.len() as i64 {
                s.len()
            } else {
                axis(*a, s.len()).map_err(|x| e(&x.to_string()))?
            };
            let shape = vec![s[..ax].iter().product(), s[ax..].iter().product()];
            reshape_any(get(0)?, shape).map_err(|x| e(&x.to_string()))
        }
        Op::Reshape { allowzero } => {
            let s = get(0)?.shape().ok_or_else(|| e("unknown shape"))?.to_vec();
            let spec = int(1)?;
            let total: usize = s.iter().product();
            let mut shape = Vec::with_capacity(spec.data.len());
            let mut infer = None;
            for (k, &d) in spec.data.iter().enumerate() {
                shape.push(match d {
                    0 if !allowzero => *s.get(k).ok_or_else(|| e("0 beyond the input's rank"))?,
                    -1 if infer.is_none() => {
                        infer = Some(k);
                        1
                    }
                    d if d >= 0 => d as usize,
                    _ => return Err(e("invalid target shape")),
                });
            }
            if let Some(k) = infer {
                let rest = checked_numel(&shape).map_err(|x| e(&x.to_string()))?;
                if rest == 0 || !total.is_multiple_of(rest) {
                    return Err(e(&format!("cannot reshape {s:?} into {:?}", spec.data)));
                }
                shape[k] = total / rest;
            }
            reshape_any(get(0)?, shape).map_err(|x| e(&x.to_string()))
        }
        Op::Transpose { perm } => {
            let x = get(0)?;
            let r = x.shape().map_or(0, <[usize]>::len);
            let p: Vec<usize> = perm.clone().unwrap_or_else(|| (0..r).rev().collect());
            match x {
                Val::I(v) => Ok(vec![Val::I(
                    i::transpose(v, &p).map_err(|x| e(&x.to_string()))?,
                )]),
                _ => wrap(f::transpose(&fl(0)?, &p)),
            }
        }
        Op::Squeeze | Op::Unsqueeze => {
            let s = get(0)?.shape().ok_or_else(|| e("unknown shape"))?.to_vec();
            let axes = if ins.get(1).and_then(Option::as_ref).is_some() {
                int(1)?.data
            } else {
                Vec::new()
            };
            let shape = if matches!(n.op, Op::Squeeze) {
                let ax: Vec<usize> = if axes.is_empty() {
                    (0..s.len()).filter(|&k| s[k] == 1).collect()
                } else {
                    axes.iter()
                        .map(|&a| axis(a, s.len()))
                        .collect::<Result<_>>()
                        .map_err(|x| e(&x.to_string()))?
                };
                if ax.iter().any(|&a| s[a] != 1) {
                    return Err(e("squeezing an axis whose size is not 1"));
                }
                s.iter()
                    .enumerate()
                    .filter(|(k, _)| !ax.contains(k))
                    .map(|(_, &d)| d)
                    .collect()
            } else {
                let r = s.len() + axes.len();
                let mut ax: Vec<usize> = axes
                    .iter()
                    .map(|&a| axis(a, r))
                    .collect::<Result<_>>()
                    .map_err(|x| e(&x.to_string()))?;
                ax.sort_unstable();
                ax.dedup();
                if ax.len() != axes.len() {
                    return Err(e("repeated axis"));
                }
                let mut it = s.iter();
                (0..r)
                    .map(|k| {
                        if ax.contains(&k) {
                            1
                        } else {
                            *it.next().unwrap_or(&1)
                        }
                    })
                    .collect()
            };
            reshape_any(get(0)?, shape).map_err(|x| e(&x.to_string()))
        }
        Op::Slice => {
            let s = get(0)?.shape().ok_or_else(|| e("unknown shape"))?.to_vec();
            let (starts, ends) = (int(1)?.data, int(2)?.data);
            let axes: Vec<i64> = match ins.get(3).and_then(Option::as_ref) {
                Some(_) => int(3)?.data,
                None => (0..starts.len() as i64).collect(),
            };
            let steps: Vec<i64> = match ins.get(4).and_then(Option::as_ref) {
                Some(_) => int(4)?.data,
                None => vec![1; starts.len()],
            };
            if [ends.len(), axes.len(), steps.len()]
                .iter()
                .any(|&l| l != starts.len())
            {
                return Err(e("starts, ends, axes and steps of different lengths"));
            }
            let mut ranges = Vec::new();
            for k in 0..starts.len() {
                let a = axis(axes[k], s.len()).map_err(|x| e(&x.to_string()))?;
                let (st, step, count) = i::slice_range(s[a], starts[k], ends[k], steps[k])
                    .map_err(|x| e(&x.to_string()))?;
                ranges.push((a, st, step, count));
            }
            match get(0)? {
                Val::I(x) => Ok(vec![Val::I(
                    i::slice(x, &ranges).map_err(|x| e(&x.to_string()))?,
                )]),
                _ => {
                    let mut x = fl(0)?;
                    for (a, st, step, count) in ranges {
                        if step != 1 && count > 1 {
                            return Err(e("slicing a float tensor with a step other than 1"));
                        }
                        x = f::narrow(&x, a, st.max(0) as usize, count)
                            .map_err(|x| e(&x.to_string()))?;
                    }
                    one(x)
                }
            }
        }
        Op::Gather { axis: a } => {
            let idx = int(1)?;
            match get(0)? {
                Val::I(x) => Ok(vec![Val::I(
                    i::gather(x, &idx, *a).map_err(|x| e(&x.to_string()))?,
                )]),
                _ => {
                    let x = fl(0)?;
                    let ax = axis(*a, x.shape.len()).map_err(|x| e(&x.to_string()))?;
                    let dim = x.shape[ax] as i64;
                    let mut parts = Vec::new();
                    for &k in &idx.data {
                        let k = if k < 0 { k + dim } else { k };
                        if !(0..dim).contains(&k) {
                            return Err(e(&format!("index {k} out of range 0..{dim}")));
                        }
                        parts.push(f::narrow(&x, ax, k as usize, 1)?);
                    }
                    let refs: Vec<&Float> = parts.iter().collect();
                    let cat = if parts.len() == 1 {
                        parts[0].clone()
                    } else {
                        f::concat(&refs, ax as i64).map_err(|x| e(&x.to_string()))?
                    };
                    let mut shape = x.shape[..ax].to_vec();
                    shape.extend_from_slice(&idx.shape);
                    shape.extend_from_slice(&x.shape[ax + 1..]);
                    wrap(f::reshape(&cat, shape))
                }
            }
        }
        Op::Shape { start, end } => {
            let s = get(0)?.shape().ok_or_else(|| e("unknown shape"))?;
            let r = s.len() as i64;
            let clampi = |v: i64| (if v < 0 { v + r } else { v }).clamp(0, r) as usize;
            let (a, b) = (clampi(*start), clampi(end.unwrap_or(r)));
            let data: Vec<i64> = s[a..b.max(a)].iter().map(|&d| d as i64).collect();
            let len = data.len();
            Ok(vec![Val::I(Int {
                data,
                shape: vec![len],
            })])
        }
        Op::Expand => {
            let to = dims_of(&int(1)?).map_err(|x| e(&x.to_string()))?;
            match get(0)? {
                Val::I(x) => Ok(vec![Val::I(
                    i::expand(x, &to).map_err(|x| e(&x.to_string()))?,
                )]),
                _ => {
                    let x = fl(0)?;
                    let shape =
                        super::value::broadcast(&x.shape, &to).map_err(|x| e(&x.to_string()))?;
                    checked_numel(&shape).map_err(|x| e(&x.to_string()))?;
                    let p = super::value::pad_shape(&shape)?;
                    one(Float {
                        t: x.t.expand(p),
                        shape,
                    })
                }
            }
        }
        Op::ReduceMean {
            axes,
            keepdims,
            noop_with_empty_axes,
        }
        | Op::ReduceSum {
            axes,
            keepdims,
            noop_with_empty_axes,
        } => {
            let x = fl(0)?;
            let given = match (axes, ins.get(1).and_then(Option::as_ref)) {
                (Some(a), _) => a.clone(),
                (None, Some(_)) => int(1)?.data,
                (None, None) => Vec::new(),
            };
            if given.is_empty() && *noop_with_empty_axes {
                return one(x);
            }
            let mut ax: Vec<usize> = if given.is_empty() {
                (0..x.shape.len()).collect()
            } else {
                given
                    .iter()
                    .map(|&a| axis(a, x.shape.len()))
                    .collect::<Result<_>>()
                    .map_err(|x| e(&x.to_string()))?
            };
            ax.sort_unstable();
            ax.dedup();
            wrap(f::reduce(
                &x,
                &ax,
                *keepdims,
                matches!(n.op, Op::ReduceMean { .. }),
            ))
        }
        Op::LayerNorm { axis: a, eps } => {
            let x = fl(0)?;
            let ax = axis(*a, x.shape.len()).map_err(|x| e(&x.to_string()))?;
            let b = opt_fl(2)?;
            wrap(f::layer_norm(&x, &fl(1)?, b.as_ref(), ax, *eps))
        }
        Op::Identity => Ok(vec![get(0)?.clone()]),
        Op::Cast { to } => match (to, get(0)?) {
            (ElemType::Float, Val::I(x)) => one(to_float(x, r.precision())?),
            (ElemType::Float, v) => Ok(vec![v.clone()]),
            (ElemType::Int | ElemType::Bool, v) => {
                let mut x = ints(v).ok_or_else(|| e("casting a large float tensor to integers"))?;
                if *to == ElemType::Bool {
                    x.data.iter_mut().for_each(|d| *d = i64::from(*d != 0));
                }
                Ok(vec![Val::I(x)])
            }
        },
        Op::ConstantOfShape { value, int: is_i } => {
            let shape = dims_of(&int(0)?).map_err(|x| e(&x.to_string()))?;
            let count = checked_numel(&shape).map_err(|x| e(&x.to_string()))?;
            if *is_i {
                Ok(vec![Val::I(Int {
                    data: vec![*value as i64; count],
                    shape,
                })])
            } else {
                wrap(f::full(shape, *value, r.precision()))
            }
        }
        Op::Where => {
            if is_int(1) && is_int(2) {
                let r = i::select(&int(0)?, &int(1)?, &int(2)?).map_err(|x| e(&x.to_string()))?;
                Ok(vec![Val::I(r)])
            } else {
                Err(e("Where on float tensors"))
            }
        }
        Op::Split { axis: a, parts } => {
            let x = get(0)?;
            let s = x.shape().ok_or_else(|| e("unknown shape"))?.to_vec();
            let ax = axis(*a, s.len()).map_err(|x| e(&x.to_string()))?;
            let sizes: Vec<usize> = match ins.get(1).and_then(Option::as_ref) {
                Some(_) => dims_of(&int(1)?).map_err(|x| e(&x.to_string()))?,
                None => {
                    let k = (*parts).max(1);
                    let each = s[ax].div_ceil(k);
                    (0..k)
                        .map(|j| each.min(s[ax].saturating_sub(j * each)))
                        .collect()
                }
            };
            if sizes.iter().sum::<usize>() != s[ax] || sizes.len() != n.outputs.len() {
                return Err(e("split sizes do not add up"));
            }
            let mut out = Vec::new();
            let mut start = 0;
            for &len in &sizes {
                out.push(match x {
                    Val::I(v) => Val::I(
                        i::slice(v, &[(ax, start as i64, 1, len)])
                            .map_err(|x| e(&x.to_string()))?,
                    ),
                    _ => Val::F(f::narrow(&fl(0)?, ax, start, len)?),
                });
                start += len;
            }
            Ok(out)
        }
        Op::Range => {
            let (a, b, c) = (int(0)?, int(1)?, int(2)?);
            let r = i::range(
                i::scalar(&a, "start")?,
                i::scalar(&b, "limit")?,
                i::scalar(&c, "delta")?,
            )
            .map_err(|x| e(&x.to_string()))?;
            Ok(vec![Val::I(r)])
        }
        Op::Pad { reflect } => {
            let x = fl(0)?;
            let pads = int(1)?.data;
            let r = x.shape.len();
            let axes: Vec<usize> = match ins.get(3).and_then(Option::as_ref) {
                Some(_) => int(3)?
                    .data
                    .iter()
                    .map(|&a| axis(a, r))
                    .collect::<Result<_>>()
                    .map_err(|x| e(&x.to_string()))?,
                None => (0..r).collect(),
            };
            if pads.len() != 2 * axes.len() || pads.iter().any(|&p| !(0..=4096).contains(&p)) {
                return Err(e(
                    "pads must be 2 × axes non-negative sizes (negative pads are not supported)",
                ));
            }
            let value = match opt_fl(2)? {
                Some(v) if v.numel() == 1 => tensor_values(v.t)[0],
                Some(_) => return Err(e("constant_value must be a scalar")),
                None => 0.0,
            };
            let mut pairs = vec![(0usize, 0usize); value::MAX_RANK];
            let mut shape = x.shape.clone();
            for (k, &a) in axes.iter().enumerate() {
                let (b, en) = (pads[k] as usize, pads[k + axes.len()] as usize);
                pairs[x.padded_axis(a)] = (b, en);
                shape[a] += b + en;
            }
            checked_numel(&shape).map_err(|x| e(&x.to_string()))?;
            let mode = if *reflect {
                if axes.iter().enumerate().any(|(k, &a)| {
                    pads[k] as usize >= x.shape[a] || pads[k + axes.len()] as usize >= x.shape[a]
                }) {
                    return Err(e("reflect padding as large as the input"));
                }
                burn::tensor::ops::PadMode::Reflect
            } else {
                burn::tensor::ops::PadMode::Constant(value)
            };
            one(Float {
                t: x.t.pad(pairs, mode),
                shape,
            })
        }
    }
}

use super::value;

/// `clamp(αx + β, 0, 1)` with the scalars in the tensor's precision (burn's `hard_sigmoid`
/// rounds them to float32).
fn hard_sigmoid(t: burn::tensor::Tensor<6>, alpha: f64, beta: f64) -> burn::tensor::Tensor<6> {
    (t * alpha + beta).clamp(0.0, 1.0)
}

/// Reshape of a float or integer value.
fn reshape_any(v: &Val, shape: Vec<usize>) -> Result<Vec<Val>> {
    match v {
        Val::I(x) => {
            if checked_numel(&shape)? != x.data.len() {
                return Err(crate::Error::Graph(format!(
                    "cannot reshape {:?} into {shape:?}",
                    x.shape
                )));
            }
            Ok(vec![Val::I(Int {
                data: x.data.clone(),
                shape,
            })])
        }
        Val::F(x) => Ok(vec![Val::F(f::reshape(x, shape)?)]),
        _ => Ok(vec![Val::Missing]),
    }
}
