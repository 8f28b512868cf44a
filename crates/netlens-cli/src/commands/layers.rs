//! `netlens layers`: a model's tappable layers — the names `--layer` accepts — with their
//! operation and output shape, the default Grad-CAM layer marked.

use crate::common::ModelArgs;
use anyhow::Result;

const AFTER_HELP: &str = "\
These are the names --layer accepts: `netlens saliency --method grad-cam --layer NAME`,
`netlens locate --method grad-cam --layer NAME` and `netlens locate-bench --layer NAME`
(also for smoothgrad with --inner grad-cam). A layer can be tapped when every path from the
input to the logits passes through it, so the logits can be recomputed from it alone.
'*' marks the layer Grad-CAM uses without --layer (for an ONNX file it is chosen
automatically: the last layer larger than 1×1, the one global pooling reads).

Shapes are per image, at the model's input size. On a network that runs on the fast path,
the tap column says where a tap on the layer runs: 'fast' (netlens's kernels, forward to the
layer and from it, the backward pass stopping at the layer), or 'plain' for values the fast
path fuses away (a convolution's output before its BatchNorm and activation: tap the
activation after them for speed). --json prints one array of {\"name\", \"op\", \"shape\",
\"cam_default\", \"tap_fast_path\"} objects (op and shape are null where the model does not
say, as for the zoo's ViT).";

#[derive(clap::Args, Debug)]
#[command(after_help = AFTER_HELP)]
pub struct Args {
    /// Model: a zoo name or an ONNX file (the same as --model)
    #[arg(value_name = "MODEL", conflicts_with = "model")]
    pub name: Option<String>,
    #[command(flatten)]
    pub model: ModelArgs,
    /// Print one JSON array instead of a table
    #[arg(long)]
    pub json: bool,
}

pub fn run(a: Args) -> Result<()> {
    let mut margs = a.model.clone();
    if let Some(n) = &a.name {
        margs.model = n.clone();
    }
    let loaded = margs.load()?;
    let model = loaded.model.as_ref();
    let cam = model.cam_layer();
    let layers = model.layer_info();
    if a.json {
        let v: Vec<serde_json::Value> = layers
            .iter()
            .map(|l| {
                serde_json::json!({
                    "name": l.name,
                    "op": (!l.op.is_empty()).then_some(l.op),
                    "shape": (!l.shape.is_empty()).then_some(&l.shape),
                    "cam_default": l.name == cam,
                    "tap_fast_path": model.tap_fast_path_unsupported(&l.name).is_none(),
                })
            })
            .collect();
        println!("{}", serde_json::Value::Array(v));
        return Ok(());
    }
    let spec = model.spec();
    println!(
        "{}: {} tappable layers, input side first ({} px input, {} classes); * = Grad-CAM's \
         default layer",
        spec.name,
        layers.len(),
        spec.input_size,
        model.classes()
    );
    let w = layers
        .iter()
        .map(|l| l.name.chars().count())
        .max()
        .unwrap_or(4)
        .max(4);
    let unsupported = model.fast_path_unsupported();
    let fast = unsupported.is_none();
    match unsupported {
        None => println!("fast path: yes (netlens's own kernels, forward and backward)"),
        Some(why) => println!("fast path: no, {why}"),
    }
    let tap_header = if fast { "tap   " } else { "" };
    println!("  {:<w$}  {:<18} {tap_header}shape", "name", "op");
    for l in &layers {
        let shape = if l.shape.is_empty() {
            "-".to_string()
        } else {
            l.shape
                .iter()
                .map(|d| d.to_string())
                .collect::<Vec<_>>()
                .join("×")
        };
        let op = if l.op.is_empty() { "-" } else { l.op };
        let mark = if l.name == cam { '*' } else { ' ' };
        let tap = match (fast, model.tap_fast_path_unsupported(&l.name)) {
            (false, _) => "",
            (true, None) => "fast  ",
            (true, Some(_)) => "plain ",
        };
        println!("{mark} {:<w$}  {op:<18} {tap}{shape}", l.name);
    }
    Ok(())
}
