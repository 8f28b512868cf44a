//! Parameter sweeps (CS231n Q9): a grid of recipe settings, each cell one full run from the
//! same seed, so that cells differ only by their settings.
//!
//! An axis is written `key=v1,v2,...` with the command-line name of a setting
//! (`learning-rate=5,25,100`), parsed once into typed [`Setting`]s ([`Axis::parse`], at the
//! command line); the grid is the Cartesian product of the axes, the last axis
//! varying fastest. Cells can run on several threads at once ([`run`]), which pays when the
//! engine leaves cores idle (its elementwise ops are single-threaded).

use super::{visualize, Options, Recipe, Setting, Tick, Visualization};
use crate::error::{Error, Result};
use crate::models::Classifier;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

/// One swept setting and its values.
#[derive(Debug, Clone, PartialEq)]
pub struct Axis {
    pub key: String,
    /// Each value as written (for labels and file names) and as a typed setting.
    pub values: Vec<(String, Setting)>,
}

impl Axis {
    /// Parses `key=v1,v2,...`: every value must parse as setting `key`'s type.
    pub fn parse(spec: &str) -> Result<Self> {
        let (key, values) = spec.split_once('=').ok_or_else(|| {
            Error::Invalid(format!(
                "sweep '{spec}' should look like key=v1,v2 (for example learning-rate=5,25,100)"
            ))
        })?;
        let key = key.trim().to_string();
        let values: Vec<String> = values
            .split(',')
            .map(|v| v.trim().to_string())
            .filter(|v| !v.is_empty())
            .collect();
        if key.is_empty() || values.is_empty() {
            return Err(Error::Invalid(format!(
                "sweep '{spec}' needs a setting name and at least one value"
            )));
        }
        let values = values
            .into_iter()
            .map(|v| Setting::parse(&key, &v).map(|s| (v, s)))
            .collect::<Result<_>>()?;
        Ok(Self { key, values })
    }
}

/// One cell of a grid.
#[derive(Debug, Clone, PartialEq)]
pub struct Cell {
    /// `(key, value)` per axis, in axis order.
    pub settings: Vec<(String, String)>,
    pub recipe: Recipe,
}

impl Cell {
    /// `key=value, key=value`.
    pub fn label(&self) -> String {
        self.settings
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// The grid of `axes` over `base` (every value is checked by [`Recipe::apply`]).
pub fn grid(base: &Recipe, axes: &[Axis]) -> Result<Vec<Cell>> {
    let mut keys = std::collections::HashSet::new();
    for a in axes {
        if !keys.insert(a.key.as_str()) {
            return Err(Error::Invalid(format!("'{}' is swept twice", a.key)));
        }
    }
    let mut cells = vec![Cell {
        settings: Vec::new(),
        recipe: base.clone(),
    }];
    for a in axes {
        let mut next = Vec::with_capacity(cells.len() * a.values.len());
        for c in &cells {
            for (v, setting) in &a.values {
                let mut recipe = c.recipe.clone();
                recipe.apply(*setting)?;
                let mut settings = c.settings.clone();
                settings.push((a.key.clone(), v.clone()));
                next.push(Cell { settings, recipe });
            }
        }
        cells = next;
    }
    Ok(cells)
}

/// Runs every cell for `class` with the same `options` on up to `workers` threads; `progress`
/// gets the cell index with each tick. Results are in cell order.
pub fn run(
    model: &dyn Classifier,
    class: usize,
    cells: &[Cell],
    options: &Options,
    workers: usize,
    progress: &(dyn Fn(usize, &Tick) + Sync),
) -> Result<Vec<Visualization>> {
    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<Option<Result<Visualization>>>> =
        Mutex::new((0..cells.len()).map(|_| None).collect());
    let work = || loop {
        let i = next.fetch_add(1, Ordering::SeqCst);
        if i >= cells.len() {
            break;
        }
        let r = visualize(model, class, &cells[i].recipe, options, &mut |t| {
            progress(i, t)
        });
        if let Ok(mut guard) = results.lock() {
            guard[i] = Some(r);
        }
    };
    let workers = workers.clamp(1, cells.len().max(1));
    if workers == 1 {
        work();
    } else {
        std::thread::scope(|s| {
            for _ in 0..workers {
                s.spawn(work);
            }
        });
    }
    let results = results
        .into_inner()
        .map_err(|_| Error::Invalid("a sweep worker failed".into()))?;
    results
        .into_iter()
        .map(|r| r.unwrap_or_else(|| Err(Error::Invalid("a sweep cell did not run".into()))))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grid_is_the_product() {
        let axes = [
            Axis::parse("l2-reg=1e-4,1e-3,1e-2").unwrap(),
            Axis::parse("learning-rate=5, 25").unwrap(),
        ];
        let cells = grid(&Recipe::default(), &axes).unwrap();
        assert_eq!(cells.len(), 6);
        assert_eq!(cells[1].label(), "l2-reg=1e-4, learning-rate=25");
        match &cells[5].recipe {
            Recipe::Cs231n(c) => {
                assert_eq!(c.l2_reg, 1e-2);
                assert_eq!(c.learning_rate, 25.0);
            }
            _ => panic!("wrong recipe"),
        }
        assert_eq!(axes[0].values[0], ("1e-4".into(), Setting::L2Reg(1e-4)));
        assert!(grid(&Recipe::default(), &[Axis::parse("sd=1").unwrap()]).is_err());
        assert!(grid(&Recipe::default(), &[Axis::parse("l2-reg=-1").unwrap()]).is_err());
        assert!(Axis::parse("l2-reg=abc").is_err());
        assert!(Axis::parse("speed=1").is_err());
        assert!(Axis::parse("l2-reg").is_err());
        assert!(Axis::parse("l2-reg=").is_err());
    }
}
