//! The evaluation loop: each image's top-1 class, then per method its maps and every metric
//! asked for on them (per image), the maps again on the fully re-drawn network for the
//! randomization metric, and the randomization tests step by step on the first image.

use super::cascade::randomization_tests;
use super::results::{CurveSet, Evaluation, Means, Row};
use super::{Config, Progress};
use crate::error::{Error, Result};
use crate::imaging::tensor::tensor_values;
use crate::imaging::{images_to_tensor_as, Placement};
use crate::metrics::deletion_insertion::{self as di, Direction};
use crate::metrics::pointing;
use crate::metrics::randomization::{randomized_model, spearman};
use crate::metrics::road::{self, RoadOrder};
use crate::metrics::{self, infidelity, max_sensitivity, Metric};
use crate::models::{Classifier, GraphModel};
use crate::saliency::locate::BoundingBox;
use crate::saliency::{Map, Run, Targets};
use image::RgbImage;

/// One image to evaluate on, fitted to the model's input.
#[derive(Debug, Clone)]
pub struct Image {
    /// Its name in the results (the CLI: the path as given).
    pub name: String,
    /// The image at the model's input size.
    pub input: RgbImage,
    /// Where the input lies in the original photo.
    pub placement: Placement,
    /// Its object boxes in the photo's pixels (pointing game, IoU); None: those are NaN.
    pub boxes: Option<Vec<BoundingBox>>,
}

/// The network evaluated: a graph network (any metric), or any classifier (every metric
/// but randomization, which re-draws a graph's weights).
#[derive(Clone, Copy)]
pub enum Network<'a> {
    Graph(&'a GraphModel),
    Any(&'a dyn Classifier),
}

impl<'a> Network<'a> {
    fn classifier(&self) -> &'a dyn Classifier {
        match *self {
            Network::Graph(g) => g,
            Network::Any(m) => m,
        }
    }
}

/// `e` with `what` in front, its kind kept.
fn within(what: String) -> impl FnOnce(Error) -> Error {
    move |e| match e {
        Error::Invalid(s) => Error::Invalid(format!("{what}: {s}")),
        Error::Graph(s) => Error::Graph(format!("{what}: {s}")),
        other => other,
    }
}

/// Evaluates `config`'s methods with its metrics on `images` with `network`, named `model`
/// in the results. Each image's maps explain its top-1 class.
pub fn run(
    network: Network<'_>,
    model_name: &str,
    images: &[Image],
    config: &Config,
    progress: &dyn Progress,
) -> Result<Evaluation> {
    config.check()?;
    if images.is_empty() {
        return Err(Error::Invalid("no image given".into()));
    }
    let graph = match network {
        Network::Graph(g) => Some(g),
        Network::Any(_) if config.needs_graph() => {
            return Err(Error::Invalid(
                "randomization needs a graph network (open the model with \
                 metrics::randomization::open_graph_model)"
                    .into(),
            ))
        }
        Network::Any(_) => None,
    };
    let model = network.classifier();
    let methods = config.attributions()?;
    let has = |m: Metric| config.has(m);
    let (road, infid, sensitivity) = (config.road(), config.infidelity(), config.sensitivity());
    let spec = model.spec().clone();
    let names: Vec<String> = images.iter().map(|i| i.name.clone()).collect();
    let mut notes = Vec::new();
    if config.needs_boxes() && images.iter().any(|i| i.boxes.is_none()) {
        let missing: Vec<&str> = images
            .iter()
            .filter(|i| i.boxes.is_none())
            .map(|i| i.name.as_str())
            .collect();
        let note = format!(
            "no object boxes for {}: pointing-game and iou are left empty there",
            missing.join(", ")
        );
        progress.note(&note);
        notes.push(note);
    }
    let inputs: Vec<RgbImage> = images.iter().map(|i| i.input.clone()).collect();
    let batch = config.batch_size;
    let preds = crate::classify::classify(model, &inputs, 1, batch);
    let targets = Targets::PerImage(preds.iter().map(|p| p.class()).collect());
    let x = images_to_tensor_as(model.precision(), &inputs, &spec.normalization);
    let [n, _, h, w] = x.dims();
    let flat = tensor_values(x.clone());
    let plane = h * w;
    let image_of = |i: usize| &flat[i * 3 * plane..(i + 1) * 3 * plane];

    let randomized = match graph {
        Some(g) => {
            progress.stage("re-drawing every learned layer", 0);
            let r = randomized_model(g, &spec, usize::MAX, config.seed);
            progress.done();
            Some(r.map_err(within("cannot build the randomized network".into()))?)
        }
        None => None,
    };

    // Progress over every image pass.
    let per_curve = config.curve_passes(plane, n);
    let count = |m: Metric, k: usize| usize::from(has(m)) * k;
    let total: usize = methods
        .iter()
        .map(|m| {
            m.passes(n)
                + count(Metric::Deletion, per_curve)
                + count(Metric::Insertion, per_curve)
                + count(Metric::RoadMorf, road::passes(&road) * n)
                + count(Metric::RoadLerf, road::passes(&road) * n)
                + usize::from(randomized.is_some()) * m.passes(n)
                + count(Metric::Infidelity, infidelity::passes(&infid) * n)
                + count(
                    Metric::MaxSensitivity,
                    max_sensitivity::passes(m.as_ref(), n, &sensitivity),
                )
        })
        .sum();
    progress.stage(&format!("evaluating on {}", spec.name), total);
    let mut tick = |k: usize| progress.tick(k);
    let mut run = Run::new(batch, &mut tick);

    let mut rows: Vec<Row> = Vec::new();
    let mut sets: Vec<CurveSet> = Vec::new();
    for method in &methods {
        let mname = method.name();
        progress.message(&format!("{mname}: maps"));
        let maps: Vec<Map> = method
            .attribute(model, &x, &targets, &mut run)
            .map_err(within(format!("{mname} failed")))?;
        let mags: Vec<Vec<f32>> = maps.iter().map(Map::magnitude).collect();
        let mut push = |i: usize, metric: Metric, value: f64| {
            rows.push(Row {
                image: names[i].clone(),
                method: mname.clone(),
                metric,
                value,
            })
        };
        for (dir, metric, fill) in [
            (
                Direction::Deletion,
                Metric::Deletion,
                config.deletion_baseline,
            ),
            (
                Direction::Insertion,
                Metric::Insertion,
                config.insertion_baseline,
            ),
        ] {
            if !has(metric) {
                continue;
            }
            progress.message(&format!("{mname}: {}", metric.name()));
            let mut set = CurveSet {
                method: mname.clone(),
                metric,
                x: Vec::new(),
                ys: Vec::with_capacity(n),
            };
            for (i, (m, mag)) in maps.iter().zip(&mags).enumerate() {
                let c = di::curve(
                    model,
                    image_of(i),
                    h,
                    w,
                    mag,
                    m.target,
                    dir,
                    fill,
                    config.step,
                    &mut run,
                )?;
                push(i, metric, c.auc);
                set.x = c.fractions;
                set.ys.push(c.scores);
            }
            sets.push(set);
        }
        for (o, metric) in [
            (RoadOrder::Morf, Metric::RoadMorf),
            (RoadOrder::Lerf, Metric::RoadLerf),
        ] {
            if !has(metric) {
                continue;
            }
            progress.message(&format!("{mname}: {}", metric.name()));
            let mut set = CurveSet {
                method: mname.clone(),
                metric,
                x: road.percentages.iter().map(|p| p / 100.0).collect(),
                ys: Vec::with_capacity(n),
            };
            for (i, (m, mag)) in maps.iter().zip(&mags).enumerate() {
                let c =
                    road::road_curve(model, image_of(i), h, w, mag, m.target, o, &road, &mut run)
                        .map_err(within(format!("{mname}: {} failed", metric.name())))?;
                push(i, metric, c.score);
                set.ys.push(c.probabilities);
            }
            sets.push(set);
        }
        if let Some(r) = &randomized {
            progress.message(&format!("{mname}: on the randomized network"));
            let rmaps = method
                .attribute(r, &x, &targets, &mut run)
                .map_err(within(format!("{mname} on the randomized network failed")))?;
            for (i, (m, rm)) in mags.iter().zip(&rmaps).enumerate() {
                push(i, Metric::Randomization, spearman(m, &rm.magnitude())?);
            }
        }
        if has(Metric::Infidelity) {
            progress.message(&format!("{mname}: infidelity"));
            for (i, m) in maps.iter().enumerate() {
                let v = infidelity::infidelity(
                    model,
                    image_of(i),
                    h,
                    w,
                    &m.values,
                    m.target,
                    &infid,
                    i,
                    &mut run,
                )
                .map_err(within(format!("{mname}: infidelity failed")))?;
                push(i, Metric::Infidelity, v);
            }
        }
        if has(Metric::MaxSensitivity) {
            progress.message(&format!("{mname}: max-sensitivity"));
            let v = max_sensitivity::max_sensitivity(
                model,
                method.as_ref(),
                &flat,
                [n, 3, h, w],
                &maps,
                &sensitivity,
                &mut run,
            )
            .map_err(within(format!("{mname}: max-sensitivity failed")))?;
            for (i, v) in v.into_iter().enumerate() {
                push(i, Metric::MaxSensitivity, v);
            }
        }
        for (i, (m, mag)) in maps.iter().zip(&mags).enumerate() {
            if has(Metric::Sparseness) {
                push(i, Metric::Sparseness, metrics::sparseness(mag));
            }
            if has(Metric::Complexity) {
                push(i, Metric::Complexity, metrics::complexity(mag));
            }
            let (b, placement) = (images[i].boxes.as_deref(), &images[i].placement);
            if has(Metric::PointingGame) {
                let v = b.map_or(f64::NAN, |b| {
                    pointing::pointing_game(m, placement, b, config.pointing_tolerance)
                });
                push(i, Metric::PointingGame, v);
            }
            if has(Metric::Iou) {
                let v = match b {
                    Some(b) => pointing::locate_iou(m, placement, b)?,
                    None => f64::NAN,
                };
                push(i, Metric::Iou, v);
            }
        }
    }
    progress.done();

    // The randomization tests, step by step, on the first image.
    let tests = match graph {
        Some(g) => Some(randomization_tests(
            g,
            &spec,
            &methods,
            &inputs[0],
            &names[0],
            preds[0].class(),
            config.seed,
            batch,
            progress,
        )?),
        None => None,
    };
    let means = Means::new(
        methods.iter().map(|m| m.name()).collect(),
        &config.metrics,
        &rows,
    );
    Ok(Evaluation {
        model: model_name.to_string(),
        images: names,
        rows,
        means,
        curves: sets,
        randomization: tests,
        notes,
    })
}
