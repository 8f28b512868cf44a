//! `netlens`: what a pretrained image classifier looks at and what it has learned.

mod class_names;
mod commands;
mod common;
mod manifest;
mod resume;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "netlens",
    version,
    about = "What a pretrained image classifier looks at and what it has learned",
    long_about = "netlens runs real pretrained ImageNet networks on the CPU and shows what they \
                  look at (saliency), how little it takes to fool them, and what they have learned \
                  (class visualization). Weights are fetched on first use into $NETLENS_HOME \
                  (default ~/.cache/netlens). Wherever --model is accepted it also takes an ONNX \
                  file (a path ending in .onnx or containing a /), with its preprocessing from a \
                  sidecar model.json or from --input-size, --resize, --mean, --std and \
                  --pixel-scale, and its class names from --labels."
)]
struct Cli {
    /// Worker threads for the tensor engine, 1–256 (default: all cores)
    #[arg(long, global = true, value_name = "N",
          value_parser = clap::value_parser!(u16).range(1..=256))]
    threads: Option<u16>,
    /// Overwrite existing output files (by default netlens refuses to)
    #[arg(long, global = true)]
    force: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// The whole practical, answered in one HTML page (the main job)
    Report(commands::report::Args),
    /// Classify images: top-k classes with probabilities
    Classify(commands::classify::Args),
    /// List the model zoo, or fetch a model's weights
    Models(commands::models::Args),
    /// List a model's tappable layers (the names --layer accepts)
    Layers(commands::layers::Args),
    /// Saliency maps: which pixels move a class score (vanilla, SmoothGrad, IG, Grad-CAM...)
    Saliency(commands::saliency::Args),
    /// Is the map right? Deletion/insertion, ROAD, randomization, infidelity, sensitivity, sparseness, complexity, pointing game per method
    Evaluate(commands::evaluate::Args),
    /// Bounding boxes from saliency maps
    Locate(commands::locate::Args),
    /// Localization benchmark: pointing game and IoU on pasted objects of known place
    LocateBench(commands::locate_bench::Args),
    /// Fooling images: the smallest change that makes the network say another class
    Fool(commands::fool::Args),
    /// Do fooling images made for one network fool another?
    Transfer(commands::transfer::Args),
    /// Top-1 agreement under growing random noise vs. growing adversarial perturbation
    Robustness(commands::robustness::Args),
    /// Class visualization: an image the network finds maximally "gorilla"
    Visualize(commands::visualize::Args),
    /// Look up ImageNet classes by index or name
    Labels(commands::labels::Args),
    /// Time forward and forward+backward passes (fast and plain paths) beside PyTorch
    Bench(commands::bench::Args),
}

fn main() -> ExitCode {
    std::panic::set_hook(Box::new(|info| {
        let msg = info
            .payload()
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| info.payload().downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "unknown panic".into());
        eprintln!("netlens: internal error: {msg} (please report this)");
    }));
    common::tune_allocator();
    let cli = Cli::parse();
    if let Some(n) = cli.threads {
        netlens::engine::set_threads(usize::from(n));
    }
    common::set_force(cli.force);
    let result = match cli.command {
        Command::Classify(a) => commands::classify::run(a),
        Command::Models(a) => commands::models::run(a),
        Command::Layers(a) => commands::layers::run(a),
        Command::Report(a) => commands::report::run(a),
        Command::Saliency(a) => commands::saliency::run(a),
        Command::Evaluate(a) => commands::evaluate::run(a),
        Command::Locate(a) => commands::locate::run(a),
        Command::LocateBench(a) => commands::locate_bench::run(a),
        Command::Fool(a) => commands::fool::run(a),
        Command::Transfer(a) => commands::transfer::run(a),
        Command::Robustness(a) => commands::robustness::run(a),
        Command::Visualize(a) => commands::visualize::run(a),
        Command::Labels(a) => commands::labels::run(a),
        Command::Bench(a) => commands::bench::run(a),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("netlens: error: {}", common::one_line(&e));
            ExitCode::FAILURE
        }
    }
}
