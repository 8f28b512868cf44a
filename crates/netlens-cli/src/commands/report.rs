//! `netlens report`: the whole practical, answered in one self-contained HTML page.
//!
//! The report is an orchestrator: each experiment is one run of a netlens subcommand (this same
//! binary, with `--json` and explicit output paths), so the page shows exactly what a user
//! gets from the command line, with the command itself, its parameters and its run time
//! beside each figure. A failed experiment is reported on the page and does not stop the run.

use crate::common::{bar, check_writable};
use anyhow::{Context, Result};
use netlens::{models, weights};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Folder for index.html and its figures
    #[arg(long, default_value = "report")]
    pub out: PathBuf,
    /// Models to compare, comma-separated (default: every model whose weights are present,
    /// and the default model)
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
}

struct Outcome {
    ok: bool,
    seconds: f64,
    stdout: String,
    error: String,
}

const SECTIONS: [(&str, &str); 5] = [
    ("Q1–Q2. Saliency maps", "Which pixels move the class score? The vanilla gradient of the practical (Simonyan et al.), SmoothGrad and Grad-CAM on the same photos, and how often each map points at the object (localization benchmark)."),
    ("Q3. Boxes from saliency", "Reusing the saliency map to find the object: threshold, connected components, boxes in the photo's pixels."),
    ("Q4. Other networks", "The same photos through every available network: architectures look at images differently."),
    ("Q5–Q7. Fooling images", "The smallest change that makes the network say another class, the change magnified, robustness to random vs. adversarial change, and transfer between networks."),
    ("Q8–Q11. Class visualization", "Images the network finds maximally of one class: the practical's recipe, its parameters, a start from a real photo, other networks, and the Lucid recipe beside it."),
];

fn s(v: &str) -> String {
    v.to_string()
}

fn plan(a: &Args, photos: &[String], models: &[String]) -> Vec<Experiment> {
    let q = a.quick;
    let seed = a.seed.to_string();
    let first = photos.first().cloned().unwrap_or_default();
    let few: Vec<String> = photos.iter().take(if q { 2 } else { 5 }).cloned().collect();
    let default = models
        .first()
        .cloned()
        .unwrap_or_else(|| s(models::DEFAULT_MODEL));
    let mut v = Vec::new();
    for (method, extra) in [
        ("vanilla", vec![]),
        (
            "smoothgrad",
            vec![s("--samples"), s(if q { "8" } else { "50" })],
        ),
        ("grad-cam", vec![]),
    ] {
        let mut args = vec![
            s("saliency"),
            s("--model"),
            default.clone(),
            s("--method"),
            s(method),
            s("--out"),
            format!("q1/{method}"),
            s("--seed"),
            seed.clone(),
            s("--json"),
        ];
        args.extend(extra);
        args.extend(few.iter().cloned());
        v.push(Experiment {
            section: 0,
            title: format!("Saliency: {method}"),
            args,
            figures: vec![format!("q1/{method}/figure.png")],
            params: format!("model {default}, method {method}, target = top-1 class"),
        });
    }
    v.push(Experiment {
        section: 0,
        title: s("Localization benchmark"),
        args: vec![
            s("locate-bench"),
            s("--model"),
            default.clone(),
            s("--seed"),
            seed.clone(),
            s("--json"),
        ]
        .into_iter()
        .chain(if q { vec![s("--quick")] } else { vec![] })
        .collect(),
        figures: vec![],
        params: format!("model {default}; real object photos pasted at known places and scales"),
    });
    v.push(Experiment {
        section: 1,
        title: s("Boxes from the vanilla saliency map"),
        args: [
            vec![
                s("locate"),
                s("--model"),
                default.clone(),
                s("--out"),
                s("q3"),
                s("--json"),
            ],
            few.clone(),
        ]
        .concat(),
        figures: few
            .iter()
            .map(|p| format!("q3/{}.boxes.png", stem(p)))
            .collect(),
        params: format!("model {default}, method vanilla, default threshold"),
    });
    if models.len() > 1 {
        v.push(Experiment {
            section: 2,
            title: s("The same photos through every network"),
            args: [
                vec![
                    s("saliency"),
                    s("--model"),
                    models.join(","),
                    s("--method"),
                    s("vanilla"),
                    s("--out"),
                    s("q4"),
                    s("--json"),
                ],
                few.clone(),
            ]
            .concat(),
            figures: vec![s("q4/figure.png")],
            params: format!("models {}, method vanilla", models.join(", ")),
        });
    }
    v.push(Experiment {
        section: 3,
        title: s("A fooling image (CS231n loop)"),
        args: vec![s("fool"), s("--model"), default.clone(), s("--target"), s("stingray"), s("--out"), s("q5/fooling.png"), s("--figure"), s("q5/figure.png"), s("--json"), first.clone()],
        figures: vec![s("q5/figure.png")],
        params: format!("model {default}, method cs231n, target stingray (6), learning rate 1, at most 100 iterations"),
    });
    v.push(Experiment {
        section: 3,
        title: s("Robustness: random noise vs. adversarial change"),
        args: [
            vec![
                s("robustness"),
                s("--model"),
                default.clone(),
                s("--out"),
                s("q6/robustness.png"),
                s("--seed"),
                seed.clone(),
                s("--json"),
            ],
            few.clone(),
        ]
        .concat(),
        figures: vec![s("q6/robustness.png")],
        params: format!("model {default}; Gaussian noise and PGD (L∞) of growing size"),
    });
    if models.len() > 1 {
        v.push(Experiment {
            section: 3,
            title: s("Transfer between networks"),
            args: [
                vec![
                    s("transfer"),
                    s("--models"),
                    models.join(","),
                    s("--target"),
                    s("stingray"),
                    s("--out"),
                    s("q7/transfer.png"),
                    s("--json"),
                ],
                few.clone(),
            ]
            .concat(),
            figures: vec![s("q7/transfer.png")],
            params: format!(
                "models {}, target stingray, crafted with the CS231n loop",
                models.join(", ")
            ),
        });
    }
    let iters = if q { "20" } else { "200" };
    for class in if q {
        vec!["gorilla"]
    } else {
        vec!["gorilla", "tarantula", "daisy", "snail", "stingray"]
    } {
        v.push(Experiment {
            section: 4,
            title: format!("Class visualization: {class}"),
            args: vec![s("visualize"), s("--model"), default.clone(), s("--class"), s(class), s("--iterations"), s(iters), s("--seed"), seed.clone(), s("--out"), format!("q8/{class}.png"), s("--json")],
            figures: vec![format!("q8/{class}.png")],
            params: format!("model {default}, CS231n recipe (jitter 16, blur σ 0.5 every 10, L2 1e-3, lr 25), {iters} iterations, seed {seed}"),
        });
    }
    v.push(Experiment {
        section: 4,
        title: s("Parameter sweep (L2 regularization × learning rate)"),
        args: vec![
            s("visualize"),
            s("--model"),
            default.clone(),
            s("--class"),
            s("gorilla"),
            s("--iterations"),
            s(if q { "10" } else { "100" }),
            s("--seed"),
            seed.clone(),
            s("--sweep"),
            s(if q {
                "l2-reg=1e-4,1e-2"
            } else {
                "l2-reg=1e-4,1e-3,1e-2"
            }),
            s("--sweep"),
            s(if q {
                "learning-rate=25"
            } else {
                "learning-rate=5,25,100"
            }),
            s("--out"),
            s("q9/sweep.png"),
            s("--json"),
        ],
        figures: vec![s("q9/sweep.png")],
        params: format!("model {default}, class gorilla, seed {seed}"),
    });
    v.push(Experiment {
        section: 4,
        title: s("Starting from a real photo"),
        args: vec![
            s("visualize"),
            s("--model"),
            default.clone(),
            s("--class"),
            s("espresso"),
            s("--init"),
            photos
                .iter()
                .find(|p| p.contains("coffee"))
                .cloned()
                .unwrap_or(first.clone()),
            s("--iterations"),
            s(if q { "10" } else { "100" }),
            s("--snapshot-every"),
            s(if q { "5" } else { "25" }),
            s("--seed"),
            seed.clone(),
            s("--out"),
            s("q10/espresso.png"),
            s("--json"),
        ],
        figures: vec![s("q10/espresso.strip.png")],
        params: format!("model {default}, class espresso, init = the coffee photo"),
    });
    for m in models.iter().skip(1) {
        v.push(Experiment {
            section: 4,
            title: format!("Class visualization on {m}"),
            args: vec![
                s("visualize"),
                s("--model"),
                m.clone(),
                s("--class"),
                s("gorilla"),
                s("--iterations"),
                s(iters),
                s("--seed"),
                seed.clone(),
                s("--out"),
                format!("q11/{m}.gorilla.png"),
                s("--json"),
            ],
            figures: vec![format!("q11/{m}.gorilla.png")],
            params: format!("model {m}, CS231n recipe, {iters} iterations"),
        });
    }
    v.push(Experiment {
        section: 4,
        title: s("CS231n recipe vs. Lucid recipe"),
        args: vec![
            s("visualize"),
            s("--model"),
            default.clone(),
            s("--class"),
            s("gorilla"),
            s("--compare-recipes"),
            s("--iterations"),
            s(if q { "10" } else { "200" }),
            s("--seed"),
            seed.clone(),
            s("--out"),
            s("q11/recipes.png"),
            s("--json"),
        ],
        figures: vec![s("q11/recipes.png")],
        params: format!("model {default}, class gorilla, seed {seed}"),
    });
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
    let res = Command::new(exe)
        .args(&e.args)
        .arg("--force")
        .current_dir(out)
        .output();
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

pub fn run(a: Args) -> Result<()> {
    let start = Instant::now();
    let index = a.out.join("index.html");
    check_writable(&index)?;
    std::fs::create_dir_all(&a.out)
        .with_context(|| format!("cannot create {}", a.out.display()))?;
    let out = a.out.canonicalize()?;
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
    // Models: as asked, else the default plus every model whose weights are present.
    let mut skipped = Vec::new();
    let models: Vec<String> = if a.models.is_empty() {
        let mut v = vec![s(models::DEFAULT_MODEL)];
        for spec in models::zoo() {
            if spec.name != models::DEFAULT_MODEL {
                if weights::cached_path(spec.name).is_file() {
                    v.push(s(spec.name));
                } else {
                    skipped.push(format!(
                        "{}: weights absent (netlens models fetch {})",
                        spec.name, spec.name
                    ));
                }
            }
        }
        v
    } else {
        a.models
            .iter()
            .map(|m| models::spec(m).map(|s| s.name.to_string()))
            .collect::<netlens::Result<_>>()?
    };
    for sk in &skipped {
        eprintln!("skipping {sk}");
    }
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
    std::fs::write(&index, html).with_context(|| format!("cannot write {}", index.display()))?;
    let failed = outcomes.iter().filter(|o| !o.ok).count();
    println!(
        "{} ({} experiments, {} failed, {:.0} s)",
        index.display(),
        plan.len(),
        failed,
        start.elapsed().as_secs_f64()
    );
    Ok(())
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
    let _ = write!(
        h,
        "<footer>netlens {} · {} · seed {} · total {:.0} s</footer></body></html>\n",
        env!("CARGO_PKG_VERSION"),
        esc(&machine()),
        a.seed,
        total
    );
    h
}
