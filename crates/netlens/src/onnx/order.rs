//! The order the nodes are converted in: every value written before it is read.
//!
//! ONNX asks files to list their nodes in such an order, but not every exporter does; a
//! node list that is not one is sorted here, and a cycle is an error naming its nodes.

use super::import::{node_name, R};
use super::proto::GraphProto;
use crate::graph::Const;
use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};

/// The nodes in an order where every value is written before it is read (Kahn's
/// algorithm, keeping the file's order where it already is one). Checks that every value
/// is written once and that every value read exists.
pub(super) fn node_order(
    g: &GraphProto,
    input: &str,
    inits: &HashMap<&str, Const>,
) -> R<Vec<usize>> {
    let mut producer: HashMap<&str, usize> = HashMap::new();
    for (i, n) in g.node.iter().enumerate() {
        if n.output.is_empty() {
            return Err(format!(
                "node '{}' ({}) has no output",
                node_name(n, i),
                n.op_type
            ));
        }
        for o in n.output.iter().filter(|o| !o.is_empty()) {
            let o = o.as_str();
            let clash = if o == input {
                Some("the graph input".to_string())
            } else if inits.contains_key(o) {
                Some("an initializer".to_string())
            } else {
                producer.get(o).map(|&j| {
                    format!(
                        "node '{}'",
                        g.node.get(j).map_or(String::new(), |m| node_name(m, j))
                    )
                })
            };
            if let Some(other) = clash {
                return Err(format!(
                    "node '{}' writes '{o}', which {other} already defines (every value must \
                     be written once)",
                    node_name(n, i)
                ));
            }
            producer.insert(o, i);
        }
    }
    let count = g.node.len();
    let mut preds: Vec<Vec<usize>> = vec![Vec::new(); count];
    let mut succs: Vec<Vec<usize>> = vec![Vec::new(); count];
    let mut indegree = vec![0usize; count];
    for (i, n) in g.node.iter().enumerate() {
        for v in n.input.iter().filter(|v| !v.is_empty()) {
            match producer.get(v.as_str()) {
                Some(&j) => {
                    if let (Some(p), Some(s), Some(d)) =
                        (preds.get_mut(i), succs.get_mut(j), indegree.get_mut(i))
                    {
                        p.push(j);
                        s.push(i);
                        *d += 1;
                    }
                }
                None if v == input || inits.contains_key(v.as_str()) => {}
                None => {
                    return Err(format!(
                        "node '{}' ({}) reads '{v}', which is neither the input, a weight nor \
                         the output of any node",
                        node_name(n, i),
                        n.op_type
                    ))
                }
            }
        }
    }
    let mut ready: BinaryHeap<Reverse<usize>> = (0..count)
        .filter(|&i| indegree.get(i) == Some(&0))
        .map(Reverse)
        .collect();
    let mut order = Vec::with_capacity(count);
    while let Some(Reverse(i)) = ready.pop() {
        order.push(i);
        for &k in succs.get(i).map_or(&[][..], Vec::as_slice) {
            if let Some(d) = indegree.get_mut(k) {
                *d = d.saturating_sub(1);
                if *d == 0 {
                    ready.push(Reverse(k));
                }
            }
        }
    }
    if order.len() == count {
        return Ok(order);
    }
    // Every node left waits on another node left: walking back along those finds a cycle.
    let waiting = |i: usize| indegree.get(i).is_some_and(|&d| d > 0);
    let mut path = Vec::new();
    let mut cur = (0..count).find(|&i| waiting(i));
    while let Some(i) = cur {
        if let Some(at) = path.iter().position(|&p| p == i) {
            let cycle: Vec<String> = path[at..]
                .iter()
                .rev()
                .chain(std::iter::once(&i))
                .map(|&j| {
                    g.node
                        .get(j)
                        .map_or_else(String::new, |n| format!("'{}'", node_name(n, j)))
                })
                .collect();
            return Err(format!(
                "the nodes form a cycle ({}); an ONNX graph must be acyclic",
                cycle.join(" → ")
            ));
        }
        path.push(i);
        cur = preds
            .get(i)
            .and_then(|p| p.iter().copied().find(|&j| waiting(j)));
    }
    Err("the nodes cannot be put in order (a cycle)".into())
}
