//! `netlens transfer`: craft fooling images on each model, test them on every model (Q7).

use super::fool::AttackArgs;
use crate::common::{bar, check_all_writable, load_model};
use anyhow::{Context, Result};
use netlens::adversarial::plot::transfer_heatmap;
use netlens::adversarial::transfer::transfer;
use netlens::imaging::output::save_png;
use netlens::labels;
use netlens::Classifier;
use std::path::PathBuf;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Models to craft on and test on, comma-separated (see `netlens models`)
    #[arg(
        long,
        required = true,
        value_delimiter = ',',
        value_name = "A,B[,C...]"
    )]
    pub models: Vec<String>,
    #[command(flatten)]
    pub attack: AttackArgs,
    /// Heatmap of the success matrix
    #[arg(long, value_name = "FILE.png", default_value = "transfer.png")]
    pub heatmap: PathBuf,
    /// Print the matrix as one JSON object instead of a table
    #[arg(long)]
    pub json: bool,
    /// Image files (PNG, JPEG, WebP, BMP, TIFF, GIF); each is fitted to every model's input
    #[arg(required = true, value_name = "IMAGE")]
    pub images: Vec<PathBuf>,
}

pub fn run(a: Args) -> Result<()> {
    let method = a.attack.method()?;
    let target = a.attack.target()?;
    let names: Vec<&str> = a
        .models
        .iter()
        .map(|s| s.trim())
        .filter(|s| !s.is_empty())
        .collect();
    if names.is_empty() {
        anyhow::bail!("--models needs at least one model name");
    }
    for n in &names {
        netlens::models::spec(n)?;
    }
    check_all_writable([a.heatmap.as_path()])?;
    if a.images.is_empty() {
        anyhow::bail!("no image given");
    }
    let photos: Vec<_> = a
        .images
        .iter()
        .map(|p| {
            netlens::imaging::load_rgb(p).with_context(|| format!("cannot read {}", p.display()))
        })
        .collect::<Result<_>>()?;
    let models: Vec<Box<dyn Classifier>> = names
        .iter()
        .map(|n| load_model(n, None))
        .collect::<Result<_>>()?;
    let refs: Vec<&dyn Classifier> = models.iter().map(|m| m.as_ref()).collect();
    let batch = a.attack.batch_size as usize;
    let per_model = photos.len().div_ceil(batch) as u64 * method.max_iterations() as u64;
    let pb = bar(per_model * refs.len() as u64, "crafting");
    let t = transfer(&refs, &photos, target, method, batch, &mut |m, b, tk| {
        pb.set_position(
            m as u64 * per_model
                + (b as u64) * method.max_iterations() as u64
                + tk.iteration as u64,
        );
        pb.set_message(format!("crafting on {}", refs[m].spec().name));
    })?;
    pb.finish_and_clear();
    let what = match target {
        Some(c) => format!("targeted \"{}\"", labels::label(c)),
        None => "untargeted".to_string(),
    };
    let title = format!(
        "{} {what}: success rate ({} images)",
        method.describe(),
        t.images
    );
    let img = transfer_heatmap(&t, &title)?;
    save_png(&img, &a.heatmap).with_context(|| format!("cannot write {}", a.heatmap.display()))?;
    if a.json {
        let crafted: Vec<_> = t
            .crafted
            .iter()
            .map(|row| {
                serde_json::json!({
                    "success": row.iter().filter(|f| f.success).count(),
                    "mean_iterations": row.iter().map(|f| f.iterations as f64).sum::<f64>() / row.len().max(1) as f64,
                    "mean_linf": row.iter().map(|f| f.distance.linf).sum::<f64>() / row.len().max(1) as f64,
                    "mean_l2": row.iter().map(|f| f.distance.l2).sum::<f64>() / row.len().max(1) as f64,
                })
            })
            .collect();
        let rates: Vec<Vec<f64>> = (0..t.models.len())
            .map(|i| (0..t.models.len()).map(|j| t.rate(i, j)).collect())
            .collect();
        println!(
            "{}",
            serde_json::json!({
                "method": method.name(),
                "target": target,
                "target_label": target.map(labels::label),
                "images": a.images.iter().map(|p| p.display().to_string()).collect::<Vec<_>>(),
                "models": t.models,
                "success": t.success,
                "rate": rates,
                "predictions": t.predictions,
                "crafted": crafted,
                "heatmap": a.heatmap.display().to_string(),
            })
        );
    } else {
        println!("{title}; rows: crafted on, columns: tested on");
        let w = t.models.iter().map(|m| m.len()).max().unwrap_or(8).max(10);
        print!("{:<w$}", "");
        for m in &t.models {
            print!("  {m:>w$}");
        }
        println!();
        for (i, m) in t.models.iter().enumerate() {
            print!("{m:<w$}");
            for j in 0..t.models.len() {
                let cell = format!(
                    "{}/{} {:>3.0}%",
                    t.success[i][j],
                    t.images,
                    100.0 * t.rate(i, j)
                );
                print!("  {cell:>w$}");
            }
            println!();
        }
        println!("heatmap: {}", a.heatmap.display());
    }
    Ok(())
}
