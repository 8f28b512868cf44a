//! `netlens robustness`: top-1 agreement as random noise grows, beside the same as the PGD
//! epsilon grows (Q6), as a table and one PNG plot.

use crate::common::{bar, check_outputs, load_images, save_png, ModelArgs};
use anyhow::{Context, Result};
use netlens::adversarial::parse_epsilon;
use netlens::adversarial::plot::robustness_plot;
use netlens::adversarial::robustness::{robustness, Level, Sweep};
use std::path::PathBuf;

/// An L∞ epsilon in 0–255 units (or a fraction of the range), at most the whole range.
fn epsilon_arg(s: &str) -> std::result::Result<f32, String> {
    match parse_epsilon(s).map_err(|e| e.to_string())? {
        e if e <= 255.0 => Ok(e),
        e => Err(format!(
            "{e} is out of range: an L∞ epsilon is at most 255 (the whole pixel range)"
        )),
    }
}

fn sigma_arg(s: &str) -> std::result::Result<f32, String> {
    let bad = || {
        format!("bad sigma {s:?}: give 0–255 pixel units (8) or a fraction of the range (8/255)")
    };
    match parse_epsilon(s).map_err(|_| bad())? {
        v if v <= 255.0 => Ok(v),
        _ => Err(bad()),
    }
}

#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    pub model: ModelArgs,
    /// Gaussian noise standard deviations, 0–255 units or fractions (4/255), comma-separated
    #[arg(long, value_delimiter = ',', value_parser = sigma_arg,
          default_value = "1,2,4,8,16,32,64,128")]
    pub sigmas: Vec<f32>,
    /// Noisy copies of each image per sigma
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u16).range(1..=1000))]
    pub draws: u16,
    /// PGD L∞ epsilons (untargeted), 0–255 units or fractions (4/255), comma-separated
    #[arg(long, value_delimiter = ',', value_parser = epsilon_arg, default_value = "1,2,4,8,16")]
    pub epsilons: Vec<f32>,
    /// PGD steps per epsilon (step size 2.5·epsilon/steps, random start)
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u16).range(1..=10000))]
    pub steps: u16,
    /// Seed of the noise and of PGD's random start
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Images through the network at once
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u16).range(1..=256))]
    pub batch_size: u16,
    /// The plot
    #[arg(long, value_name = "FILE.png", default_value = "robustness.png")]
    pub plot: PathBuf,
    /// Print the curves as one JSON object instead of a table
    #[arg(long)]
    pub json: bool,
    /// Image files (PNG, JPEG, WebP, BMP, TIFF, GIF)
    #[arg(required = true, value_name = "IMAGE")]
    pub images: Vec<PathBuf>,
}

pub fn run(a: Args) -> Result<()> {
    crate::manifest::cli("robustness", a.json, |run| execute(&a, run))
}

/// The robustness command on parsed flags: its one JSON object with `--json` (else its table
/// goes to `run`).
pub fn execute(a: &Args, run: &crate::manifest::Run) -> Result<Option<serde_json::Value>> {
    let model_name = a.model.single()?;
    check_outputs([a.plot.as_path()], a.images.iter().map(PathBuf::as_path))?;
    let model = a.model.load_named(&model_name)?.model;
    let spec = model.spec();
    let images = load_images(&a.images, spec)?;
    let inputs: Vec<_> = images.iter().map(|i| i.input.clone()).collect();
    let sweep = Sweep {
        sigmas: a.sigmas.clone(),
        draws: a.draws as usize,
        epsilons: a.epsilons.clone(),
        steps: a.steps as usize,
        seed: a.seed,
        batch: a.batch_size as usize,
    };
    run.summary(format!(
        "model {}; Gaussian noise σ {:?} ({} draw{}) and untargeted PGD L∞ ε {:?} ({} steps), \
         in 0–255 units, seed {}",
        spec.name,
        sweep.sigmas,
        sweep.draws,
        if sweep.draws == 1 { "" } else { "s" },
        sweep.epsilons,
        sweep.steps,
        sweep.seed
    ));
    run.param("model", spec.name);
    run.param("sigmas", &sweep.sigmas);
    run.param("draws", sweep.draws);
    run.param("epsilons", &sweep.epsilons);
    run.param("steps", sweep.steps);
    run.param("seed", sweep.seed);
    run.param("batch_size", sweep.batch);
    let total = (sweep.sigmas.len() + sweep.epsilons.len()) as u64;
    let pb = bar(total, &format!("noise and PGD sweep on {}", spec.name));
    let c = robustness(model.as_ref(), &inputs, &sweep, &mut |done, _| {
        pb.set_position(done as u64)
    })?;
    pb.finish_and_clear();
    let img = robustness_plot(&c)?;
    run.figure(&a.plot);
    save_png(&img, &a.plot).with_context(|| format!("cannot write {}", a.plot.display()))?;
    let rows = |levels: &[Level]| -> Vec<serde_json::Value> {
        levels
            .iter()
            .map(|l| {
                serde_json::json!({"value": l.value, "agreement": l.agreement, "rms": l.rms,
                                   "linf": l.linf, "count": l.count})
            })
            .collect()
    };
    if a.json {
        return Ok(Some(serde_json::json!({
                "model": c.model,
                "images": a.images.iter().map(|p| p.display().to_string()).collect::<Vec<_>>(),
                "noise": rows(&c.noise),
                "pgd": rows(&c.pgd),
                "pgd_steps": sweep.steps,
                "draws": sweep.draws,
                "plot": a.plot.display().to_string(),
        })));
    }
    {
        run.line(format!(
            "{}: top-1 agreement with the clean prediction ({} images; sizes in 0–255 units)",
            c.model, c.images
        ));
        run.line(format!(
            "{:<24} {:>9} {:>9} {:>10} {:>8}",
            "perturbation", "size", "agree", "RMS", "L∞"
        ));
        for (name, levels) in [
            ("Gaussian noise σ", &c.noise),
            ("PGD L∞ ε (untargeted)", &c.pgd),
        ] {
            for l in levels {
                run.line(format!(
                    "{:<24} {:>9} {:>8.1}% {:>10.2} {:>8.1}",
                    name,
                    l.value,
                    100.0 * l.agreement,
                    l.rms,
                    l.linf
                ));
            }
        }
        run.line(format!("plot: {}", a.plot.display()));
    }
    Ok(None)
}
