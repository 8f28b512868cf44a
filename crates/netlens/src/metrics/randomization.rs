//! Model-parameter randomization test (Adebayo et al. 2018, "Sanity Checks for Saliency
//! Maps", NeurIPS, section 3.1): re-draw the learned parameters of the network layer by
//! layer, from the logits down ("cascading"), recompute the map after each step and compare it
//! with the map of the trained network. A map that explains the model must change once the
//! model does; one that stays similar is driven by the input alone (edge detection).
//!
//! A layer of the cascade is one node of the graph with learned weights (Conv, Gemm or MatMul
//! with a constant weight, and BatchNormalization), counted from the output towards the input,
//! as Quantus counts the modules that have `reset_parameters`. Re-drawing replaces each of
//! the layer's learned float constants (weights, biases, BatchNorm scale and shift) by a
//! truncated normal (±2σ, as the paper's TensorFlow re-initialization) with the mean and
//! standard deviation of the tensor it replaces, so that activations keep their scale;
//! BatchNorm's running mean and variance are statistics, not parameters, and stay. The
//! result is a new graph run by a new [`GraphModel`]: the trained model is untouched.
//!
//! The paper's second test re-draws one layer at a time, the others trained ("independent",
//! [`Randomization::Independent`]). The score `randomization` is the Spearman rank correlation
//! (SciPy's `spearmanr`, ties ranked by their average) between the absolute map of the trained
//! network and that of the fully randomized one; [`spearman`] and [`ranks`] are public for the
//! per-step numbers, and [`super::similarity`] has the paper's other similarities (SSIM, HOG).

use crate::error::{Error, Result};
use crate::graph::{Const, Graph, Op};
use crate::models::onnx_model::{is_onnx, load_onnx};
use crate::models::{
    self, efficientnet_lite, squeezenet, vgg, Arch, GraphModel, ModelSpec, Preprocessing,
};
use crate::weights;
use rand::rngs::StdRng;
use rand::SeedableRng;
use rand_distr::{Distribution, Normal};
use std::path::Path;

/// Graph nodes with learned parameters, in execution order (input side first), each with
/// the values of its learned float constants.
pub fn layers(graph: &Graph) -> Vec<(usize, Vec<usize>)> {
    graph
        .nodes
        .iter()
        .enumerate()
        .filter_map(|(i, n)| {
            let learned: Vec<usize> = match n.op {
                Op::Conv { .. } | Op::Gemm { .. } | Op::MatMul => {
                    let w = n.input(1)?;
                    graph.const_of(w)?.floats()?;
                    std::iter::once(w)
                        .chain(
                            n.input(2)
                                .filter(|&b| graph.const_of(b).and_then(Const::floats).is_some()),
                        )
                        .collect()
                }
                // scale, bias (running mean and variance stay).
                Op::BatchNorm { .. } => [n.input(1), n.input(2)]
                    .into_iter()
                    .flatten()
                    .filter(|&v| graph.const_of(v).and_then(Const::floats).is_some())
                    .collect(),
                _ => return None,
            };
            (!learned.is_empty()).then_some((i, learned))
        })
        .collect()
}

/// Truncated normal (±2σ) with the mean and standard deviation of `values`.
fn redraw(values: &[f32], rng: &mut StdRng) -> Vec<f32> {
    let n = values.len().max(1) as f64;
    let mean = values.iter().map(|&v| f64::from(v)).sum::<f64>() / n;
    let var = values
        .iter()
        .map(|&v| (f64::from(v) - mean).powi(2))
        .sum::<f64>()
        / n;
    let sd = var.sqrt();
    if sd <= 0.0 || !sd.is_finite() {
        return values.to_vec();
    }
    let z = Normal::new(0.0, 1.0).expect("unit normal");
    values
        .iter()
        .map(|_| loop {
            let s: f64 = z.sample(rng);
            if s.abs() <= 2.0 {
                break (mean + sd * s) as f32;
            }
        })
        .collect()
}

/// Which learned tensor a re-draw replaces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Site {
    /// The layer's place counted from the logits (0 = the last learned layer).
    pub layer: usize,
    /// The tensor's place among the layer's learned constants: 0 the weight, 1 the bias
    /// (BatchNorm: 0 the scale, 1 the shift), in the order of [`layers`].
    pub tensor: usize,
}

/// How a learned tensor is re-drawn: its site and its trained values (row-major, the
/// layout of the graph's constant, which is PyTorch's) give the new values, as many.
pub type Redraw<'a> = dyn FnMut(Site, &[f32]) -> Vec<f32> + 'a;

/// A copy of `graph` with the learned layers whose place counted from the logits (0 = the
/// last layer) `pick` accepts re-drawn by `redraw`, from the logits down.
fn randomize(graph: &Graph, pick: impl Fn(usize) -> bool, redraw: &mut Redraw<'_>) -> Graph {
    let mut g = graph.clone();
    let layers = layers(graph);
    for (k, values) in layers.iter().rev().enumerate().filter(|(k, _)| pick(*k)) {
        for (t, &v) in values.1.iter().enumerate() {
            let Some(c) = graph.const_of(v) else { continue };
            let Some(f) = c.floats() else { continue };
            let new = redraw(
                Site {
                    layer: k,
                    tensor: t,
                },
                f,
            );
            g.values[v].constant = Some(Const::float(c.shape.clone(), new));
        }
    }
    g
}

/// The paper's re-draw: a truncated normal with each tensor's mean and standard deviation,
/// one generator seeded by `seed` for the whole copy, tensors drawn from the logits down.
fn paper_redraw(seed: u64) -> impl FnMut(Site, &[f32]) -> Vec<f32> {
    let mut rng = StdRng::seed_from_u64(seed);
    move |_, values| redraw(values, &mut rng)
}

/// A copy of `graph` with the top `k` learned layers (counted from the logits) re-drawn,
/// deterministically from `seed` (the cascade).
pub fn randomize_top(graph: &Graph, k: usize, seed: u64) -> Graph {
    randomize(graph, |i| i < k, &mut paper_redraw(seed))
}

/// A copy of `graph` with only the `k`-th learned layer counted from the logits (1 = the
/// last) re-drawn: the paper's independent randomization.
pub fn randomize_only(graph: &Graph, k: usize, seed: u64) -> Graph {
    randomize(graph, |i| i + 1 == k, &mut paper_redraw(seed))
}

/// How a randomized network is made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Randomization {
    /// The top `k` learned layers re-drawn (`usize::MAX`: all).
    Cascade(usize),
    /// Only the `k`-th learned layer from the top re-drawn.
    Independent(usize),
}

/// A model with the top `k` learned layers of `model` re-drawn (`k` ≥ the layer count: all).
pub fn randomized_model(
    model: &GraphModel,
    spec: &ModelSpec,
    k: usize,
    seed: u64,
) -> Result<GraphModel> {
    randomized(model, spec, Randomization::Cascade(k), seed)
}

/// A model re-drawn as `r` says, with the paper's truncated normal seeded by `seed`.
pub fn randomized(
    model: &GraphModel,
    spec: &ModelSpec,
    r: Randomization,
    seed: u64,
) -> Result<GraphModel> {
    randomized_with(model, spec, r, &mut paper_redraw(seed))
}

/// A model re-drawn as `r` says, each learned tensor replaced by what `redraw` returns for
/// it (a reference comparison gives both sides the same weights this way).
pub fn randomized_with(
    model: &GraphModel,
    spec: &ModelSpec,
    r: Randomization,
    redraw: &mut Redraw<'_>,
) -> Result<GraphModel> {
    let mut wrong = None;
    let mut checked = |site: Site, values: &[f32]| {
        let new = redraw(site, values);
        if new.len() != values.len() && wrong.is_none() {
            wrong = Some((site, new.len(), values.len()));
        }
        new
    };
    let g = match r {
        Randomization::Cascade(k) => randomize(model.graph(), |i| i < k, &mut checked),
        Randomization::Independent(k) => randomize(model.graph(), |i| i + 1 == k, &mut checked),
    };
    if let Some((site, got, want)) = wrong {
        return Err(Error::Invalid(format!(
            "randomization: the re-draw of layer {} tensor {} gave {got} values for {want}",
            site.layer, site.tensor
        )));
    }
    GraphModel::with_options(
        spec.clone(),
        g,
        Some(crate::models::Classifier::cam_layer(model)),
        crate::models::Classifier::load_options(model),
    )
}

/// Opens `name` (a zoo CNN or an ONNX file) as a [`GraphModel`], whose graph can be
/// re-drawn, as [`crate::models::open`] does for any classifier; the zoo's ViT, which is not a
/// graph, is refused.
pub fn open_graph_model(
    name: &str,
    weights_file: Option<&Path>,
    settings: &Preprocessing,
    status: &mut dyn FnMut(&str),
) -> Result<GraphModel> {
    if is_onnx(name) {
        status("importing");
        return load_onnx(Path::new(name), settings);
    }
    let spec = models::spec(name)?;
    let graph = |g: Graph, cam: String| GraphModel::new(spec.clone(), g, Some(cam));
    let mut sd = || weights::load_for(spec.name, &spec.weights, weights_file, status);
    match spec.arch {
        Arch::EfficientNetLite(cfg) => graph(efficientnet_lite::graph(cfg, sd()?)?, "head".into()),
        Arch::SqueezeNet(cfg) => graph(squeezenet::graph(cfg, sd()?)?, squeezenet::cam_layer(&cfg)),
        Arch::Vgg(cfg) => graph(vgg::graph(cfg, sd()?)?, vgg::cam_layer(&cfg)),
        Arch::VisionTransformer(_) | Arch::Onnx => Err(Error::Invalid(format!(
            "{} is not a graph network; model-parameter randomization needs a CNN (a zoo CNN or \
             an ONNX file)",
            spec.name
        ))),
    }
}

/// Ranks (1-based) with ties given their average rank, as SciPy's `rankdata`.
pub fn ranks(values: &[f32]) -> Vec<f64> {
    let mut idx: Vec<usize> = (0..values.len()).collect();
    idx.sort_by(|&a, &b| values[a].total_cmp(&values[b]));
    let mut r = vec![0.0; values.len()];
    let mut i = 0;
    while i < idx.len() {
        let mut j = i;
        while j + 1 < idx.len() && values[idx[j + 1]] == values[idx[i]] {
            j += 1;
        }
        let avg = (i + j) as f64 / 2.0 + 1.0;
        for &p in &idx[i..=j] {
            r[p] = avg;
        }
        i = j + 1;
    }
    r
}

/// Spearman rank correlation of `a` and `b` (Pearson correlation of their ranks); NaN when
/// either is constant.
pub fn spearman(a: &[f32], b: &[f32]) -> Result<f64> {
    if a.len() != b.len() || a.is_empty() {
        return Err(Error::Invalid(format!(
            "spearman: maps of {} and {} values",
            a.len(),
            b.len()
        )));
    }
    Ok(super::similarity::pearson(&ranks(a), &ranks(b)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranks_with_ties() {
        assert_eq!(ranks(&[10.0, 20.0, 10.0, 5.0]), vec![2.5, 4.0, 2.5, 1.0]);
    }

    #[test]
    fn spearman_cases() {
        let a = [1.0, 2.0, 3.0, 4.0];
        assert!((spearman(&a, &[10.0, 20.0, 30.0, 100.0]).unwrap() - 1.0).abs() < 1e-12);
        assert!((spearman(&a, &[4.0, 3.0, 2.0, 1.0]).unwrap() + 1.0).abs() < 1e-12);
        assert!(spearman(&a, &[1.0, 1.0, 1.0, 1.0]).unwrap().is_nan());
        assert!(spearman(&a, &[1.0]).is_err());
    }

    #[test]
    fn redraw_keeps_scale() {
        let mut rng = StdRng::seed_from_u64(1);
        let v: Vec<f32> = (0..1000).map(|i| (i as f32 / 100.0).sin()).collect();
        let r = redraw(&v, &mut rng);
        let sd = |x: &[f32]| {
            let m = x.iter().sum::<f32>() / x.len() as f32;
            (x.iter().map(|v| (v - m).powi(2)).sum::<f32>() / x.len() as f32).sqrt()
        };
        assert!(r.iter().zip(&v).any(|(a, b)| a != b));
        // A ±2σ truncated normal has 0.88 of the σ.
        assert!((sd(&r) / sd(&v) - 0.88).abs() < 0.06);
    }
}
