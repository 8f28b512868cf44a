//! `netlens locate`: bounding boxes from saliency maps (the practical's Q3), in the original
//! photo's pixels, drawn on the photo and printed as one JSON line per image.

use super::saliency::{attribute, check_layer, unique_stems, MethodArgs};
use crate::common::{check_outputs, load_images, save_png, ModelArgs};
use anyhow::Result;
use image::Rgb;
use netlens::imaging::figure::{draw_box, draw_label};
use netlens::saliency::locate::{self, BoundingBox, LocateOptions, Threshold};
use netlens::saliency::Targets;
use std::path::PathBuf;

/// How maps become boxes, shared with `locate-bench`.
#[derive(clap::Args, Debug, Clone)]
pub struct BoxArgs {
    /// Keep pixels at or above this fraction (0–1) of the smoothed map's maximum
    #[arg(long, default_value_t = LocateOptions::DEFAULT_FRACTION, value_name = "F",
          value_parser = crate::common::f32_in(0.0, 1.0, false))]
    pub threshold: f32,
    /// Keep pixels at or above this percentile (0–100) of the smoothed map instead
    #[arg(long, conflicts_with = "threshold", value_name = "P",
          value_parser = crate::common::f32_in(0.0, 100.0, false))]
    pub percentile: Option<f32>,
    /// σ (model-input pixels) of the Gaussian that smooths the map before thresholding,
    /// 0–256 (0: no smoothing)
    #[arg(long, default_value_t = LocateOptions::default().smooth, value_name = "PIXELS",
          value_parser = crate::common::f32_in(0.0, 256.0, false), allow_negative_numbers = true)]
    pub smooth: f32,
    /// Boxes kept per image, best first
    #[arg(long, default_value_t = LocateOptions::default().max_boxes as u16,
          value_parser = clap::value_parser!(u16).range(1..=100))]
    pub max_boxes: u16,
}

impl BoxArgs {
    /// The library options these flags describe.
    pub fn options(&self) -> LocateOptions {
        LocateOptions {
            threshold: match self.percentile {
                Some(p) => Threshold::Percentile(p),
                None => Threshold::Fraction(self.threshold),
            },
            smooth: self.smooth,
            max_boxes: self.max_boxes as usize,
        }
    }
}

#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    pub model: ModelArgs,
    #[command(flatten)]
    pub method: MethodArgs,
    #[command(flatten)]
    pub boxes: BoxArgs,
    /// Class to find in every image: an index, a name from --labels, or for ImageNet models
    /// any synonym or WordNet id [default: each image's top-1 class]
    #[arg(long, short = 't', value_name = "CLASS")]
    pub target: Option<String>,
    /// Folder for <stem>.boxes.png (the photo with its boxes)
    #[arg(long, short = 'o', default_value = "locate", value_name = "DIR")]
    pub out: PathBuf,
    /// Image files (PNG, JPEG, WebP, BMP, TIFF, GIF)
    #[arg(required = true, value_name = "IMAGE")]
    pub images: Vec<PathBuf>,
}

/// Rounded box corners as JSON.
pub fn box_json(b: &BoundingBox) -> serde_json::Value {
    serde_json::json!({
        "x0": b.x0.floor() as i64,
        "y0": b.y0.floor() as i64,
        "x1": b.x1.ceil() as i64,
        "y1": b.y1.ceil() as i64,
        "score": (b.score * 1e4).round() / 1e4,
    })
}

/// Draws boxes (best in red, the others in orange) with their scores.
pub fn draw_boxes(img: &mut image::RgbImage, boxes: &[BoundingBox]) {
    let side = img.width().min(img.height());
    let thick = (side / 150).max(2);
    let px = (side as f32 / 22.0).clamp(12.0, 28.0);
    for (i, b) in boxes.iter().enumerate().rev() {
        let color = if i == 0 {
            Rgb([230, 30, 30])
        } else {
            Rgb([255, 150, 0])
        };
        let (x0, y0, x1, y1) = (
            b.x0.floor() as i32,
            b.y0.floor() as i32,
            b.x1.ceil() as i32,
            b.y1.ceil() as i32,
        );
        draw_box(img, x0, y0, x1, y1, color, thick);
        draw_label(
            img,
            x0 + thick as i32,
            y0 + thick as i32,
            &format!("{:.2}", b.score),
            Rgb([255, 255, 255]),
            color,
            px,
        );
    }
}

pub fn run(a: Args) -> Result<()> {
    // The output is JSON lines, so the manifest always ends it.
    crate::manifest::cli("locate", true, |run| execute(&a, run).map(|()| None))
}

/// The locate command on parsed flags; its JSON lines and record go to `run`.
pub fn execute(a: &Args, run: &crate::manifest::Run) -> Result<()> {
    let model_name = a.model.single()?;
    let method = a.method.build(a.method.method)?;
    let opts = a.boxes.options();
    run.summary(format!(
        "model {model_name}, method {}, {}",
        a.method.method.describe(&a.method.settings()?),
        opts.describe()
    ));
    run.param("model", &model_name);
    run.param("method", a.method.method.name());
    run.param("target", &a.target);
    run.param("threshold", a.boxes.threshold);
    run.param("percentile", a.boxes.percentile);
    run.param("smooth", a.boxes.smooth);
    run.param("max_boxes", a.boxes.max_boxes);
    run.param("images", a.images.len());
    a.model.precheck_classes(a.target.as_deref())?;
    let stems = unique_stems(&a.images)?;
    let pngs: Vec<PathBuf> = stems
        .iter()
        .map(|s| a.out.join(format!("{s}.boxes.png")))
        .collect();
    check_outputs(
        pngs.iter().map(PathBuf::as_path),
        a.images.iter().map(PathBuf::as_path),
    )?;
    let loaded = a.model.load_named(&model_name)?;
    let (model, names) = (loaded.model.as_ref(), &loaded.names);
    check_layer(model, a.method.layer.as_deref())?;
    let target = a.target.as_deref().map(|t| names.resolve(t)).transpose()?;
    let images = load_images(&a.images, model.spec())?;
    let inputs: Vec<_> = images.iter().map(|i| i.input.clone()).collect();
    let targets = match target {
        Some(t) => Targets::All(t),
        None => Targets::PerImage(
            netlens::classify::classify(model, &inputs, 1, 16)
                .iter()
                .map(|p| p.class())
                .collect(),
        ),
    };
    let what = format!("{} on {}", method.name(), model.spec().name);
    let (maps, _) = attribute(
        model,
        method.as_ref(),
        &inputs,
        &targets,
        a.method.batch_size as usize,
        &what,
    )?;
    for ((img, m), png) in images.iter().zip(&maps).zip(&pngs) {
        let boxes: Vec<BoundingBox> = locate::boxes(m, &opts)?
            .iter()
            .map(|b| b.to_original(&img.placement))
            .collect();
        let mut drawn = img.original.clone();
        draw_boxes(&mut drawn, &boxes);
        run.figure(png);
        save_png(&drawn, png)?;
        let obj = serde_json::json!({
            "image": img.path.display().to_string(),
            "class": m.target,
            "label": names.label(m.target),
            "boxes": boxes.iter().map(box_json).collect::<Vec<_>>(),
        });
        run.line(obj);
    }
    Ok(())
}
