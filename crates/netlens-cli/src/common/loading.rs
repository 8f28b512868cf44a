//! Model flags (`--model`, `--weights`, the ONNX settings), model names, and loading with a
//! progress line (zoo weights fetched when missing; one copy per model in a report's process).

use super::{note_inputs, spinner};
use crate::class_names::{read_labels, ClassNames};
use anyhow::{Context, Result};
use clap::Args as ClapArgs;
use netlens::engine::LoadOptions;
use netlens::models::{self, onnx_model, Classifier, Preprocessing};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// `--model`, `--weights` and the ONNX settings, shared by every command that runs a network.
#[derive(ClapArgs, Debug, Clone)]
pub struct ModelArgs {
    /// Model to run: a zoo name (see `netlens models`) or an ONNX file (a path ending in .onnx
    /// or containing a /; a sidecar model.json beside it may set its preprocessing)
    #[arg(long, short = 'm', default_value = models::DEFAULT_MODEL, value_name = "NAME|FILE.onnx")]
    pub model: String,
    /// Load weights from this file (.pth in zip or legacy format, or .safetensors) instead of
    /// the cache (zoo models only: an ONNX file holds its own weights)
    #[arg(long, value_name = "FILE")]
    pub weights: Option<PathBuf>,
    #[command(flatten)]
    pub onnx: OnnxArgs,
}

/// Help heading of [`OnnxArgs`] (given per flag: a heading on the struct would carry over to
/// the flags that follow it in each command).
const ONNX_HEADING: &str = "ONNX model settings (override its sidecar model.json)";

/// How an ONNX model is fed and what its classes are called. Zoo models have fixed
/// preprocessing and ImageNet's classes, so these flags are refused with them.
#[derive(ClapArgs, Debug, Clone, Default)]
pub struct OnnxArgs {
    /// Side of the square input, 16..=1024 [default: the size the file fixes, else 224]
    #[arg(long, value_name = "N", help_heading = ONNX_HEADING,
          value_parser = clap::value_parser!(u32).range(16..=1024))]
    pub input_size: Option<u32>,
    /// A photo's short side is resized to N (input size..=4096) before the centre crop
    /// [default: round(input size × 256/224)]
    #[arg(long, value_name = "N", help_heading = ONNX_HEADING,
          value_parser = clap::value_parser!(u32).range(16..=4096))]
    pub resize: Option<u32>,
    /// Per-channel mean subtracted from pixel / P (0–1 pixels with the default P), any finite
    /// numbers [default: 0.485,0.456,0.406]
    #[arg(long, value_name = "R,G,B", help_heading = ONNX_HEADING, value_parser = parse_mean)]
    pub mean: Option<[f32; 3]>,
    /// Per-channel standard deviation dividing pixel / P − mean, each > 0
    /// [default: 0.229,0.224,0.225]
    #[arg(long, value_name = "R,G,B", help_heading = ONNX_HEADING, value_parser = parse_std)]
    pub std: Option<[f32; 3]>,
    /// Pixel scale P > 0: the input is (pixel / P − mean) / std for 0–255 pixels
    /// [default: 255]
    #[arg(long, value_name = "P", help_heading = ONNX_HEADING, value_parser = parse_pixel_scale)]
    pub pixel_scale: Option<f32>,
    /// Class names, one per line in the order of the model's outputs (UTF-8, at most 16 MiB);
    /// the count must equal the model's number of classes [default: ImageNet's names for a
    /// 1000-class model, else "class N"]
    #[arg(long, value_name = "FILE", help_heading = ONNX_HEADING)]
    pub labels: Option<PathBuf>,
}

fn parse_triple(s: &str, positive: bool) -> std::result::Result<[f32; 3], String> {
    let v: Vec<f32> = s
        .split(',')
        .map(|x| x.trim().parse::<f32>())
        .collect::<std::result::Result<_, _>>()
        .map_err(|_| format!("'{s}' is not three numbers R,G,B"))?;
    let Ok(v) = <[f32; 3]>::try_from(v) else {
        return Err(format!("'{s}' is not three numbers R,G,B"));
    };
    if !v.iter().all(|x| x.is_finite()) {
        return Err(format!("'{s}': every value must be finite"));
    }
    if positive && !v.iter().all(|&x| x > 0.0) {
        return Err(format!("'{s}': every value must be > 0"));
    }
    Ok(v)
}

fn parse_mean(s: &str) -> std::result::Result<[f32; 3], String> {
    parse_triple(s, false)
}

fn parse_std(s: &str) -> std::result::Result<[f32; 3], String> {
    parse_triple(s, true)
}

fn parse_pixel_scale(s: &str) -> std::result::Result<f32, String> {
    match s.trim().parse::<f32>() {
        Ok(p) if p.is_finite() && p > 0.0 => Ok(p),
        _ => Err(format!("'{s}' is not a number > 0")),
    }
}

impl OnnxArgs {
    /// The library's preprocessing overrides these flags give.
    pub fn preprocessing(&self) -> Preprocessing {
        Preprocessing {
            input_size: self.input_size,
            resize: self.resize,
            mean: self.mean,
            std: self.std,
            pixel_scale: self.pixel_scale,
        }
    }

    /// The flags given, as they are spelled on the command line.
    fn given(&self) -> Vec<&'static str> {
        [
            ("--input-size", self.input_size.is_some()),
            ("--resize", self.resize.is_some()),
            ("--mean", self.mean.is_some()),
            ("--std", self.std.is_some()),
            ("--pixel-scale", self.pixel_scale.is_some()),
            ("--labels", self.labels.is_some()),
        ]
        .into_iter()
        .filter(|(_, g)| *g)
        .map(|(f, _)| f)
        .collect()
    }
}

/// Whether `name` names an ONNX file rather than a zoo model.
pub fn is_onnx(name: &str) -> bool {
    onnx_model::is_onnx(name)
}

/// A zoo name in its canonical spelling, or an ONNX path as given (which must exist).
pub fn check_model_name(name: &str) -> Result<String> {
    if is_onnx(name) {
        let p = Path::new(name);
        note_inputs([p]);
        if !p.is_file() {
            anyhow::bail!(
                "{name}: no such ONNX file (a model name with a / or ending in .onnx is read as \
                 a file; zoo models: {})",
                zoo_names()
            );
        }
        return Ok(name.to_string());
    }
    Ok(models::spec(name)?.name.to_string())
}

fn zoo_names() -> String {
    models::zoo()
        .iter()
        .map(|s| s.name)
        .collect::<Vec<_>>()
        .join(", ")
}

/// Model names from a comma list (at least one, checked, repeats dropped).
pub fn model_list<'a>(names: impl IntoIterator<Item = &'a str>, flag: &str) -> Result<Vec<String>> {
    let mut out: Vec<String> = Vec::new();
    for n in names.into_iter().map(str::trim).filter(|n| !n.is_empty()) {
        let n = check_model_name(n)?;
        if !out.contains(&n) {
            out.push(n);
        }
    }
    if out.is_empty() {
        anyhow::bail!("{flag} needs at least one model name");
    }
    Ok(out)
}

/// A short name for a model, fit for file and folder names and figure labels: the zoo name,
/// or an ONNX file's stem (its folder's name when the stem is the generic "model").
pub fn short_name(name: &str) -> String {
    if !is_onnx(name) {
        return name.to_string();
    }
    let p = Path::new(name);
    let stem = p
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let parent = p
        .parent()
        .and_then(|d| d.file_name())
        .map(|s| s.to_string_lossy().into_owned());
    let raw = match parent {
        Some(d) if stem.eq_ignore_ascii_case("model") || stem.is_empty() => d,
        _ => stem,
    };
    let mut slug: String = raw
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '-' || c == '.' {
                c
            } else {
                '_'
            }
        })
        .collect();
    slug = slug.trim_matches('.').to_string();
    if slug.is_empty() {
        slug = "model".into();
    }
    slug
}

/// [`short_name`] of every model, made distinct (a repeat gets `-2`, `-3`...).
pub fn short_names(names: &[String]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for n in names {
        let base = short_name(n);
        let mut s = base.clone();
        let mut k = 2;
        while out.contains(&s) {
            s = format!("{base}-{k}");
            k += 1;
        }
        out.push(s);
    }
    out
}

/// A loaded model and the names of its classes.
pub struct Loaded {
    pub model: Arc<dyn Classifier>,
    pub names: ClassNames,
}

impl ModelArgs {
    /// Refuses flags that do not fit `names` (the models this command will load): ONNX
    /// settings with a zoo model, or with several models; `--weights` with an ONNX file or
    /// with several models.
    pub fn check_for(&self, names: &[String]) -> Result<()> {
        note_inputs(self.weights.as_deref());
        note_inputs(self.onnx.labels.as_deref());
        note_inputs(names.iter().filter(|n| is_onnx(n)).map(Path::new));
        let given = self.onnx.given();
        if names.len() > 1 {
            if self.weights.is_some() {
                anyhow::bail!("--weights names one file; give a single --model with it");
            }
            if let Some(f) = given.first() {
                anyhow::bail!(
                    "{f} applies to one ONNX model; give a single --model with it (with several \
                     models, put each file's preprocessing in its sidecar model.json)"
                );
            }
        }
        for n in names {
            if is_onnx(n) {
                if self.weights.is_some() {
                    anyhow::bail!(
                        "{n}: an ONNX file holds its own weights; --weights is for zoo models"
                    );
                }
            } else if !given.is_empty() {
                anyhow::bail!(
                    "{n} is a zoo model with fixed preprocessing and ImageNet's classes; {} \
                     {} for ONNX files only",
                    given.join(", "),
                    if given.len() == 1 { "is" } else { "are" }
                );
            }
        }
        Ok(())
    }

    /// The one model `--model` names, checked with its flags.
    pub fn single(&self) -> Result<String> {
        let name = self.model.trim();
        if name.contains(',') && !Path::new(name).is_file() {
            anyhow::bail!("--model takes one model here, not a list");
        }
        let n = check_model_name(name)?;
        self.check_for(std::slice::from_ref(&n))?;
        Ok(n)
    }

    /// Loads the one model `--model` names, with its class names.
    pub fn load(&self) -> Result<Loaded> {
        let name = self.single()?;
        self.load_named(&name)
    }

    /// Loads `name` (checked by [`ModelArgs::check_for`]) with these flags.
    pub fn load_named(&self, name: &str) -> Result<Loaded> {
        // A bad labels file fails before the model is loaded.
        let labels = match &self.onnx.labels {
            Some(p) => Some((p.as_path(), read_labels(p)?)),
            None => None,
        };
        let model = load_model(name, self.weights.as_deref(), &self.onnx.preprocessing())?;
        let names = ClassNames::new(model.spec().name, model.classes(), labels)?;
        Ok(Loaded { model, names })
    }

    /// Checks class queries before any model is loaded where that is possible (a zoo model
    /// has ImageNet's classes), so that a typo does not wait for a download.
    pub fn precheck_classes<'a>(&self, queries: impl IntoIterator<Item = &'a str>) -> Result<()> {
        let names: Vec<&str> = self.model.split(',').map(str::trim).collect();
        if names.iter().any(|n| is_onnx(n)) {
            return Ok(());
        }
        let imagenet = ClassNames::imagenet(names.first().copied().unwrap_or_default());
        for q in queries {
            imagenet.resolve(q)?;
        }
        Ok(())
    }
}

/// Loads a model (a zoo name, fetching its weights with a progress line when they are
/// missing, or an ONNX file with `settings`); says on stderr when an ONNX model's final
/// Softmax is left out.
pub fn load_model(
    name: &str,
    weights: Option<&Path>,
    settings: &Preprocessing,
) -> Result<Arc<dyn Classifier>> {
    load_model_with(name, weights, settings, LoadOptions::default())
}

/// Models loaded so far, by what they were loaded from, when [`share_models`] is on.
static MODELS: Mutex<Option<Vec<SharedModel>>> = Mutex::new(None);

/// A loaded model and the key it was loaded with (name, weights, preprocessing, options).
type SharedModel = (String, Arc<dyn Classifier>);

/// From now on, a model loaded twice with the same name, weights, preprocessing and options
/// is loaded once and shared (`netlens report` runs every experiment in one process).
pub fn share_models() {
    let mut m = MODELS.lock().unwrap_or_else(|e| e.into_inner());
    m.get_or_insert_with(Vec::new);
}

/// [`load_model`] in the precision and on the engine path `options` choose.
pub fn load_model_with(
    name: &str,
    weights: Option<&Path>,
    settings: &Preprocessing,
    options: LoadOptions,
) -> Result<Arc<dyn Classifier>> {
    let key = format!("{name}\u{0}{weights:?}\u{0}{settings:?}\u{0}{options:?}");
    let shared = MODELS
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .as_ref()
        .and_then(|v| v.iter().find(|(k, _)| *k == key).map(|(_, m)| m.clone()));
    if let Some(m) = shared {
        return Ok(m);
    }
    let model = load_fresh(name, weights, settings, options)?;
    if let Some(v) = MODELS.lock().unwrap_or_else(|e| e.into_inner()).as_mut() {
        v.push((key, model.clone()));
    }
    Ok(model)
}

fn load_fresh(
    name: &str,
    weights: Option<&Path>,
    settings: &Preprocessing,
    options: LoadOptions,
) -> Result<Arc<dyn Classifier>> {
    let shown = if is_onnx(name) {
        name.to_string()
    } else {
        models::spec(name)?.name.to_string()
    };
    let pb = spinner(&format!("loading {shown}"));
    let mut status = |s: &str| pb.set_message(format!("{shown}: {s}"));
    let model = models::open_with(name, weights, settings, options, &mut status);
    pb.finish_and_clear();
    let what = match weights {
        Some(p) => format!("cannot load {shown} weights from {}", p.display()),
        // The library's ONNX errors start with the file's path.
        None if is_onnx(name) => "cannot load the ONNX model".to_string(),
        None => format!("cannot load model {shown}"),
    };
    let model = model.with_context(|| what)?;
    if model.softmax_left_out() {
        eprintln!(
            "netlens: note: {shown} ends in a Softmax, which is left out: netlens \
             differentiates the logits before it (probabilities are the softmax of those)"
        );
    }
    Ok(Arc::from(model))
}
