//! `netlens evaluate`: how faithful each method's maps are, how concentrated, and whether they
//! depend on the network at all: a table of metrics (`netlens::metrics`) per method, averaged
//! over the images, with a CSV of every value, the deletion / insertion curves (CSV and a
//! figure), the cascading-randomization figure of Adebayo et al. on the first image (a row
//! per method, a column per step, with its numbers as CSV) and with `--json` one line per
//! image × method × metric and one mean per method × metric.

use crate::commands::saliency::map_picture;
use crate::common::{self, check_outputs, load_images, save_png, save_text, ModelArgs};
use anyhow::{Context, Result};
use netlens::imaging::figure::{Cell, Figure};
use netlens::imaging::images_to_tensor;
use netlens::imaging::tensor::tensor_values;
use netlens::metrics::deletion_insertion::{self as di, Direction, Fill};
use netlens::metrics::max_sensitivity::{self, Sensitivity};
use netlens::metrics::plot::{curves_plot, Series};
use netlens::metrics::randomization::{layers, open_graph_model, randomized_model, spearman};
use netlens::metrics::{self, CentreMap, Metric, RandomMap};
use netlens::models::GraphModel;
use netlens::saliency::{self, Attribution, Map, Method, Run, Settings, Targets};
use netlens::Classifier;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::PathBuf;
use std::time::Instant;

const DEFAULT_METHODS: &str =
    "vanilla,gradient-x-input,smoothgrad,integrated-gradients,grad-cam,random,centre";

#[derive(clap::Args, Debug)]
#[command(after_help = "Metrics (↑ higher is better, ↓ lower is better):\n  \
    deletion ↓       area under the class probability as pixels are removed, most important \
    first (Petsiuk et al. 2018)\n  \
    insertion ↑      area under the probability as pixels are put back onto the baseline\n  \
    randomization ↓  Spearman rank correlation of |map| with the map of the network whose \
    learned layers were all re-drawn (Adebayo et al. 2018; near 0 = the map depends on the \
    weights)\n  \
    max-sensitivity ↓ largest ‖map(x+δ) − map(x)‖ / ‖map(x)‖ over --sensitivity-samples \
    draws of uniform noise δ in ±--sensitivity-radius (Yeh et al. 2019)\n  \
    sparseness ↑     Gini index of |map| (Chalasani et al. 2020)\n  \
    complexity ↓     entropy of |map| / Σ|map| in nats (Bhatt et al. 2020)\n\
    The methods random and centre are chance baselines (uniform noise; a Gaussian on the \
    centre) to read every number against. Each image's map explains its top-1 class.")]
pub struct Args {
    #[command(flatten)]
    pub model: ModelArgs,
    /// Methods to evaluate, comma-separated: vanilla, gradient-x-input, smoothgrad,
    /// integrated-gradients, grad-cam, attention-rollout (ViT), random, centre
    #[arg(long, default_value = DEFAULT_METHODS, value_name = "LIST")]
    pub methods: String,
    /// Metrics, comma-separated: deletion, insertion, randomization, max-sensitivity,
    /// sparseness, complexity
    #[arg(
        long,
        default_value = "deletion,insertion,randomization,max-sensitivity,sparseness,complexity",
        value_name = "LIST"
    )]
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
    /// Max-sensitivity: noise draws per image (each recomputes the maps; Quantus: 200)
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub sensitivity_samples: u32,
    /// Max-sensitivity: half-width of the uniform noise, in the model's normalized input units
    #[arg(long, default_value_t = 0.2, value_name = "R")]
    pub sensitivity_radius: f32,
    /// SmoothGrad: noisy copies per image
    #[arg(long, default_value_t = 25, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub samples: u32,
    /// Integrated Gradients: points on the path from the black baseline
    #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u32).range(2..=1024))]
    pub ig_steps: u32,
    /// Seed of SmoothGrad's noise, the random map and the re-drawn weights (same seed, same
    /// numbers)
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Images sent through the network at once (bounds memory)
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u16).range(1..=256))]
    pub batch_size: u16,
    /// Output folder: metrics.csv, curves.csv and curves.png (deletion / insertion),
    /// randomization.png and randomization.csv (the cascade on the first image)
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

/// One value of the table.
struct Row {
    image: String,
    method: String,
    metric: Metric,
    value: f64,
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
    if !(a.sensitivity_radius.is_finite() && a.sensitivity_radius > 0.0) {
        anyhow::bail!(
            "--sensitivity-radius must be a positive number, got {}",
            a.sensitivity_radius
        );
    }
    let sensitivity = Sensitivity {
        radius: a.sensitivity_radius,
        samples: a.sensitivity_samples as usize,
        seed: a.seed,
    };
    let deletion_fill = Fill::parse(&a.deletion_baseline)?;
    let insertion_fill = Fill::parse(&a.insertion_baseline)?;
    let csv_path = a.out.join("metrics.csv");
    let curves_csv = a.out.join("curves.csv");
    let curves_png = a.out.join("curves.png");
    let cascade_png = a.out.join("randomization.png");
    let cascade_csv = a.out.join("randomization.csv");
    let curves = has(Metric::Deletion) || has(Metric::Insertion);
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
        (None, None) => unreachable!("one of the two is loaded"),
    };
    let spec = model.spec().clone();
    let images = load_images(&a.images, &spec)?;
    let inputs: Vec<_> = images.iter().map(|i| i.input.clone()).collect();
    let names: Vec<String> = images
        .iter()
        .map(|i| i.path.display().to_string())
        .collect();
    let preds = netlens::classify::classify(model, &inputs, 1, a.batch_size as usize);
    let targets = Targets::PerImage(preds.iter().map(|p| p.class()).collect());
    let x = images_to_tensor(&inputs, &spec.normalization);
    let [n, _, h, w] = x.dims();
    let flat = tensor_values(x.clone());
    let plane = h * w;
    let step = a.step as usize;

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
    let total: usize = methods
        .iter()
        .map(|m| {
            m.passes(n)
                + usize::from(has(Metric::Deletion)) * per_curve
                + usize::from(has(Metric::Insertion)) * per_curve
                + usize::from(randomized.is_some()) * m.passes(n)
                + usize::from(has(Metric::MaxSensitivity))
                    * max_sensitivity::passes(m.as_ref(), n, &sensitivity)
        })
        .sum();
    let pb = common::bar(total as u64, &format!("evaluating on {}", spec.name));
    let mut tick = |k: usize| pb.inc(k as u64);
    let mut run = Run::new(a.batch_size as usize, &mut tick);

    let mut rows: Vec<Row> = Vec::new();
    // method → direction → per-image curves.
    let mut all_curves: Vec<(String, Direction, Vec<di::Curve>)> = Vec::new();
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
            let mut cs = Vec::with_capacity(n);
            for (i, (m, mag)) in maps.iter().zip(&mags).enumerate() {
                let c = di::curve(
                    model,
                    &flat[i * 3 * plane..(i + 1) * 3 * plane],
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
                cs.push(c);
            }
            all_curves.push((mname.clone(), dir, cs));
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
        for (i, mag) in mags.iter().enumerate() {
            if has(Metric::Sparseness) {
                push(i, Metric::Sparseness, metrics::sparseness(mag));
            }
            if has(Metric::Complexity) {
                push(i, Metric::Complexity, metrics::complexity(mag));
            }
        }
    }
    pb.finish_and_clear();

    // The cascade, step by step, on the first image: the paper's figure and its numbers.
    if let Some(g) = &graph_model {
        let (fig, table) = cascade(g, &spec, &methods, &inputs[0], &names[0], &preds, &a)?;
        save_png(&fig, &cascade_png)?;
        save_text(&table, &cascade_csv)?;
    }
    let secs = t0.elapsed().as_secs_f64();

    // Means per method × metric, in the order asked.
    let method_order: Vec<String> = methods.iter().map(|m| m.name()).collect();
    let mut means: BTreeMap<(usize, Metric), (f64, usize)> = BTreeMap::new();
    for r in &rows {
        let mi = method_order
            .iter()
            .position(|m| m == &r.method)
            .unwrap_or(0);
        let e = means.entry((mi, r.metric)).or_insert((0.0, 0));
        if r.value.is_finite() {
            e.0 += r.value;
            e.1 += 1;
        }
    }
    let mean = |mi: usize, m: Metric| {
        means
            .get(&(mi, m))
            .map(|&(s, k)| if k > 0 { s / k as f64 } else { f64::NAN })
    };
    let metric_order: Vec<Metric> = Metric::ALL
        .into_iter()
        .filter(|m| metric_list.contains(m))
        .collect();

    // CSV of every value, then the means (image "mean").
    let mut csv = String::from("image,model,method,metric,value\n");
    let quote = |s: &str| {
        if s.contains([',', '"', '\n']) {
            format!("\"{}\"", s.replace('"', "\"\""))
        } else {
            s.to_string()
        }
    };
    for r in &rows {
        let _ = writeln!(
            csv,
            "{},{},{},{},{}",
            quote(&r.image),
            quote(&name),
            r.method,
            r.metric.name(),
            r.value
        );
    }
    for (mi, m) in method_order.iter().enumerate() {
        for &met in &metric_order {
            if let Some(v) = mean(mi, met) {
                let _ = writeln!(csv, "mean,{},{m},{},{v}", quote(&name), met.name());
            }
        }
    }
    std::fs::create_dir_all(&a.out)
        .with_context(|| format!("cannot create {}", a.out.display()))?;
    save_text(&csv, &csv_path)?;

    if curves {
        let mut c = String::from("method,image,direction,fraction,probability\n");
        let mut panels: Vec<(String, Vec<Series>)> = Vec::new();
        for (dir, label, fill) in [
            (Direction::Deletion, "deletion", deletion_fill),
            (Direction::Insertion, "insertion", insertion_fill),
        ] {
            let mut series = Vec::new();
            for (mname, _, cs) in all_curves.iter().filter(|(_, d, _)| *d == dir) {
                for (i, cv) in cs.iter().enumerate() {
                    for (f, p) in cv.fractions.iter().zip(&cv.scores) {
                        let _ = writeln!(c, "{mname},{},{label},{f},{p}", quote(&names[i]));
                    }
                }
                let k = cs.first().map_or(0, |c| c.scores.len());
                let y: Vec<f64> = (0..k)
                    .map(|j| cs.iter().map(|c| c.scores[j]).sum::<f64>() / cs.len() as f64)
                    .collect();
                let area = di::auc(&y);
                series.push(Series {
                    label: format!("{mname} ({area:.3})"),
                    x: cs.first().map(|c| c.fractions.clone()).unwrap_or_default(),
                    y,
                });
            }
            if !series.is_empty() {
                let better = if dir == Direction::Deletion {
                    "lower"
                } else {
                    "higher"
                };
                panels.push((
                    format!(
                        "{label} ({} baseline; {better} area is better)",
                        fill.name()
                    ),
                    series,
                ));
            }
        }
        save_text(&c, &curves_csv)?;
        let fig = curves_plot(
            &format!(
                "{}: mean deletion / insertion curves over {n} image{} ({step} pixels per step; area in brackets)",
                spec.name,
                if n == 1 { "" } else { "s" }
            ),
            &panels,
        )?;
        save_png(&fig, &curves_png)?;
    }

    if a.json {
        for r in &rows {
            println!(
                "{}",
                serde_json::json!({
                    "image": r.image, "model": name, "method": r.method,
                    "metric": r.metric.name(), "value": json_num(r.value),
                })
            );
        }
        for (mi, m) in method_order.iter().enumerate() {
            for &met in &metric_order {
                if let Some(v) = mean(mi, met) {
                    println!(
                        "{}",
                        serde_json::json!({
                            "image": null, "model": name, "method": m,
                            "metric": met.name(), "value": json_num(v),
                        })
                    );
                }
            }
        }
    } else {
        println!(
            "{} on {n} image{} (means; ↑ higher is better, ↓ lower is better)",
            spec.name,
            if n == 1 { "" } else { "s" }
        );
        let width = method_order
            .iter()
            .map(|m| m.len())
            .max()
            .unwrap_or(6)
            .max(6);
        let mut head = format!("{:width$}", "method");
        for met in &metric_order {
            let _ = write!(
                head,
                "  {:>17}",
                format!(
                    "{} {}",
                    met.name(),
                    if met.higher_is_better() { "↑" } else { "↓" }
                )
            );
        }
        println!("{head}");
        for (mi, m) in method_order.iter().enumerate() {
            let mut line = format!("{m:width$}");
            for &met in &metric_order {
                let v = mean(mi, met).unwrap_or(f64::NAN);
                let _ = write!(line, "  {:>17}", format!("{v:.3}"));
            }
            println!("{line}");
        }
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
                "cascading randomization: {} ({})",
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

/// Adebayo et al.'s figure for one image: a row per method, a column per step of the
/// cascade (the trained network, then the top 1, 25%, 50%, 75% and all of the learned
/// layers re-drawn, from the logits down), each map captioned with its Spearman rank
/// correlation with the trained network's |map|; and those numbers as CSV.
fn cascade(
    g: &GraphModel,
    spec: &netlens::ModelSpec,
    methods: &[Box<dyn Attribution>],
    image: &image::RgbImage,
    image_name: &str,
    preds: &[netlens::classify::Prediction],
    a: &Args,
) -> Result<(image::RgbImage, String)> {
    let total = layers(g.graph()).len();
    let mut steps: Vec<usize> = vec![0, 1, total / 4, total / 2, 3 * total / 4, total];
    steps.dedup();
    let x = images_to_tensor(std::slice::from_ref(image), &spec.normalization);
    let targets = Targets::PerImage(vec![preds[0].class()]);
    let work: usize = methods.iter().map(|m| m.passes(1)).sum::<usize>() * steps.len();
    let pb = common::bar(work as u64, "cascading randomization");
    let mut tick = |k: usize| pb.inc(k as u64);
    let mut run = Run::new(a.batch_size as usize, &mut tick);
    let mut rows: Vec<Vec<(image::RgbImage, f64)>> = vec![Vec::new(); methods.len()];
    let mut table = String::from("image,method,layers_redrawn,of,spearman_abs\n");
    let mut originals: Vec<Vec<f32>> = Vec::new();
    for &k in &steps {
        let model =
            randomized_model(g, spec, k, a.seed).context("cannot build a randomized network")?;
        for (i, m) in methods.iter().enumerate() {
            let map = m
                .attribute(&model, &x, &targets, &mut run)
                .with_context(|| format!("{} on a randomized network failed", m.name()))?
                .remove(0);
            let mag = map.magnitude();
            if k == 0 {
                originals.push(mag.clone());
            }
            let rho = spearman(&originals[i], &mag)?;
            let _ = writeln!(table, "{image_name},{},{k},{total},{rho}", m.name());
            rows[i].push((map_picture(&map), rho));
        }
    }
    pb.finish_and_clear();
    let mut fig = Figure::new(160).title(format!(
        "{}: cascading randomization (Adebayo et al. 2018), learned layers re-drawn from the \
         logits down; ρ = Spearman of |map| with the trained network's",
        spec.name
    ));
    let blank = || image::RgbImage::from_pixel(8, 8, image::Rgb([255, 255, 255]));
    let mut head = vec![Cell::new(image.clone(), "photo")];
    for &k in &steps {
        let label = match k {
            0 => "trained".to_string(),
            k if k == total => format!("all {total} layers"),
            k => format!("top {k} of {total}"),
        };
        head.push(Cell::new(blank(), &label));
    }
    fig.row(None, head);
    for (m, cells) in methods.iter().zip(rows) {
        let mut row = vec![Cell::new(blank(), "")];
        row.extend(
            cells
                .into_iter()
                .map(|(pic, rho)| Cell::new(pic, &format!("ρ = {rho:.2}"))),
        );
        fig.row(Some(m.name()), row);
    }
    Ok((fig.render(), table))
}

/// A JSON number, or null for NaN (a constant map has no rank correlation).
fn json_num(v: f64) -> serde_json::Value {
    if v.is_finite() {
        serde_json::json!(v)
    } else {
        serde_json::Value::Null
    }
}
