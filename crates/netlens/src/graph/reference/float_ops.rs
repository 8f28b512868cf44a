//! Operations on float values, as burn tensor operations (so autodiff differentiates them).
//!
//! Every function checks the shapes it is given before calling burn, whose own checks
//! panic: an ONNX file is untrusted input, and a bad one must be an error, not a crash.

use super::value::{broadcast, checked_numel, concat_shape, pad_shape, Float, MAX_RANK};
use crate::error::{Error, Result};
use crate::graph::Window;
use burn::tensor::module::{avg_pool2d, conv2d, max_pool2d};
use burn::tensor::ops::{AvgPoolOptions, ConvOptions, MaxPoolOptions};
use burn::tensor::{activation, Tensor};

fn err(m: impl Into<String>) -> Error {
    Error::Graph(m.into())
}

/// `a ∘ b` elementwise with numpy broadcasting.
pub fn binary(
    a: &Float,
    b: &Float,
    f: impl Fn(Tensor<MAX_RANK>, Tensor<MAX_RANK>) -> Tensor<MAX_RANK>,
) -> Result<Float> {
    let shape = broadcast(&a.shape, &b.shape)?;
    let p = pad_shape(&shape)?;
    checked_numel(&shape)?;
    let ea = if a.shape == shape {
        a.t.clone()
    } else {
        a.t.clone().expand(p)
    };
    let eb = if b.shape == shape {
        b.t.clone()
    } else {
        b.t.clone().expand(p)
    };
    Ok(Float {
        t: f(ea, eb),
        shape,
    })
}

/// A unary elementwise map.
pub fn unary(x: &Float, f: impl Fn(Tensor<MAX_RANK>) -> Tensor<MAX_RANK>) -> Float {
    Float {
        t: f(x.t.clone()),
        shape: x.shape.clone(),
    }
}

/// `Clip(min, max)` (a guided ONNX `Relu` is `Clip(0, ∞)`). ReLU6 runs as `relu(x) − relu(x − 6)`:
/// PyTorch's values and gradient away from the kinks, faster than clamp under autodiff. With
/// `guided`, a clip at 0 takes guided backpropagation's backward
/// ([`crate::engine::guided_relu`]).
pub fn clip(x: &Float, min: Option<f64>, max: Option<f64>, guided: bool) -> Float {
    match (min, max) {
        (Some(0.0), hi) if guided => {
            let hi = hi.unwrap_or(f64::INFINITY);
            unary(x, |t| crate::engine::guided_relu(t, hi))
        }
        (Some(0.0), Some(hi)) => unary(x, |t| {
            activation::relu(t.clone()) - activation::relu(t - hi)
        }),
        (Some(lo), Some(hi)) => unary(x, |t| t.clamp(lo, hi)),
        (Some(lo), None) => unary(x, |t| t.clamp_min(lo)),
        (None, Some(hi)) => unary(x, |t| t.clamp_max(hi)),
        (None, None) => x.clone(),
    }
}

/// 2-D convolution of `[N, C, H, W]` by `[O, C / group, kh, kw]`.
pub fn conv(
    x: &Float,
    w: &Float,
    bias: Option<&Float>,
    win: &Window,
    group: usize,
) -> Result<Float> {
    let x4 = x.rank::<4>()?;
    let w4 = w.rank::<4>()?;
    let [_, c, h, wd] = x4.dims();
    let [o, cg, kh, kw] = w4.dims();
    if group == 0 || c != cg * group || o % group != 0 {
        return Err(err(format!(
            "a {c}-channel input into weights {:?} with {group} groups",
            w.shape
        )));
    }
    if [kh, kw] != win.kernel {
        return Err(err("kernel_shape does not match the weights"));
    }
    let b = match bias {
        Some(b) if b.shape != [o] => return Err(err("bias of the wrong size")),
        Some(b) => Some(b.rank::<1>()?),
        None => None,
    };
    let (_, p) = win
        .resolve(h, wd)
        .ok_or_else(|| err(format!("a {h}x{wd} input is smaller than the kernel")))?;
    let opts = ConvOptions::new_with_padding(
        win.strides,
        [(p[0], p[2]), (p[1], p[3])],
        win.dilations,
        group,
    );
    Ok(Float::new(conv2d(x4, w4, b, opts)))
}

/// Max or average pooling over a window.
pub fn pool(x: &Float, win: &Window, max: bool, count_include_pad: bool) -> Result<Float> {
    let x4 = x.rank::<4>()?;
    let [_, _, h, w] = x4.dims();
    let (_, p) = win.resolve(h, w).ok_or_else(|| {
        err(format!(
            "a {h}x{w} input is smaller than the pooling window"
        ))
    })?;
    if win.dilations != [1, 1] && !max {
        return Err(err("average pooling with dilation"));
    }
    let padding = [(p[0], p[2]), (p[1], p[3])];
    if padding.iter().any(|&(b, e)| b > 0 || e > 0) && win.kernel.contains(&0) {
        return Err(err("empty pooling window"));
    }
    let y = if max {
        max_pool2d(
            x4,
            MaxPoolOptions {
                kernel_size: win.kernel,
                stride: win.strides,
                padding,
                dilation: win.dilations,
                ceil_mode: win.ceil,
            },
        )
    } else {
        avg_pool2d(
            x4,
            AvgPoolOptions {
                kernel_size: win.kernel,
                stride: win.strides,
                padding,
                count_include_pad,
                ceil_mode: win.ceil,
            },
        )
    };
    Ok(Float::new(y))
}

/// Numpy `matmul` (with ONNX's rules for 1-D operands).
pub fn matmul(a: &Float, b: &Float) -> Result<Float> {
    if a.shape.is_empty() || b.shape.is_empty() {
        return Err(err("MatMul of a scalar"));
    }
    let mut sa = a.shape.clone();
    let mut sb = b.shape.clone();
    let (va, vb) = (sa.len() == 1, sb.len() == 1);
    if va {
        sa.insert(0, 1);
    }
    if vb {
        sb.push(1);
    }
    let (m, k) = (sa[sa.len() - 2], sa[sa.len() - 1]);
    let (k2, n) = (sb[sb.len() - 2], sb[sb.len() - 1]);
    if k != k2 {
        return Err(err(format!(
            "MatMul of {:?} by {:?}: inner sizes differ",
            a.shape, b.shape
        )));
    }
    let batch = broadcast(&sa[..sa.len() - 2], &sb[..sb.len() - 2])?;
    let mut full_a = batch.clone();
    full_a.extend([m, k]);
    let mut full_b = batch.clone();
    full_b.extend([k, n]);
    let ta = Float::with_shape(a.t.clone(), sa)?
        .t
        .expand(pad_shape(&full_a)?);
    let tb = Float::with_shape(b.t.clone(), sb)?
        .t
        .expand(pad_shape(&full_b)?);
    let mut out = batch;
    out.extend([m, n]);
    checked_numel(&out)?;
    let y = ta.matmul(tb);
    if vb {
        out.pop();
    }
    if va {
        out.remove(out.len() - if vb { 1 } else { 2 });
    }
    Float::with_shape(y, out)
}

/// Concatenation along `ax`.
pub fn concat(xs: &[&Float], ax: i64) -> Result<Float> {
    let shapes: Vec<&[usize]> = xs.iter().map(|x| x.shape.as_slice()).collect();
    let (a, shape) = concat_shape(&shapes, ax)?;
    let first = xs[0];
    let t = Tensor::cat(
        xs.iter().map(|x| x.t.clone()).collect(),
        first.padded_axis(a),
    );
    Ok(Float { t, shape })
}

/// A view of `x` with another shape of the same element count.
pub fn reshape(x: &Float, shape: Vec<usize>) -> Result<Float> {
    if checked_numel(&shape)? != x.numel() {
        return Err(err(format!("cannot reshape {:?} into {shape:?}", x.shape)));
    }
    Float::with_shape(x.t.clone(), shape)
}

/// Axis permutation (`perm[i]` is the input axis of output axis `i`).
pub fn transpose(x: &Float, perm: &[usize]) -> Result<Float> {
    let r = x.shape.len();
    let mut seen = vec![false; r];
    if perm.len() != r
        || perm
            .iter()
            .any(|&p| p >= r || std::mem::replace(&mut seen[p], true))
    {
        return Err(err(format!("bad permutation {perm:?} of a rank-{r} value")));
    }
    let off = MAX_RANK - r;
    let mut full = [0usize; MAX_RANK];
    for (i, f) in full.iter_mut().enumerate() {
        *f = if i < off { i } else { perm[i - off] + off };
    }
    let shape = perm.iter().map(|&p| x.shape[p]).collect();
    Ok(Float {
        t: x.t.clone().permute(full),
        shape,
    })
}

/// Mean or sum over `axes` (resolved, distinct).
pub fn reduce(x: &Float, axes: &[usize], keepdims: bool, mean: bool) -> Result<Float> {
    let mut t = x.t.clone();
    for &a in axes {
        let pa = x.padded_axis(a);
        t = if mean { t.mean_dim(pa) } else { t.sum_dim(pa) };
    }
    let mut shape = x.shape.clone();
    for &a in axes {
        shape[a] = 1;
    }
    if !keepdims {
        shape = shape
            .iter()
            .enumerate()
            .filter(|(i, _)| !axes.contains(i))
            .map(|(_, &d)| d)
            .collect();
    }
    Float::with_shape(t, shape)
}

/// `x[..., start .. start + len, ...]` along `a`.
pub fn narrow(x: &Float, a: usize, start: usize, len: usize) -> Result<Float> {
    if start + len > x.shape[a] {
        return Err(err("slice out of range"));
    }
    let mut shape = x.shape.clone();
    shape[a] = len;
    Ok(Float {
        t: x.t.clone().narrow(x.padded_axis(a), start, len),
        shape,
    })
}

/// Layer normalization over the axes from `a` on.
pub fn layer_norm(
    x: &Float,
    scale: &Float,
    bias: Option<&Float>,
    a: usize,
    eps: f64,
) -> Result<Float> {
    let axes: Vec<usize> = (a..x.shape.len()).collect();
    let mean = reduce(x, &axes, true, true)?;
    let centred = binary(x, &mean, |p, q| p - q)?;
    let var = reduce(&unary(&centred, |t| t.clone() * t), &axes, true, true)?;
    let normed = binary(&centred, &unary(&var, |t| (t + eps).sqrt()), |p, q| p / q)?;
    let y = binary(&normed, scale, |p, q| p * q)?;
    match bias {
        Some(b) => binary(&y, b, |p, q| p + q),
        None => Ok(y),
    }
}

/// Softmax (or log-softmax) along `a`.
pub fn softmax(x: &Float, a: usize, log: bool) -> Float {
    let pa = x.padded_axis(a);
    let t = if log {
        burn::tensor::activation::log_softmax(x.t.clone(), pa)
    } else {
        burn::tensor::activation::softmax(x.t.clone(), pa)
    };
    Float {
        t,
        shape: x.shape.clone(),
    }
}

/// A float value filled with `v`, in precision `p`.
pub fn full(shape: Vec<usize>, v: f64, p: crate::engine::Precision) -> Result<Float> {
    let n = checked_numel(&shape)?;
    let t = p.tensor_f64(vec![v; n], [n]);
    Float::with_shape(t.reshape(pad_shape(&[n])?), shape)
}
