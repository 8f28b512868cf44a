//! `netlens classify`: top-k classes of each image, as a table or JSON lines.

use crate::common::{load_images, ModelArgs};
use anyhow::Result;
use std::path::PathBuf;

#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    pub model: ModelArgs,
    /// Number of classes to show per image (at most the model's number of classes)
    #[arg(long, short = 'k', default_value_t = 5, value_parser = clap::value_parser!(u16).range(1..))]
    pub top: u16,
    /// Print one JSON object per image per line instead of a table
    #[arg(long)]
    pub json: bool,
    /// Include all logits (one per class: 1000 for ImageNet models) in the JSON output
    #[arg(long, requires = "json")]
    pub logits: bool,
    /// Images through the network at once
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u16).range(1..=256))]
    pub batch_size: u16,
    /// Image files (PNG, JPEG, WebP, BMP, TIFF, GIF)
    #[arg(required = true, value_name = "IMAGE")]
    pub images: Vec<PathBuf>,
}

pub fn run(a: Args) -> Result<()> {
    let loaded = a.model.load()?;
    let (model, names) = (loaded.model.as_ref(), &loaded.names);
    let spec = model.spec();
    let images = load_images(&a.images, spec)?;
    let inputs: Vec<_> = images.iter().map(|i| i.input.clone()).collect();
    let top = (a.top as usize).min(names.len());
    let preds = netlens::classify::classify(model, &inputs, top, a.batch_size as usize);
    for (img, p) in images.iter().zip(&preds) {
        if a.json {
            let top: Vec<_> = p
                .top
                .iter()
                .map(|&(c, prob)| serde_json::json!({"class": c, "label": names.label(c), "prob": prob}))
                .collect();
            let mut obj = serde_json::json!({
                "image": img.path.display().to_string(),
                "model": spec.name,
                "top": top,
            });
            if a.logits {
                obj["logits"] = serde_json::json!(p.logits);
            }
            println!("{obj}");
        } else {
            println!("{}  ({})", img.path.display(), spec.name);
            for (rank, &(c, prob)) in p.top.iter().enumerate() {
                println!(
                    "  {:>2}. {:>4}  {:<32} {:>7.4}",
                    rank + 1,
                    c,
                    names.label(c),
                    prob
                );
            }
        }
    }
    Ok(())
}
