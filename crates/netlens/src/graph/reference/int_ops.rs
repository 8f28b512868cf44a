//! Operations on integer values (shapes, indices, masks), computed on the host.
//!
//! Exported graphs compute reshape targets from `Shape` of a tensor (a dynamic batch
//! dimension): these vectors have a handful of elements, so plain loops serve.

use super::value::{axis, broadcast, checked_numel, concat_shape, Int};
use crate::error::{Error, Result};

fn err(m: impl Into<String>) -> Error {
    Error::Graph(m.into())
}

fn strides(shape: &[usize]) -> Vec<usize> {
    let mut s = vec![1; shape.len()];
    for i in (0..shape.len().saturating_sub(1)).rev() {
        s[i] = s[i + 1] * shape[i + 1];
    }
    s
}

/// Reads element `idx` (a multi-index in `out`'s shape) from `src` broadcast to `out`.
fn bcast_index(src: &[usize], out: &[usize], flat: usize) -> usize {
    let os = strides(out);
    let ss = strides(src);
    let off = out.len() - src.len();
    let mut r = 0;
    for (d, &o) in os.iter().enumerate() {
        let i = (flat / o) % out[d].max(1);
        if d >= off && src[d - off] != 1 {
            r += i * ss[d - off];
        }
    }
    r
}

/// An elementwise binary operation with numpy broadcasting.
pub fn binary(a: &Int, b: &Int, f: impl Fn(i64, i64) -> Result<i64>) -> Result<Int> {
    let shape = broadcast(&a.shape, &b.shape)?;
    let n = checked_numel(&shape)?;
    let data = (0..n)
        .map(|k| {
            f(
                a.data[bcast_index(&a.shape, &shape, k)],
                b.data[bcast_index(&b.shape, &shape, k)],
            )
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(Int { data, shape })
}

/// `Where(cond, x, y)`.
pub fn select(c: &Int, x: &Int, y: &Int) -> Result<Int> {
    let shape = broadcast(&broadcast(&c.shape, &x.shape)?, &y.shape)?;
    let n = checked_numel(&shape)?;
    let data = (0..n)
        .map(|k| {
            if c.data[bcast_index(&c.shape, &shape, k)] != 0 {
                x.data[bcast_index(&x.shape, &shape, k)]
            } else {
                y.data[bcast_index(&y.shape, &shape, k)]
            }
        })
        .collect();
    Ok(Int { data, shape })
}

/// `Expand(x, shape)`.
pub fn expand(x: &Int, to: &[usize]) -> Result<Int> {
    let shape = broadcast(&x.shape, to)?;
    let n = checked_numel(&shape)?;
    let data = (0..n)
        .map(|k| x.data[bcast_index(&x.shape, &shape, k)])
        .collect();
    Ok(Int { data, shape })
}

/// `Gather(x, indices, axis)`.
pub fn gather(x: &Int, idx: &Int, ax: i64) -> Result<Int> {
    let a = axis(ax, x.shape.len())?;
    let dim = *x.shape.get(a).ok_or_else(|| err("Gather on a scalar"))?;
    let outer: usize = x.shape[..a].iter().product();
    let inner: usize = x.shape[a + 1..].iter().product();
    let mut data = Vec::new();
    for o in 0..outer {
        for &i in &idx.data {
            let i = if i < 0 { i + dim as i64 } else { i };
            if !(0..dim as i64).contains(&i) {
                return Err(err(format!("Gather index {i} out of range 0..{dim}")));
            }
            let base = (o * dim + i as usize) * inner;
            data.extend_from_slice(&x.data[base..base + inner]);
        }
    }
    let mut shape = x.shape[..a].to_vec();
    shape.extend_from_slice(&idx.shape);
    shape.extend_from_slice(&x.shape[a + 1..]);
    Ok(Int { data, shape })
}

/// `Concat(xs, axis)`.
pub fn concat(xs: &[&Int], ax: i64) -> Result<Int> {
    let shapes: Vec<&[usize]> = xs.iter().map(|x| x.shape.as_slice()).collect();
    let (a, shape) = concat_shape(&shapes, ax)?;
    let outer: usize = shape[..a].iter().product();
    let mut data = Vec::with_capacity(checked_numel(&shape)?);
    for o in 0..outer {
        for x in xs {
            let chunk: usize = x.shape[a..].iter().product();
            data.extend_from_slice(&x.data[o * chunk..(o + 1) * chunk]);
        }
    }
    Ok(Int { data, shape })
}

/// ONNX `Slice` bounds resolved for one axis: `(start, step, count)`.
pub fn slice_range(dim: usize, start: i64, end: i64, step: i64) -> Result<(i64, i64, usize)> {
    if step == 0 {
        return Err(err("Slice with step 0"));
    }
    let d = dim as i64;
    let clampi = |v: i64, lo: i64, hi: i64| v.max(lo).min(hi);
    let norm = |v: i64| if v < 0 { v.saturating_add(d) } else { v };
    let (s, e) = if step > 0 {
        (clampi(norm(start), 0, d), clampi(norm(end), 0, d))
    } else {
        (clampi(norm(start), -1, d - 1), clampi(norm(end), -1, d - 1))
    };
    let count = if step > 0 {
        ((e - s).max(0) + step - 1) / step
    } else {
        ((s - e).max(0) + (-step) - 1) / (-step)
    };
    Ok((s, step, count as usize))
}

/// `Slice` of an integer value along resolved axes.
pub fn slice(x: &Int, ranges: &[(usize, i64, i64, usize)]) -> Result<Int> {
    let mut shape = x.shape.clone();
    for &(a, _, _, count) in ranges {
        shape[a] = count;
    }
    let n = checked_numel(&shape)?;
    let os = strides(&shape);
    let xs = strides(&x.shape);
    let mut data = Vec::with_capacity(n);
    for k in 0..n {
        let mut src = 0i64;
        for d in 0..shape.len() {
            let mut i = ((k / os[d]) % shape[d]) as i64;
            if let Some(&(_, s, st, _)) = ranges.iter().find(|r| r.0 == d) {
                i = s + i * st;
            }
            src += i * xs[d] as i64;
        }
        data.push(x.data[src as usize]);
    }
    Ok(Int { data, shape })
}

/// `Range(start, limit, delta)`.
pub fn range(start: i64, limit: i64, delta: i64) -> Result<Int> {
    if delta == 0 {
        return Err(err("Range with delta 0"));
    }
    let n = ((limit - start) as f64 / delta as f64).ceil().max(0.0) as usize;
    checked_numel(&[n])?;
    let data = (0..n as i64).map(|i| start + i * delta).collect();
    Ok(Int {
        data,
        shape: vec![n],
    })
}

/// The single element of a scalar or one-element value.
pub fn scalar(x: &Int, what: &str) -> Result<i64> {
    match x.data.as_slice() {
        [v] => Ok(*v),
        _ => Err(err(format!("{what} must be a single integer"))),
    }
}

/// `Transpose(x, perm)`.
pub fn transpose(x: &Int, perm: &[usize]) -> Result<Int> {
    let r = x.shape.len();
    let mut seen = vec![false; r];
    if perm.len() != r
        || perm
            .iter()
            .any(|&p| p >= r || std::mem::replace(&mut seen[p], true))
    {
        return Err(err(format!("bad permutation {perm:?} of a rank-{r} value")));
    }
    let shape: Vec<usize> = perm.iter().map(|&p| x.shape[p]).collect();
    let n = checked_numel(&shape)?;
    let os = strides(&shape);
    let xs = strides(&x.shape);
    let data = (0..n)
        .map(|k| {
            let src: usize = (0..r).map(|d| ((k / os[d]) % shape[d]) * xs[perm[d]]).sum();
            x.data[src]
        })
        .collect();
    Ok(Int { data, shape })
}
