//! `netlens visualize`: class visualization — an image the network finds maximally "gorilla",
//! from noise or a photo, with the CS231n recipe (default) or Lucid's, snapshots, sweeps and a
//! side-by-side figure of both recipes.
//!
//! About 610 lines: the flags with their ranges and help, and the jobs (one recipe, snapshots, a
//! sweep, both recipes side by side), each with its figure; the recipes themselves are the
//! library's (`netlens::synthesis`).

use crate::class_names::ClassNames;
use crate::common::{self, bar, check_outputs, is_onnx, save_image, ModelArgs};
use anyhow::{Context, Result};
use indicatif::ProgressBar;
use netlens::imaging::figure::{Cell, Figure};
use netlens::imaging::output::Format;
use netlens::synthesis::sweep::{self, Axis};
use netlens::synthesis::{self, Lucid, Options, Recipe, Setting, Tick, Visualization};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum RecipeArg {
    /// The assignment's create_class_visualization: noise, roll jitter, normalized-gradient
    /// steps on score − λ‖x‖², clamp, periodic blur
    Cs231n,
    /// Lucid/Lucent: decorrelated Fourier image, pad/jitter/scale/rotate robustness, Adam
    Lucid,
    /// Both recipes for every class, side by side in one figure
    Both,
}

#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    pub model: ModelArgs,
    /// Class to visualize: an index (0–999 for ImageNet models), a name ("gorilla") or a
    /// WordNet id (for an ONNX model with --labels: a line of that file); repeat the flag for
    /// several classes (one figure with a row per class)
    #[arg(long, short = 'c', value_name = "CLASS", required = true)]
    pub class: Vec<String>,
    /// Recipe
    #[arg(long, value_enum, default_value_t = RecipeArg::Cs231n)]
    pub recipe: RecipeArg,
    /// Iterations, 1–100000 [default: 100 for cs231n, 512 for lucid]
    #[arg(long, value_name = "N", value_parser = crate::common::usize_in(1, 100_000))]
    pub iterations: Option<usize>,
    /// Step size, 0 < LR ≤ 10000 [default: 25 for cs231n's normalized-gradient step, 0.05
    /// for lucid's Adam]
    #[arg(long, value_name = "LR", value_parser = crate::common::f32_in(0.0, 1e4, true))]
    pub learning_rate: Option<f32>,
    /// cs231n: weight λ of the L2 penalty λ‖x‖² on the normalized image, 0–1000
    /// [default: 1e-3]
    #[arg(long, value_name = "λ", value_parser = crate::common::f32_in(0.0, 1e3, false))]
    pub l2_reg: Option<f32>,
    /// cs231n: blur every N iterations, 0 for never, at most 100000 [default: 10]
    #[arg(long, value_name = "N", value_parser = crate::common::usize_in(0, 100_000))]
    pub blur_every: Option<usize>,
    /// cs231n: standard deviation of the Gaussian blur, in pixels, 0 < σ ≤ 64 [default: 0.5]
    #[arg(long, value_name = "SIGMA", value_parser = crate::common::f32_in(0.0, 64.0, true))]
    pub blur_sigma: Option<f32>,
    /// cs231n: largest random roll, in pixels, each iteration, 0–512 [default: 16]
    #[arg(long, value_name = "PX", value_parser = crate::common::usize_in(0, 512))]
    pub max_jitter: Option<usize>,
    /// Start from this photo (resized and centre-cropped to the model) instead of noise
    /// (cs231n only)
    #[arg(long, value_name = "IMAGE")]
    pub init: Option<PathBuf>,
    /// Also write the image every N iterations (<image>-iterNNNN.png) and a strip of them with
    /// iteration numbers and the target probability (<image>-snapshots.png)
    #[arg(long, value_name = "N", default_value_t = 0,
          value_parser = crate::common::usize_in(0, 100_000))]
    pub snapshot_every: usize,
    /// Sweep a setting over values, e.g. l2-reg=1e-4,1e-3,1e-2; repeat for a grid
    /// (cs231n: iterations, learning-rate, l2-reg, blur-every, blur-sigma, max-jitter; lucid:
    /// iterations, learning-rate, sd, decay-power, decorrelate, transforms, pad, jitter)
    #[arg(long, value_name = "KEY=V1,V2,...")]
    pub sweep: Vec<String>,
    /// Sweep cells run at once (1: one after another; the engine already uses every core)
    #[arg(long, value_name = "N", default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=64))]
    pub parallel: u16,
    /// Seed of the start noise and of every random jitter: the same seed gives the same PNG
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Output image, .png or .jpg (encoded by its extension): the image for a single run, else the figure (each image is written beside
    /// it as <out>-<class>-<recipe>.png) [default: <class>-<recipe>.png, <class>-sweep.png,
    /// <class>-recipes.png or classes-<recipe>.png]
    #[arg(long, short = 'o', value_name = "FILE.png|FILE.jpg")]
    pub out: Option<PathBuf>,
    /// Print one JSON object per image instead of text
    #[arg(long)]
    pub json: bool,
}

/// One image to make.
struct Job {
    class: usize,
    recipe: Recipe,
    /// Sweep settings (`key=value` pairs), empty outside a sweep.
    settings: Vec<(String, String)>,
    out: PathBuf,
}

fn slug(s: &str) -> String {
    let mut out = String::new();
    for ch in s.chars() {
        if ch.is_ascii_alphanumeric() || ch == '.' {
            out.push(ch.to_ascii_lowercase());
        } else if !out.ends_with('-') {
            out.push('-');
        }
    }
    out.trim_matches('-').to_string()
}

/// `dir/<stem of base>-<suffix>.png`.
fn beside(base: &Path, suffix: &str) -> PathBuf {
    let stem = base
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "visualize".into());
    base.with_file_name(format!("{stem}-{suffix}.png"))
}

/// Snapshot file names of a run of `iterations` with a snapshot every `every` iterations.
fn snapshot_paths(image: &Path, iterations: usize, every: usize) -> (Vec<PathBuf>, PathBuf) {
    let mut its: Vec<usize> = (0..=iterations).step_by(every.max(1)).collect();
    if its.last() != Some(&iterations) {
        its.push(iterations);
    }
    let frames = its
        .iter()
        .map(|i| beside(image, &format!("iter{i:04}")))
        .collect();
    (frames, beside(image, "snapshots"))
}

/// The recipes the flags ask for, with the flags applied (refusing flags that belong to a
/// recipe not selected).
fn recipes(a: &Args) -> Result<Vec<Recipe>> {
    let names: &[&str] = match a.recipe {
        RecipeArg::Cs231n => &["cs231n"],
        RecipeArg::Lucid => &["lucid"],
        RecipeArg::Both => &["cs231n", "lucid"],
    };
    // The flags as typed settings, the ones a recipe lacks refused before any work.
    let given: Vec<Setting> = [
        a.iterations.map(Setting::Iterations),
        a.learning_rate.map(Setting::LearningRate),
        a.l2_reg.map(Setting::L2Reg),
        a.blur_every.map(Setting::BlurEvery),
        a.blur_sigma.map(Setting::BlurSigma),
        a.max_jitter.map(Setting::MaxJitter),
    ]
    .into_iter()
    .flatten()
    .collect();
    if a.recipe == RecipeArg::Lucid {
        if let Some(s) = given.iter().find(|s| !Lucid::takes(s)) {
            anyhow::bail!("--{} applies to the cs231n recipe only", s.key());
        }
    }
    if a.recipe == RecipeArg::Both && a.learning_rate.is_some() {
        anyhow::bail!(
            "--learning-rate means different things to the two recipes; give it with \
             --recipe cs231n or --recipe lucid"
        );
    }
    if a.init.is_some() && a.recipe != RecipeArg::Cs231n {
        anyhow::bail!("--init works with --recipe cs231n only (lucid optimizes a spectrum)");
    }
    names
        .iter()
        .map(|n| {
            let mut r = Recipe::by_name(n)?;
            // With --recipe both, the cs231n-only flags apply to cs231n alone.
            for &s in &given {
                if r.takes(&s) {
                    r.apply(s).with_context(|| format!("--{}", s.key()))?;
                }
            }
            Ok(r)
        })
        .collect()
}

/// A class's name for file names (`class<N>` when its name has no ASCII letters or digits).
fn class_slug(names: &ClassNames, c: usize) -> String {
    let s = slug(&names.label(c));
    if s.is_empty() {
        format!("class{c}")
    } else {
        s
    }
}

pub fn run(a: Args) -> Result<()> {
    crate::manifest::cli("visualize", a.json, |run| execute(&a, run).map(|()| None))
}

/// The visualize command on parsed flags; its output lines and record go to `run`.
pub fn execute(a: &Args, run: &crate::manifest::Run) -> Result<()> {
    let model_name = a.model.single()?;
    let recipes = recipes(a)?;
    let axes = a
        .sweep
        .iter()
        .map(|s| Axis::parse(s).map_err(anyhow::Error::from))
        .collect::<Result<Vec<_>>>()?;
    // The start photo is read before the model, so that a bad file fails fast.
    let init_photo = match &a.init {
        Some(p) => Some(common::read_image(p)?),
        None => None,
    };
    // A zoo model has ImageNet's classes, so its outputs are planned (and checked) before it
    // is loaded; an ONNX model's classes are known once it is.
    let early = if is_onnx(&model_name) {
        Some(a.model.load_named(&model_name)?)
    } else {
        None
    };
    let names = match &early {
        Some(l) => l.names.clone(),
        None => ClassNames::imagenet(&model_name),
    };
    let names = &names;
    let classes = a
        .class
        .iter()
        .map(|c| names.resolve(c))
        .collect::<Result<Vec<usize>>>()?;
    let first = class_slug(names, classes[0]);

    // Every job and every output path, decided (and checked) before any work.
    let mut jobs: Vec<Job> = Vec::new();
    let figure: Option<PathBuf>;
    if !axes.is_empty() {
        if classes.len() > 1 || recipes.len() > 1 {
            anyhow::bail!("--sweep takes one --class and one recipe");
        }
        let fig = a
            .out
            .clone()
            .unwrap_or_else(|| PathBuf::from(format!("{first}-sweep.png")));
        for cell in sweep::grid(&recipes[0], &axes)? {
            let suffix = cell
                .settings
                .iter()
                .map(|(k, v)| format!("{k}_{}", slug(v)))
                .collect::<Vec<_>>()
                .join("-");
            jobs.push(Job {
                class: classes[0],
                out: beside(&fig, &suffix),
                recipe: cell.recipe,
                settings: cell.settings,
            });
        }
        figure = Some(fig);
    } else if classes.len() == 1 && recipes.len() == 1 {
        let out = a
            .out
            .clone()
            .unwrap_or_else(|| PathBuf::from(format!("{first}-{}.png", recipes[0].name())));
        jobs.push(Job {
            class: classes[0],
            recipe: recipes[0].clone(),
            settings: Vec::new(),
            out,
        });
        figure = None;
    } else {
        let fig = a.out.clone().unwrap_or_else(|| {
            PathBuf::from(match (classes.len(), recipes.len()) {
                (1, _) => format!("{first}-recipes.png"),
                (_, 1) => format!("classes-{}.png", recipes[0].name()),
                _ => "classes-recipes.png".to_string(),
            })
        });
        for &c in &classes {
            for r in &recipes {
                jobs.push(Job {
                    class: c,
                    recipe: r.clone(),
                    settings: Vec::new(),
                    out: beside(&fig, &format!("{}-{}", class_slug(names, c), r.name())),
                });
            }
        }
        figure = Some(fig);
    }
    if let Some(f) = &figure {
        if jobs.iter().any(|j| j.out == *f) {
            anyhow::bail!("{} would be both an image and the figure", f.display());
        }
    }
    let mut outputs: Vec<PathBuf> = figure.iter().cloned().collect();
    for j in &jobs {
        outputs.push(j.out.clone());
        if a.snapshot_every > 0 {
            let (frames, strip) = snapshot_paths(&j.out, j.recipe.iterations(), a.snapshot_every);
            outputs.extend(frames);
            outputs.push(strip);
        }
    }
    // Encoded by extension (.png or .jpg): anything else is refused before the work starts.
    for o in &outputs {
        Format::from_path(o)?;
    }
    check_outputs(outputs.iter().map(PathBuf::as_path), a.init.as_deref())?;
    let class_list: Vec<String> = classes
        .iter()
        .map(|&c| names.label(c).into_owned())
        .collect();
    run.summary(format!(
        "model {model_name}, class{} {}, {}{}{}, seed {}",
        if classes.len() > 1 { "es" } else { "" },
        class_list.join(", "),
        recipes
            .iter()
            .map(Recipe::describe)
            .collect::<Vec<_>>()
            .join(" beside the "),
        a.sweep
            .iter()
            .map(|s| format!(", sweeping {s}"))
            .collect::<String>(),
        a.init
            .as_ref()
            .map(|p| format!(", starting from {}", common::stem(p)))
            .unwrap_or_default(),
        a.seed
    ));
    run.param("model", &model_name);
    run.param("classes", &class_list);
    run.param(
        "recipes",
        recipes.iter().map(Recipe::name).collect::<Vec<_>>(),
    );
    run.param("iterations", recipes[0].iterations());
    run.param("sweep", &a.sweep);
    run.param("init", a.init.as_ref().map(|p| p.display().to_string()));
    run.param("snapshot_every", a.snapshot_every);
    run.param("seed", a.seed);

    let loaded = match early {
        Some(l) => l,
        None => a.model.load_named(&model_name)?,
    };
    let model = loaded.model;
    let spec = model.spec();
    let init = init_photo.map(|p| netlens::imaging::fit_with(&p, spec.resize, spec.input_size).0);
    let options = Options {
        seed: a.seed,
        init,
        snapshot_every: a.snapshot_every,
    };

    let total: usize = jobs.iter().map(|j| j.recipe.iterations()).sum();
    let pb = bar(total as u64, &format!("visualizing on {}", spec.name));
    let results = if axes.is_empty() {
        let mut out = Vec::with_capacity(jobs.len());
        let mut offset = 0u64;
        for j in &jobs {
            let what = format!("{} ({})", names.label(j.class), j.recipe.name());
            let v = synthesis::visualize(model.as_ref(), j.class, &j.recipe, &options, &mut |t| {
                tick(&pb, offset, &what, t)
            })?;
            offset += j.recipe.iterations() as u64;
            out.push(v);
        }
        out
    } else {
        let cells: Vec<sweep::Cell> = jobs
            .iter()
            .map(|j| sweep::Cell {
                settings: j.settings.clone(),
                recipe: j.recipe.clone(),
            })
            .collect();
        let done = Mutex::new(vec![0usize; cells.len()]);
        let report = |i: usize, t: &Tick| {
            if let Ok(mut d) = done.lock() {
                d[i] = t.iteration;
                pb.set_position(d.iter().sum::<usize>() as u64);
            }
            pb.set_message(format!(
                "{} [{}] p={:.3}",
                names.label(jobs[i].class),
                cells[i].label(),
                t.prob
            ));
        };
        sweep::run(
            model.as_ref(),
            classes[0],
            &cells,
            &options,
            a.parallel as usize,
            &report,
        )?
    };
    pb.finish_and_clear();

    for (j, v) in jobs.iter().zip(&results) {
        save(&v.image, &j.out)?;
        if a.snapshot_every > 0 {
            write_snapshots(j, v, a.snapshot_every, spec.name, names, run)?;
        } else if figure.is_none() {
            run.figure(&j.out);
        }
    }
    if let Some(fig) = &figure {
        let img = if axes.is_empty() {
            recipes_figure(&jobs, &results, spec.name, names)
        } else {
            sweep_figure(&jobs, &results, &axes, spec.name, classes[0], names)
        };
        run.figure(fig);
        save(&img, fig)?;
    }
    for (j, v) in jobs.iter().zip(&results) {
        if a.json {
            run.line(json(j, v, spec.name, a.seed, names));
        } else {
            let settings = if j.settings.is_empty() {
                String::new()
            } else {
                format!(
                    " [{}]",
                    j.settings
                        .iter()
                        .map(|(k, v)| format!("{k}={v}"))
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            };
            run.line(format!(
                "{} ({}) {}{settings}: {} iterations, p = {:.4} (start {:.4}), {:.1} s -> {}",
                names.label(j.class),
                j.class,
                j.recipe.name(),
                v.iterations,
                v.prob,
                v.start_prob,
                v.ms / 1e3,
                j.out.display()
            ));
        }
    }
    if let (Some(fig), false) = (&figure, a.json) {
        run.line(format!("figure -> {}", fig.display()));
    }
    Ok(())
}

fn tick(pb: &ProgressBar, offset: u64, what: &str, t: &Tick) {
    pb.set_position(offset + t.iteration as u64);
    pb.set_message(format!("{what} p={:.3}", t.prob));
}

fn save(img: &image::RgbImage, path: &Path) -> Result<()> {
    save_image(img, path).with_context(|| format!("cannot write {}", path.display()))
}

fn write_snapshots(
    j: &Job,
    v: &Visualization,
    every: usize,
    model: &str,
    names: &ClassNames,
    run: &crate::manifest::Run,
) -> Result<()> {
    let (frames, strip) = snapshot_paths(&j.out, v.iterations, every);
    run.figure(&strip);
    let mut cells = Vec::new();
    for (s, path) in v.snapshots.iter().zip(&frames) {
        save(&s.image, path)?;
        cells.push(Cell::new(
            s.image.clone(),
            &format!("iteration {}\np = {:.3}", s.iteration, s.prob),
        ));
    }
    let mut fig = Figure::new(160).title(format!(
        "\"{}\" ({}), {} on {model}",
        names.label(j.class),
        j.class,
        j.recipe.name()
    ));
    for row in cells.chunks(8) {
        fig.row(None, row.to_vec());
    }
    save(&fig.render(), &strip)
}

/// One row per recipe, one column per class: the recipes side by side for the same classes.
fn recipes_figure(
    jobs: &[Job],
    results: &[Visualization],
    model: &str,
    names: &ClassNames,
) -> image::RgbImage {
    let mut recipes: Vec<&str> = Vec::new();
    for j in jobs {
        if !recipes.contains(&j.recipe.name()) {
            recipes.push(j.recipe.name());
        }
    }
    let mut fig = Figure::new(224).title(format!("class visualizations on {model}"));
    for name in recipes {
        let cells = jobs
            .iter()
            .zip(results)
            .filter(|(j, _)| j.recipe.name() == name)
            .map(|(j, v)| {
                Cell::new(
                    v.image.clone(),
                    &format!(
                        "{} ({})\np = {:.3} after {}",
                        names.label(j.class),
                        j.class,
                        v.prob,
                        v.iterations
                    ),
                )
            })
            .collect();
        fig.row(Some(name.to_string()), cells);
    }
    fig.render()
}

fn sweep_figure(
    jobs: &[Job],
    results: &[Visualization],
    axes: &[Axis],
    model: &str,
    class: usize,
    names: &ClassNames,
) -> image::RgbImage {
    let cols = axes.last().map(|a| a.values.len()).unwrap_or(1).max(1);
    let mut fig = Figure::new(200).title(format!(
        "\"{}\" ({class}), {} on {model}: sweep",
        names.label(class),
        jobs.first().map(|j| j.recipe.name()).unwrap_or("")
    ));
    for (rj, rv) in jobs.chunks(cols).zip(results.chunks(cols)) {
        let label = (axes.len() > 1).then(|| {
            rj[0].settings[..axes.len() - 1]
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join("\n")
        });
        let cells = rj
            .iter()
            .zip(rv)
            .map(|(j, v)| {
                let (k, val) = j.settings.last().cloned().unwrap_or_default();
                Cell::new(v.image.clone(), &format!("{k}={val}\np = {:.3}", v.prob))
            })
            .collect();
        fig.row(label, cells);
    }
    fig.render()
}

fn json(
    j: &Job,
    v: &Visualization,
    model: &str,
    seed: u64,
    names: &ClassNames,
) -> serde_json::Value {
    let mut o = serde_json::json!({
        "class": j.class,
        "label": names.label(j.class),
        "model": model,
        "recipe": j.recipe.name(),
        "iterations": v.iterations,
        "final_prob": v.prob,
        "start_prob": v.start_prob,
        "seed": seed,
        "ms": (v.ms * 10.0).round() / 10.0,
        "out": j.out.display().to_string(),
    });
    if !j.settings.is_empty() {
        o["settings"] = serde_json::Value::Object(
            j.settings
                .iter()
                .map(|(k, v)| (k.clone(), serde_json::Value::String(v.clone())))
                .collect(),
        );
    }
    o
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Args as _;

    /// `--sweep`'s help lists each recipe's settings as the library derives them.
    #[test]
    fn sweep_help_lists_the_recipes_settings() {
        let cmd = Args::augment_args(clap::Command::new("visualize"));
        let help = cmd
            .get_arguments()
            .find(|a| a.get_id() == "sweep")
            .and_then(|a| a.get_help())
            .map(|h| h.to_string())
            .unwrap_or_default();
        let help = help.split_whitespace().collect::<Vec<_>>().join(" ");
        for name in Recipe::NAMES {
            let keys = Recipe::by_name(name).unwrap().keys().join(", ");
            assert!(help.contains(&format!("{name}: {keys}")), "{help}");
        }
    }
}
