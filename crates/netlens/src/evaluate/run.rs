//! The evaluation loop: each image's top-1 class, then per method its maps and every metric
//! asked for on them (per image), the maps again on the fully re-drawn network for the
//! randomization metric, and the randomization tests step by step on the first image.
//!
//! Images come from an [`Images`] source one chunk at a time ([`crate::streaming::chunk_size`]
//! of the batch size), so memory holds a chunk's inputs and maps, not the set's: only the
//! results (rows, curves) grow with the number of images. Every metric's value for an image
//! depends on that image alone (its noise is drawn from its own pixels or index), and the rows
//! come out in the same order as if all images were one chunk.

use super::cascade::randomization_tests;
use super::results::{CurveSet, Evaluation, Means, Row};
use super::{Config, Progress};
use crate::batch::ImageBatch;
use crate::error::{Error, Result};
use crate::imaging::Placement;
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

/// Where the images come from: named and boxed up front, decoded and fitted when their chunk
/// is evaluated.
pub trait Images {
    /// Number of images.
    fn len(&self) -> usize;
    /// Whether there are none.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Image `i`'s name in the results.
    fn name(&self, i: usize) -> String;
    /// Image `i`'s object boxes in the photo's pixels, if it has any.
    fn boxes(&self, i: usize) -> Option<Vec<BoundingBox>>;
    /// Image `i` at the model's input size, and where it lies in the photo.
    fn fitted(&self, i: usize) -> Result<(RgbImage, Placement)>;
}

/// Images already fitted and in memory.
impl Images for Vec<Image> {
    fn len(&self) -> usize {
        <[Image]>::len(self)
    }
    fn name(&self, i: usize) -> String {
        self[i].name.clone()
    }
    fn boxes(&self, i: usize) -> Option<Vec<BoundingBox>> {
        self[i].boxes.clone()
    }
    fn fitted(&self, i: usize) -> Result<(RgbImage, Placement)> {
        Ok((self[i].input.clone(), self[i].placement))
    }
}

/// Where a row goes in the results: method, then the loop's stage, then image (then, for
/// the per-image group of metrics, their order), whatever the chunk it was computed in.
type RowKey = (usize, usize, usize, usize);

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
    images: &dyn Images,
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
    let n = images.len();
    let names: Vec<String> = (0..n).map(|i| images.name(i)).collect();
    let boxes: Vec<Option<Vec<BoundingBox>>> = (0..n).map(|i| images.boxes(i)).collect();
    let mut notes = Vec::new();
    if config.needs_boxes() && boxes.iter().any(Option::is_none) {
        let missing: Vec<&str> = names
            .iter()
            .zip(&boxes)
            .filter(|(_, b)| b.is_none())
            .map(|(n, _)| n.as_str())
            .collect();
        let note = format!(
            "no object boxes for {}: pointing-game and iou are left empty there",
            missing.join(", ")
        );
        progress.note(&note);
        notes.push(note);
    }
    let batch = config.batch_size;
    let (h, w) = (spec.input_size as usize, spec.input_size as usize);
    let plane = h * w;

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

    let mut rows: Vec<(RowKey, Row)> = Vec::new();
    let mut sets: Vec<CurveSet> = Vec::new();
    // The first image, its class: the randomization tests run on it.
    let mut first: Option<(RgbImage, usize)> = None;
    let chunk = crate::streaming::chunk_size(&[batch]);
    for start in (0..n).step_by(chunk) {
        let end = (start + chunk).min(n);
        let fitted: Vec<(RgbImage, Placement)> = (start..end)
            .map(|i| images.fitted(i))
            .collect::<Result<_>>()?;
        let inputs: Vec<RgbImage> = fitted.iter().map(|f| f.0.clone()).collect();
        if let Some(bad) = inputs
            .iter()
            .find(|i| i.dimensions() != (w as u32, h as u32))
        {
            return Err(Error::Invalid(format!(
                "evaluate needs {w}×{h} inputs for {}, got {}×{}",
                spec.name,
                bad.width(),
                bad.height()
            )));
        }
        let preds = crate::classify::classify(model, &inputs, 1, batch);
        if first.is_none() {
            first = Some((inputs[0].clone(), preds[0].class()));
        }
        let targets = Targets::PerImage(preds.iter().map(|p| p.class()).collect());
        let x = ImageBatch::from_images(&inputs, &spec.normalization)?;
        let k = inputs.len();
        let image_of = |i: usize| x.image(i);
        for (mi, method) in methods.iter().enumerate() {
            let mname = method.name();
            progress.message(&format!("{mname}: maps"));
            let maps: Vec<Map> = method
                .attribute(model, x.view(), &targets, &mut run)
                .map_err(within(format!("{mname} failed")))?;
            let mags: Vec<Vec<f32>> = maps.iter().map(Map::magnitude).collect();
            // `i` is the image's place in this chunk; `stage` orders the loop's stages.
            let mut push = |stage: usize, i: usize, sub: usize, metric: Metric, value: f64| {
                rows.push((
                    (mi, stage, start + i, sub),
                    Row {
                        image: names[start + i].clone(),
                        method: mname.clone(),
                        metric,
                        value,
                    },
                ))
            };
            let mut curves = |metric: Metric, x: Vec<f64>, ys: Vec<Vec<f64>>| match sets
                .iter_mut()
                .find(|c| c.method == mname && c.metric == metric)
            {
                Some(c) => c.ys.extend(ys),
                None => sets.push(CurveSet {
                    method: mname.clone(),
                    metric,
                    x,
                    ys,
                }),
            };
            for (stage, dir, metric, fill) in [
                (
                    0,
                    Direction::Deletion,
                    Metric::Deletion,
                    config.deletion_baseline,
                ),
                (
                    1,
                    Direction::Insertion,
                    Metric::Insertion,
                    config.insertion_baseline,
                ),
            ] {
                if !has(metric) {
                    continue;
                }
                progress.message(&format!("{mname}: {}", metric.name()));
                let (mut xs, mut ys) = (Vec::new(), Vec::with_capacity(k));
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
                    push(stage, i, 0, metric, c.auc);
                    xs = c.fractions;
                    ys.push(c.scores);
                }
                curves(metric, xs, ys);
            }
            for (stage, o, metric) in [
                (2, RoadOrder::Morf, Metric::RoadMorf),
                (3, RoadOrder::Lerf, Metric::RoadLerf),
            ] {
                if !has(metric) {
                    continue;
                }
                progress.message(&format!("{mname}: {}", metric.name()));
                let mut ys = Vec::with_capacity(k);
                for (i, (m, mag)) in maps.iter().zip(&mags).enumerate() {
                    let c = road::road_curve(
                        model,
                        image_of(i),
                        h,
                        w,
                        mag,
                        m.target,
                        o,
                        &road,
                        &mut run,
                    )
                    .map_err(within(format!("{mname}: {} failed", metric.name())))?;
                    push(stage, i, 0, metric, c.score);
                    ys.push(c.probabilities);
                }
                let xs = road.percentages.iter().map(|p| p / 100.0).collect();
                curves(metric, xs, ys);
            }
            if let Some(r) = &randomized {
                progress.message(&format!("{mname}: on the randomized network"));
                let rmaps = method
                    .attribute(r, x.view(), &targets, &mut run)
                    .map_err(within(format!("{mname} on the randomized network failed")))?;
                for (i, (m, rm)) in mags.iter().zip(&rmaps).enumerate() {
                    push(
                        4,
                        i,
                        0,
                        Metric::Randomization,
                        spearman(m, &rm.magnitude())?,
                    );
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
                        &mut run,
                    )
                    .map_err(within(format!("{mname}: infidelity failed")))?;
                    push(5, i, 0, Metric::Infidelity, v);
                }
            }
            if has(Metric::MaxSensitivity) {
                progress.message(&format!("{mname}: max-sensitivity"));
                let v = max_sensitivity::max_sensitivity(
                    model,
                    method.as_ref(),
                    x.view(),
                    &maps,
                    &sensitivity,
                    &mut run,
                )
                .map_err(within(format!("{mname}: max-sensitivity failed")))?;
                for (i, v) in v.into_iter().enumerate() {
                    push(6, i, 0, Metric::MaxSensitivity, v);
                }
            }
            for (i, (m, mag)) in maps.iter().zip(&mags).enumerate() {
                if has(Metric::Sparseness) {
                    push(7, i, 0, Metric::Sparseness, metrics::sparseness(mag));
                }
                if has(Metric::Complexity) {
                    push(7, i, 1, Metric::Complexity, metrics::complexity(mag));
                }
                let (b, placement) = (boxes[start + i].as_deref(), &fitted[i].1);
                if has(Metric::PointingGame) {
                    let v = b.map_or(f64::NAN, |b| {
                        pointing::pointing_game(m, placement, b, config.pointing_tolerance)
                    });
                    push(7, i, 2, Metric::PointingGame, v);
                }
                if has(Metric::Iou) {
                    let v = match b {
                        Some(b) => pointing::locate_iou(m, placement, b)?,
                        None => f64::NAN,
                    };
                    push(7, i, 3, Metric::Iou, v);
                }
            }
        }
    }
    progress.done();
    // The order of one chunk over every image (a stable sort: keys are unique anyway).
    rows.sort_by_key(|(key, _)| *key);
    let rows: Vec<Row> = rows.into_iter().map(|(_, r)| r).collect();
    let Some((first_input, first_class)) = first else {
        return Err(Error::Invalid("no image given".into()));
    };

    // The randomization tests, step by step, on the first image.
    let tests = match graph {
        Some(g) => Some(randomization_tests(
            g,
            &spec,
            &methods,
            &first_input,
            &names[0],
            first_class,
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
