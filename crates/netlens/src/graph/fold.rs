//! Rewrites applied to a graph once it is built: a final Softmax taken off, so that methods
//! differentiate the logits (as Captum and pytorch-grad-cam users are told to do).

use super::{Graph, Op};

/// If the output is computed by a `Softmax` (or `LogSoftmax`) over the classes, makes its
/// input the output and returns `true`.
pub fn strip_softmax(g: &mut Graph) -> bool {
    let Some(i) = g.nodes.iter().position(|n| n.outputs.contains(&g.output)) else {
        return false;
    };
    let n = &g.nodes[i];
    let over_classes =
        matches!(n.op, Op::Softmax { axis } | Op::LogSoftmax { axis } if axis == -1 || axis == 1);
    let Some(x) = n.input(0) else {
        return false;
    };
    // Only when nothing else reads the probabilities.
    let others = g
        .nodes
        .iter()
        .filter(|m| m.inputs.iter().flatten().any(|&v| v == g.output))
        .count();
    if !over_classes || others > 0 {
        return false;
    }
    g.nodes.remove(i);
    g.output = x;
    true
}

/// Computes every node that does not depend on the input (shape arithmetic, constant
/// subgraphs exporters leave behind) once, turning its outputs into constants, so that
/// the fast path sees constants where the file computes them. Returns how many nodes were
/// folded. Computes in float32; [`constants_in`] in the precision of the model to be.
pub fn constants(g: &mut Graph) -> crate::Result<usize> {
    constants_in(g, crate::engine::Precision::F32)
}

/// [`constants`] computed in precision `p` (the folded values are stored as float32
/// constants either way).
pub fn constants_in(g: &mut Graph, p: crate::engine::Precision) -> crate::Result<usize> {
    use super::reference::{eval, Reference, Val};
    use super::Const;
    let snapshot = std::sync::Arc::new(g.clone());
    let r = Reference::with_precision(snapshot, p)?;
    let mut folded = Vec::new();
    let mut known: Vec<Option<Val>> = vec![None; g.values.len()];
    for (i, n) in g.nodes.iter().enumerate() {
        let all_const = n
            .inputs
            .iter()
            .flatten()
            .all(|&v| known[v].is_some() || g.values[v].constant.is_some());
        if !all_const {
            continue;
        }
        let ins: Vec<Option<Val>> = n
            .inputs
            .iter()
            .map(|v| v.and_then(|v| known[v].clone().or_else(|| r.constant_val(v))))
            .collect();
        let outs = eval::node(&r, n, &ins, false)?;
        for (&o, v) in n.outputs.iter().zip(outs) {
            known[o] = Some(v);
        }
        folded.push(i);
    }
    for &i in &folded {
        for &o in &g.nodes[i].outputs {
            let c = match known[o].take() {
                Some(Val::I(x)) => Const::int(x.shape, x.data),
                Some(Val::F(x)) => {
                    let data = crate::engine::tensor_values(x.t);
                    Const::float(x.shape, data)
                }
                _ => continue,
            };
            g.values[o].constant = Some(c);
        }
    }
    let done: std::collections::HashSet<usize> = folded.iter().copied().collect();
    let mut k = 0;
    g.nodes.retain(|_| {
        k += 1;
        !done.contains(&(k - 1))
    });
    Ok(folded.len())
}
