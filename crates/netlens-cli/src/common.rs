//! What every subcommand shares: model loading with a progress line, image loading, and
//! output-path safety.

use anyhow::{Context, Result};
use clap::Args as ClapArgs;
use indicatif::{ProgressBar, ProgressStyle};
use netlens::imaging::{self, Placement};
use netlens::models::{self, Classifier};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
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

/// Records the global `--force` flag.
pub fn set_force(force: bool) {
    FORCE.store(force, Ordering::SeqCst);
}

/// Fails if `path` exists and `--force` was not given: netlens never overwrites a user's
/// file silently.
pub fn check_writable(path: &Path) -> Result<()> {
    if path.exists() && !FORCE.load(Ordering::SeqCst) {
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

/// `--model` and `--weights`, shared by every command that runs a network.
#[derive(ClapArgs, Debug, Clone)]
pub struct ModelArgs {
    /// Model to run (see `netlens models`)
    #[arg(long, short = 'm', default_value = models::DEFAULT_MODEL)]
    pub model: String,
    /// Load weights from this file (.pth in zip or legacy format, or .safetensors) instead of
    /// the cache
    #[arg(long, value_name = "FILE")]
    pub weights: Option<PathBuf>,
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

/// Loads a model, fetching its weights (with a progress line) when they are missing.
pub fn load_model(name: &str, weights: Option<&Path>) -> Result<Box<dyn Classifier>> {
    let spec = models::spec(name)?;
    let pb = spinner(&format!("loading {}", spec.name));
    let mut status = |s: &str| pb.set_message(format!("{}: {s}", spec.name));
    let model = models::load(spec, weights, &mut status);
    pb.finish_and_clear();
    let what = match weights {
        Some(p) => format!("cannot load {} weights from {}", spec.name, p.display()),
        None => format!("cannot load model {}", spec.name),
    };
    model.with_context(|| what)
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
    paths
        .iter()
        .map(|p| {
            let original = imaging::load_rgb(p)?;
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

/// File stem of a path, for output names.
pub fn stem(path: &Path) -> String {
    path.file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "image".into())
}
