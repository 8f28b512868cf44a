//! Whole methods timed as a user runs them (`netlens bench`'s method table), each beside the
//! library the user would otherwise run (`tools/reference/bench_methods.py`, same settings):
//!
//! | name | netlens | anchor |
//! |---|---|---|
//! | `smoothgrad50` | SmoothGrad over the vanilla gradient, 50 samples, σ 0.15 × range, 10 images per pass | Captum `NoiseTunnel(Saliency)`, `nt_samples_batch_size` 2 (× 5 images) |
//! | `ig64` | Integrated Gradients, 64 gradients from black, 10 per pass | Captum `IntegratedGradients`, `n_steps` 64, `internal_batch_size` 10 |
//! | `gradcam` | Grad-CAM on the default layer, batch 5 | pytorch-grad-cam `GradCAM` on the head activation |
//! | `pgd20` | PGD L∞ ε 8, step 2 (pixel units), 20 steps every one taken, random start, batch 5 | torchattacks `PGD(eps=8/255, alpha=2/255, steps=20)` |
//! | `classviz200` | 200 iterations of `visualize`'s default recipe, class 366 | the practical's loop |
//!
//! Every method explains (or attacks) each photo's top-1 class. One untimed forward+backward of
//! the batch warms the engine up, one untimed whole run counts the method's FLOPs on the fast
//! path ([`super::profile::count_flops`]); then the median of whole runs.

use super::inputs::CLASS;
use super::measure::{measure, Budget};
use super::profile::count_flops;
use super::records::PassRecord;
use crate::adversarial::pgd::Pgd;
use crate::adversarial::{attack, Attack, AttackMethod, Goal};
use crate::batch::ImageBatch;
use crate::classify::classify;
use crate::error::{Error, Result};
use crate::gradients::{input_gradient, ClassScore};
use crate::models::Classifier;
use crate::saliency::{
    build, Baseline, IntegratedGradientsConfig, Method, Run, Settings, SmoothGradConfig, Targets,
};
use crate::synthesis::cs231n::{self, Cs231nRecipe};
use image::RgbImage;

/// The methods of the table, in its order.
pub const METHODS: [&str; 5] = ["smoothgrad50", "ig64", "gradcam", "pgd20", "classviz200"];

/// Images (or noisy copies, or path points) per pass for SmoothGrad and IG: Captum's two
/// samples (steps) × five photos.
const PER_PASS: usize = 10;

/// What `name` runs, in words (for the table's legend).
pub fn describe(name: &str) -> Option<&'static str> {
    Some(match name {
        "smoothgrad50" => "SmoothGrad, 50 samples, vs Captum NoiseTunnel(Saliency)",
        "ig64" => "Integrated Gradients, 64 steps, vs Captum IntegratedGradients",
        "gradcam" => "Grad-CAM, vs pytorch-grad-cam GradCAM",
        "pgd20" => "PGD L∞ ε 8/255, 20 steps, vs torchattacks PGD",
        "classviz200" => "class visualization, 200 iterations, vs the practical's loop",
        _ => return None,
    })
}

/// Times method `name` on `photos` (already at the model's input size), `repeats` whole runs,
/// recorded as `variant`.
pub fn time_method(
    model: &dyn Classifier,
    name: &str,
    photos: &[RgbImage],
    repeats: usize,
    variant: &str,
) -> Result<PassRecord> {
    if photos.is_empty() {
        return Err(Error::Invalid("the method table needs photos".into()));
    }
    let x = ImageBatch::from_images(photos, &model.spec().normalization)?;
    let classes: Vec<usize> = classify(model, photos, 1, photos.len())
        .iter()
        .map(|p| p.class())
        .collect();
    // Warm-up: one forward + backward of the batch.
    input_gradient(
        model,
        x.to_tensor(model.precision()),
        &ClassScore {
            targets: classes.clone(),
        },
    )?;
    let budget = Budget {
        warmup: 0,
        repeats,
        seconds: 0.0,
    };
    let saliency = |method: Method, settings: Settings, batch: usize| -> Result<()> {
        let m = build(method, &settings)?;
        let mut tick = |_| {};
        let mut run = Run::new(batch, &mut tick);
        m.attribute(
            model,
            x.view(),
            &Targets::PerImage(classes.clone()),
            &mut run,
        )?;
        Ok(())
    };
    let pgd = Attack {
        method: AttackMethod::Pgd(Pgd {
            steps: 20,
            step_size: Some(2.0),
            full_steps: true,
            ..Pgd::linf(8.0)
        }),
        goal: Goal::Untargeted,
        batch: photos.len(),
    };
    let recipe = Cs231nRecipe {
        iterations: 200,
        ..Cs231nRecipe::default()
    };
    let mut once: Box<dyn FnMut() -> Result<()> + '_> = match name {
        "smoothgrad50" => Box::new(|| {
            let settings = Settings {
                smoothgrad: SmoothGradConfig {
                    samples: 50,
                    noise: 0.15,
                    ..SmoothGradConfig::default()
                },
                ..Settings::default()
            };
            saliency(Method::SmoothGrad, settings, PER_PASS)
        }),
        "ig64" => Box::new(|| {
            let settings = Settings {
                integrated_gradients: IntegratedGradientsConfig {
                    steps: 64,
                    baseline: Baseline::Black,
                },
                ..Settings::default()
            };
            saliency(Method::IntegratedGradients, settings, PER_PASS)
        }),
        "gradcam" => Box::new(|| saliency(Method::GradCam, Settings::default(), photos.len())),
        "pgd20" => Box::new(|| attack(model, photos, &pgd, &mut |_, _| {}).map(|_| ())),
        "classviz200" => {
            Box::new(|| cs231n::visualize(model, CLASS, &recipe, 0, &mut |_| {}).map(|_| ()))
        }
        other => {
            return Err(Error::Invalid(format!(
                "unknown method {other:?} for the method table; one of {}",
                METHODS.join(", ")
            )))
        }
    };
    let flops = count_flops(&mut once)?;
    let timing = measure(once, budget)?;
    Ok(PassRecord {
        name: name.to_string(),
        variant: variant.to_string(),
        batch: if name == "classviz200" {
            1
        } else {
            photos.len()
        },
        timing,
        flops,
    })
}
