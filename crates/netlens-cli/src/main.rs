//! `netlens`: what a pretrained image classifier looks at and what it has learned.

mod commands;
mod common;

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
                  (default ~/.cache/netlens)."
)]
struct Cli {
    /// Worker threads for the tensor engine (default: all cores)
    #[arg(long, global = true, value_name = "N")]
    threads: Option<usize>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Classify images: top-k ImageNet classes with probabilities
    Classify(commands::classify::Args),
    /// List the model zoo, or fetch a model's weights
    Models(commands::models::Args),
    /// Time forward and forward+backward passes beside PyTorch
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
    let cli = Cli::parse();
    if let Some(n) = cli.threads {
        netlens::engine::set_threads(n);
    }
    let result = match cli.command {
        Command::Classify(a) => commands::classify::run(a),
        Command::Models(a) => commands::models::run(a),
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
