//! What `netlens evaluate` draws and shows beyond the library's texts: the curves' figure
//! (`curves.png`: deletion, insertion and both ROAD orders, the mean curve per method, beside
//! the library's `curves.csv`) and the terminal table of means.

use crate::common::{save_png, save_text};
use anyhow::Result;
use netlens::evaluate::{Evaluation, Means};
use netlens::metrics::plot::{curves_plot, Series};
use netlens::metrics::Metric;
use std::fmt::Write as _;
use std::path::Path;

/// Writes `curves.csv` and `curves.png` (a panel per metric with curves, a line per method).
pub fn write_curves(
    e: &Evaluation,
    panel_titles: &[(Metric, String)],
    caption: &str,
    csv_path: &Path,
    png_path: &Path,
) -> Result<()> {
    let mut panels: Vec<(String, Vec<Series>)> = Vec::new();
    for (metric, title) in panel_titles {
        let series: Vec<Series> = e
            .curves
            .iter()
            .filter(|s| s.metric == *metric)
            .map(|s| Series {
                label: format!("{} ({:.3})", s.method, s.mean_score()),
                x: s.x.clone(),
                y: s.mean(),
            })
            .collect();
        if !series.is_empty() {
            panels.push((title.clone(), series));
        }
    }
    let metrics: Vec<Metric> = panel_titles.iter().map(|(m, _)| *m).collect();
    save_text(&e.curves_csv(&metrics), csv_path)?;
    let fig = curves_plot(caption, &panels)?;
    save_png(&fig, png_path)
}

/// The terminal table of means.
pub fn print_table(title: &str, means: &Means, run: &crate::manifest::Run) {
    run.line(format!(
        "{title} (means; ↑ higher is better, ↓ lower is better)"
    ));
    let width = means
        .methods()
        .iter()
        .map(|m| m.chars().count())
        .max()
        .unwrap_or(6)
        .max(6);
    let col = |met: &Metric| met.name().chars().count().max(6) + 2;
    let mut head = format!("{:width$}", "method");
    for met in means.metrics() {
        let label = format!(
            "{} {}",
            met.name(),
            if met.higher_is_better() { "↑" } else { "↓" }
        );
        let _ = write!(head, "  {label:>w$}", w = col(met));
    }
    run.line(head);
    for (mi, m) in means.methods().iter().enumerate() {
        let mut line = format!("{m:width$}");
        for met in means.metrics() {
            let v = means.get(mi, *met).unwrap_or(f64::NAN);
            let _ = write!(line, "  {:>w$}", format!("{v:.3}"), w = col(met));
        }
        run.line(line);
    }
}
