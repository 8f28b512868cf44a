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
    /// Floating-point operations of one run, where netlens counted them on an untimed run
    /// ([`super::profile::count_flops`]: the method table, class visualization).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub flops: Option<u64>,
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

    /// The floating-point operations counted for one run of measurement `name` at `batch`
    /// on `variant`, where they were.
    pub fn flops(&self, name: &str, variant: &str, batch: usize) -> Option<u64> {
        self.results
            .iter()
            .find(|r| r.name == name && r.variant == variant && r.batch == batch)
            .and_then(|r| r.flops)
    }

    /// One record for several rounds of the same measurements by one engine (`netlens bench
    /// --rounds`): each measurement's median is the median of the rounds' medians, its
    /// minimum and maximum those over every round, its runs their sum; peak memory is the
    /// largest round's, everything else the first round's. A measurement missing from any
    /// round is left out. `None` for no rounds.
    pub fn merge_rounds(rounds: &[EngineRecord]) -> Option<EngineRecord> {
        let first = rounds.first()?;
        let most = |f: fn(&EngineRecord) -> Option<f64>| {
            rounds.iter().filter_map(f).max_by(f64::total_cmp)
        };
        let results = first
            .results
            .iter()
            .filter_map(|r| {
                let same: Vec<&PassRecord> = rounds
                    .iter()
                    .filter_map(|e| {
                        e.results.iter().find(|q| {
                            q.name == r.name && q.variant == r.variant && q.batch == r.batch
                        })
                    })
                    .collect();
                if same.len() != rounds.len() {
                    return None;
                }
                let mut medians: Vec<f64> = same.iter().map(|q| q.timing.median_ms).collect();
                let median = Timing::of(&mut medians).median_ms;
                let min = same.iter().map(|q| q.timing.min_ms);
                let max = same.iter().filter_map(|q| q.timing.max_ms);
                Some(PassRecord {
                    timing: Timing {
                        median_ms: median,
                        min_ms: min.fold(f64::INFINITY, f64::min),
                        max_ms: max.max_by(f64::total_cmp),
                        runs: same.iter().map(|q| q.timing.runs).sum(),
                    },
                    ..r.clone()
                })
            })
            .collect();
        Some(EngineRecord {
            setup_rss_mb: most(|e| e.setup_rss_mb),
            peak_rss_mb: most(|e| e.peak_rss_mb),
            results,
            ..first.clone()
        })
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

    #[test]
    fn rounds_merge_into_the_median_of_their_medians() {
        let record = |medians: &[(usize, f64)], peak: f64| EngineRecord {
            model: "m".into(),
            threads: 2,
            setup_rss_mb: Some(10.0),
            peak_rss_mb: Some(peak),
            fast_path_active: Some(true),
            torch_version: None,
            forward_flops: Some(7),
            anchor: None,
            classviz: None,
            results: medians
                .iter()
                .map(|&(batch, m)| PassRecord {
                    name: "forward".into(),
                    variant: "fast".into(),
                    batch,
                    timing: Timing {
                        median_ms: m,
                        min_ms: m - 1.0,
                        max_ms: Some(m + 1.0),
                        runs: 10,
                    },
                    flops: None,
                })
                .collect(),
        };
        let rounds = [
            record(&[(1, 10.0), (8, 80.0)], 100.0),
            record(&[(1, 30.0), (8, 70.0)], 120.0),
            record(&[(1, 20.0)], 110.0),
        ];
        let m = EngineRecord::merge_rounds(&rounds).unwrap();
        assert_eq!(m.median("forward", "fast", 1), Some(20.0));
        // Batch 8 is missing from the third round: left out, not a median of two.
        assert_eq!(m.median("forward", "fast", 8), None);
        let t = m.results[0].timing;
        assert_eq!((t.min_ms, t.max_ms, t.runs), (9.0, Some(31.0), 30));
        assert_eq!(m.peak_rss_mb, Some(120.0));
        assert_eq!(m.forward_flops, Some(7));
        assert_eq!(EngineRecord::merge_rounds(&rounds[..1]).unwrap(), rounds[0]);
        assert!(EngineRecord::merge_rounds(&[]).is_none());
    }
}
