//! The report's page: one self-contained HTML file, its sections in the plan's order; beside
//! each figure the parameters in force (the manifest's summary, in the library's words), the
//! command line that reproduces it and its run time; a failed experiment says why.

use super::exec::Outcome;
use super::plan::{Experiment, SECTIONS};
use super::Args;
use crate::manifest::FileKind;
use std::fmt::Write as _;

pub fn esc(t: &str) -> String {
    t.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

pub fn machine() -> String {
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

pub fn render(
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
            let m = &o.manifest;
            let _ = write!(
                h,
                "<div class=exp><h3>{}</h3><p class=params>{} · run time {:.1} s</p>",
                esc(&e.title),
                esc(&m.summary),
                m.seconds
            );
            let _ = write!(
                h,
                "<p class=params><code>netlens {}</code></p>",
                esc(&e.args.join(" "))
            );
            let stdout = o.lines.join("\n");
            match &o.error {
                None => {
                    for f in m.files.iter().filter(|f| f.kind == FileKind::Figure) {
                        let _ = write!(
                            h,
                            "<img src=\"{}\" alt=\"{}\">",
                            esc(&f.path),
                            esc(&e.title)
                        );
                    }
                    if let Some(post) = e.post {
                        h.push_str(&post(&stdout));
                    }
                }
                Some(error) => {
                    let _ = write!(
                        h,
                        "<p class=fail>This experiment failed: {}</p>",
                        esc(error)
                    );
                }
            }
            if !stdout.trim().is_empty() {
                let _ = write!(
                    h,
                    "<details><summary>output</summary><pre>{}</pre></details>",
                    esc(stdout.trim())
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
