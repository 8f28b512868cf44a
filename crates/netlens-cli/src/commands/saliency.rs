//! `netlens saliency`: attribution maps for images on one or several models, written as raw
//! `.npy` maps, colormapped PNGs, overlays on the photos and one captioned figure.

use crate::common::{self, check_outputs, save_png, stem, ModelArgs};
use crate::manifest;
use anyhow::{Context, Result};
use clap::builder::{PossibleValuesParser, TypedValueParser};
use netlens::batch::ImageBatch;
use netlens::imaging::figure::{Cell, Figure};
use netlens::saliency::{
    self, Attribution, Baseline, GradCamConfig, IntegratedGradientsConfig, Map, Method,
    OcclusionConfig, RiseConfig, Run, Settings, SmoothGradConfig, Targets,
};
use netlens::saliency_files::{self, SaliencyFiles};
use netlens::Classifier;
use std::collections::HashSet;
use std::ops::RangeInclusive;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// Images the figure shows at most (one column each); a longer run's figure says how many it
/// shows, and every map is written all the same.
pub const FIGURE_COLUMNS: usize = 16;

/// Images per pass of the classification that picks each image's top-1 class.
const CLASSIFY_BATCH: usize = 16;

pub use netlens::saliency_files::{map_picture, DISPLAY_CLIP};

fn method_parser() -> impl TypedValueParser<Value = Method> {
    let names: Vec<&'static str> = Method::ALL
        .into_iter()
        .chain(Method::TRANSFORMER_ONLY)
        .map(|m| m.name())
        .collect();
    PossibleValuesParser::new(names).try_map(|s| Method::parse(&s))
}

/// A count in the library's accepted `range`.
fn count_in(range: RangeInclusive<usize>) -> impl TypedValueParser<Value = usize> {
    let (lo, hi) = range.into_inner();
    clap::value_parser!(u64)
        .range(lo as u64..=hi as u64)
        .map(|v| v as usize)
}

/// The attribution method and its settings, shared by `saliency`, `locate` and `locate-bench`.
#[derive(clap::Args, Debug, Clone)]
pub struct MethodArgs {
    /// Attribution method: vanilla = CS231n's max_c |d score / d x|; gradient-x-input;
    /// smoothgrad = --inner averaged over noisy copies; integrated-gradients; grad-cam = on
    /// the model's last convolutional block, or on --layer; guided-backprop = the gradient
    /// with only positive gradients passed back through each ReLU/ReLU6 (ReLU networks; not
    /// ViTs); guided-grad-cam = guided-backprop × grad-cam; occlusion = score drop under a
    /// sliding window (--window, --stride, --fill); rise = score under random masks
    /// (--masks, --cell, --p)
    #[arg(long, default_value = "vanilla", value_parser = method_parser())]
    pub method: Method,
    /// Grad-CAM (also as smoothgrad's --inner): the layer to explain from, any name that
    /// `netlens layers MODEL` lists [default: the layer it marks with *, the model's last
    /// convolutional block]
    #[arg(long, value_name = "NAME")]
    pub layer: Option<String>,
    /// SmoothGrad: the method averaged over noisy copies
    #[arg(long, default_value = SmoothGradConfig::default().inner.name(),
          value_parser = method_parser(), value_name = "METHOD")]
    pub inner: Method,
    /// SmoothGrad: noisy copies per image
    #[arg(long, default_value_t = SmoothGradConfig::default().samples,
          value_parser = count_in(SmoothGradConfig::SAMPLES))]
    pub samples: usize,
    /// SmoothGrad: noise σ as a fraction of each image's value range (max − min), 0–10
    #[arg(long, default_value_t = SmoothGradConfig::default().noise, value_name = "SIGMA",
          value_parser = common::f32_in(0.0, 10.0, false))]
    pub noise: f32,
    /// Integrated Gradients: points on the path from the baseline (adaptive quadrature)
    #[arg(long, default_value_t = IntegratedGradientsConfig::default().steps,
          value_parser = count_in(IntegratedGradientsConfig::STEPS))]
    pub steps: usize,
    /// Integrated Gradients: where the path starts
    #[arg(long, default_value = IntegratedGradientsConfig::default().baseline.name(),
          value_parser = Baseline::NAMES)]
    pub baseline: String,
    /// Integrated Gradients: σ in pixels of the blur for `--baseline blur`, 0 < σ ≤ 256
    #[arg(long, default_value_t = Baseline::DEFAULT_BLUR_SIGMA, value_name = "PIXELS",
          value_parser = common::f32_in(0.0, 256.0, true), allow_negative_numbers = true)]
    pub blur_sigma: f32,
    /// Occlusion: side of the square window in pixels, 1–1024 (at most the input's side)
    #[arg(long, default_value_t = OcclusionConfig::default().window, value_name = "PIXELS",
          value_parser = count_in(OcclusionConfig::WINDOW))]
    pub window: usize,
    /// Occlusion: step between window positions in pixels, 1–1024
    #[arg(long, default_value_t = OcclusionConfig::default().stride, value_name = "PIXELS",
          value_parser = count_in(OcclusionConfig::STRIDE))]
    pub stride: usize,
    /// Occlusion: value of occluded pixels in the normalized input, −10 to 10 (0 = the
    /// normalization's mean: grey for EfficientNet-Lite, the ImageNet mean colour otherwise)
    #[arg(long, default_value_t = OcclusionConfig::default().fill, value_name = "VALUE",
          value_parser = common::f32_in(-10.0, 10.0, false), allow_negative_numbers = true)]
    pub fill: f32,
    /// RISE: number of random masks (one forward pass each per image), 1–100000
    #[arg(long, default_value_t = RiseConfig::default().masks, value_name = "N",
          value_parser = count_in(RiseConfig::MASKS))]
    pub masks: usize,
    /// RISE: cells per side of each mask's low-resolution grid (the paper's s), 1–64
    #[arg(long, default_value_t = RiseConfig::default().cell, value_name = "S",
          value_parser = count_in(RiseConfig::CELL))]
    pub cell: usize,
    /// RISE: probability that a cell is kept, 0 < p ≤ 1
    #[arg(long = "p", default_value_t = RiseConfig::default().p, value_name = "P",
          value_parser = common::f32_in(0.0, 1.0, true))]
    pub keep: f32,
    /// Seed of SmoothGrad's noise, of the noise baseline and of RISE's masks (same seed, same
    /// maps)
    #[arg(long, default_value_t = Settings::default().seed)]
    pub seed: u64,
    /// Images, noisy copies or path points sent through the network at once (bounds memory)
    #[arg(long, default_value_t = Run::DEFAULT_BATCH_SIZE as u16,
          value_parser = clap::value_parser!(u16).range(1..=256))]
    pub batch_size: u16,
}

impl MethodArgs {
    /// The library settings these flags describe.
    pub fn settings(&self) -> Result<Settings> {
        Ok(Settings {
            smoothgrad: SmoothGradConfig {
                samples: self.samples,
                noise: self.noise,
                inner: self.inner,
            },
            integrated_gradients: IntegratedGradientsConfig {
                steps: self.steps,
                baseline: Baseline::parse(&self.baseline, self.blur_sigma)?,
            },
            grad_cam: GradCamConfig {
                layer: self.layer.clone(),
            },
            occlusion: OcclusionConfig {
                window: self.window,
                stride: self.stride,
                fill: self.fill,
            },
            rise: RiseConfig {
                masks: self.masks,
                cell: self.cell,
                p: self.keep,
            },
            seed: self.seed,
        })
    }

    /// The configured method `m` (the settings checked); `--layer` with a method that has no
    /// layer is refused.
    pub fn build(&self, m: Method) -> Result<Box<dyn Attribution>> {
        let s = self.settings()?;
        if s.grad_cam.layer.is_some() && !m.has_layer(&s) {
            anyhow::bail!(
                "--layer applies to --method grad-cam or guided-grad-cam (or smoothgrad around \
                 them), not to {}",
                m.name()
            );
        }
        Ok(saliency::build(m, &s)?)
    }
}

/// Checks that `layer` is one of `model`'s tappable layers, with a pointer to `netlens layers`.
pub fn check_layer(model: &dyn Classifier, layer: Option<&str>) -> Result<()> {
    let Some(layer) = layer else {
        return Ok(());
    };
    let layers = model.layers();
    if !layers.iter().any(|l| l == layer) {
        let name = model.spec().name;
        let close: Vec<&str> = layers
            .iter()
            .filter(|l| l.contains(layer) || layer.contains(l.as_str()))
            .map(String::as_str)
            .take(5)
            .collect();
        anyhow::bail!(
            "--layer: {name} has no tappable layer '{layer}'{}; `netlens layers {name}` lists \
             the {} it has",
            if close.is_empty() {
                String::new()
            } else {
                format!(" (close: {})", close.join(", "))
            },
            layers.len()
        );
    }
    Ok(())
}

/// Maps of `images` (already at the model's input size) for `targets`, with a progress bar;
/// returns the maps and the seconds the attribution took.
pub fn attribute(
    model: &dyn netlens::Classifier,
    method: &dyn Attribution,
    images: &[image::RgbImage],
    targets: &Targets,
    batch_size: usize,
    what: &str,
) -> Result<(Vec<Map>, f64)> {
    let pb = common::bar(method.passes(images.len()) as u64, what);
    let maps = attribute_with(model, method, images, targets, batch_size, &mut |k| {
        pb.inc(k as u64)
    });
    pb.finish_and_clear();
    maps.with_context(|| format!("{what} failed"))
}

/// [`attribute`] reporting image passes to `tick` instead of its own progress bar.
fn attribute_with(
    model: &dyn netlens::Classifier,
    method: &dyn Attribution,
    images: &[image::RgbImage],
    targets: &Targets,
    batch_size: usize,
    tick: &mut dyn FnMut(usize),
) -> Result<(Vec<Map>, f64)> {
    let x = ImageBatch::from_images(images, &model.spec().normalization)?;
    let mut run = Run::new(batch_size, tick);
    let t0 = Instant::now();
    let maps = method.attribute(model, x.view(), targets, &mut run)?;
    Ok((maps, t0.elapsed().as_secs_f64()))
}

/// Model names from `--model a,b,c` (zoo names or ONNX files; at least one, no repeats).
pub fn model_names(arg: &str) -> Result<Vec<String>> {
    if Path::new(arg.trim()).is_file() {
        return common::model_list([arg], "--model");
    }
    common::model_list(arg.split(','), "--model")
}

/// Output stems of the inputs; two inputs with the same file stem would overwrite each other.
pub fn unique_stems(paths: &[PathBuf]) -> Result<Vec<String>> {
    let stems: Vec<String> = paths.iter().map(|p| stem(p)).collect();
    let mut seen = HashSet::new();
    for (s, p) in stems.iter().zip(paths) {
        if !seen.insert(s.clone()) {
            anyhow::bail!(
                "two inputs are named '{s}' ({}); outputs are named after the file stem, so \
                 rename one",
                p.display()
            );
        }
    }
    Ok(stems)
}

#[derive(clap::Args, Debug)]
#[command(
    after_help = "--model takes several models separated by commas, zoo names and \
    ONNX files alike (e.g. efficientnet_lite0,efficientnet_lite2,./resnet50.onnx): each model \
    writes into DIR/<model>/ (an ONNX file's stem, or its folder-stem for model.onnx) and the \
    figure gets one row of maps per model. The ONNX settings (--input-size... --labels) apply \
    to a single model; with several, each file's sidecar model.json sets its preprocessing."
)]
pub struct Args {
    #[command(flatten)]
    pub model: ModelArgs,
    #[command(flatten)]
    pub method: MethodArgs,
    /// Class to explain for every image: an index, a name from --labels, or for ImageNet
    /// models any synonym or WordNet id [default: each image's top-1 class]
    #[arg(long, short = 't', value_name = "CLASS")]
    pub target: Option<String>,
    /// Output folder: <stem>.npy (raw float32 map, see --map-size), <stem>.png,
    /// <stem>.overlay.png (both at the model's input resolution), figure.png (of the first 16
    /// images; not written by a run with --shard or --skip-existing)
    #[arg(long, short = 'o', default_value = "saliency", value_name = "DIR")]
    pub out: PathBuf,
    /// Grid of the .npy maps: `input` = the model's input resolution (the square centre crop
    /// it saw, e.g. 224×224); `original` = the photo's own width and height, the map
    /// resampled bilinearly onto it, NaN where the crop cut the photo away
    #[arg(long, default_value = "input", value_parser = ["input", "original"])]
    pub map_size: String,
    /// Print one JSON summary line per image (and model)
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub resume: crate::resume::ResumeArgs,
    /// Image files (PNG, JPEG, WebP, BMP, TIFF, GIF)
    #[arg(required = true, value_name = "IMAGE")]
    pub images: Vec<PathBuf>,
}

pub fn run(a: Args) -> Result<()> {
    crate::manifest::cli("saliency", a.json, |run| execute(&a, run).map(|()| None))
}

/// The saliency command on parsed flags; its output lines and record go to `run`.
pub fn execute(a: &Args, run: &manifest::Run) -> Result<()> {
    let names = model_names(&a.model.model)?;
    a.model.check_for(&names)?;
    let method = a.method.build(a.method.method)?;
    a.model.precheck_classes(a.target.as_deref())?;
    let settings = a.method.settings()?;
    run.summary(format!(
        "{} {}, method {}, target {}",
        if names.len() > 1 { "models" } else { "model" },
        names.join(", "),
        a.method.method.describe(&settings),
        a.target.as_deref().unwrap_or("each image's top-1 class")
    ));
    run.param("models", &names);
    run.param("method", a.method.method.name());
    run.param("target", &a.target);
    run.param("seed", a.method.seed);
    run.param("batch_size", a.method.batch_size);
    run.param("map_size", &a.map_size);
    run.param("images", a.images.len());
    let stems = unique_stems(&a.images)?;
    let shorts = common::short_names(&names);
    let dirs: Vec<PathBuf> = if names.len() == 1 {
        vec![a.out.clone()]
    } else {
        shorts.iter().map(|n| a.out.join(n)).collect()
    };
    // Images are decoded, attributed, written and dropped a chunk at a time, so that memory is
    // flat in the number of images: chunks hold whole batches of the attribution and of the
    // classification (16), so the maps are the bytes one call on every image would give. A
    // method that derives inputs from its images (SmoothGrad's noisy copies, Integrated
    // Gradients' path) draws its noise from each image's own stream
    // (`saliency::seeding::image_rng`), so chunks change nothing there either. --shard and
    // --skip-existing keep or leave whole blocks of such chunks, so that a sharded or resumed
    // run writes the bytes of a whole run.
    let batch = a.method.batch_size as usize;
    let block = common::chunk_size(&[batch, CLASSIFY_BATCH]);
    let keep = a.resume.select(a.images.len(), block, |i| {
        dirs.iter().all(|d| SaliencyFiles::new(d, &stems[i]).done())
    });
    let images: Vec<PathBuf> = keep.iter().map(|&i| a.images[i].clone()).collect();
    let stems: Vec<String> = keep.iter().map(|&i| stems[i].clone()).collect();
    if images.is_empty() {
        run.warn(format!(
            "saliency: nothing to do: {}",
            a.resume.why_empty(a.images.len())
        ));
        return Ok(());
    }
    let figure_path = a.out.join("figure.png");
    let figure = !a.resume.partial();
    let mut all: Vec<PathBuf> = Vec::new();
    if figure {
        all.push(figure_path.clone());
    }
    for d in &dirs {
        for s in &stems {
            let o = SaliencyFiles::new(d, s);
            all.extend(
                o.all()
                    .into_iter()
                    .filter(|p| !(a.resume.skip_existing && p.is_file()))
                    .map(Path::to_path_buf),
            );
        }
    }
    check_outputs(
        all.iter().map(PathBuf::as_path),
        images.iter().map(PathBuf::as_path),
    )?;

    common::check_images(&images)?;
    let chunk = block;
    let shown = images.len().min(FIGURE_COLUMNS);
    let mut photo_cells: Vec<Cell> = Vec::new();
    let mut rows: Vec<(String, Vec<Cell>)> = Vec::new();
    let mut title_target: Option<String> = None;
    for ((name, short), dir) in names.iter().zip(&shorts).zip(&dirs) {
        let loaded = a.model.load_named(name)?;
        let (model, classes) = (loaded.model.as_ref(), &loaded.names);
        check_layer(model, a.method.layer.as_deref())?;
        let target = a
            .target
            .as_deref()
            .map(|t| classes.resolve(t))
            .transpose()?;
        if let (None, Some(t)) = (&title_target, target) {
            title_target = Some(classes.label(t).into_owned());
        }
        let spec = model.spec();
        let what = format!("{} on {short}", method.name());
        let pb = common::bar(method.passes(images.len()) as u64, &what);
        let (mut secs, mut count) = (0.0, 0usize);
        let mut cells = Vec::new();
        for (paths, stems) in images.chunks(chunk).zip(stems.chunks(chunk)) {
            let images = common::load_images(paths, spec)?;
            let inputs: Vec<_> = images.iter().map(|i| i.input.clone()).collect();
            let preds = netlens::classify::classify(model, &inputs, 1, CLASSIFY_BATCH);
            let targets = match target {
                Some(t) => Targets::All(t),
                None => Targets::PerImage(preds.iter().map(|p| p.class()).collect()),
            };
            let (maps, s) =
                attribute_with(model, method.as_ref(), &inputs, &targets, batch, &mut |k| {
                    pb.inc(k as u64)
                })
                .with_context(|| format!("{what} failed"))?;
            secs += s;
            for ((img, m), (s, p)) in images.iter().zip(&maps).zip(stems.iter().zip(&preds)) {
                let o = SaliencyFiles::new(dir, s);
                o.all().into_iter().try_for_each(common::check_not_input)?;
                let todo: Vec<PathBuf> = (o.all().into_iter())
                    .filter(|p| !(a.resume.skip_existing && p.is_file()))
                    .map(Path::to_path_buf)
                    .collect();
                let grid = (a.map_size == "original").then_some(&img.placement);
                saliency_files::write_on(
                    m,
                    &img.input,
                    &o,
                    common::existing(),
                    a.resume.skip_existing,
                    grid,
                )?;
                todo.iter().for_each(|p| crate::manifest::wrote(p));
                let prob = p.probs[m.target];
                let label = classes.label(m.target);
                let (px, py) = netlens::saliency::metrics::peak(m, &img.placement);
                let line = if a.json {
                    let mut obj = serde_json::json!({
                        "image": img.path.display().to_string(),
                        "model": name,
                        "method": method.name(),
                        "class": m.target,
                        "label": label,
                        "prob": prob,
                        "top1": p.class(),
                        "peak": [px.round(), py.round()],
                        "npy": o.npy.display().to_string(),
                        "png": o.png.display().to_string(),
                        "overlay": o.overlay.display().to_string(),
                    });
                    if let Some(d) = m.delta {
                        obj["completeness_delta"] = serde_json::json!(d);
                    }
                    if let Some(l) = &a.method.layer {
                        obj["layer"] = serde_json::json!(l);
                    }
                    obj.to_string()
                } else {
                    format!(
                        "{}  {name}  {label} ({prob:.3})  -> {}",
                        img.path.display(),
                        o.png.display()
                    )
                };
                pb.suspend(|| run.line(&line));
                if count < shown {
                    cells.push(Cell::new(map_picture(m), &format!("{label} ({prob:.2})")));
                    if photo_cells.len() < shown {
                        photo_cells.push(Cell::new(img.input.clone(), s));
                    }
                }
                count += 1;
            }
        }
        pb.finish_and_clear();
        run.status(format!(
            "{what}: {count} maps in {secs:.2} s ({:.0} ms per image)",
            1000.0 * secs / count.max(1) as f64
        ));
        rows.push((short.clone(), cells));
    }

    if !figure {
        return Ok(());
    }
    let mut title = format!(
        "{} saliency{}, target: {}",
        method.name(),
        a.method
            .layer
            .as_deref()
            .map(|l| format!(" on {l}"))
            .unwrap_or_default(),
        title_target.unwrap_or_else(|| "each image's top-1 class".into())
    );
    if images.len() > shown {
        title.push_str(&format!(" (the first {shown} of {} images)", images.len()));
    }
    let mut fig = Figure::new(224).title(title);
    let multi = rows.len() > 1;
    fig.row(multi.then(|| "photo".to_string()), photo_cells);
    for (name, cells) in rows {
        fig.row(multi.then(|| name.replace("efficientnet_", "")), cells);
    }
    run.figure(&figure_path);
    save_png(&fig.render(), &figure_path)?;
    if !a.json {
        run.line(format!("figure: {}", figure_path.display()));
    }
    Ok(())
}
