//! `netlens fool`: fooling images — the CS231n loop, FGSM and PGD — judged on the 8-bit PNG
//! as saved.

use crate::class_names::ClassNames;
use crate::common::{
    bar, check_images, check_outputs, chunk_size, load_images, save_png, stem, ModelArgs,
};
use anyhow::{Context, Result};
use netlens::adversarial::figure::fooling_figure;
use netlens::adversarial::pgd::{Norm, Pgd};
use netlens::adversarial::{
    attack, parse_epsilon, Attack, AttackMethod, Cs231nFooling, Fooled, Goal,
};
use netlens::imaging;
use std::path::{Path, PathBuf};

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum MethodArg {
    /// The assignment's make_fooling_image: normalized-gradient steps on the target score
    Cs231n,
    /// Fast gradient sign method: one signed step of --epsilon
    Fgsm,
    /// Projected gradient descent: --steps signed (L∞) or L2 steps inside the --epsilon ball
    Pgd,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum NormArg {
    Linf,
    L2,
}

fn epsilon_arg(s: &str) -> std::result::Result<f32, String> {
    parse_epsilon(s).map_err(|e| e.to_string())
}

/// The attack flags shared by `fool` and `transfer`.
#[derive(clap::Args, Debug, Clone)]
pub struct AttackArgs {
    /// Attack method
    #[arg(long, value_enum, default_value_t = MethodArg::Cs231n)]
    pub method: MethodArg,
    /// Class to make the network see: an index (0–999 for ImageNet models), a name
    /// ("stingray"; for an ONNX model with --labels, a line of that file)
    #[arg(
        long,
        short = 't',
        value_name = "CLASS",
        required_unless_present = "untargeted"
    )]
    pub target: Option<String>,
    /// Push each image away from its clean top-1 class instead of towards a target
    #[arg(long, conflicts_with = "target")]
    pub untargeted: bool,
    /// cs231n: step size of the normalized-gradient steps (normalized-input units),
    /// 0 < LR ≤ 10000 [default: 1]
    #[arg(long, value_name = "LR", value_parser = crate::common::f32_in(0.0, 1e4, true))]
    pub learning_rate: Option<f32>,
    /// cs231n: give up after this many steps, 1–100000 [default: 100]
    #[arg(long, value_name = "N", value_parser = crate::common::usize_in(1, 100_000))]
    pub max_iterations: Option<usize>,
    /// fgsm/pgd: perturbation budget > 0, in 0–255 pixel units (8) or a fraction of the range
    /// (8/255); at most 255 for linf [default: 8/255 for linf, 127.5 (0.5 of the range) for
    /// l2]
    #[arg(long, short = 'e', value_name = "EPS", value_parser = epsilon_arg)]
    pub epsilon: Option<f32>,
    /// pgd: number of steps, 1–100000 [default: 10]
    #[arg(long, value_name = "N", value_parser = crate::common::usize_in(1, 100_000))]
    pub steps: Option<usize>,
    /// pgd: step size, 0–255 units or a fraction like 2/255 [default: 2.5·epsilon/steps]
    #[arg(long, value_name = "EPS", value_parser = epsilon_arg)]
    pub step_size: Option<f32>,
    /// pgd: the ball the perturbation lives in
    #[arg(long, value_enum)]
    pub norm: Option<NormArg>,
    /// pgd: start at the clean image instead of a random point of the ball
    #[arg(long)]
    pub no_random_start: bool,
    /// pgd: take every step even after the image is fooled (textbook PGD; a deeper change
    /// that transfers better) instead of stopping at the first success
    #[arg(long)]
    pub full_steps: bool,
    /// pgd: seed of the random start
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Images attacked together in one batch
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u16).range(1..=256))]
    pub batch_size: u16,
}

impl AttackArgs {
    /// The target class index among `names`, `None` when untargeted.
    pub fn target(&self, names: &ClassNames) -> Result<Option<usize>> {
        match (&self.target, self.untargeted) {
            (Some(t), false) => Ok(Some(names.resolve(t)?)),
            (None, true) => Ok(None),
            _ => anyhow::bail!("give --target CLASS or --untargeted"),
        }
    }

    /// The configured method, refusing flags that belong to another one.
    pub fn method(&self) -> Result<AttackMethod> {
        let only = |ok: bool, flag: &str, methods: &str| -> Result<()> {
            if !ok {
                anyhow::bail!("{flag} applies to --method {methods} only");
            }
            Ok(())
        };
        let m = self.method;
        only(
            m == MethodArg::Cs231n
                || (self.learning_rate.is_none() && self.max_iterations.is_none()),
            "--learning-rate/--max-iterations",
            "cs231n",
        )?;
        only(
            m == MethodArg::Pgd
                || (self.steps.is_none()
                    && self.step_size.is_none()
                    && self.norm.is_none()
                    && !self.no_random_start
                    && !self.full_steps),
            "--steps/--step-size/--norm/--no-random-start/--full-steps",
            "pgd",
        )?;
        only(
            m != MethodArg::Cs231n || self.epsilon.is_none(),
            "--epsilon",
            "fgsm or pgd",
        )?;
        let norm = match self.norm.unwrap_or(NormArg::Linf) {
            NormArg::Linf => Norm::Linf,
            NormArg::L2 => Norm::L2,
        };
        let eps = self
            .epsilon
            .unwrap_or(if norm == Norm::Linf { 8.0 } else { 127.5 });
        if m != MethodArg::Cs231n && eps <= 0.0 {
            anyhow::bail!("--epsilon must be > 0: a zero budget allows no change");
        }
        if norm == Norm::Linf && m != MethodArg::Cs231n && eps > 255.0 {
            anyhow::bail!(
                "--epsilon {eps} is out of range: an L∞ budget is at most 255, the whole pixel \
                 range (0–255 units, or a fraction like 8/255)"
            );
        }
        if norm == Norm::Linf && m != MethodArg::Cs231n && eps < 1.0 {
            anyhow::bail!(
                "an L∞ epsilon of {eps} pixel levels cannot change an 8-bit image; give it in \
                 0–255 units (2) or as a fraction of the range (2/255)"
            );
        }
        Ok(match m {
            MethodArg::Cs231n => {
                let d = Cs231nFooling::default();
                let c = Cs231nFooling {
                    learning_rate: self.learning_rate.unwrap_or(d.learning_rate),
                    max_iterations: self.max_iterations.unwrap_or(d.max_iterations),
                };
                if !(c.learning_rate.is_finite() && c.learning_rate > 0.0) {
                    anyhow::bail!("--learning-rate must be a positive number");
                }
                if c.max_iterations == 0 {
                    anyhow::bail!("--max-iterations must be at least 1");
                }
                AttackMethod::Cs231n(c)
            }
            MethodArg::Fgsm => AttackMethod::Fgsm { epsilon: eps },
            MethodArg::Pgd => {
                let p = Pgd {
                    epsilon: eps,
                    steps: self.steps.unwrap_or(10),
                    step_size: self.step_size,
                    norm,
                    random_start: !self.no_random_start,
                    seed: self.seed,
                    full_steps: self.full_steps,
                };
                if p.steps == 0 {
                    anyhow::bail!("--steps must be at least 1");
                }
                if p.step() <= 0.0 {
                    anyhow::bail!("--step-size must be positive");
                }
                AttackMethod::Pgd(p)
            }
        })
    }
}

#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    pub model: ModelArgs,
    #[command(flatten)]
    pub attack: AttackArgs,
    /// Write the fooling image (8-bit PNG at the model's input size). With several images,
    /// or when this is an existing directory, a directory that receives <stem>.fooling.png
    #[arg(long, short = 'o', value_name = "PATH")]
    pub out: Option<PathBuf>,
    /// Write the practical's figure: original, fooling image, difference, difference ×10 (a
    /// row for each of the first 16 images)
    #[arg(long, value_name = "FILE.png")]
    pub figure: Option<PathBuf>,
    /// Print one JSON object per image per line instead of a table
    #[arg(long)]
    pub json: bool,
    /// Image files (PNG, JPEG, WebP, BMP, TIFF, GIF)
    #[arg(required = true, value_name = "IMAGE")]
    pub images: Vec<PathBuf>,
}

/// Images (rows) the `--figure` shows at most; a longer run's figure says how many it shows.
const FIGURE_ROWS: usize = 16;

/// Where each fooling image goes.
fn out_paths(out: &Path, images: &[PathBuf]) -> Result<Vec<PathBuf>> {
    if images.len() == 1 && !out.is_dir() {
        return Ok(vec![out.to_path_buf()]);
    }
    let paths: Vec<PathBuf> = images
        .iter()
        .map(|p| out.join(format!("{}.fooling.png", stem(p))))
        .collect();
    for (i, p) in paths.iter().enumerate() {
        if paths[..i].contains(p) {
            anyhow::bail!(
                "two inputs would both write {}; attack them in separate calls",
                p.display()
            );
        }
    }
    Ok(paths)
}

/// Saves `img` and reads it back: the file must hold exactly the pixels that were judged.
fn save_checked(img: &image::RgbImage, path: &Path) -> Result<()> {
    save_png(img, path).with_context(|| format!("cannot write {}", path.display()))?;
    let back =
        imaging::load_rgb(path).with_context(|| format!("cannot read back {}", path.display()))?;
    if back.as_raw() != img.as_raw() {
        anyhow::bail!(
            "{} does not read back as the image that was judged",
            path.display()
        );
    }
    Ok(())
}

pub fn run(a: Args) -> Result<()> {
    crate::manifest::cli("fool", a.json, |run| execute(&a, run).map(|()| None))
}

/// The fool command on parsed flags; its output lines and record go to `run`.
pub fn execute(a: &Args, run: &crate::manifest::Run) -> Result<()> {
    let model_name = a.model.single()?;
    let method = a.attack.method()?;
    run.param("model", &model_name);
    run.param("method", method.name());
    run.param("target", &a.attack.target);
    run.param("max_iterations", method.max_iterations());
    run.param("batch_size", a.attack.batch_size);
    run.param("images", a.images.len());
    if a.attack.target.is_none() && !a.attack.untargeted {
        anyhow::bail!("give --target CLASS or --untargeted");
    }
    a.model.precheck_classes(a.attack.target.as_deref())?;
    if a.out
        .as_ref()
        .is_some_and(|o| o.extension().is_some() && a.images.len() > 1)
    {
        anyhow::bail!("--out must be a directory when several images are given");
    }
    let outs = match &a.out {
        Some(o) => out_paths(o, &a.images)?,
        None => Vec::new(),
    };
    check_outputs(
        outs.iter().map(PathBuf::as_path).chain(a.figure.as_deref()),
        a.images.iter().map(PathBuf::as_path),
    )?;
    check_images(&a.images)?;
    let loaded = a.model.load_named(&model_name)?;
    let (model, names) = (loaded.model.as_ref(), &loaded.names);
    let target = a.attack.target(names)?;
    let spec = model.spec();
    run.summary(format!(
        "model {}, method {}, target {}",
        spec.name,
        method.describe(),
        match target {
            Some(t) => format!("{} ({t})", names.label(t)),
            None => "any other class (untargeted)".into(),
        }
    ));
    let batch = a.attack.batch_size as usize;
    let batches = a.images.len().div_ceil(batch);
    let max_it = method.max_iterations() as u64;
    let pb = bar(
        batches as u64 * max_it,
        &format!("{} on {}", method.name(), spec.name),
    );
    // Decode, attack, write and drop a chunk of whole batches at a time (each batch is attacked
    // alone, so the bytes are those of one call on every image): memory stays flat in the
    // number of images. The figure keeps the first FIGURE_ROWS.
    let chunk = chunk_size(&[batch]);
    let (mut shown, mut shown_fooled) = (Vec::new(), Vec::new());
    let (mut done, mut ok) = (0usize, 0usize);
    for (c, paths) in a.images.chunks(chunk).enumerate() {
        let images = load_images(paths, spec)?;
        let inputs: Vec<_> = images.iter().map(|i| i.input.clone()).collect();
        let config = Attack {
            method,
            goal: match target {
                Some(t) => Goal::Targets(vec![t; inputs.len()]),
                None => Goal::Untargeted,
            },
            batch,
        };
        let first = c * (chunk / batch);
        let fooled = attack(model, &inputs, &config, &mut |b, t| {
            let b = first + b;
            pb.set_position(b as u64 * max_it + t.iteration as u64);
            pb.set_message(format!(
                "{} on {}: batch {}/{batches}, {}/{} done",
                method.name(),
                spec.name,
                b + 1,
                t.done,
                t.images
            ));
        })?;
        for (i, (img, f)) in images.iter().zip(&fooled).enumerate() {
            let out = outs.get(done + i);
            if let Some(path) = out {
                pb.suspend(|| save_checked(&f.image, path))?;
            }
            if a.json {
                pb.suspend(|| run.line(json(&img.path, spec.name, method.name(), f, out, names)));
            } else {
                pb.suspend(|| run.line(line(&img.path, f, out, names)));
            }
        }
        done += fooled.len();
        ok += fooled.iter().filter(|f| f.success).count();
        if a.figure.is_some() {
            let room = FIGURE_ROWS.saturating_sub(shown.len());
            shown.extend(inputs.into_iter().take(room));
            shown_fooled.extend(fooled.into_iter().take(room));
        }
    }
    pb.finish_and_clear();
    if let Some(fig) = &a.figure {
        let mut title = match target {
            Some(t) => format!(
                "{} → \"{}\" ({})",
                method.describe(),
                names.label(t),
                spec.name
            ),
            None => format!("{} untargeted ({})", method.describe(), spec.name),
        };
        if done > shown.len() {
            title.push_str(&format!(", the first {} of {done} images", shown.len()));
        }
        let img = fooling_figure(&shown, &shown_fooled, &spec.normalization, &title);
        run.figure(fig);
        save_png(&img, fig).with_context(|| format!("cannot write {}", fig.display()))?;
    }
    if !a.json {
        run.line(format!(
            "{ok}/{done} fooled ({}, {})",
            method.name(),
            spec.name
        ));
    }
    Ok(())
}

fn json(
    path: &Path,
    model: &str,
    method: &str,
    f: &Fooled,
    out: Option<&PathBuf>,
    names: &ClassNames,
) -> serde_json::Value {
    serde_json::json!({
        "image": path.display().to_string(),
        "model": model,
        "method": method,
        "original_class": f.original_class,
        "original_label": names.label(f.original_class),
        "original_prob": f.original_prob,
        "target": if f.untargeted { None } else { Some(f.class) },
        "target_label": if f.untargeted { None } else { Some(names.label(f.class)) },
        "untargeted": f.untargeted,
        "final_class": f.final_class,
        "final_label": names.label(f.final_class),
        "final_prob": f.final_prob,
        "iterations": f.iterations,
        "linf": f.distance.linf,
        "l2": f.distance.l2,
        "success": f.success,
        "out": out.map(|p| p.display().to_string()),
    })
}

fn line(path: &Path, f: &Fooled, out: Option<&PathBuf>, names: &ClassNames) -> String {
    let verdict = if f.success { "fooled" } else { "NOT fooled" };
    format!(
        "{}: {} {:.1}% -> {} {:.1}%  {verdict} after {} step{}  L∞ {:.0}  L2 {:.1}{}",
        path.display(),
        names.label(f.original_class),
        100.0 * f.original_prob,
        names.label(f.final_class),
        100.0 * f.final_prob,
        f.iterations,
        if f.iterations == 1 { "" } else { "s" },
        f.distance.linf,
        f.distance.l2,
        out.map(|p| format!("  -> {}", p.display()))
            .unwrap_or_default()
    )
}
