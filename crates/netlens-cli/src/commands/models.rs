//! `netlens models`: the zoo, and `netlens models fetch NAME`.

use crate::common::{is_onnx, spinner};
use anyhow::{Context, Result};
use netlens::{models, weights};

#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(subcommand)]
    pub action: Option<Action>,
}

#[derive(clap::Subcommand, Debug)]
pub enum Action {
    /// List every model with input size, parameter count and whether its weights are present
    List,
    /// Download, verify (sha256) and cache a model's weights
    Fetch {
        /// Model name, or "all"
        name: String,
        /// Fetch again even when the weights are cached
        #[arg(long)]
        force: bool,
    },
}

pub fn run(a: Args) -> Result<()> {
    match a.action.unwrap_or(Action::List) {
        Action::List => list(),
        Action::Fetch { name, force } => {
            let specs: Vec<&'static models::ModelSpec> = if name == "all" {
                models::zoo().iter().collect()
            } else if is_onnx(&name) {
                anyhow::bail!(
                    "{name} is an ONNX file: it holds its own weights, there is nothing to fetch \
                     (use it directly: --model {name})"
                );
            } else {
                vec![models::spec(&name)?]
            };
            for spec in specs {
                let cached = weights::cached_path(spec.name);
                if cached.is_file() && !force {
                    eprintln!("{}: already cached at {}", spec.name, cached.display());
                    continue;
                }
                let pb = spinner(&format!("fetching {}", spec.name));
                let mut status = |s: &str| pb.set_message(format!("{}: {s}", spec.name));
                // A published file placed by hand (offline installs) is verified and
                // converted like a download.
                let placed = cached.with_extension("pth");
                let path = if placed.is_file() && !force {
                    weights::load_for(spec.name, &spec.weights, None, &mut status)
                        .map(|_| cached.clone())
                } else {
                    weights::fetch(spec.name, &spec.weights, &mut status)
                };
                pb.finish_and_clear();
                let path = path.with_context(|| format!("cannot fetch {}", spec.name))?;
                // Building the model proves the file fits the architecture.
                let sd = weights::read_state_dict(&path)?;
                models::build(spec, sd).with_context(|| {
                    format!("fetched {} does not fit its architecture", spec.name)
                })?;
                println!("{}: {}", spec.name, path.display());
            }
            Ok(())
        }
    }
}

fn list() -> Result<()> {
    println!(
        "{:<20} {:>6} {:>12}  {:<8} source",
        "model", "input", "parameters", "weights"
    );
    for spec in models::zoo() {
        let cached = weights::cached_path(spec.name);
        let (present, params) = if cached.is_file() {
            let n = weights::read_state_dict(&cached)
                .map(|sd| sd.num_parameters())
                .unwrap_or(0);
            ("present", format!("{:.2}M", n as f64 / 1e6))
        } else {
            ("absent", "-".to_string())
        };
        println!(
            "{:<20} {:>6} {:>12}  {:<8} {}",
            spec.name,
            format!("{}px", spec.input_size),
            params,
            present,
            spec.weights.describe()
        );
    }
    println!(
        "\nweights cache: {}",
        weights::cache_dir().join("weights").display()
    );
    println!(
        "--model also takes an ONNX file (a path ending in .onnx or containing a /); \
         `netlens layers MODEL` lists a model's layers"
    );
    Ok(())
}
