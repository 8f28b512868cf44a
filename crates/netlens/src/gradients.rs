//! Input gradients: the primitive under every saliency map, fooling image and visualization.
//!
//! An [`Objective`] turns a batch's logits (and, for regularizers, the input itself) into one
//! scalar per image; [`input_gradient`] returns d objective / d input for each image, with the
//! weights frozen. Images in a batch are independent (inference-mode networks), so the
//! gradient of the summed objective is each image's own gradient.

use crate::engine;
use crate::error::{Error, Result};
use crate::imaging::tensor::tensor_values;
use crate::models::Classifier;
use burn::tensor::Tensor;

/// One scalar per image, to be differentiated with respect to the input.
pub trait Objective {
    /// Per-image objective `[N]` from logits `[N, K]` and the input `[N, 3, H, W]`.
    fn evaluate(&self, logits: Tensor<2>, input: &Tensor<4>) -> Tensor<1>;
}

/// The unnormalized score of one target class per image (CS231n's saliency objective).
#[derive(Debug, Clone)]
pub struct ClassScore {
    pub targets: Vec<usize>,
}

/// A constant `[N, K]` one-hot matrix selecting `targets[i]` in row `i`.
pub fn one_hot(targets: &[usize], classes: usize) -> Tensor<2> {
    let mut m = vec![0f32; targets.len() * classes];
    for (i, &t) in targets.iter().enumerate() {
        m[i * classes + t] = 1.0;
    }
    engine::tensor(m, [targets.len(), classes])
}

impl Objective for ClassScore {
    fn evaluate(&self, logits: Tensor<2>, _input: &Tensor<4>) -> Tensor<1> {
        let [n, k] = logits.dims();
        (logits * one_hot(&self.targets, k)).sum_dim(1).reshape([n])
    }
}

/// What one forward + backward pass returns.
#[derive(Debug, Clone)]
pub struct InputGradient {
    /// d objective / d input, flat `[N, 3, H, W]`.
    pub grad: Vec<f32>,
    /// The objective per image.
    pub objective: Vec<f32>,
    /// The logits, flat `[N, K]`.
    pub logits: Vec<f32>,
    /// `[N, 3, H, W]`.
    pub shape: [usize; 4],
}

/// The gradient of `objective` with respect to the normalized input batch `x`.
pub fn input_gradient(
    model: &dyn Classifier,
    x: Tensor<4>,
    objective: &dyn Objective,
) -> Result<InputGradient> {
    let shape = x.dims();
    let x = x.detach().require_grad();
    let logits = model.forward(x.clone());
    let obj = objective.evaluate(logits.clone(), &x);
    let grads = obj.clone().sum().backward();
    let g = x
        .grad(&grads)
        .ok_or_else(|| Error::Invalid("the objective does not depend on the input".into()))?;
    Ok(InputGradient {
        grad: tensor_values(g),
        objective: tensor_values(obj.detach()),
        logits: tensor_values(logits.detach()),
        shape,
    })
}

/// Logits `[N, K]` (flat) of a normalized batch, without recording a graph.
pub fn logits(model: &dyn Classifier, x: Tensor<4>) -> Vec<f32> {
    tensor_values(model.forward(x.detach()))
}

/// Softmax of each row of flat `[N, K]` logits, in f64 for accuracy.
pub fn softmax_rows(logits: &[f32], k: usize) -> Vec<Vec<f64>> {
    logits
        .chunks(k)
        .map(|row| {
            let m = row.iter().cloned().fold(f32::NEG_INFINITY, f32::max) as f64;
            let e: Vec<f64> = row.iter().map(|&v| (v as f64 - m).exp()).collect();
            let s: f64 = e.iter().sum();
            e.into_iter().map(|v| v / s).collect()
        })
        .collect()
}

/// Indices of the `k` largest values, largest first.
pub fn top_k(values: &[f64], k: usize) -> Vec<usize> {
    let mut idx: Vec<usize> = (0..values.len()).collect();
    idx.sort_by(|&a, &b| values[b].total_cmp(&values[a]));
    idx.truncate(k);
    idx
}

// ---------------------------------------------------------------------------------------------
// The gradient-ascent loop. Fooling images (CS231n, FGSM, PGD) and class visualizations are
// all configurations of `ascend`: an objective to maximize, a parametrization of the image,
// differentiable transforms applied before the network, a step rule, a constraint, an
// optional post-step filter and a stop rule. Method files only fill in an `Ascent`.
// ---------------------------------------------------------------------------------------------

use crate::imaging::filters::gaussian_blur;
use crate::imaging::Normalization;
use rand::rngs::StdRng;

/// How the optimized variable becomes the image the objective sees. The identity
/// ([`PixelParam`]) optimizes normalized pixels directly.
pub trait Parametrization {
    /// The normalized image `[N, 3, H, W]` from the variable (differentiable).
    fn image(&self, theta: Tensor<4>) -> Tensor<4>;
}

/// Optimize normalized pixels directly.
pub struct PixelParam;

impl Parametrization for PixelParam {
    fn image(&self, theta: Tensor<4>) -> Tensor<4> {
        theta
    }
}

/// A differentiable transform applied to the image before the network (jitter, scale...).
/// It draws its randomness from `rng`, so a seed fixes the whole run.
pub trait Transform {
    fn apply(&self, x: Tensor<4>, rng: &mut StdRng) -> Tensor<4>;
}

/// How a step is taken from the gradient `g` of the objective (ascent).
#[derive(Debug, Clone)]
pub enum Step {
    /// `θ += lr · g / ‖g‖₂`, the norm taken per image (CS231n).
    NormalizedL2 { lr: f32 },
    /// `θ += size_c · sign(g)` with a per-channel size (FGSM, L∞ PGD).
    Sign { size: [f32; 3] },
    /// `θ += size · g / ‖g‖₂` measured in pixel units (L2 PGD): the per-channel scale turns
    /// pixel units into normalized units.
    PixelL2 { size: f32, scale: [f32; 3] },
    /// Adam (Kingma & Ba 2015) on the variable, ascending.
    Adam {
        lr: f32,
        beta1: f32,
        beta2: f32,
        eps: f32,
    },
}

/// Where the image may go after a step.
#[derive(Debug, Clone, Default)]
pub struct Constraint {
    /// Clamp each channel to the valid pixel range of this normalization.
    pub pixel_box: Option<Normalization>,
    /// Stay within an L∞ ball of this radius (pixel units) around `center`.
    pub linf: Option<f32>,
    /// Stay within an L2 ball of this radius (pixel units) around `center`.
    pub l2: Option<f32>,
    /// The centre of the ball (normalized values, flat `[N, 3, H, W]`).
    pub center: Vec<f32>,
    /// Normalization used to convert pixel units to normalized ones for the balls.
    pub norm: Option<Normalization>,
}

/// A filter applied to the image between steps.
#[derive(Debug, Clone)]
pub enum PostStep {
    /// Gaussian blur of `sigma` pixels every `every` iterations (`t % every == 0`, as in the
    /// CS231n loop).
    Blur { every: usize, sigma: f32 },
}

/// When a run stops.
#[derive(Debug, Clone)]
pub enum Stop {
    /// After exactly this many iterations.
    Iterations(usize),
    /// When the image *as saved* (clamped, 8-bit) is classified as `targets[i]` (or, with
    /// `untargeted`, as anything but `targets[i]`), at most `max` iterations. Images that
    /// succeed stop moving while the others go on.
    Classified {
        targets: Vec<usize>,
        untargeted: bool,
        max: usize,
        norm: Normalization,
    },
}

/// One iteration's news, for progress bars and snapshots.
pub struct Progress<'a> {
    /// Iterations done so far (1-based after the first step).
    pub iteration: usize,
    /// Objective per image before this step.
    pub objective: &'a [f32],
    /// Logits per image (flat `[N, K]`) before this step.
    pub logits: &'a [f32],
    /// The variable after this step (flat `[N, 3, H, W]`).
    pub theta: &'a [f32],
    /// Which images are finished.
    pub done: &'a [bool],
}

/// A configured gradient-ascent run.
pub struct Ascent<'a> {
    pub objective: &'a dyn Objective,
    pub param: &'a dyn Parametrization,
    pub transforms: Vec<&'a dyn Transform>,
    pub step: Step,
    pub constraint: Constraint,
    pub post: Option<PostStep>,
    pub stop: Stop,
}

/// What a run returns.
#[derive(Debug, Clone)]
pub struct AscentResult {
    /// The final variable, flat `[N, 3, H, W]` (for [`PixelParam`], the normalized images).
    pub theta: Vec<f32>,
    /// Iterations each image took.
    pub iterations: Vec<usize>,
    /// Whether each image met the stop rule's condition (always true for `Iterations`).
    pub success: Vec<bool>,
}

/// Rounds normalized values to what an 8-bit image saves: clamp to 0–255 and quantize.
pub fn quantize(values: &[f32], shape: [usize; 4], norm: &Normalization) -> Vec<f32> {
    let plane = shape[2] * shape[3];
    values
        .iter()
        .enumerate()
        .map(|(i, &v)| {
            let c = (i / plane) % 3;
            norm.apply(c, norm.invert(c, v).round().clamp(0.0, 255.0))
        })
        .collect()
}

/// [`quantize`], then kept inside the constraint's L∞ / L2 ball as measured on the saved
/// 8-bit values: a pixel that rounding pushed outside the L∞ ball is rounded towards the
/// centre instead, and while the saved image is outside the L2 ball, the pixels that rounding
/// moved away from the centre are rounded towards it (largest gain first). Without a ball this
/// is exactly [`quantize`]. Values must already satisfy the constraint (as after a step).
pub fn quantize_within(
    values: &[f32],
    shape: [usize; 4],
    norm: &Normalization,
    c: &Constraint,
) -> Vec<f32> {
    let Some(cnorm) = c
        .norm
        .filter(|_| !c.center.is_empty() && (c.linf.is_some() || c.l2.is_some()))
    else {
        return quantize(values, shape, norm);
    };
    let plane = shape[2] * shape[3];
    let per = 3 * plane;
    let mut out = Vec::with_capacity(values.len());
    for (img, cen) in values.chunks(per).zip(c.center.chunks(per)) {
        let chan = |j: usize| (j / plane) % 3;
        // Pixel values: unrounded, centre, nearest rounding, rounding towards the centre.
        let v: Vec<f32> = img
            .iter()
            .enumerate()
            .map(|(j, &x)| cnorm.invert(chan(j), x))
            .collect();
        // The centre is normally an 8-bit image: snap its float round-off to the integer.
        let snap = |x: f32| {
            if (x - x.round()).abs() < 1e-3 {
                x.round()
            } else {
                x
            }
        };
        let p0: Vec<f32> = cen
            .iter()
            .enumerate()
            .map(|(j, &x)| snap(cnorm.invert(chan(j), x)))
            .collect();
        let inward = |j: usize| {
            let r = if v[j] > p0[j] {
                v[j].floor()
            } else {
                v[j].ceil()
            };
            r.clamp(0.0, 255.0)
        };
        let mut q: Vec<f32> = v.iter().map(|x| x.round().clamp(0.0, 255.0)).collect();
        if let Some(eps) = c.linf {
            for j in 0..q.len() {
                if (q[j] - p0[j]).abs() > eps {
                    q[j] = inward(j);
                }
            }
        }
        if let Some(eps) = c.l2 {
            let d2 = |q: &[f32]| q.iter().zip(&p0).map(|(a, b)| (a - b).powi(2)).sum::<f32>();
            let mut total = d2(&q);
            if total > eps * eps {
                let mut gains: Vec<(f32, usize)> = (0..q.len())
                    .filter_map(|j| {
                        let g = (q[j] - p0[j]).powi(2) - (inward(j) - p0[j]).powi(2);
                        (g > 0.0).then_some((g, j))
                    })
                    .collect();
                gains.sort_by(|a, b| b.0.total_cmp(&a.0));
                for (g, j) in gains {
                    if total <= eps * eps {
                        break;
                    }
                    q[j] = inward(j);
                    total -= g;
                }
            }
        }
        out.extend(q.iter().enumerate().map(|(j, &p)| norm.apply(chan(j), p)));
    }
    out
}

fn argmax(row: &[f32]) -> usize {
    row.iter()
        .enumerate()
        .fold((0, f32::NEG_INFINITY), |(bi, bv), (i, &v)| {
            if v > bv {
                (i, v)
            } else {
                (bi, bv)
            }
        })
        .0
}

/// Runs the loop from `theta0` (flat `[N, 3, H, W]`), reporting each iteration to
/// `progress` (return `false` from it to stop early).
pub fn ascend(
    model: &dyn Classifier,
    a: &Ascent,
    theta0: Vec<f32>,
    shape: [usize; 4],
    rng: &mut StdRng,
    progress: &mut dyn FnMut(&Progress) -> bool,
) -> Result<AscentResult> {
    let [n, _, h, w] = shape;
    let per = theta0.len() / n.max(1);
    let plane = h * w;
    let mut theta = theta0;
    let mut done = vec![false; n];
    let mut success = vec![false; n];
    let mut iterations = vec![0usize; n];
    let mut adam = match a.step {
        Step::Adam { .. } => Some((vec![0f32; theta.len()], vec![0f32; theta.len()])),
        _ => None,
    };
    let max_iter = match &a.stop {
        Stop::Iterations(k) => *k,
        Stop::Classified { max, .. } => *max,
    };
    for t in 0..max_iter {
        let var = engine::tensor(theta.clone(), shape).require_grad();
        let img = a.param.image(var.clone());
        let mut x = img.clone();
        for tr in &a.transforms {
            x = tr.apply(x, rng);
        }
        let lg = model.forward(x);
        let obj = a.objective.evaluate(lg.clone(), &img);
        let grads = obj.clone().sum().backward();
        let g =
            tensor_values(var.grad(&grads).ok_or_else(|| {
                Error::Invalid("the objective does not depend on the image".into())
            })?);
        let obj_v = tensor_values(obj.detach());
        let lg_v = tensor_values(lg.detach());
        if let Stop::Classified {
            targets,
            untargeted,
            norm,
            ..
        } = &a.stop
        {
            // Judge the image as it would be saved, but only where the unquantized image
            // already meets the goal (when the network saw it untransformed).
            let k = lg_v.len() / n;
            let hit = |row: &[f32], i: usize| (argmax(row) == targets[i]) != *untargeted;
            let candidates: Vec<usize> = (0..n)
                .filter(|&i| {
                    !done[i] && (!a.transforms.is_empty() || hit(&lg_v[i * k..(i + 1) * k], i))
                })
                .collect();
            if !candidates.is_empty() {
                let q = quantize_within(&theta, shape, norm, &a.constraint);
                let l = logits(model, engine::tensor(q, shape));
                for i in candidates {
                    if hit(&l[i * k..(i + 1) * k], i) {
                        done[i] = true;
                        success[i] = true;
                    }
                }
            }
            if done.iter().all(|&d| d) {
                break;
            }
        }
        for i in 0..n {
            if done[i] {
                continue;
            }
            iterations[i] += 1;
            let (th, gi) = (
                &mut theta[i * per..(i + 1) * per],
                &g[i * per..(i + 1) * per],
            );
            match &a.step {
                Step::NormalizedL2 { lr } => {
                    // Summed in f64: an f32 running sum over ~1e5 terms is off by ~1e-5.
                    let norm = (gi.iter().map(|&v| f64::from(v).powi(2)).sum::<f64>().sqrt()
                        as f32)
                        .max(1e-12);
                    th.iter_mut()
                        .zip(gi)
                        .for_each(|(p, gv)| *p += lr * gv / norm);
                }
                Step::Sign { size } => {
                    for (j, (p, gv)) in th.iter_mut().zip(gi).enumerate() {
                        *p += size[(j / plane) % 3] * gv.signum() * f32::from(*gv != 0.0);
                    }
                }
                Step::PixelL2 { size, scale } => {
                    // ‖g‖ measured in pixel units: δ_px = δ_norm / scale_c.
                    let norm = gi
                        .iter()
                        .enumerate()
                        .map(|(j, v)| (v * scale[(j / plane) % 3]).powi(2))
                        .sum::<f32>()
                        .sqrt()
                        .max(1e-12);
                    for (j, (p, gv)) in th.iter_mut().zip(gi).enumerate() {
                        let s = scale[(j / plane) % 3];
                        // step along g in pixel space, converted back to normalized units
                        *p += size * (gv * s / norm) * s;
                    }
                }
                Step::Adam {
                    lr,
                    beta1,
                    beta2,
                    eps,
                } => {
                    if let Some((m, v)) = adam.as_mut() {
                        let (mi, vi) = (
                            &mut m[i * per..(i + 1) * per],
                            &mut v[i * per..(i + 1) * per],
                        );
                        let tt = iterations[i] as i32;
                        let (c1, c2) = (1.0 - beta1.powi(tt), 1.0 - beta2.powi(tt));
                        for j in 0..per {
                            mi[j] = beta1 * mi[j] + (1.0 - beta1) * gi[j];
                            vi[j] = beta2 * vi[j] + (1.0 - beta2) * gi[j] * gi[j];
                            th[j] += lr * (mi[j] / c1) / ((vi[j] / c2).sqrt() + eps);
                        }
                    }
                }
            }
            project(th, &a.constraint, i * per, plane);
            if let Some(PostStep::Blur { every, sigma }) = &a.post {
                if *every > 0 && t % every == 0 {
                    gaussian_blur(th, h, w, *sigma);
                }
            }
        }
        if matches!(a.stop, Stop::Iterations(_)) {
            success.fill(true);
        }
        let keep_going = progress(&Progress {
            iteration: t + 1,
            objective: &obj_v,
            logits: &lg_v,
            theta: &theta,
            done: &done,
        });
        if !keep_going {
            break;
        }
    }
    // A `Classified` run that used all its iterations still gets a last verdict.
    if let Stop::Classified {
        targets,
        untargeted,
        norm,
        ..
    } = &a.stop
    {
        let q = quantize_within(&theta, shape, norm, &a.constraint);
        let l = logits(model, engine::tensor(q, shape));
        let k = l.len() / n;
        for i in 0..n {
            let pred = argmax(&l[i * k..(i + 1) * k]);
            success[i] = (pred == targets[i]) != *untargeted;
        }
    }
    Ok(AscentResult {
        theta,
        iterations,
        success,
    })
}

/// Projects one image's values (starting at flat offset `offset`) onto the constraint.
fn project(th: &mut [f32], c: &Constraint, offset: usize, plane: usize) {
    let chan = |j: usize| (j / plane) % 3;
    if let (Some(norm), false) = (c.norm, c.center.is_empty()) {
        let center = &c.center[offset..offset + th.len()];
        if let Some(eps) = c.linf {
            for (j, (p, &c0)) in th.iter_mut().zip(center).enumerate() {
                let e = eps * norm.pixel_unit(chan(j));
                *p = p.clamp(c0 - e, c0 + e);
            }
        }
        if let Some(eps) = c.l2 {
            let d2: f32 = th
                .iter()
                .zip(center)
                .enumerate()
                .map(|(j, (p, c0))| ((p - c0) / norm.pixel_unit(chan(j))).powi(2))
                .sum();
            let d = d2.sqrt();
            if d > eps {
                let s = eps / d;
                th.iter_mut()
                    .zip(center)
                    .for_each(|(p, c0)| *p = c0 + (*p - c0) * s);
            }
        }
    }
    if let Some(norm) = c.pixel_box {
        for (j, p) in th.iter_mut().enumerate() {
            let (lo, hi) = norm.range(chan(j));
            *p = p.clamp(lo, hi);
        }
    }
}
