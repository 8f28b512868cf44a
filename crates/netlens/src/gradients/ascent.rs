//! The one gradient-ascent loop. Fooling images (CS231n, FGSM, PGD) and class visualizations
//! are all configurations of [`ascend`]: an [`Objective`] to maximize, a [`Parametrization`]
//! of the image, differentiable [`Transform`]s applied before the network, a [`Step`] rule
//! (run by an [`Optimizer`], which keeps each image's state), a [`Constraint`], an optional
//! post-step filter and a [`Stop`] rule. Method files only fill in an [`Ascent`].

use super::constraint::Constraint;
use super::objective::Objective;
use super::optimizer::{Optimizer, Step};
use super::parametrization::{Parametrization, Transform};
use crate::batch::ImageBatch;
use crate::classify::{argmax, logits};
use crate::engine::tensor_values;
use crate::error::{Error, Result};
use crate::imaging::filters::gaussian_blur;
use crate::imaging::Normalization;
use crate::models::Classifier;
use rand::rngs::StdRng;

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
    /// When the image *as saved* — the parametrization's image, clamped and rounded to 8
    /// bits inside the constraint's ball — is classified as `targets[i]` (or, with
    /// `untargeted`, as anything but `targets[i]`), at most `max` iterations. Images that
    /// succeed stop moving while the others go on.
    Classified {
        targets: Vec<usize>,
        untargeted: bool,
        max: usize,
        norm: Normalization,
    },
}

impl Stop {
    /// The most iterations a run can take.
    pub fn max_iterations(&self) -> usize {
        match self {
            Stop::Iterations(k) => *k,
            Stop::Classified { max, .. } => *max,
        }
    }
}

/// One iteration's news, for progress bars and snapshots.
pub struct Progress<'a> {
    /// Iterations done so far (1-based after the first step).
    pub iteration: usize,
    /// Objective per image before this step.
    pub objective: &'a [f32],
    /// Logits per image (flat `[N, K]`) before this step.
    pub logits: &'a [f32],
    /// The variable after this step.
    pub theta: &'a ImageBatch,
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

impl Ascent<'_> {
    /// The images of variable `theta` as an 8-bit file saves them, as normalized values with
    /// normalization `norm`: the parametrization's image, rounded inside the constraint's
    /// ball.
    pub fn saved(&self, theta: &ImageBatch, norm: &Normalization) -> ImageBatch {
        self.constraint.quantize(&self.param.pixels(theta), norm)
    }
}

/// What a run returns.
#[derive(Debug, Clone)]
pub struct AscentResult {
    /// The final variable (for [`super::PixelParam`], the normalized images).
    pub theta: ImageBatch,
    /// Iterations each image took.
    pub iterations: Vec<usize>,
    /// Whether each image met the stop rule's condition (always true for `Iterations`).
    pub success: Vec<bool>,
}

/// The network's top-1 class of each image of `theta` as saved.
fn saved_classes(
    model: &dyn Classifier,
    a: &Ascent,
    theta: &ImageBatch,
    norm: &Normalization,
) -> Vec<usize> {
    let l = logits(model, a.saved(theta, norm).to_tensor(model.precision()));
    let k = l.len() / theta.len().max(1);
    l.chunks(k.max(1)).map(argmax).collect()
}

/// Runs the loop from `theta0`, reporting each iteration to `progress` (return `false` from
/// it to stop early). The variable lives on the host, where the step rules and projections
/// work image by image; each iteration makes it a tensor once, and only its gradient, the
/// objective and the logits come back.
pub fn ascend(
    model: &dyn Classifier,
    a: &Ascent,
    theta0: ImageBatch,
    rng: &mut StdRng,
    progress: &mut dyn FnMut(&Progress) -> bool,
) -> Result<AscentResult> {
    let shape = theta0.shape();
    let [n, _, h, w] = shape;
    let mut theta = theta0;
    let mut optimizer = Optimizer::new(a.step.clone(), shape);
    let mut done = vec![false; n];
    let mut success = vec![false; n];
    let mut iterations = vec![0usize; n];
    for t in 0..a.stop.max_iterations() {
        let var = theta.to_tensor(model.precision()).require_grad();
        let img = a.param.image(var.clone());
        let mut x = img.clone();
        for tr in &a.transforms {
            x = tr.apply(x, rng);
        }
        let lg = model.forward(x);
        let obj = a.objective.evaluate(lg.clone(), &img);
        let grads = obj.clone().sum().backward();
        let g =
            ImageBatch::from_tensor(var.grad(&grads).ok_or_else(|| {
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
            let hit = |c: usize, i: usize| (c == targets[i]) != *untargeted;
            let candidates: Vec<usize> = (0..n)
                .filter(|&i| {
                    !done[i]
                        && (!a.transforms.is_empty() || hit(argmax(&lg_v[i * k..(i + 1) * k]), i))
                })
                .collect();
            if !candidates.is_empty() {
                let classes = saved_classes(model, a, &theta, norm);
                for i in candidates {
                    if hit(classes[i], i) {
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
            optimizer.step(i, &mut theta, &g);
            a.constraint.project(&mut theta, i);
            if let Some(PostStep::Blur { every, sigma }) = &a.post {
                if *every > 0 && t % every == 0 {
                    gaussian_blur(theta.image_mut(i), h, w, *sigma);
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
        let classes = saved_classes(model, a, &theta, norm);
        for i in 0..n {
            success[i] = (classes[i] == targets[i]) != *untargeted;
        }
    }
    Ok(AscentResult {
        theta,
        iterations,
        success,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gradients::{ClassScore, PixelParam};
    use crate::models::{zoo, ModelSpec};
    use burn::tensor::Tensor;
    use rand::SeedableRng;

    /// Two classes: logits `[mean(x), −mean(x)]`.
    struct Mean;

    impl Classifier for Mean {
        fn spec(&self) -> &ModelSpec {
            &zoo()[0]
        }
        fn load_options(&self) -> crate::engine::LoadOptions {
            crate::engine::LoadOptions::default()
        }
        fn forward(&self, x: Tensor<4>) -> Tensor<2> {
            let [n, c, h, w] = x.dims();
            let m = x.reshape([n, c * h * w]).mean_dim(1);
            Tensor::cat(vec![m.clone(), -m], 1)
        }
        fn classes(&self) -> usize {
            2
        }
        fn layers(&self) -> Vec<String> {
            Vec::new()
        }
        fn cam_layer(&self) -> String {
            String::new()
        }
        fn forward_to(&self, _: Tensor<4>, _: &str) -> Result<Tensor<4>> {
            Err(Error::Invalid("no layers".into()))
        }
        fn forward_from(&self, _: Tensor<4>, _: &str) -> Result<Tensor<2>> {
            Err(Error::Invalid("no layers".into()))
        }
    }

    /// The image is `−θ`: a variable that is not the image.
    struct Negated;

    impl Parametrization for Negated {
        fn image(&self, theta: Tensor<4>) -> Tensor<4> {
            -theta
        }
    }

    fn run(param: &dyn Parametrization, theta0: f32) -> AscentResult {
        let norm = Normalization::LITE;
        let a = Ascent {
            objective: &ClassScore { targets: vec![0] },
            param,
            transforms: Vec::new(),
            step: Step::NormalizedL2 { lr: 1.0 },
            constraint: Constraint::default(),
            post: None,
            stop: Stop::Classified {
                targets: vec![0],
                untargeted: false,
                max: 5,
                norm,
            },
        };
        let mut rng = StdRng::seed_from_u64(0);
        let shape = [1, 3, 2, 2];
        let theta0 = ImageBatch::new(vec![theta0; 12], shape).unwrap();
        ascend(&Mean, &a, theta0, &mut rng, &mut |_| true).unwrap()
    }

    #[test]
    fn the_stop_rule_judges_the_image_not_the_variable() {
        // Pixels: one step of −1/√12 per value turns the image positive, then it stops.
        let r = run(&PixelParam, -0.1);
        assert_eq!((r.iterations[0], r.success[0]), (1, true));
        // Image −θ: the same run in the variable's sign. Judging θ as if it were pixels
        // would see a negative mean forever and take all five steps.
        let r = run(&Negated, 0.1);
        assert_eq!((r.iterations[0], r.success[0]), (1, true));
        assert!(r.theta.values().iter().all(|&v| v < 0.0));
    }
}
