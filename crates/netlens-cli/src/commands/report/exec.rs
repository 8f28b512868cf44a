//! Runs one experiment of the report in this process: its command line parsed by the
//! commands' own flags (so the line shown on the page is the one that ran), then the
//! command's `execute` in the report's folder, on the models the report loaded once. Errors
//! come back as values; the files and parameters come back in the run's manifest.

use super::plan::Experiment;
use crate::commands::{evaluate, fool, locate, locate_bench, robustness, saliency};
use crate::commands::{transfer, visualize};
use crate::common::one_line;
use crate::manifest::{Manifest, Run};
use anyhow::{Context, Result};
use clap::Parser;
use std::path::{Path, PathBuf};

/// What one experiment gave.
pub struct Outcome {
    /// The failure, in one line (`None`: it ran).
    pub error: Option<String>,
    /// Its output lines (its `--json` output, manifest last).
    pub lines: Vec<String>,
    /// What it did (on failure: what it did until then).
    pub manifest: Manifest,
}

/// The commands a report runs, parsed as `netlens` parses them.
#[derive(Parser)]
#[command(name = "netlens")]
struct Line {
    #[command(subcommand)]
    command: Command,
}

#[derive(clap::Subcommand)]
enum Command {
    Saliency(saliency::Args),
    LocateBench(locate_bench::Args),
    Evaluate(evaluate::Args),
    Locate(locate::Args),
    Fool(fool::Args),
    Robustness(robustness::Args),
    Transfer(transfer::Args),
    Visualize(visualize::Args),
}

/// The working folder, changed for the life of the value and restored on drop.
struct InFolder(PathBuf);

impl InFolder {
    fn enter(dir: &Path) -> Result<Self> {
        let back = std::env::current_dir().context("cannot read the current folder")?;
        std::env::set_current_dir(dir)
            .with_context(|| format!("cannot enter {}", dir.display()))?;
        Ok(InFolder(back))
    }
}

impl Drop for InFolder {
    fn drop(&mut self) {
        let _ = std::env::set_current_dir(&self.0);
    }
}

/// Runs `e` in `dir` (absolute).
pub fn run(e: &Experiment, dir: &Path) -> Outcome {
    let command = e.args.first().cloned().unwrap_or_default();
    let run = Run::new(&command, e.args.clone(), true);
    // A panic fails this experiment only, as a crashed process did when each experiment
    // was one (the panic hook has said what it was).
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| execute(e, dir, &run)))
        .unwrap_or_else(|_| Err(anyhow::anyhow!("internal error (please report this)")));
    Outcome {
        error: result.err().map(|e| one_line(&e)),
        lines: run.lines(),
        manifest: run.manifest(),
    }
}

fn execute(e: &Experiment, dir: &Path, run: &Run) -> Result<()> {
    let argv = std::iter::once("netlens".to_string()).chain(e.args.iter().cloned());
    let line = Line::try_parse_from(argv).map_err(|err| {
        let text = err.to_string();
        anyhow::anyhow!(
            "{}",
            text.lines().next().unwrap_or("bad command line").trim()
        )
    })?;
    let _here = InFolder::enter(dir)?;
    let (json, object) = match line.command {
        Command::Saliency(a) => (a.json, saliency::execute(&a, run).map(|()| None)?),
        Command::LocateBench(a) => (a.json, locate_bench::execute(&a, run).map(|()| None)?),
        Command::Evaluate(a) => (a.json, evaluate::execute(&a, run).map(|()| None)?),
        Command::Locate(a) => (true, locate::execute(&a, run).map(|()| None)?),
        Command::Fool(a) => (a.json, fool::execute(&a, run).map(|()| None)?),
        Command::Robustness(a) => (a.json, robustness::execute(&a, run)?),
        Command::Transfer(a) => (a.json, transfer::execute(&a, run)?),
        Command::Visualize(a) => (a.json, visualize::execute(&a, run).map(|()| None)?),
    };
    if json {
        run.finish_json(object);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_planned_command_line_parses() {
        // The full and the quick plan, with several models: every line the page would show is
        // one the commands accept (a typo in the plan fails here, not after an hour's run).
        for quick in [false, true] {
            let a = crate::commands::report::Args {
                out: PathBuf::from("report"),
                models: Vec::new(),
                quick,
                images: Vec::new(),
                seed: 7,
            };
            let photos: Vec<String> = ["chelsea", "coffee", "a", "b", "c", "d"]
                .iter()
                .map(|p| format!("/photos/{p}.png"))
                .collect();
            let models = ["efficientnet_lite0", "efficientnet_lite1", "/m/net.onnx"]
                .map(String::from)
                .to_vec();
            let plan = super::super::plan::plan(&a, &photos, &models);
            assert!(plan.len() >= 16, "{}", plan.len());
            for e in &plan {
                let argv = std::iter::once("netlens".to_string()).chain(e.args.iter().cloned());
                if let Err(err) = Line::try_parse_from(argv) {
                    panic!("{}: {:?}: {err}", e.title, e.args);
                }
            }
        }
    }
}
