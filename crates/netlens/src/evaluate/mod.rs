//! `netlens evaluate`'s orchestration, for every front end (the CLI, the Python package): how
//! faithful each method's maps are, how concentrated, whether they depend on the network at
//! all, and whether they point at the object.
//!
//! A [`Config`] ([`config`]: methods, metrics and their settings, the CLI's defaults) and
//! fitted [`Image`]s go into [`run`] ([`run`](mod@run)), which computes every map and every
//! metric of [`crate::metrics`] per image × method and gives back an [`Evaluation`]
//! ([`results`]: the rows, the means, the curves, and the texts of `metrics.csv`,
//! `curves.csv` and the `--json` lines), with the randomization tests of Adebayo et al. on
//! the first image ([`cascade`]). [`boxes`] finds the object boxes beside the images.
//! Progress goes to a [`Progress`]; nothing here prints or writes a file.

pub mod boxes;
pub mod cascade;
pub mod config;
pub mod results;
pub mod run;

pub use boxes::boxes_beside;
pub use cascade::{step_name, RandomizationTests};
pub use config::{split_list, unique, Config, EvalMethod};
pub use results::{CurveSet, Evaluation, Means, Row};
pub use run::{run, Image, Images, Network};

/// Where an evaluation reports its progress. Every method takes `&self` (an implementation
/// that counts uses a `Cell` or an atomic), so that progress can be reported while a
/// computation holds the tick.
pub trait Progress {
    /// A new stage of `total` steps (0: of unknown length), named `what`.
    fn stage(&self, what: &str, total: usize);
    /// What the current stage is doing now.
    fn message(&self, _what: &str) {}
    /// `k` more steps done.
    fn tick(&self, k: usize);
    /// The current stage is over.
    fn done(&self) {}
    /// Something the user should know (said when it is found, also kept in
    /// [`Evaluation::notes`]).
    fn note(&self, _what: &str) {}
}

/// No progress shown.
pub struct Silent;

impl Progress for Silent {
    fn stage(&self, _what: &str, _total: usize) {}
    fn tick(&self, _k: usize) {}
}
