//! `netlens locate-bench`: a localization benchmark that needs no dataset (the protocol is
//! `netlens::saliency::localization`: crops of real photos of known class pasted at known
//! places and scales onto textures and other photos, each map scored by the pointing game and
//! by the IoU of its best `locate` box). This command holds its flags, table and figure.

use super::locate::{draw_boxes, BoxArgs};
use super::saliency::{check_layer, DISPLAY_CLIP};
use crate::common::{self, check_outputs, save_png, ModelArgs};
use anyhow::{Context, Result};
use image::{Rgb, RgbImage};
use netlens::imaging::colormap::{overlay, Colormap};
use netlens::imaging::figure::{draw_box, Cell, Figure};
use netlens::saliency::localization::{self, Bench, Scored};
use netlens::saliency::metrics::Tally;
use netlens::saliency::scenes::{Background, Layout};
use netlens::saliency::{
    self as sal, Baseline, GradCamConfig, IntegratedGradientsConfig, Method, Run, Settings,
    SmoothGradConfig,
};
use std::path::PathBuf;

fn method_list(s: &str) -> Result<Vec<Method>, netlens::Error> {
    s.split(',')
        .map(str::trim)
        .filter(|m| !m.is_empty())
        .map(Method::parse)
        .collect()
}

#[derive(clap::Args, Debug)]
#[command(
    after_help = "The pasted objects are ImageNet classes (Egyptian cat, espresso, moped), \
    so the model must be an ImageNet-1k classifier: a zoo model, or an ONNX file with 1000 \
    outputs in ImageNet's order and no --labels."
)]
pub struct Args {
    #[command(flatten)]
    pub model: ModelArgs,
    /// Methods to score, separated by commas
    #[arg(long, value_parser = method_list, value_name = "M,M,...",
          default_value = "vanilla,gradient-x-input,smoothgrad,integrated-gradients,grad-cam")]
    pub methods: std::vec::Vec<Method>,
    /// SmoothGrad: noisy copies per scene (smaller than `saliency`'s default to keep the
    /// benchmark short)
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub samples: u32,
    /// SmoothGrad: noise σ as a fraction of each image's value range, 0–10
    #[arg(long, default_value_t = 0.15, value_name = "SIGMA",
          value_parser = crate::common::f32_in(0.0, 10.0, false))]
    pub noise: f32,
    /// Integrated Gradients: points on the path from a black baseline
    #[arg(long, default_value_t = 16, value_parser = clap::value_parser!(u32).range(2..=1024))]
    pub steps: u32,
    /// Grad-CAM: the layer to explain from, any name that `netlens layers MODEL` lists
    /// [default: the layer it marks with *]
    #[arg(long, value_name = "NAME")]
    pub layer: Option<String>,
    /// Seed of SmoothGrad's noise
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Images, noisy copies or path points sent through the network at once
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u16).range(1..=256))]
    pub batch_size: u16,
    #[command(flatten)]
    pub boxes: BoxArgs,
    /// Side of the square scenes, in pixels (the model input is fitted from it)
    #[arg(long, default_value_t = 320, value_parser = clap::value_parser!(u32).range(64..=2048))]
    pub size: u32,
    /// Pointing game: a maximum this many scene pixels outside the object still counts,
    /// 0–2048
    #[arg(long, default_value_t = 0.0, value_name = "PIXELS",
          value_parser = crate::common::f64_in(0.0, 2048.0, false), allow_negative_numbers = true)]
    pub tolerance: f64,
    /// Backgrounds to paste onto instead of the built-in textures and photos
    #[arg(long = "background", value_name = "IMAGE")]
    pub backgrounds: Vec<PathBuf>,
    /// Also save a figure: sample scenes per method, the map over the scene, the true box in
    /// green and the best box in red
    #[arg(long, value_name = "FILE")]
    pub figure: Option<PathBuf>,
    /// Print one JSON line per method instead of a table
    #[arg(long)]
    pub json: bool,
}

fn backgrounds(paths: &[PathBuf]) -> Result<Vec<Background>> {
    if paths.is_empty() {
        return Ok(localization::builtin_backgrounds()?);
    }
    paths
        .iter()
        .map(|p| {
            Ok(Background {
                name: crate::common::stem(p),
                image: common::read_image(p)?,
            })
        })
        .collect()
}

pub fn run(a: Args) -> Result<()> {
    crate::manifest::cli("locate-bench", a.json, |run| {
        execute(&a, run).map(|()| None)
    })
}

/// The locate-bench command on parsed flags; its output lines and record go to `run`.
pub fn execute(a: &Args, rec: &crate::manifest::Run) -> Result<()> {
    if a.methods.is_empty() {
        anyhow::bail!("--methods needs at least one method");
    }
    if let Some(f) = &a.figure {
        check_outputs([f.as_path()], a.backgrounds.iter().map(PathBuf::as_path))?;
    }
    let settings = Settings {
        smoothgrad: SmoothGradConfig {
            samples: a.samples as usize,
            noise: a.noise,
            ..SmoothGradConfig::default()
        },
        integrated_gradients: IntegratedGradientsConfig {
            steps: a.steps as usize,
            baseline: Baseline::Black,
        },
        grad_cam: GradCamConfig {
            layer: a.layer.clone(),
        },
        seed: a.seed,
        ..Settings::default()
    };
    let model_name = a.model.single()?;
    if a.layer.is_some() && !a.methods.contains(&Method::GradCam) {
        anyhow::bail!("--layer applies to grad-cam, which --methods does not list");
    }
    let methods = a
        .methods
        .iter()
        .map(|&m| sal::build(m, &settings))
        .collect::<netlens::Result<Vec<_>>>()?;
    let opts = a.boxes.options();
    rec.summary(format!(
        "model {model_name}; real object photos pasted at known places and scales onto \
         textures and photos; methods {}; boxes: {}",
        a.methods
            .iter()
            .map(|m| m.describe(&settings))
            .collect::<Vec<_>>()
            .join(", "),
        opts.describe()
    ));
    rec.param("model", &model_name);
    rec.param(
        "methods",
        a.methods.iter().map(|m| m.name()).collect::<Vec<_>>(),
    );
    rec.param("size", a.size);
    rec.param("tolerance", a.tolerance);
    rec.param("seed", a.seed);
    let objs = localization::builtin_objects().context("cannot decode a built-in object photo")?;
    let bgs = backgrounds(&a.backgrounds)?;
    let layout = Layout {
        size: a.size,
        ..Layout::default()
    };
    let loaded = a.model.load_named(&model_name)?;
    if !loaded.names.is_imagenet() {
        anyhow::bail!(
            "locate-bench pastes ImageNet objects (Egyptian cat, espresso, moped) and needs an \
             ImageNet-1k classifier; {} has {} classes{}",
            loaded.model.spec().name,
            loaded.names.len(),
            if a.model.onnx.labels.is_some() {
                " named by --labels"
            } else {
                ""
            }
        );
    }
    let model = loaded.model;
    check_layer(model.as_ref(), a.layer.as_deref())?;
    let bench = Bench::new(model.as_ref(), &objs, &bgs, &layout, 16)?;
    let recognized = bench.recognized_top5;
    let classes = bench.classes();

    let mut scored = Vec::new();
    for m in &methods {
        let what = format!("{} on {} scenes", m.name(), bench.scenes.len());
        let pb = common::bar(bench.passes(m.as_ref()) as u64, &what);
        let mut tick = |k: usize| pb.inc(k as u64);
        let mut run = Run::new(a.batch_size as usize, &mut tick);
        let s = bench.score(model.as_ref(), m.as_ref(), &opts, a.tolerance, &mut run);
        pb.finish_and_clear();
        scored.push(s.with_context(|| format!("{what} failed"))?);
    }

    let center = bench.centre_baseline(a.size, a.tolerance);
    let rows: Vec<(&str, &Tally)> = std::iter::once(("center (baseline)", &center))
        .chain(scored.iter().map(|s| (s.name.as_str(), &s.tally)))
        .collect();
    let model_name = model.spec().name;
    if a.json {
        for (name, t) in &rows {
            rec.line(serde_json::json!({
                    "model": model_name,
                    "method": name,
                    "scenes": t.scenes,
                    "pointing": t.pointing(),
                    "iou50": t.iou_rate(),
                    "mean_iou": t.mean_iou(),
                    "recognized_top5": recognized,
            }));
        }
    } else {
        rec.line(format!(
            "{} scenes on {model_name}: {} objects × {} backgrounds × {} scales × {} positions; \
             object class in the top-5 on {recognized}/{}",
            bench.scenes.len(),
            objs.len(),
            bgs.len(),
            layout.scales.len(),
            layout.positions.len(),
            bench.scenes.len()
        ));
        rec.line(format!(
            "{:<28} {:>9} {:>9} {:>9}",
            "method", "pointing", "IoU≥0.5", "mean IoU"
        ));
        for (name, t) in &rows {
            rec.line(format!(
                "{:<28} {:>9.3} {:>9.3} {:>9.3}",
                name,
                t.pointing(),
                t.iou_rate(),
                t.mean_iou()
            ));
        }
    }
    if let Some(path) = &a.figure {
        rec.figure(path);
        save_png(&figure(&bench, &scored, &classes), path)?;
        if !a.json {
            rec.line(format!("figure: {}", path.display()));
        }
    }
    Ok(())
}

/// Six scenes spread over the benchmark, one row per method.
fn figure(bench: &Bench, scored: &[Scored], classes: &[usize]) -> RgbImage {
    let (scenes, fitted) = (&bench.scenes, &bench.fitted);
    let n = scenes.len();
    // A stride one past n/6 walks across objects, backgrounds, scales and positions.
    let stride = n / 6 + 1;
    let picks: Vec<usize> = (0..6.min(n)).map(|k| (k * stride) % n).collect();
    let mut fig = Figure::new(200).title("locate-bench: true box green, best box red");
    for s in scored {
        let cells = picks
            .iter()
            .map(|&i| {
                let (input, placement) = &fitted[i];
                let over = overlay(
                    input,
                    &s.maps[i].display(DISPLAY_CLIP),
                    Colormap::Inferno,
                    0.8,
                );
                // Draw in scene coordinates (upscale the overlay back to the scene).
                let (w, h) = placement.original;
                let mut img =
                    image::imageops::resize(&over, w, h, image::imageops::FilterType::Triangle);
                let t = scenes[i].truth;
                draw_box(
                    &mut img,
                    t.x0 as i32,
                    t.y0 as i32,
                    t.x1 as i32,
                    t.y1 as i32,
                    Rgb([40, 220, 40]),
                    3,
                );
                if let Some(b) = s.best[i] {
                    draw_boxes(&mut img, &[b]);
                }
                Cell::new(img, netlens::labels::label(classes[i]))
            })
            .collect();
        fig.row(Some(s.name.clone()), cells);
    }
    fig.render()
}
