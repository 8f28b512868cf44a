//! `netlens transfer`: craft fooling images on each model, test them on every model (Q7).

use super::fool::AttackArgs;
use crate::class_names::ClassNames;
use crate::common::{
    self, bar, check_outputs, is_onnx, load_model, model_list, save_png, short_names,
};
use anyhow::{Context, Result};
use netlens::adversarial::plot::transfer_heatmap;
use netlens::adversarial::transfer::transfer;
use netlens::models::Preprocessing;
use netlens::Classifier;
use std::path::PathBuf;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Models to craft on and test on, comma-separated: zoo names (see `netlens models`) and
    /// ONNX files alike (each file's sidecar model.json sets its preprocessing); a targeted
    /// attack needs models with the same classes
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
    crate::manifest::cli("transfer", a.json, |run| execute(&a, run))
}

/// The transfer command on parsed flags: its one JSON object with `--json` (else its table
/// goes to `run`).
pub fn execute(a: &Args, run: &crate::manifest::Run) -> Result<Option<serde_json::Value>> {
    let method = a.attack.method()?;
    if a.attack.target.is_none() && !a.attack.untargeted {
        anyhow::bail!("give --target CLASS or --untargeted");
    }
    let names = model_list(a.models.iter().map(String::as_str), "--models")?;
    if !names.iter().any(|n| is_onnx(n)) {
        if let Some(t) = &a.attack.target {
            ClassNames::imagenet(&names[0]).resolve(t)?;
        }
    }
    check_outputs([a.heatmap.as_path()], a.images.iter().map(PathBuf::as_path))?;
    if a.images.is_empty() {
        anyhow::bail!("no image given");
    }
    let photos: Vec<_> = a
        .images
        .iter()
        .map(|p| common::read_image(p).with_context(|| format!("cannot read {}", p.display())))
        .collect::<Result<_>>()?;
    let models: Vec<std::sync::Arc<dyn Classifier>> = names
        .iter()
        .map(|n| load_model(n, None, &Preprocessing::default()))
        .collect::<Result<_>>()?;
    let classes = ClassNames::new(&names[0], models[0].classes(), None)?;
    let target = a.attack.target(&classes)?;
    if target.is_some() {
        if let Some(m) = models.iter().find(|m| m.classes() != models[0].classes()) {
            anyhow::bail!(
                "a targeted transfer needs models with the same classes: {} has {}, {} has {} \
                 (use --untargeted)",
                names[0],
                models[0].classes(),
                m.spec().name,
                m.classes()
            );
        }
    }
    let shorts = short_names(&names);
    let refs: Vec<&dyn Classifier> = models.iter().map(|m| m.as_ref()).collect();
    let batch = a.attack.batch_size as usize;
    let per_model = photos.len().div_ceil(batch) as u64 * method.max_iterations() as u64;
    let pb = bar(per_model * refs.len() as u64, "crafting");
    let mut t = transfer(&refs, &photos, target, method, batch, &mut |m, b, tk| {
        pb.set_position(
            m as u64 * per_model
                + (b as u64) * method.max_iterations() as u64
                + tk.iteration as u64,
        );
        pb.set_message(format!("crafting on {}", shorts[m]));
    })?;
    pb.finish_and_clear();
    // The JSON names the models as given; the heatmap and the table use short names.
    let given = std::mem::replace(&mut t.models, shorts.clone());
    let what = match target {
        Some(c) => format!("targeted \"{}\"", classes.label(c)),
        None => "untargeted".to_string(),
    };
    let title = format!(
        "{} {what}: success rate ({} images)",
        method.describe(),
        t.images
    );
    run.summary(format!(
        "models {}; {} {what}, crafted on each model, tested on every model",
        given.join(", "),
        method.describe()
    ));
    run.param("models", &given);
    run.param("method", method.name());
    run.param("target", target);
    run.param("max_iterations", method.max_iterations());
    run.param("batch_size", batch);
    run.param("images", a.images.len());
    let img = transfer_heatmap(&t, &title)?;
    run.figure(&a.heatmap);
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
        return Ok(Some(serde_json::json!({
                "method": method.name(),
                "target": target,
                "target_label": target.map(|c| classes.label(c)),
                "images": a.images.iter().map(|p| p.display().to_string()).collect::<Vec<_>>(),
                "models": given,
                "success": t.success,
                "rate": rates,
                "predictions": t.predictions,
                "crafted": crafted,
                "heatmap": a.heatmap.display().to_string(),
        })));
    }
    {
        run.line(format!("{title}; rows: crafted on, columns: tested on"));
        let w = t.models.iter().map(|m| m.len()).max().unwrap_or(8).max(10);
        let mut head = format!("{:<w$}", "");
        for m in &t.models {
            head.push_str(&format!("  {m:>w$}"));
        }
        run.line(head);
        for (i, m) in t.models.iter().enumerate() {
            let mut row = format!("{m:<w$}");
            for j in 0..t.models.len() {
                let cell = format!(
                    "{}/{} {:>3.0}%",
                    t.success[i][j],
                    t.images,
                    100.0 * t.rate(i, j)
                );
                row.push_str(&format!("  {cell:>w$}"));
            }
            run.line(row);
        }
        run.line(format!("heatmap: {}", a.heatmap.display()));
    }
    Ok(None)
}
