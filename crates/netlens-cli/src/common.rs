//! What every subcommand shares: model loading (zoo names and ONNX files, with their flags)
//! with a progress line, image loading, and output-path safety.

use crate::class_names::{read_labels, ClassNames};
use anyhow::{Context, Result};
use clap::Args as ClapArgs;
use indicatif::{ProgressBar, ProgressStyle};
use netlens::engine::LoadOptions;
use netlens::files::Existing;
use netlens::imaging::{self, output, Placement};
use netlens::models::{self, onnx_model, Classifier, Preprocessing};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// glibc allocator settings netlens runs under (and gives PyTorch when comparing): freed
/// activations stay in the heap instead of being unmapped and page-faulted back in on every
/// pass. 32 MiB is the largest mmap threshold glibc accepts.
pub const ALLOCATOR_ENV: [(&str, &str); 2] = [
    ("MALLOC_MMAP_THRESHOLD_", "33554432"),
    ("MALLOC_TRIM_THRESHOLD_", "1073741824"),
];

/// Applies [`ALLOCATOR_ENV`] to this process.
pub fn tune_allocator() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only adjusts glibc's allocator parameters; called once at startup,
    // before other threads exist.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 32 << 20);
        libc::mallopt(libc::M_TRIM_THRESHOLD, 1 << 30);
    }
}

static FORCE: AtomicBool = AtomicBool::new(false);

/// The files this run reads (canonical paths): never written, even with `--force`.
static INPUTS: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());

/// Records the global `--force` flag.
pub fn set_force(force: bool) {
    FORCE.store(force, Ordering::SeqCst);
}

/// Whether `--force` was given.
pub fn forced() -> bool {
    FORCE.load(Ordering::SeqCst)
}

/// What a write does with an existing file: replace it with `--force`, else refuse (checked
/// again at the moment the finished file is renamed into place).
pub fn existing() -> Existing {
    if forced() {
        Existing::Replace
    } else {
        Existing::Refuse
    }
}

/// Records files this run reads, so that no output is ever written over one of them.
pub fn note_inputs<'a>(paths: impl IntoIterator<Item = &'a Path>) {
    let mut inputs = INPUTS.lock().unwrap_or_else(|e| e.into_inner());
    for p in paths {
        if let Ok(c) = p.canonicalize() {
            if !inputs.contains(&c) {
                inputs.push(c);
            }
        }
    }
}

/// Fails if `path` is (the same file as) one of the inputs noted with [`note_inputs`].
pub fn check_not_input(path: &Path) -> Result<()> {
    let Ok(c) = path.canonicalize() else {
        return Ok(()); // does not exist yet, so it is no input
    };
    let inputs = INPUTS.lock().unwrap_or_else(|e| e.into_inner());
    if inputs.iter().any(|i| *i == c || same_file(i, &c)) {
        anyhow::bail!(
            "{} is one of this run's inputs; netlens never writes over an input, even with \
             --force: choose another output",
            path.display()
        );
    }
    Ok(())
}

#[cfg(unix)]
fn same_file(a: &Path, b: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (std::fs::metadata(a), std::fs::metadata(b)) {
        (Ok(x), Ok(y)) => x.dev() == y.dev() && x.ino() == y.ino(),
        _ => false,
    }
}

#[cfg(not(unix))]
fn same_file(_: &Path, _: &Path) -> bool {
    false
}

/// Fails if `path` is an input, or exists and `--force` was not given: netlens never
/// overwrites a user's file silently. (Checked before the work starts, so that a long run does
/// not fail at the end; the write itself checks again.)
pub fn check_writable(path: &Path) -> Result<()> {
    check_not_input(path)?;
    if std::fs::symlink_metadata(path).is_ok() && !forced() {
        anyhow::bail!(
            "{} already exists; pass --force to overwrite it or choose another output",
            path.display()
        );
    }
    Ok(())
}

/// Checks every path with [`check_writable`] before anything is written.
pub fn check_all_writable<'a>(paths: impl IntoIterator<Item = &'a Path>) -> Result<()> {
    paths.into_iter().try_for_each(check_writable)
}

/// Notes `inputs` ([`note_inputs`]), then checks every output with [`check_writable`].
pub fn check_outputs<'a>(
    outputs: impl IntoIterator<Item = &'a Path>,
    inputs: impl IntoIterator<Item = &'a Path>,
) -> Result<()> {
    let inputs: Vec<&Path> = inputs.into_iter().collect();
    note_inputs(inputs.iter().copied());
    let outputs: Vec<&Path> = outputs.into_iter().collect();
    // Outputs named after an input whose name is not UTF-8 would get U+FFFD in place of its
    // bytes (and two such inputs the same name): refused.
    let lossy = outputs
        .iter()
        .any(|o| o.to_string_lossy().contains('\u{FFFD}'));
    if let Some(bad) = inputs
        .iter()
        .find(|i| lossy && i.file_name().is_some_and(|n| n.to_str().is_none()))
    {
        anyhow::bail!(
            "{}: the file name is not UTF-8, and outputs are named after it; rename the file",
            bad.display()
        );
    }
    check_all_writable(outputs)
}

/// Writes an image as PNG, whatever the name's extension (see [`save_image`]).
pub fn save_png(img: &image::RgbImage, path: &Path) -> Result<()> {
    check_not_input(path)?;
    output::save_image_as(img, path, output::Format::Png, existing())?;
    crate::manifest::wrote(path);
    Ok(())
}

/// Writes an image in the format its extension names (.png, .jpg/.jpeg; others refused):
/// whole or not at all, never over an input, never over an existing file without `--force`.
pub fn save_image(img: &image::RgbImage, path: &Path) -> Result<()> {
    check_not_input(path)?;
    output::save_image(img, path, existing())?;
    crate::manifest::wrote(path);
    Ok(())
}

/// Writes a text file (a table, a CSV), like [`save_image`].
pub fn save_text(text: &str, path: &Path) -> Result<()> {
    check_not_input(path)?;
    netlens::files::write_bytes(path, existing(), text.as_bytes())?;
    crate::manifest::wrote(path);
    Ok(())
}

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

/// An error chain as one line: "outer: inner: root".
pub fn one_line(e: &anyhow::Error) -> String {
    let mut parts: Vec<String> = Vec::new();
    for cause in e.chain() {
        let s = cause.to_string();
        if !parts.iter().any(|p| p.contains(&s)) {
            parts.push(s);
        }
    }
    parts.join(": ").replace('\n', " ")
}

/// A spinner on stderr (hidden when stderr is not a terminal).
pub fn spinner(msg: &str) -> ProgressBar {
    let pb = ProgressBar::new_spinner();
    pb.set_style(
        ProgressStyle::with_template("{spinner} {msg} [{elapsed}]")
            .unwrap_or_else(|_| ProgressStyle::default_spinner()),
    );
    pb.set_message(msg.to_string());
    pb.enable_steady_tick(Duration::from_millis(120));
    pb
}

/// A bar over `n` steps on stderr.
pub fn bar(n: u64, msg: &str) -> ProgressBar {
    let pb = ProgressBar::new(n);
    pb.set_style(
        ProgressStyle::with_template("{msg} [{bar:30}] {pos}/{len} {elapsed}<{eta}")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    pb.set_message(msg.to_string());
    pb
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

/// One input image, decoded and fitted to the model.
pub struct InputImage {
    pub path: PathBuf,
    pub original: image::RgbImage,
    pub input: image::RgbImage,
    pub placement: Placement,
}

/// Decodes and fits every image to a model's geometry (pass the model's `spec()`: short side
/// to `spec.resize`, centre crop `spec.input_size`; a bare size resizes and crops to it); the
/// first unreadable one is the error.
pub fn load_images(
    paths: &[PathBuf],
    geometry: impl Into<imaging::Geometry>,
) -> Result<Vec<InputImage>> {
    if paths.is_empty() {
        anyhow::bail!("no image given");
    }
    let g = geometry.into();
    note_inputs(paths.iter().map(PathBuf::as_path));
    paths
        .iter()
        .map(|p| {
            let original = read_image(p)?;
            let (input, placement) = imaging::fit_with(&original, g.resize, g.crop);
            Ok(InputImage {
                path: p.clone(),
                original,
                input,
                placement,
            })
        })
        .collect()
}

/// Decodes one image file, printing on stderr what the user should know about a file that
/// decoded all the same (a PNG cut short after its pixels).
pub fn read_image(path: &Path) -> Result<image::RgbImage> {
    let (img, notes) = imaging::load_rgb_noting(path)?;
    for n in notes {
        eprintln!("warning: {}: {n}", path.display());
    }
    Ok(img)
}

/// Checks, before any work, that every image is a regular file of bounded size (the
/// commands that stream their images decode each only when its chunk comes; a file that is
/// missing, a folder, a FIFO or too large is refused here, before anything is written).
pub fn check_images(paths: &[PathBuf]) -> Result<()> {
    if paths.is_empty() {
        anyhow::bail!("no image given");
    }
    note_inputs(paths.iter().map(PathBuf::as_path));
    for p in paths {
        netlens::files::open_regular(p, imaging::decode::MAX_FILE_BYTES, "images")?;
    }
    Ok(())
}

pub use netlens::streaming::chunk_size;

/// File stem of a path, for output names.
pub fn stem(path: &Path) -> String {
    path.file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "image".into())
}

/// A clap parser of a finite number `x` with `lo ≤ x ≤ hi` (`lo < x` when `open_lo`); NaN and
/// infinity are refused. clap names the flag in the error.
pub fn f64_in(
    lo: f64,
    hi: f64,
    open_lo: bool,
) -> impl Fn(&str) -> std::result::Result<f64, String> + Clone + Send + Sync + 'static {
    move |s: &str| {
        let range = if open_lo {
            format!("{lo} < x ≤ {hi}")
        } else {
            format!("{lo} ≤ x ≤ {hi}")
        };
        match s.trim().parse::<f64>() {
            Ok(x) if x.is_finite() && (x > lo || (!open_lo && x == lo)) && x <= hi => Ok(x),
            Ok(_) => Err(format!("{s} is out of range: give a number with {range}")),
            Err(_) => Err(format!("'{s}' is not a number (give one with {range})")),
        }
    }
}

/// [`f64_in`] for a float32 flag.
pub fn f32_in(
    lo: f64,
    hi: f64,
    open_lo: bool,
) -> impl Fn(&str) -> std::result::Result<f32, String> + Clone + Send + Sync + 'static {
    let p = f64_in(lo, hi, open_lo);
    move |s: &str| p(s).map(|x| x as f32)
}

/// A clap parser of a whole number in `lo..=hi`.
pub fn usize_in(
    lo: usize,
    hi: usize,
) -> impl Fn(&str) -> std::result::Result<usize, String> + Clone + Send + Sync + 'static {
    move |s: &str| match s.trim().parse::<i128>() {
        Ok(x) if x >= lo as i128 && x <= hi as i128 => Ok(x as usize),
        Ok(_) => Err(format!("{s} is out of range {lo}..={hi}")),
        Err(_) => Err(format!("'{s}' is not a whole number in {lo}..={hi}")),
    }
}
