//! The bench's processes: finding and running the PyTorch scripts, starting this binary's
//! own `bench --worker` children, and the worker side (load the model, time its passes, print
//! one typed record).

use super::*;

/// A PyTorch script: `--torch-script` if given, else `tools/reference/<file>` under the
/// current folder or under the source tree netlens was built from.
pub(super) fn find_script(file: &str, given: Option<&Path>) -> Result<PathBuf> {
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
pub(super) fn last_line(bytes: &[u8]) -> String {
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

/// The record in the last line of stdout that is a JSON object.
pub(super) fn json_line(bytes: &[u8], what: &str) -> Result<EngineRecord> {
    let text = String::from_utf8_lossy(bytes);
    let line = text
        .lines()
        .rev()
        .find(|l| l.trim_start().starts_with('{'))
        .with_context(|| format!("no JSON from {what}"))?;
    serde_json::from_str(line).with_context(|| format!("unreadable JSON from {what}"))
}

/// Runs this binary as `bench --worker PATH` for one model.
pub(super) fn run_worker(
    a: &Args,
    name: &str,
    weights: Option<&Path>,
    path: EnginePath,
    threads: usize,
) -> Result<EngineRecord> {
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
    let what = format!("{name}: netlens, {} path", path.name());
    run_worker_command(cmd, weights, &what)
}

/// Runs a worker command of this binary (`--weights` added when given) under a spinner
/// saying `what`, and reads the record it prints.
pub(super) fn run_worker_command(
    mut cmd: Command,
    weights: Option<&Path>,
    what: &str,
) -> Result<EngineRecord> {
    if let Some(w) = weights {
        cmd.arg("--weights").arg(w);
    }
    let pb = spinner(what);
    let out = cmd.output().context("cannot run the netlens worker");
    pb.finish_and_clear();
    let out = out?;
    if !out.status.success() {
        anyhow::bail!("{}", last_line(&out.stderr));
    }
    json_line(&out.stdout, "the netlens worker")
}

/// `name` loaded for a worker of engine path `path` (`--weights` if given). The fast worker
/// keeps NETLENS_FAST_PATH=0's veto (it then reports the path inactive).
pub(super) fn load_worker_model(
    a: &Args,
    path: EnginePath,
    name: &str,
) -> Result<std::sync::Arc<dyn netlens::Classifier>> {
    let options = LoadOptions::with_fast_path(path == EnginePath::Fast && fast_path_default());
    load_model_with(
        name,
        a.weights.as_deref(),
        &Preprocessing::default(),
        options,
    )
}

/// What a netlens worker reports: its model's `results`, the process's memory and the
/// model's fast-path state and FLOPs.
pub(super) fn worker_record(
    model: &dyn netlens::Classifier,
    setup_rss_mb: Option<f64>,
    classviz: Option<netlens::bench::ClassvizRecord>,
    results: Vec<netlens::bench::PassRecord>,
) -> EngineRecord {
    EngineRecord {
        model: model.spec().name.to_string(),
        threads: engine::threads(),
        setup_rss_mb,
        peak_rss_mb: proc_status_mb("VmHWM"),
        fast_path_active: Some(model.fast_path_on()),
        torch_version: None,
        anchor: None,
        forward_flops: model.forward_flops(),
        classviz,
        results,
    }
}

/// Measures one model on one engine path in this process and prints its [`EngineRecord`] as
/// one JSON line.
pub(super) fn worker(a: &Args, path: EnginePath) -> Result<()> {
    let [name] = a.models.as_slice() else {
        anyhow::bail!("--worker takes exactly one model");
    };
    let model = load_worker_model(a, path, name)?;
    let setup_rss_mb = proc_status_mb("VmRSS");
    let budget = Budget {
        warmup: a.warmup as usize,
        repeats: a.repeats as usize,
        seconds: a.budget,
    };
    let batches: Vec<usize> = a.batches.iter().map(|&b| b as usize).collect();
    let mut results = time_passes(model.as_ref(), &batches, budget, path.name())?;
    let mut classviz = None;
    if a.classviz_iterations > 0 && is_lite(model.spec()) {
        let (row, info) = time_classviz(
            model.as_ref(),
            a.classviz_iterations as usize,
            a.classviz_repeats as usize,
            path.name(),
        )?;
        results.push(row);
        classviz = Some(info);
    }
    let record = worker_record(model.as_ref(), setup_rss_mb, classviz, results);
    println!("{}", serde_json::to_string(&record)?);
    Ok(())
}

/// Runs the model's PyTorch script with the same threads, batches, runs and allocator.
/// `name` is the zoo model, or for an ONNX file the torchvision class of `--torch-model`.
pub(super) fn run_torch(a: &Args, name: &str, lite: bool, threads: usize) -> Result<EngineRecord> {
    let file = if lite {
        "bench_torch.py"
    } else {
        "torchvision_bench.py"
    };
    let script = find_script(file, a.torch_script.as_deref())?;
    let batches: Vec<String> = a.batches.iter().map(|b| b.to_string()).collect();
    let classviz = if lite { a.classviz_iterations } else { 0 };
    let args: Vec<String> = [
        "--model",
        name,
        "--batches",
        &batches.join(","),
        "--threads",
        &threads.to_string(),
        "--repeats",
        &a.repeats.to_string(),
        "--warmup",
        &a.warmup.to_string(),
        "--budget-s",
        &a.budget.to_string(),
        "--classviz-iterations",
        &classviz.to_string(),
        "--classviz-repeats",
        &a.classviz_repeats.to_string(),
    ]
    .map(String::from)
    .to_vec();
    run_python(a, &script, &args, &format!("{name}: PyTorch"))
}

/// Runs a PyTorch script under `--python` with the bench's allocator settings (a spinner
/// saying `what`) and reads the record it prints.
pub(super) fn run_python(
    a: &Args,
    script: &Path,
    args: &[String],
    what: &str,
) -> Result<EngineRecord> {
    let pb = spinner(what);
    let out = Command::new(&a.python)
        .arg(script)
        .args(args)
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
