//! How much arithmetic a graph's forward pass is: the multiply-adds of its convolutions and
//! matrix products, counted as two floating-point operations each (the convention of the
//! FLOP figures published for ImageNet classifiers, ×2). Elementwise operations, pooling and
//! normalization are left out: they are memory-bound and a few percent of the count.
//!
//! A backward pass to the input (weights frozen) runs one data-gradient product per product
//! of the forward pass, of the same size, so forward + backward-to-input is twice the count.

use super::{Graph, Op, ValueId};

/// The shape of value `v`: inferred, or the constant's own.
fn shape_of<'a>(g: &'a Graph, shapes: &'a [Option<Vec<usize>>], v: ValueId) -> Option<&'a [usize]> {
    shapes
        .get(v)
        .and_then(|s| s.as_deref())
        .or_else(|| g.const_of(v).map(|c| c.shape.as_slice()))
}

/// Floating-point operations of one forward pass of `g`, whose values have `shapes` (one
/// batch); products whose shapes are unknown count nothing.
pub fn forward(g: &Graph, shapes: &[Option<Vec<usize>>]) -> u64 {
    g.nodes
        .iter()
        .map(|n| {
            let out = n.outputs.first().and_then(|&y| shape_of(g, shapes, y));
            let input = |i: usize| n.input(i).and_then(|v| shape_of(g, shapes, v));
            let prod = |s: &[usize]| s.iter().map(|&d| d as u64).product::<u64>();
            let macs = match (&n.op, out) {
                // out [N, Cout, ...], weight [Cout, Cin / group, k...]: each output element
                // is a dot product of the weight's inner size.
                (Op::Conv { .. }, Some(o)) => input(1)
                    .filter(|w| w.len() >= 2)
                    .map(|w| prod(o) * prod(&w[1..]))
                    .unwrap_or(0),
                // out [M, N] = op(a) [M, K] · op(b) [K, N].
                (Op::Gemm { trans_a, .. }, Some(o)) => input(0)
                    .filter(|a| a.len() == 2)
                    .map(|a| prod(o) * a[if *trans_a { 0 } else { 1 }] as u64)
                    .unwrap_or(0),
                // out [..., M, N] = a [..., M, K] · b [..., K, N].
                (Op::MatMul, Some(o)) => input(0)
                    .and_then(|a| a.last())
                    .map(|&k| prod(o) * k as u64)
                    .unwrap_or(0),
                _ => 0,
            };
            2 * macs
        })
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::graph::{Const, Pads, Window};

    #[test]
    fn counts_convolutions_and_products() {
        // A 3×3 convolution 3 → 8 channels on 10×10 (stride 1, padded), then a dense layer
        // 800 → 5: 8·10·10 outputs × 27 multiply-adds + 5 × 800.
        let mut g = Graph::new("x");
        let w = g.constant("w", Const::float(vec![8, 3, 3, 3], vec![0.0; 216]));
        let window = Window {
            kernel: [3, 3],
            strides: [1, 1],
            dilations: [1, 1],
            pads: Pads::Explicit([1; 4]),
            ceil: false,
        };
        let c = g.node(Op::Conv { window, group: 1 }, &[0, w], "conv");
        let fc = g.constant("fc", Const::float(vec![5, 800], vec![0.0; 4000]));
        let flat = g.value("flat");
        let y = g.node(
            Op::Gemm {
                alpha: 1.0,
                beta: 1.0,
                trans_a: false,
                trans_b: true,
            },
            &[flat, fc],
            "y",
        );
        let mut shapes = vec![None; g.values.len()];
        shapes[0] = Some(vec![1, 3, 10, 10]);
        shapes[c] = Some(vec![1, 8, 10, 10]);
        shapes[flat] = Some(vec![1, 800]);
        shapes[y] = Some(vec![1, 5]);
        assert_eq!(forward(&g, &shapes), 2 * (800 * 27 + 5 * 800));
    }
}
