//! The timing rule of `netlens bench`, shared with the PyTorch scripts
//! (`tools/reference/bench_common.py`, `median_ms`): up to `warmup` untimed runs, stopping
//! once they took a quarter of the budget, then up to `repeats` timed runs, stopping once at
//! least [`MIN_REPEATS`] of them took the whole budget; the median of the timed runs.

use super::records::Timing;
use crate::error::Result;
use std::time::Instant;

/// A measurement with a time budget still gets at least this many timed runs.
pub const MIN_REPEATS: usize = 3;

/// How many runs a measurement makes at most, and the time after which it stops early.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Budget {
    pub warmup: usize,
    pub repeats: usize,
    /// Seconds; 0 for exactly `warmup` and `repeats` runs.
    pub seconds: f64,
}

/// Times `f` under `budget` (see the module documentation).
pub fn measure(mut f: impl FnMut() -> Result<()>, budget: Budget) -> Result<Timing> {
    let budget_ms = budget.seconds * 1e3;
    let mut spent = 0.0;
    for _ in 0..budget.warmup {
        let s = Instant::now();
        f()?;
        spent += s.elapsed().as_secs_f64() * 1e3;
        if budget_ms > 0.0 && spent >= budget_ms / 4.0 {
            break;
        }
    }
    let mut t: Vec<f64> = Vec::new();
    for _ in 0..budget.repeats.max(1) {
        let s = Instant::now();
        f()?;
        t.push(s.elapsed().as_secs_f64() * 1e3);
        if budget_ms > 0.0 && t.len() >= MIN_REPEATS && t.iter().sum::<f64>() >= budget_ms {
            break;
        }
    }
    Ok(Timing::of(&mut t))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_runs_and_takes_the_median() {
        let mut calls = 0;
        let t = measure(
            || {
                calls += 1;
                Ok(())
            },
            Budget {
                warmup: 2,
                repeats: 5,
                seconds: 0.0,
            },
        )
        .unwrap();
        assert_eq!((calls, t.runs), (7, 5));
        assert!(t.min_ms <= t.median_ms && Some(t.median_ms) <= t.max_ms);
        let mut v = vec![4.0, 1.0, 3.0, 2.0];
        assert_eq!(Timing::of(&mut v).median_ms, 2.5);
    }
}
