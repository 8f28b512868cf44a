//! The values the reference interpreter passes between nodes, and shape arithmetic.
//!
//! burn tensors have a rank fixed at compile time, ONNX values do not: every float value is
//! held as a rank-[`MAX_RANK`] tensor whose leading dimensions are 1, beside its logical
//! shape. Leading ones do not change numpy broadcasting, so elementwise ops, matmul batches
//! and reductions work on the padded tensor directly; axes are shifted by the padding.
//! Integer values (shapes, indices) are small and live on the host.

use crate::error::{Error, Result};
use burn::tensor::Tensor;

/// The largest rank a value may have.
pub const MAX_RANK: usize = 6;

/// A float value: the padded tensor and its logical shape.
#[derive(Clone, Debug)]
pub struct Float {
    pub t: Tensor<MAX_RANK>,
    pub shape: Vec<usize>,
}

/// An integer (or boolean) value on the host.
#[derive(Clone, Debug, PartialEq)]
pub struct Int {
    pub data: Vec<i64>,
    pub shape: Vec<usize>,
}

/// What flows along an edge.
// A float value (a tensor handle and its shape) is a few hundred bytes, an integer one a few
// dozen: values live in one table per run, so boxing would buy nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug)]
pub enum Val {
    F(Float),
    I(Int),
    /// A value whose shape is known but whose contents are not available (the image input
    /// when running from an intermediate layer): only `Shape` may read it.
    ShapeOnly(Vec<usize>),
    /// A value that cannot be computed in this run (it depends on the unavailable input).
    Missing,
}

impl Val {
    /// The logical shape, when known.
    pub fn shape(&self) -> Option<&[usize]> {
        match self {
            Val::F(f) => Some(&f.shape),
            Val::I(i) => Some(&i.shape),
            Val::ShapeOnly(s) => Some(s),
            Val::Missing => None,
        }
    }
}

/// An error about one node.
pub fn node_err(node: &str, op: &str, msg: impl std::fmt::Display) -> Error {
    Error::Graph(format!("node '{node}' ({op}): {msg}"))
}

/// `shape` with leading ones up to [`MAX_RANK`].
pub fn pad_shape(shape: &[usize]) -> Result<[usize; MAX_RANK]> {
    if shape.len() > MAX_RANK {
        return Err(Error::Graph(format!(
            "a value of rank {} (netlens supports up to {MAX_RANK})",
            shape.len()
        )));
    }
    let mut s = [1; MAX_RANK];
    s[MAX_RANK - shape.len()..].copy_from_slice(shape);
    Ok(s)
}

impl Float {
    /// Wraps a tensor of any rank up to [`MAX_RANK`].
    pub fn new<const D: usize>(t: Tensor<D>) -> Self {
        let shape = t.dims().to_vec();
        let p = pad_shape(&shape).unwrap_or([1; MAX_RANK]);
        Self {
            t: t.reshape(p),
            shape,
        }
    }
    /// A padded tensor with logical shape `shape` (its element count must match).
    pub fn with_shape(t: Tensor<MAX_RANK>, shape: Vec<usize>) -> Result<Self> {
        let p = pad_shape(&shape)?;
        Ok(Self {
            t: t.reshape(p),
            shape,
        })
    }
    /// The value as a rank-`D` tensor; its rank must be `D`.
    pub fn rank<const D: usize>(&self) -> Result<Tensor<D>> {
        if self.shape.len() != D {
            return Err(Error::Graph(format!(
                "expected a {D}-D value, got shape {:?}",
                self.shape
            )));
        }
        let mut s = [0; D];
        s.copy_from_slice(&self.shape);
        Ok(self.t.clone().reshape(s))
    }
    /// Number of elements.
    pub fn numel(&self) -> usize {
        self.shape.iter().product()
    }
    /// Axis `a` of the padded tensor for logical axis `axis`.
    pub fn padded_axis(&self, axis: usize) -> usize {
        MAX_RANK - self.shape.len() + axis
    }
}

/// ONNX axis `a` (negative counts from the end) of a rank-`rank` value.
pub fn axis(a: i64, rank: usize) -> Result<usize> {
    let r = rank as i64;
    let v = if a < 0 { a + r } else { a };
    if (0..r.max(1)).contains(&v) {
        Ok(v as usize)
    } else {
        Err(Error::Graph(format!(
            "axis {a} out of range for a value of rank {rank}"
        )))
    }
}

/// The numpy broadcast of two shapes.
pub fn broadcast(a: &[usize], b: &[usize]) -> Result<Vec<usize>> {
    let n = a.len().max(b.len());
    let mut out = vec![0; n];
    for i in 0..n {
        let da = if i + a.len() >= n {
            a[i + a.len() - n]
        } else {
            1
        };
        let db = if i + b.len() >= n {
            b[i + b.len() - n]
        } else {
            1
        };
        out[i] = match (da, db) {
            (x, y) if x == y => x,
            (1, y) => y,
            (x, 1) => x,
            _ => {
                return Err(Error::Graph(format!(
                    "shapes {a:?} and {b:?} do not broadcast"
                )))
            }
        };
    }
    Ok(out)
}

/// Element count of a shape, refusing overflow and absurd sizes (2³¹ elements).
pub fn checked_numel(shape: &[usize]) -> Result<usize> {
    const LIMIT: usize = 1 << 31;
    shape
        .iter()
        .try_fold(1usize, |acc, &d| acc.checked_mul(d))
        .filter(|&n| n <= LIMIT)
        .ok_or_else(|| Error::Graph(format!("a value of shape {shape:?} is too large")))
}

/// A shape from integer values (each ≥ 0).
pub fn dims_of(i: &Int) -> Result<Vec<usize>> {
    i.data
        .iter()
        .map(|&d| usize::try_from(d).map_err(|_| Error::Graph(format!("negative dimension {d}"))))
        .collect()
}

/// The shape of `shapes` concatenated along ONNX axis `ax`, and the resolved axis.
pub fn concat_shape(shapes: &[&[usize]], ax: i64) -> Result<(usize, Vec<usize>)> {
    let first = *shapes
        .first()
        .ok_or_else(|| Error::Graph("Concat of nothing".into()))?;
    let a = axis(ax, first.len())?;
    let mut out = first.to_vec();
    out[a] = 0;
    for s in shapes {
        if s.len() != first.len() || s[..a] != first[..a] || s[a + 1..] != first[a + 1..] {
            return Err(Error::Graph("Concat of values of different shapes".into()));
        }
        out[a] += s[a];
    }
    Ok((a, out))
}
