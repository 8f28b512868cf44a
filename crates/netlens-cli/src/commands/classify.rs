//! `netlens classify`: top-k classes of each image, as a table or JSON lines.

use crate::class_names::ClassNames;
use crate::common::{check_images, chunk_size, load_images, ModelArgs};
use crate::resume::{parse_shard, ResumeArgs, Shard};
use anyhow::Result;
use std::path::{Path, PathBuf};

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
    /// Classify only shard I of N (1 ≤ I ≤ N ≤ 100000): blocks of whole chunks of the images
    /// go round the shards, so N runs print the lines of one run (classify writes no files,
    /// so there is nothing for --skip-existing to skip)
    #[arg(long, value_name = "I/N", value_parser = parse_shard)]
    pub shard: Option<Shard>,
    /// Image files (PNG, JPEG, WebP, BMP, TIFF, GIF)
    #[arg(required = true, value_name = "IMAGE")]
    pub images: Vec<PathBuf>,
}

pub fn run(a: Args) -> Result<()> {
    check_images(&a.images)?;
    let loaded = a.model.load()?;
    let (model, names) = (loaded.model.as_ref(), &loaded.names);
    let spec = model.spec();
    let top = (a.top as usize).min(names.len());
    let batch = a.batch_size as usize;
    let chunk = chunk_size(&[batch]);
    let shard = ResumeArgs {
        skip_existing: false,
        shard: a.shard,
    };
    let mine: Vec<PathBuf> = shard
        .select(a.images.len(), chunk, |_| false)
        .into_iter()
        .map(|i| a.images[i].clone())
        .collect();
    if mine.is_empty() {
        eprintln!(
            "classify: nothing to do: {}",
            shard.why_empty(a.images.len())
        );
        return Ok(());
    }
    // Decode, classify and print a chunk at a time: memory stays flat in the number of images.
    for paths in mine.chunks(chunk) {
        let images = load_images(paths, spec)?;
        let inputs: Vec<_> = images.iter().map(|i| i.input.clone()).collect();
        let preds = netlens::classify::classify(model, &inputs, top, batch);
        for (img, p) in images.iter().zip(&preds) {
            print(&a, spec.name, names, &img.path, p);
        }
    }
    Ok(())
}

/// One image's result, as a JSON line or a table.
fn print(
    a: &Args,
    model: &str,
    names: &ClassNames,
    path: &Path,
    p: &netlens::classify::Prediction,
) {
    if a.json {
        let top: Vec<_> = p
            .top
            .iter()
            .map(
                |&(c, prob)| serde_json::json!({"class": c, "label": names.label(c), "prob": prob}),
            )
            .collect();
        let mut obj = serde_json::json!({
            "image": path.display().to_string(),
            "model": model,
            "top": top,
        });
        if a.logits {
            obj["logits"] = serde_json::json!(p.logits);
        }
        println!("{obj}");
    } else {
        println!("{}  ({model})", path.display());
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
