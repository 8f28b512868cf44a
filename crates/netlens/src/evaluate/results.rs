//! What an evaluation gives back: every value (a [`Row`] per image × method × metric), the
//! means per method × metric, the curves per method, and the texts `netlens evaluate` writes
//! from them (`metrics.csv`, `curves.csv`, the `--json` lines), so that every front end
//! writes the same bytes.

use super::cascade::RandomizationTests;
use crate::metrics::Metric;
use std::collections::BTreeMap;
use std::fmt::Write as _;

/// One value of the table.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    /// The image's name (its path as given).
    pub image: String,
    /// The method's name.
    pub method: String,
    pub metric: Metric,
    /// NaN where the metric has no value (no object box; a constant map's rank correlation).
    pub value: f64,
}

/// One method's curves of one metric, an image each.
#[derive(Debug, Clone, PartialEq)]
pub struct CurveSet {
    pub method: String,
    pub metric: Metric,
    /// Shared x values (fraction of pixels changed or removed).
    pub x: Vec<f64>,
    /// Per image: y values (probability of the class).
    pub ys: Vec<Vec<f64>>,
}

/// Means per method × metric, over the finite values (NaN when none).
#[derive(Debug, Clone, PartialEq)]
pub struct Means {
    methods: Vec<String>,
    metrics: Vec<Metric>,
    sums: BTreeMap<(usize, Metric), (f64, usize)>,
}

impl Means {
    /// The means of `rows` for `methods` and the metrics `asked` (in [`Metric::ALL`]'s order).
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

    /// The methods (rows of the table).
    pub fn methods(&self) -> &[String] {
        &self.methods
    }

    /// The metrics (columns of the table), in [`Metric::ALL`]'s order.
    pub fn metrics(&self) -> &[Metric] {
        &self.metrics
    }

    /// The mean of method `mi` (its index) for `m`; None when it has no value at all.
    pub fn get(&self, mi: usize, m: Metric) -> Option<f64> {
        self.sums
            .get(&(mi, m))
            .map(|&(s, k)| if k > 0 { s / k as f64 } else { f64::NAN })
    }

    /// Every mean as (method, metric, value), methods first, as the CSV and JSON list them.
    pub fn all(&self) -> Vec<(&str, Metric, f64)> {
        let mut v = Vec::new();
        for (mi, m) in self.methods.iter().enumerate() {
            for &met in &self.metrics {
                if let Some(x) = self.get(mi, met) {
                    v.push((m.as_str(), met, x));
                }
            }
        }
        v
    }
}

/// Everything one evaluation measured.
#[derive(Debug, Clone)]
pub struct Evaluation {
    /// The model's name as given (the CSV's and JSON's "model").
    pub model: String,
    /// The images' names, in order.
    pub images: Vec<String>,
    /// Every value: per method, per metric, per image.
    pub rows: Vec<Row>,
    /// Means per method × metric.
    pub means: Means,
    /// Deletion, insertion and ROAD curves, per method and metric.
    pub curves: Vec<CurveSet>,
    /// The randomization tests step by step on the first image (with randomization).
    pub randomization: Option<RandomizationTests>,
    /// Things the user should know (images without object boxes).
    pub notes: Vec<String>,
}

/// A CSV field, quoted when it must be.
pub(crate) fn quote(s: &str) -> String {
    if s.contains([',', '"', '\n']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

/// A JSON number, or null for NaN (a constant map has no rank correlation).
fn json_num(v: f64) -> serde_json::Value {
    if v.is_finite() {
        serde_json::json!(v)
    } else {
        serde_json::Value::Null
    }
}

impl Evaluation {
    /// `metrics.csv`: every value, then the means (image "mean").
    pub fn metrics_csv(&self) -> String {
        let model = quote(&self.model);
        let mut csv = String::from("image,model,method,metric,value\n");
        for r in &self.rows {
            let _ = writeln!(
                csv,
                "{},{model},{},{},{}",
                quote(&r.image),
                r.method,
                r.metric.name(),
                r.value
            );
        }
        for (m, met, v) in self.means.all() {
            let _ = writeln!(csv, "mean,{model},{m},{},{v}", met.name());
        }
        csv
    }

    /// The JSON lines of `--json`: every value, then the means with `"image": null`.
    pub fn json_lines(&self) -> Vec<String> {
        let line = |image: serde_json::Value, method: &str, metric: Metric, v: f64| {
            serde_json::json!({
                "image": image, "model": self.model, "method": method,
                "metric": metric.name(), "value": json_num(v),
            })
            .to_string()
        };
        let mut out: Vec<String> = self
            .rows
            .iter()
            .map(|r| line(r.image.clone().into(), &r.method, r.metric, r.value))
            .collect();
        out.extend(
            self.means
                .all()
                .into_iter()
                .map(|(m, met, v)| line(serde_json::Value::Null, m, met, v)),
        );
        out
    }

    /// `curves.csv`: every point of every curve of the `metrics` (in that order).
    pub fn curves_csv(&self, metrics: &[Metric]) -> String {
        let mut c = String::from("method,image,curve,fraction,probability\n");
        for metric in metrics {
            for s in self.curves.iter().filter(|s| s.metric == *metric) {
                for (i, ys) in s.ys.iter().enumerate() {
                    for (f, p) in s.x.iter().zip(ys) {
                        let _ = writeln!(
                            c,
                            "{},{},{},{f},{p}",
                            s.method,
                            quote(&self.images[i]),
                            metric.name()
                        );
                    }
                }
            }
        }
        c
    }
}

impl CurveSet {
    /// The mean curve over the images.
    pub fn mean(&self) -> Vec<f64> {
        let n = self.ys.len().max(1) as f64;
        (0..self.x.len())
            .map(|j| self.ys.iter().map(|c| c[j]).sum::<f64>() / n)
            .collect()
    }

    /// The score of the mean curve: its area (deletion, insertion) or its mean (ROAD).
    pub fn mean_score(&self) -> f64 {
        let y = self.mean();
        match self.metric {
            Metric::Deletion | Metric::Insertion => crate::metrics::deletion_insertion::auc(&y),
            _ => y.iter().sum::<f64>() / y.len().max(1) as f64,
        }
    }
}
