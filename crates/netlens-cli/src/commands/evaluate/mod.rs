//! `netlens evaluate`: how faithful each method's maps are, how concentrated, whether they
//! depend on the network at all, and whether they point at the object: a table of metrics
//! (`netlens::metrics`) per method, averaged over the images, with a CSV of every value, the
//! deletion / insertion / ROAD curves (CSV and a figure), the randomization tests of Adebayo
//! et al. on the first image (the cascade's figure; cascade and independent numbers as CSV,
//! [`cascade`]) and with `--json` one line per image × method × metric and one mean per
//! method × metric ([`output`]). The methods are the library's ([`Method::ALL`]) and the two
//! chance baselines, so a method added to the library appears here without an edit.

mod cascade;
mod output;

use crate::common::{self, check_outputs, load_images, save_png, save_text, ModelArgs};
use anyhow::{Context, Result};
use netlens::imaging::images_to_tensor;
use netlens::imaging::tensor::tensor_values;
use netlens::metrics::deletion_insertion::{self as di, Direction, Fill};
use netlens::metrics::infidelity::{self, Infidelity};
use netlens::metrics::max_sensitivity::{self, Sensitivity};
use netlens::metrics::pointing::{self, GroundTruth};
use netlens::metrics::randomization::{open_graph_model, randomized_model, spearman};
use netlens::metrics::road::{self, Road, RoadOrder};
use netlens::metrics::{self, CentreMap, Metric, RandomMap};
use netlens::saliency::{self, Attribution, Map, Method, Run, Settings, Targets};
use netlens::Classifier;
use output::{CurveSet, Means, Row};
use std::path::{Path, PathBuf};
use std::sync::LazyLock;
use std::time::Instant;

/// Every method of the library that works on any CNN, then the baselines.
fn default_methods() -> &'static str {
    static S: LazyLock<String> = LazyLock::new(|| {
        let mut v: Vec<&str> = Method::ALL.iter().map(|m| m.name()).collect();
        v.extend(["random", "centre"]);
        v.join(",")
    });
    S.as_str()
}

/// Every metric.
fn default_metrics() -> &'static str {
    static S: LazyLock<String> = LazyLock::new(|| Metric::ALL.map(|m| m.name()).join(","));
    S.as_str()
}

#[derive(clap::Args, Debug)]
#[command(after_help = "Metrics (↑ higher is better, ↓ lower is better):\n  \
    deletion ↓        area under the class probability as pixels are removed, most important \
    first (Petsiuk et al. 2018)\n  \
    insertion ↑       area under the probability as pixels are put back onto the baseline\n  \
    road-morf ↓       ROAD (Rong et al. 2022): mean probability of the class with 10, 20, …, \
    90% of the pixels removed most relevant first and filled by noisy linear imputation\n  \
    road-lerf ↑       the same, least relevant first\n  \
    randomization ↓   Spearman rank correlation of |map| with the map of the network whose \
    learned layers were all re-drawn (Adebayo et al. 2018; near 0 = the map depends on the \
    weights); randomization.csv adds the independent test, signed Spearman, SSIM and HOG\n  \
    infidelity ↓      mean squared error of the map, scaled optimally, as a linear predictor \
    of f(x) − f(x − I) for Gaussian noise I (Yeh et al. 2019; as Captum, normalize=True)\n  \
    max-sensitivity ↓ largest ‖map(x+δ) − map(x)‖ / ‖map(x)‖ over --sensitivity-samples \
    draws of uniform noise δ in ±--sensitivity-radius (Yeh et al. 2019)\n  \
    sparseness ↑      Gini index of |map| (Chalasani et al. 2020)\n  \
    complexity ↓      entropy of |map| / Σ|map| in nats (Bhatt et al. 2020)\n  \
    pointing-game ↑   1 if the map's maximum lies in an object box (± --pointing-tolerance), \
    else 0 (Zhang et al. 2016)\n  \
    iou ↑             IoU of the box `netlens locate` draws on the map with the object box\n\
    pointing-game and iou need object boxes: --boxes FILE, or a boxes.json in an image's \
    folder or the one above (assets/boxes.json holds the sample photos'); an image without boxes gets no value (NaN) for them. \
    `netlens locate-bench` scores the same two numbers on pasted-object scenes.\n\
    The methods random and centre are chance baselines (uniform noise; a Gaussian on the \
    centre) to read every number against. Each image's map explains its top-1 class.")]
pub struct Args {
    #[command(flatten)]
    pub model: ModelArgs,
    /// Methods to evaluate, comma-separated: any method of `netlens saliency --method` and the
    /// baselines random and centre [default: every method for CNNs, random, centre]
    #[arg(long, default_value = default_methods(), hide_default_value = true, value_name = "LIST")]
    pub methods: String,
    /// Metrics, comma-separated: deletion, insertion, road-morf, road-lerf, randomization,
    /// infidelity, max-sensitivity, sparseness, complexity, pointing-game, iou [default: all]
    #[arg(long, default_value = default_metrics(), hide_default_value = true, value_name = "LIST")]
    pub metrics: String,
    /// Deletion / insertion: pixels changed per step (the paper: 224 on 224×224 images)
    #[arg(long, default_value_t = 224, value_parser = clap::value_parser!(u32).range(1..))]
    pub step: u32,
    /// Deletion: what removed pixels become (the paper: black)
    #[arg(long, default_value = "black", value_parser = ["black", "blur"])]
    pub deletion_baseline: String,
    /// Insertion: the canvas pixels are put back onto (the paper: a blur of σ = 5 pixels)
    #[arg(long, default_value = "blur", value_parser = ["black", "blur"])]
    pub insertion_baseline: String,
    /// ROAD: percentages of the pixels removed, comma-separated, each in (0, 100) (the
    /// paper's: 10,20,…,90)
    #[arg(
        long,
        default_value = "10,20,30,40,50,60,70,80,90",
        value_name = "LIST"
    )]
    pub road_percentages: String,
    /// ROAD: standard deviation of the imputation noise, normalized input units, 0–1 (the
    /// paper's 0.01)
    #[arg(long, default_value_t = 0.01, value_parser = common::f32_in(0.0, 1.0, false))]
    pub road_noise: f32,
    /// Infidelity: Gaussian perturbations per image, 1–10000 (each one forward pass)
    #[arg(long, default_value_t = 32, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub infidelity_samples: u32,
    /// Infidelity: standard deviation of the perturbation, normalized input units, 0–10
    /// (exclusive of 0)
    #[arg(long, default_value_t = 0.1, value_parser = common::f32_in(0.0, 10.0, true))]
    pub infidelity_sigma: f32,
    /// Max-sensitivity: noise draws per image (each recomputes the maps; Quantus: 200)
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub sensitivity_samples: u32,
    /// Max-sensitivity: half-width of the uniform noise, normalized input units, 0–10
    /// (exclusive of 0)
    #[arg(long, default_value_t = 0.2, value_name = "R", value_parser = common::f32_in(0.0, 10.0, true))]
    pub sensitivity_radius: f32,
    /// Pointing game and IoU: JSON object from image file names to lists of object boxes
    /// [x0, y0, x1, y1] in the photo's pixels [default: a boxes.json in each image's folder or the folder above]
    #[arg(long, value_name = "FILE")]
    pub boxes: Option<PathBuf>,
    /// Pointing game: pixels (of the photo) the maximum may lie outside a box and still hit,
    /// 0–2048 (the paper: 15)
    #[arg(long, default_value_t = pointing::PAPER_TOLERANCE, value_name = "PIXELS",
          value_parser = common::f64_in(0.0, 2048.0, false))]
    pub pointing_tolerance: f64,
    /// SmoothGrad: noisy copies per image
    #[arg(long, default_value_t = 25, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub samples: u32,
    /// Integrated Gradients: points on the path from the black baseline
    #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u32).range(2..=1024))]
    pub ig_steps: u32,
    /// RISE: random masks per map (each one forward pass; every metric that recomputes maps
    /// — max-sensitivity, randomization — pays it again), 1–100000
    #[arg(long, default_value_t = 250, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub rise_masks: u32,
    /// Occlusion: stride of the sliding window in pixels (window 2× the stride; 224 / stride
    /// squared forward passes per map), 1–1024
    #[arg(long, default_value_t = 16, value_parser = clap::value_parser!(u32).range(1..=1024))]
    pub occlusion_stride: u32,
    /// Seed of every random draw (SmoothGrad's noise, the random map, the re-drawn weights,
    /// the perturbations of the metrics): same seed, same numbers
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Images sent through the network at once (bounds memory), 1–256
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u16).range(1..=256))]
    pub batch_size: u16,
    /// Output folder: metrics.csv, curves.csv and curves.png (deletion, insertion, ROAD),
    /// randomization.png and randomization.csv (the tests on the first image)
    #[arg(long, short = 'o', default_value = "evaluate", value_name = "DIR")]
    pub out: PathBuf,
    /// Print one JSON line per image × method × metric, then one mean per method × metric
    /// (with "image": null), instead of the table
    #[arg(long)]
    pub json: bool,
    /// Image files (PNG, JPEG, WebP, BMP, TIFF, GIF)
    #[arg(required = true, value_name = "IMAGE")]
    pub images: Vec<PathBuf>,
}

/// A method to evaluate: one of the library's, or a chance baseline.
fn build_method(name: &str, s: &Settings) -> Result<Box<dyn Attribution>> {
    match name.trim().to_lowercase().as_str() {
        "random" => Ok(Box::new(RandomMap { seed: s.seed })),
        "centre" | "center" => Ok(Box::new(CentreMap)),
        other => {
            let m = Method::parse(other)
                .map_err(|e| anyhow::anyhow!("{e}, and the baselines random and centre"))?;
            Ok(saliency::build(m, s)?)
        }
    }
}

fn list(s: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for p in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        if !out.iter().any(|o| o == p) {
            out.push(p.to_string());
        }
    }
    out
}

/// ROAD's percentages from the flag.
fn percentages(s: &str) -> Result<Vec<f64>> {
    let v: Vec<f64> = list(s)
        .iter()
        .map(|p| match p.parse::<f64>() {
            Ok(x) if x > 0.0 && x < 100.0 => Ok(x),
            _ => Err(anyhow::anyhow!(
                "--road-percentages: '{p}' is not a number strictly between 0 and 100"
            )),
        })
        .collect::<Result<_>>()?;
    if v.is_empty() {
        anyhow::bail!("--road-percentages is empty");
    }
    Ok(v)
}

/// Object boxes: `--boxes`, else every boxes.json in the images' folders or the folders above
/// them (assets/boxes.json for assets/photos, so that `assets/photos/*` stays images only).
fn ground_truth(a: &Args) -> Result<GroundTruth> {
    if let Some(p) = &a.boxes {
        return GroundTruth::load(p).context("--boxes");
    }
    let mut text = serde_json::Map::new();
    let mut seen: Vec<PathBuf> = Vec::new();
    for img in &a.images {
        let dir = img.parent().unwrap_or(Path::new("."));
        let up = dir.parent().unwrap_or(Path::new(".."));
        for f in [dir.join("boxes.json"), up.join("boxes.json")] {
            if seen.contains(&f) || !f.is_file() {
                continue;
            }
            let g: serde_json::Value = serde_json::from_str(
                &std::fs::read_to_string(&f)
                    .with_context(|| format!("cannot read {}", f.display()))?,
            )
            .with_context(|| format!("{}: not JSON", f.display()))?;
            if let Some(o) = g.as_object() {
                // Entries of the image's own folder win over the folder above.
                for (k, v) in o {
                    text.entry(k.clone()).or_insert_with(|| v.clone());
                }
            }
            seen.push(f);
        }
    }
    Ok(GroundTruth::parse(
        &serde_json::Value::Object(text).to_string(),
        "boxes.json",
    )?)
}

pub fn run(a: Args) -> Result<()> {
    let t0 = Instant::now();
    let name = a.model.single()?;
    let mut settings = Settings {
        seed: a.seed,
        ..Settings::default()
    };
    settings.smoothgrad.samples = a.samples as usize;
    settings.integrated_gradients.steps = a.ig_steps as usize;
    settings.rise.masks = a.rise_masks as usize;
    settings.occlusion.stride = a.occlusion_stride as usize;
    settings.occlusion.window = 2 * a.occlusion_stride as usize;
    let method_names = list(&a.methods);
    if method_names.is_empty() {
        anyhow::bail!("--methods is empty");
    }
    let methods: Vec<Box<dyn Attribution>> = method_names
        .iter()
        .map(|m| build_method(m, &settings))
        .collect::<Result<_>>()
        .context("--methods")?;
    let metric_list: Vec<Metric> = list(&a.metrics)
        .iter()
        .map(|m| Metric::parse(m))
        .collect::<netlens::Result<_>>()
        .context("--metrics")?;
    if metric_list.is_empty() {
        anyhow::bail!("--metrics is empty");
    }
    let has = |m: Metric| metric_list.contains(&m);
    let sensitivity = Sensitivity {
        radius: a.sensitivity_radius,
        samples: a.sensitivity_samples as usize,
        seed: a.seed,
    };
    let road = Road {
        percentages: percentages(&a.road_percentages)?,
        noise: a.road_noise,
        seed: a.seed,
    };
    let infid = Infidelity {
        sigma: a.infidelity_sigma,
        samples: a.infidelity_samples as usize,
        seed: a.seed,
    };
    let truth = if has(Metric::PointingGame) || has(Metric::Iou) {
        ground_truth(&a)?
    } else {
        GroundTruth::default()
    };
    let deletion_fill = Fill::parse(&a.deletion_baseline)?;
    let insertion_fill = Fill::parse(&a.insertion_baseline)?;
    let csv_path = a.out.join("metrics.csv");
    let curves_csv = a.out.join("curves.csv");
    let curves_png = a.out.join("curves.png");
    let cascade_png = a.out.join("randomization.png");
    let cascade_csv = a.out.join("randomization.csv");
    let curve_metrics = [
        Metric::Deletion,
        Metric::Insertion,
        Metric::RoadMorf,
        Metric::RoadLerf,
    ];
    let curves = curve_metrics.iter().any(|&m| has(m));
    let mut outputs = vec![csv_path.clone()];
    if curves {
        outputs.extend([curves_csv.clone(), curves_png.clone()]);
    }
    if has(Metric::Randomization) {
        outputs.extend([cascade_png.clone(), cascade_csv.clone()]);
    }
    check_outputs(
        outputs.iter().map(PathBuf::as_path),
        a.images.iter().map(PathBuf::as_path),
    )?;

    // The model: a graph model when its weights are to be re-drawn.
    let (graph_model, boxed) = if has(Metric::Randomization) {
        let pb = common::spinner(&format!("loading {name}"));
        let mut status = |s: &str| pb.set_message(format!("{name}: {s}"));
        let m = open_graph_model(
            &name,
            a.model.weights.as_deref(),
            &a.model.onnx.preprocessing(),
            &mut status,
        );
        pb.finish_and_clear();
        let m = m.with_context(|| {
            format!(
                "cannot load {name} for randomization (leave randomization out of --metrics to \
                 evaluate the rest)"
            )
        })?;
        if m.softmax_left_out() {
            eprintln!(
                "netlens: note: {name} ends in a Softmax, which is left out: netlens \
                 differentiates the logits before it (probabilities are the softmax of those)"
            );
        }
        (Some(m), None)
    } else {
        (None, Some(a.model.load()?.model))
    };
    let model: &dyn Classifier = match (&graph_model, &boxed) {
        (Some(g), _) => g,
        (None, Some(b)) => b.as_ref(),
        (None, None) => anyhow::bail!("no model loaded"),
    };
    let spec = model.spec().clone();
    let images = load_images(&a.images, &spec)?;
    let inputs: Vec<_> = images.iter().map(|i| i.input.clone()).collect();
    let names: Vec<String> = images
        .iter()
        .map(|i| i.path.display().to_string())
        .collect();
    let image_boxes: Vec<Option<&[_]>> = images.iter().map(|i| truth.of(&i.path)).collect();
    if (has(Metric::PointingGame) || has(Metric::Iou)) && image_boxes.iter().any(Option::is_none) {
        let missing: Vec<&str> = names
            .iter()
            .zip(&image_boxes)
            .filter(|(_, b)| b.is_none())
            .map(|(n, _)| n.as_str())
            .collect();
        eprintln!(
            "netlens: note: no object boxes for {} (give --boxes FILE): pointing-game and iou \
             are left empty there",
            missing.join(", ")
        );
    }
    let preds = netlens::classify::classify(model, &inputs, 1, a.batch_size as usize);
    let targets = Targets::PerImage(preds.iter().map(|p| p.class()).collect());
    let x = images_to_tensor(&inputs, &spec.normalization);
    let [n, _, h, w] = x.dims();
    let flat = tensor_values(x.clone());
    let plane = h * w;
    let step = a.step as usize;
    let image_of = |i: usize| &flat[i * 3 * plane..(i + 1) * 3 * plane];

    let randomized = match &graph_model {
        Some(g) => {
            let pb = common::spinner("re-drawing every learned layer");
            let r = randomized_model(g, &spec, usize::MAX, a.seed);
            pb.finish_and_clear();
            Some(r.context("cannot build the randomized network")?)
        }
        None => None,
    };

    // Progress over every image pass.
    let per_curve = di::passes(plane, step) * n;
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
    let pb = common::bar(total as u64, &format!("evaluating on {}", spec.name));
    let mut tick = |k: usize| pb.inc(k as u64);
    let mut run = Run::new(a.batch_size as usize, &mut tick);

    let mut rows: Vec<Row> = Vec::new();
    let mut sets: Vec<CurveSet> = Vec::new();
    for method in &methods {
        let mname = method.name();
        pb.set_message(format!("{mname}: maps"));
        let maps: Vec<Map> = method
            .attribute(model, &x, &targets, &mut run)
            .with_context(|| format!("{mname} failed"))?;
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
            (Direction::Deletion, Metric::Deletion, deletion_fill),
            (Direction::Insertion, Metric::Insertion, insertion_fill),
        ] {
            if !has(metric) {
                continue;
            }
            pb.set_message(format!("{mname}: {}", metric.name()));
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
                    step,
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
            pb.set_message(format!("{mname}: {}", metric.name()));
            let mut set = CurveSet {
                method: mname.clone(),
                metric,
                x: road.percentages.iter().map(|p| p / 100.0).collect(),
                ys: Vec::with_capacity(n),
            };
            for (i, (m, mag)) in maps.iter().zip(&mags).enumerate() {
                let c =
                    road::road_curve(model, image_of(i), h, w, mag, m.target, o, &road, &mut run)
                        .with_context(|| format!("{mname}: {} failed", metric.name()))?;
                push(i, metric, c.score);
                set.ys.push(c.probabilities);
            }
            sets.push(set);
        }
        if let Some(r) = &randomized {
            pb.set_message(format!("{mname}: on the randomized network"));
            let rmaps = method
                .attribute(r, &x, &targets, &mut run)
                .with_context(|| format!("{mname} on the randomized network failed"))?;
            for (i, (m, rm)) in mags.iter().zip(&rmaps).enumerate() {
                push(i, Metric::Randomization, spearman(m, &rm.magnitude())?);
            }
        }
        if has(Metric::Infidelity) {
            pb.set_message(format!("{mname}: infidelity"));
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
                .with_context(|| format!("{mname}: infidelity failed"))?;
                push(i, Metric::Infidelity, v);
            }
        }
        if has(Metric::MaxSensitivity) {
            pb.set_message(format!("{mname}: max-sensitivity"));
            let v = max_sensitivity::max_sensitivity(
                model,
                method.as_ref(),
                &flat,
                [n, 3, h, w],
                &maps,
                &sensitivity,
                &mut run,
            )
            .with_context(|| format!("{mname}: max-sensitivity failed"))?;
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
            let b = image_boxes[i];
            if has(Metric::PointingGame) {
                let v = b.map_or(f64::NAN, |b| {
                    pointing::pointing_game(m, &images[i].placement, b, a.pointing_tolerance)
                });
                push(i, Metric::PointingGame, v);
            }
            if has(Metric::Iou) {
                let v = match b {
                    Some(b) => pointing::locate_iou(m, &images[i].placement, b)?,
                    None => f64::NAN,
                };
                push(i, Metric::Iou, v);
            }
        }
    }
    pb.finish_and_clear();

    // The randomization tests, step by step, on the first image.
    if let Some(g) = &graph_model {
        let (fig, table) = cascade::randomization_tests(
            g,
            &spec,
            &methods,
            &inputs[0],
            &names[0],
            preds[0].class(),
            &a,
        )?;
        save_png(&fig, &cascade_png)?;
        save_text(&table, &cascade_csv)?;
    }
    let secs = t0.elapsed().as_secs_f64();

    let means = Means::new(
        methods.iter().map(|m| m.name()).collect(),
        &metric_list,
        &rows,
    );
    std::fs::create_dir_all(&a.out)
        .with_context(|| format!("cannot create {}", a.out.display()))?;
    save_text(&output::metrics_csv(&name, &rows, &means), &csv_path)?;
    if curves {
        let titles: Vec<(Metric, String)> = [
            (
                Metric::Deletion,
                format!(
                    "deletion ({} baseline, {step} px a step; lower is better)",
                    deletion_fill.name()
                ),
            ),
            (
                Metric::Insertion,
                format!(
                    "insertion ({} canvas, {step} px a step; higher is better)",
                    insertion_fill.name()
                ),
            ),
            (
                Metric::RoadMorf,
                "ROAD, most relevant first, imputed (lower is better)".into(),
            ),
            (
                Metric::RoadLerf,
                "ROAD, least relevant first, imputed (higher is better)".into(),
            ),
        ]
        .into_iter()
        .filter(|(m, _)| has(*m))
        .collect();
        output::write_curves(
            &sets,
            &names,
            &titles,
            &format!(
                "{}: mean curves over {n} image{} (area or mean in brackets)",
                spec.name,
                if n == 1 { "" } else { "s" }
            ),
            &curves_csv,
            &curves_png,
        )?;
    }

    if a.json {
        output::print_json(&name, &rows, &means);
    } else {
        output::print_table(
            &format!(
                "{} on {n} image{}",
                spec.name,
                if n == 1 { "" } else { "s" }
            ),
            &means,
        );
        println!("values: {}", csv_path.display());
        if curves {
            println!(
                "curves: {} ({})",
                curves_png.display(),
                curves_csv.display()
            );
        }
        if graph_model.is_some() {
            println!(
                "randomization tests: {} ({})",
                cascade_png.display(),
                cascade_csv.display()
            );
        }
    }
    eprintln!(
        "evaluate: {} methods × {n} images in {secs:.1} s",
        methods.len()
    );
    Ok(())
}
