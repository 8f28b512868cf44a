//! What `netlens evaluate` writes: `metrics.csv` (every value, then the means), the curves
//! (`curves.csv` and `curves.png`: deletion, insertion and both ROAD orders, the mean curve
//! per method), the terminal table, and the `--json` lines.

use crate::common::{save_png, save_text};
use anyhow::Result;
use netlens::metrics::plot::{curves_plot, Series};
use netlens::metrics::Metric;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

/// One value of the table.
pub struct Row {
    pub image: String,
    pub method: String,
    pub metric: Metric,
    pub value: f64,
}

/// One method's curves of one metric, an image each.
pub struct CurveSet {
    pub method: String,
    pub metric: Metric,
    /// Shared x values (fraction of pixels changed or removed).
    pub x: Vec<f64>,
    /// Per image: y values (probability of the class).
    pub ys: Vec<Vec<f64>>,
}

/// Means per method × metric, over the finite values (NaN when none).
pub struct Means {
    methods: Vec<String>,
    metrics: Vec<Metric>,
    sums: BTreeMap<(usize, Metric), (f64, usize)>,
}

impl Means {
    pub fn new(methods: Vec<String>, asked: &[Metric], rows: &[Row]) -> Means {
        let mut sums: BTreeMap<(usize, Metric), (f64, usize)> = BTreeMap::new();
        for r in rows {
            let Some(mi) = methods.iter().position(|m| m == &r.method) else {
                continue;
            };
            let e = sums.entry((mi, r.metric)).or_insert((0.0, 0));
            if r.value.is_finite() {
                e.0 += r.value;
                e.1 += 1;
            }
        }
        let metrics = Metric::ALL
            .into_iter()
            .filter(|m| asked.contains(m))
            .collect();
        Means {
            methods,
            metrics,
            sums,
        }
    }

    pub fn get(&self, mi: usize, m: Metric) -> Option<f64> {
        self.sums
            .get(&(mi, m))
            .map(|&(s, k)| if k > 0 { s / k as f64 } else { f64::NAN })
    }
}

fn quote(s: &str) -> String {
    if s.contains([',', '"', '\n']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

/// `metrics.csv`: every value, then the means (image "mean").
pub fn metrics_csv(model: &str, rows: &[Row], means: &Means) -> String {
    let mut csv = String::from("image,model,method,metric,value\n");
    for r in rows {
        let _ = writeln!(
            csv,
            "{},{},{},{},{}",
            quote(&r.image),
            quote(model),
            r.method,
            r.metric.name(),
            r.value
        );
    }
    for (mi, m) in means.methods.iter().enumerate() {
        for &met in &means.metrics {
            if let Some(v) = means.get(mi, met) {
                let _ = writeln!(csv, "mean,{},{m},{},{v}", quote(model), met.name());
            }
        }
    }
    csv
}

/// Writes `curves.csv` and `curves.png` (a panel per metric with curves, a line per method).
pub fn write_curves(
    sets: &[CurveSet],
    names: &[String],
    panel_titles: &[(Metric, String)],
    caption: &str,
    csv_path: &Path,
    png_path: &Path,
) -> Result<()> {
    let mut c = String::from("method,image,curve,fraction,probability\n");
    let mut panels: Vec<(String, Vec<Series>)> = Vec::new();
    for (metric, title) in panel_titles {
        let mut series = Vec::new();
        for s in sets.iter().filter(|s| s.metric == *metric) {
            for (i, ys) in s.ys.iter().enumerate() {
                for (f, p) in s.x.iter().zip(ys) {
                    let _ = writeln!(
                        c,
                        "{},{},{},{f},{p}",
                        s.method,
                        quote(&names[i]),
                        metric.name()
                    );
                }
            }
            let k = s.x.len();
            let n = s.ys.len().max(1) as f64;
            let y: Vec<f64> = (0..k)
                .map(|j| s.ys.iter().map(|c| c[j]).sum::<f64>() / n)
                .collect();
            let score = match metric {
                Metric::Deletion | Metric::Insertion => {
                    netlens::metrics::deletion_insertion::auc(&y)
                }
                _ => y.iter().sum::<f64>() / k.max(1) as f64,
            };
            series.push(Series {
                label: format!("{} ({score:.3})", s.method),
                x: s.x.clone(),
                y,
            });
        }
        if !series.is_empty() {
            panels.push((title.clone(), series));
        }
    }
    save_text(&c, csv_path)?;
    let fig = curves_plot(caption, &panels)?;
    save_png(&fig, png_path)
}

/// A JSON number, or null for NaN (a constant map has no rank correlation).
fn json_num(v: f64) -> serde_json::Value {
    if v.is_finite() {
        serde_json::json!(v)
    } else {
        serde_json::Value::Null
    }
}

/// The `--json` lines: every value, then the means with `"image": null`.
pub fn print_json(model: &str, rows: &[Row], means: &Means) {
    for r in rows {
        println!(
            "{}",
            serde_json::json!({
                "image": r.image, "model": model, "method": r.method,
                "metric": r.metric.name(), "value": json_num(r.value),
            })
        );
    }
    for (mi, m) in means.methods.iter().enumerate() {
        for &met in &means.metrics {
            if let Some(v) = means.get(mi, met) {
                println!(
                    "{}",
                    serde_json::json!({
                        "image": null, "model": model, "method": m,
                        "metric": met.name(), "value": json_num(v),
                    })
                );
            }
        }
    }
}

/// The terminal table of means.
pub fn print_table(title: &str, means: &Means) {
    println!("{title} (means; ↑ higher is better, ↓ lower is better)");
    let width = means
        .methods
        .iter()
        .map(|m| m.chars().count())
        .max()
        .unwrap_or(6)
        .max(6);
    let col = |met: &Metric| met.name().chars().count().max(6) + 2;
    let mut head = format!("{:width$}", "method");
    for met in &means.metrics {
        let label = format!(
            "{} {}",
            met.name(),
            if met.higher_is_better() { "↑" } else { "↓" }
        );
        let _ = write!(head, "  {label:>w$}", w = col(met));
    }
    println!("{head}");
    for (mi, m) in means.methods.iter().enumerate() {
        let mut line = format!("{m:width$}");
        for met in &means.metrics {
            let v = means.get(mi, *met).unwrap_or(f64::NAN);
            let _ = write!(line, "  {:>w$}", format!("{v:.3}"), w = col(met));
        }
        println!("{line}");
    }
}
