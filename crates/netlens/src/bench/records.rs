//! What an engine reports: one JSON line, an [`EngineRecord`], printed by a netlens worker
//! (`netlens bench --worker fast|plain`) or by a PyTorch script (`tools/reference/
//! bench_torch.py`, `torchvision_bench.py`, through `bench_common.py`), and read back by
//! `netlens bench`. Fields the reader does not know are ignored, so a script may add its own
//! (`loadavg_1min`, `torchvision_version`).

use serde::{Deserialize, Serialize};

/// A median over timed runs, in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Timing {
    pub median_ms: f64,
    pub min_ms: f64,
    #[serde(default)]
    pub max_ms: Option<f64>,
    pub runs: usize,
}

impl Timing {
    /// The timing of the runs `t` (sorted in place; at least one), rounded to the µs.
    pub fn of(t: &mut [f64]) -> Self {
        t.sort_by(f64::total_cmp);
        let n = t.len();
        let median = match n {
            0 => f64::NAN,
            _ if n % 2 == 1 => t[n / 2],
            _ => (t[n / 2 - 1] + t[n / 2]) / 2.0,
        };
        let r = |v: f64| (v * 1e3).round() / 1e3;
        Timing {
            median_ms: r(median),
            min_ms: r(t.first().copied().unwrap_or(f64::NAN)),
            max_ms: t.last().map(|&v| r(v)),
            runs: n,
        }
    }
}

/// One measurement: `name` (`forward`, `forward_backward`, `classviz<N>`) at a batch size on
/// one engine variant (`fast`, `plain`, PyTorch's `module` or `folded`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PassRecord {
    pub name: String,
    pub variant: String,
    pub batch: usize,
    #[serde(flatten)]
    pub timing: Timing,
}

/// Where a class-visualization run went: the class's probability at the start and the end.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ClassvizRecord {
    pub class: usize,
    pub start_prob: f64,
    pub final_prob: f64,
}

/// Everything one engine process measured for one model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EngineRecord {
    pub model: String,
    pub threads: usize,
    /// Resident memory (MB) once the model was loaded, before the first pass.
    pub setup_rss_mb: Option<f64>,
    /// The process's peak resident memory (MB) over its whole run.
    pub peak_rss_mb: Option<f64>,
    /// netlens only: whether the fast path was on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fast_path_active: Option<bool>,
    /// PyTorch only: its version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub torch_version: Option<String>,
    /// netlens only: floating-point operations of one image's forward pass (convolutions and
    /// matrix products, [`crate::graph::flops`]); forward + backward-to-input is twice this.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub forward_flops: Option<u64>,
    /// The method table's PyTorch side only: the library that ran the method.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub anchor: Option<String>,
    /// netlens only: the class-visualization run's probabilities.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub classviz: Option<ClassvizRecord>,
    pub results: Vec<PassRecord>,
}

impl EngineRecord {
    /// The median (ms) of measurement `name` at `batch` on `variant`.
    pub fn median(&self, name: &str, variant: &str, batch: usize) -> Option<f64> {
        self.results
            .iter()
            .find(|r| r.name == name && r.variant == variant && r.batch == batch)
            .map(|r| r.timing.median_ms)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_what_the_pytorch_scripts_print() {
        let line = r#"{"torch_version": "2.5.1", "threads": 2, "model": "vgg16",
            "loadavg_1min": 0.5, "setup_rss_mb": 900.1, "peak_rss_mb": 1500.0,
            "results": [{"name": "forward", "variant": "module", "batch": 8,
                         "median_ms": 812.5, "min_ms": 800.0, "runs": 3}]}"#;
        let r: EngineRecord = serde_json::from_str(line).unwrap();
        assert_eq!(r.median("forward", "module", 8), Some(812.5));
        assert_eq!(r.median("forward", "folded", 8), None);
        assert_eq!(r.torch_version.as_deref(), Some("2.5.1"));
        let back: EngineRecord = serde_json::from_str(&serde_json::to_string(&r).unwrap()).unwrap();
        assert_eq!(back, r);
    }
}
