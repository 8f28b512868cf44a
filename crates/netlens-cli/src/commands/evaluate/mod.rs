//! `netlens evaluate`: how faithful each method's maps are, how concentrated, whether they
//! depend on the network at all, and whether they point at the object. A thin command: the
//! flags become a [`netlens::evaluate::Config`], [`netlens::evaluate::run`] computes every
//! value (the Python package's `netlens.evaluate` runs the same code), and this command
//! writes what it gives back: a table of means on the terminal or, with `--json`, one line
//! per image × method × metric and one mean per method × metric; `metrics.csv`; the
//! deletion / insertion / ROAD curves (CSV and a figure, [`output`]); the randomization
//! tests' figure and CSV ([`cascade`]). The methods are the library's
//! ([`EvalMethod::defaults`]: every method for CNNs and the two chance baselines), so a method
//! added to the library appears here without an edit.

mod cascade;
mod output;

use crate::common::{self, check_outputs, save_png, save_text, ModelArgs};
use anyhow::{Context, Result};
use image::RgbImage;
use indicatif::ProgressBar;
use netlens::evaluate::{
    self, boxes_beside, split_list, Config, EvalMethod, Images, Network, Progress,
};
use netlens::imaging::{fit_with, Geometry, Placement};
use netlens::metrics::deletion_insertion::Fill;
use netlens::metrics::pointing::{self, GroundTruth};
use netlens::metrics::randomization::open_graph_model;
use netlens::metrics::Metric;
use netlens::saliency::locate::BoundingBox;
use netlens::Classifier;
use std::cell::RefCell;
use std::path::PathBuf;
use std::sync::LazyLock;
use std::time::Instant;

/// Every method of the library that works on any CNN, then the baselines.
fn default_methods() -> &'static str {
    static S: LazyLock<String> = LazyLock::new(|| {
        let v: Vec<&str> = EvalMethod::defaults().iter().map(|m| m.name()).collect();
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

/// ROAD's percentages from the flag.
fn percentages(s: &str) -> Result<Vec<f64>> {
    let v: Vec<f64> = split_list(s)
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

/// The library's configuration from the flags; each error names its flag.
fn config(a: &Args) -> Result<Config> {
    let methods = split_list(&a.methods);
    if methods.is_empty() {
        anyhow::bail!("--methods is empty");
    }
    let metrics = split_list(&a.metrics);
    if metrics.is_empty() {
        anyhow::bail!("--metrics is empty");
    }
    let c = Config {
        methods: methods
            .iter()
            .map(|m| EvalMethod::parse(m))
            .collect::<netlens::Result<_>>()
            .context("--methods")?,
        metrics: metrics
            .iter()
            .map(|m| Metric::parse(m))
            .collect::<netlens::Result<_>>()
            .context("--metrics")?,
        step: a.step as usize,
        deletion_baseline: Fill::parse(&a.deletion_baseline)?,
        insertion_baseline: Fill::parse(&a.insertion_baseline)?,
        road_percentages: percentages(&a.road_percentages)?,
        road_noise: a.road_noise,
        infidelity_samples: a.infidelity_samples as usize,
        infidelity_sigma: a.infidelity_sigma,
        sensitivity_samples: a.sensitivity_samples as usize,
        sensitivity_radius: a.sensitivity_radius,
        pointing_tolerance: a.pointing_tolerance,
        samples: a.samples as usize,
        ig_steps: a.ig_steps as usize,
        rise_masks: a.rise_masks as usize,
        occlusion_stride: a.occlusion_stride as usize,
        seed: a.seed,
        batch_size: a.batch_size as usize,
    };
    // The methods' settings, checked before anything is loaded.
    c.attributions().context("--methods")?;
    c.check()?;
    Ok(c)
}

/// The evaluation's progress as bars and spinners on stderr.
#[derive(Default)]
struct Bars(RefCell<Option<ProgressBar>>);

impl Progress for Bars {
    fn stage(&self, what: &str, total: usize) {
        self.done();
        let pb = if total == 0 {
            common::spinner(what)
        } else {
            common::bar(total as u64, what)
        };
        *self.0.borrow_mut() = Some(pb);
    }
    fn message(&self, what: &str) {
        if let Some(pb) = &*self.0.borrow() {
            pb.set_message(what.to_string());
        }
    }
    fn tick(&self, k: usize) {
        if let Some(pb) = &*self.0.borrow() {
            pb.inc(k as u64);
        }
    }
    fn done(&self) {
        if let Some(pb) = self.0.borrow_mut().take() {
            pb.finish_and_clear();
        }
    }
    fn note(&self, what: &str) {
        eprintln!("netlens: note: {what} (give --boxes FILE)");
    }
}

/// The images named on the command line, decoded when their chunk is evaluated (memory holds
/// a chunk of photos, not all of them).
struct Paths<'a> {
    paths: &'a [PathBuf],
    truth: &'a GroundTruth,
    geometry: Geometry,
}

impl Images for Paths<'_> {
    fn len(&self) -> usize {
        self.paths.len()
    }
    fn name(&self, i: usize) -> String {
        self.paths[i].display().to_string()
    }
    fn boxes(&self, i: usize) -> Option<Vec<BoundingBox>> {
        self.truth.of(&self.paths[i]).map(<[_]>::to_vec)
    }
    fn fitted(&self, i: usize) -> netlens::Result<(RgbImage, Placement)> {
        let original = common::read_image(&self.paths[i])
            .map_err(|e| netlens::Error::Invalid(common::one_line(&e)))?;
        Ok(fit_with(
            &original,
            self.geometry.resize,
            self.geometry.crop,
        ))
    }
}

pub fn run(a: Args) -> Result<()> {
    crate::manifest::cli("evaluate", a.json, |run| execute(&a, run).map(|()| None))
}

/// The evaluate command on parsed flags; its output lines and record go to `run`.
pub fn execute(a: &Args, run: &crate::manifest::Run) -> Result<()> {
    let t0 = Instant::now();
    let name = a.model.single()?;
    let config = config(a)?;
    run.summary(format!("model {name}; {}", config.describe()));
    run.param("model", &name);
    run.param(
        "methods",
        config.methods.iter().map(|m| m.name()).collect::<Vec<_>>(),
    );
    run.param(
        "metrics",
        config.metrics.iter().map(|m| m.name()).collect::<Vec<_>>(),
    );
    run.param("step", config.step);
    run.param("road_percentages", &config.road_percentages);
    run.param("seed", config.seed);
    run.param("batch_size", config.batch_size);
    run.param("images", a.images.len());
    let truth = if config.needs_boxes() {
        match &a.boxes {
            Some(p) => GroundTruth::load(p).context("--boxes")?,
            None => boxes_beside(&a.images)?,
        }
    } else {
        GroundTruth::default()
    };
    let csv_path = a.out.join("metrics.csv");
    let curves_csv = a.out.join("curves.csv");
    let curves_png = a.out.join("curves.png");
    let cascade_png = a.out.join("randomization.png");
    let cascade_csv = a.out.join("randomization.csv");
    let curves = config.has_curves();
    let mut outputs = vec![csv_path.clone()];
    if curves {
        outputs.extend([curves_csv.clone(), curves_png.clone()]);
    }
    if config.needs_graph() {
        outputs.extend([cascade_png.clone(), cascade_csv.clone()]);
    }
    check_outputs(
        outputs.iter().map(PathBuf::as_path),
        a.images.iter().map(PathBuf::as_path),
    )?;

    // The model: a graph model when its weights are to be re-drawn.
    let (graph_model, boxed) = if config.needs_graph() {
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
            run.warn(format!(
                "{name} ends in a Softmax, which is left out: netlens differentiates the \
                 logits before it (probabilities are the softmax of those)"
            ));
        }
        (Some(m), None)
    } else {
        (None, Some(a.model.load()?.model))
    };
    let network = match (&graph_model, &boxed) {
        (Some(g), _) => Network::Graph(g),
        (None, Some(b)) => Network::Any(b.as_ref()),
        (None, None) => anyhow::bail!("no model loaded"),
    };
    let spec = match network {
        Network::Graph(g) => g.spec().clone(),
        Network::Any(m) => m.spec().clone(),
    };
    if a.images.is_empty() {
        anyhow::bail!("no image given");
    }
    // Decoded chunk by chunk during the run; a missing file is refused before it starts.
    for p in &a.images {
        std::fs::metadata(p).with_context(|| format!("cannot read {}", p.display()))?;
    }
    common::note_inputs(a.images.iter().map(PathBuf::as_path));
    let images = Paths {
        paths: &a.images,
        truth: &truth,
        geometry: spec.geometry(),
    };
    let n = images.len();
    let bars = Bars::default();
    let result = evaluate::run(network, &name, &images, &config, &bars);
    bars.done();
    let result = result?;

    let secs = t0.elapsed().as_secs_f64();

    std::fs::create_dir_all(&a.out)
        .with_context(|| format!("cannot create {}", a.out.display()))?;
    save_text(&result.metrics_csv(), &csv_path)?;
    if curves {
        run.figure(&curves_png);
        let step = config.step;
        let titles: Vec<(Metric, String)> = [
            (
                Metric::Deletion,
                format!(
                    "deletion ({} baseline, {step} px a step; lower is better)",
                    config.deletion_baseline.name()
                ),
            ),
            (
                Metric::Insertion,
                format!(
                    "insertion ({} canvas, {step} px a step; higher is better)",
                    config.insertion_baseline.name()
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
        .filter(|(m, _)| config.has(*m))
        .collect();
        output::write_curves(
            &result,
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

    // The randomization tests, step by step, on the first image (after
    // the curves, the order the page shows them).
    if let Some(t) = &result.randomization {
        let (first, _) = images.fitted(0)?;
        let fig = cascade::figure(t, &spec, &first);
        run.figure(&cascade_png);
        save_png(&fig, &cascade_png)?;
        save_text(&t.csv(), &cascade_csv)?;
    }
    if a.json {
        for line in result.json_lines() {
            run.line(line);
        }
    } else {
        output::print_table(
            &format!(
                "{} on {n} image{}",
                spec.name,
                if n == 1 { "" } else { "s" }
            ),
            &result.means,
            run,
        );
        run.line(format!("values: {}", csv_path.display()));
        if curves {
            run.line(format!(
                "curves: {} ({})",
                curves_png.display(),
                curves_csv.display()
            ));
        }
        if graph_model.is_some() {
            run.line(format!(
                "randomization tests: {} ({})",
                cascade_png.display(),
                cascade_csv.display()
            ));
        }
    }
    run.status(format!(
        "evaluate: {} methods × {n} images in {secs:.1} s",
        config.methods.len()
    ));
    Ok(())
}
