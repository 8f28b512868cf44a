//! A user's classifier from an ONNX file, and [`open`], which takes a zoo name or a path.
//!
//! Preprocessing defaults to torchvision's ImageNet convention: the short side resized to
//! 256/224 of the input size, a centre crop, ImageNet mean/std on 0–1 pixels. A sidecar
//! `FILE.json` (`model.onnx` → `model.json` or `model.onnx.json`) with the keys of
//! [`Preprocessing`] overrides it, and explicit settings (the CLI's flags) override both.

use super::{spec, Arch, Classifier, GraphModel, ModelSpec};
use crate::engine::LoadOptions;
use crate::error::{Error, Result};
use crate::imaging::Normalization;
use crate::weights::WeightSource;
use std::path::{Path, PathBuf};

/// How images become an ONNX model's input: `x = (pixel / pixel_scale − mean) / std` per
/// channel, after resizing the short side to `resize` and centre-cropping `input_size`.
#[derive(Debug, Clone, Default, PartialEq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Preprocessing {
    pub input_size: Option<u32>,
    pub resize: Option<u32>,
    pub mean: Option<[f32; 3]>,
    pub std: Option<[f32; 3]>,
    pub pixel_scale: Option<f32>,
}

impl Preprocessing {
    /// `self`'s settings where given, else `other`'s.
    pub fn or(&self, other: &Preprocessing) -> Preprocessing {
        Preprocessing {
            input_size: self.input_size.or(other.input_size),
            resize: self.resize.or(other.resize),
            mean: self.mean.or(other.mean),
            std: self.std.or(other.std),
            pixel_scale: self.pixel_scale.or(other.pixel_scale),
        }
    }

    /// Whether no setting is given.
    pub fn is_empty(&self) -> bool {
        *self == Preprocessing::default()
    }

    /// The sidecar next to `model`, if there is one.
    pub fn sidecar(model: &Path) -> Result<Option<(PathBuf, Preprocessing)>> {
        let mut candidates = vec![model.with_extension("json")];
        let mut long = model.as_os_str().to_owned();
        long.push(".json");
        candidates.push(PathBuf::from(long));
        for c in candidates {
            let Ok(meta) = std::fs::metadata(&c) else {
                continue;
            };
            if !meta.is_file() || meta.len() > 64 * 1024 {
                return Err(Error::Invalid(format!(
                    "{}: a preprocessing sidecar must be a JSON file under 64 KiB",
                    c.display()
                )));
            }
            let text = std::fs::read_to_string(&c).map_err(|e| Error::io(&c, e))?;
            let p: Preprocessing = serde_json::from_str(&text).map_err(|e| {
                Error::Invalid(format!(
                    "{}: {e} (keys: input_size, resize, mean, std, pixel_scale)",
                    c.display()
                ))
            })?;
            return Ok(Some((c, p)));
        }
        Ok(None)
    }
}

/// Whether `name` names an ONNX file rather than a zoo model.
pub fn is_onnx(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    lower.ends_with(".onnx") || name.contains('/') || name.contains(std::path::MAIN_SEPARATOR)
}

fn leak(s: String) -> &'static str {
    // A model's name and summary live as long as the process in the zoo's API (`&'static
    // str`); an ONNX model leaks these two short strings once per load.
    Box::leak(s.into_boxed_str())
}

/// Loads an ONNX classifier with the default [`LoadOptions`]; `settings` override the
/// sidecar and the defaults.
pub fn load_onnx(path: &Path, settings: &Preprocessing) -> Result<GraphModel> {
    load_onnx_with(path, settings, LoadOptions::default())
}

/// [`load_onnx`] in the precision and on the path `options` choose.
pub fn load_onnx_with(
    path: &Path,
    settings: &Preprocessing,
    options: LoadOptions,
) -> Result<GraphModel> {
    let imported = crate::onnx::import(path)?;
    let side = Preprocessing::sidecar(path)?;
    let p = settings.or(&side.map(|(_, p)| p).unwrap_or_default());
    let bad = |m: String| Error::Invalid(format!("{}: {m}", path.display()));
    let [_, c, h, w] = imported.input_dims;
    if c.is_some_and(|c| c != 3) {
        return Err(bad("the input must have 3 (RGB) channels".into()));
    }
    let declared = match (h, w) {
        (Some(h), Some(w)) if h != w => {
            return Err(bad(format!(
                "the input is {h}x{w}; netlens feeds square images"
            )))
        }
        (Some(h), _) | (_, Some(h)) => Some(h as u32),
        _ => None,
    };
    let size = match (declared, p.input_size) {
        (Some(d), Some(s)) if d != s => {
            return Err(bad(format!(
                "the file fixes the input size to {d}, but {s} was asked for"
            )))
        }
        (Some(d), _) => d,
        (None, Some(s)) => s,
        (None, None) => 224,
    };
    if !(16..=1024).contains(&size) {
        return Err(bad(format!("input size {size} is outside 16..=1024")));
    }
    let resize = p
        .resize
        .unwrap_or(((size as f64) * 256.0 / 224.0).round() as u32);
    if resize < size || resize > 4096 {
        return Err(bad(format!(
            "resize {resize} must be between the input size {size} and 4096"
        )));
    }
    let scale = p.pixel_scale.unwrap_or(255.0);
    let mean = p.mean.unwrap_or([0.485, 0.456, 0.406]);
    let std = p.std.unwrap_or([0.229, 0.224, 0.225]);
    let finite = |v: f32| v.is_finite();
    let valid = finite(scale)
        && scale > 0.0
        && mean.iter().all(|&m| finite(m))
        && std.iter().all(|&s| finite(s) && s > 0.0);
    if !valid {
        return Err(bad(
            "pixel_scale and std must be positive and mean finite".into()
        ));
    }
    let normalization = Normalization {
        mean: mean.map(|m| m * scale),
        std: std.map(|s| s * scale),
    };
    let mut summary = format!(
        "ONNX file (opset {}, {}), {} px",
        imported.opset,
        if imported.producer.is_empty() {
            "unknown producer"
        } else {
            &imported.producer
        },
        size
    );
    if imported.ends_in_softmax {
        summary.push_str("; its final Softmax is left out: methods use the logits before it");
    }
    let spec = ModelSpec {
        name: leak(path.display().to_string()),
        arch: Arch::Onnx,
        input_size: size,
        resize,
        normalization,
        weights: WeightSource::InModelFile,
        summary: leak(summary),
    };
    let left_out = imported.ends_in_softmax;
    let model =
        GraphModel::with_options(spec, imported.graph, None, options).map_err(|e| match e {
            Error::Graph(m) => Error::Onnx {
                path: path.to_path_buf(),
                reason: m,
            },
            e => e,
        })?;
    Ok(model.with_softmax_left_out(left_out))
}

/// Loads `name`: a zoo model (weights from `weights`, the cache or a fetch) or, for a path
/// ending in `.onnx` (or containing a `/`), an ONNX file with `settings`; with the default
/// [`LoadOptions`].
pub fn open(
    name: &str,
    weights: Option<&Path>,
    settings: &Preprocessing,
    status: &mut dyn FnMut(&str),
) -> Result<Box<dyn Classifier>> {
    open_with(name, weights, settings, LoadOptions::default(), status)
}

/// [`open`] in the precision and on the path `options` choose.
pub fn open_with(
    name: &str,
    weights: Option<&Path>,
    settings: &Preprocessing,
    options: LoadOptions,
    status: &mut dyn FnMut(&str),
) -> Result<Box<dyn Classifier>> {
    if is_onnx(name) {
        if weights.is_some() {
            return Err(Error::Invalid(format!(
                "{name}: an ONNX file holds its own weights; --weights is for zoo models"
            )));
        }
        status("importing");
        return Ok(Box::new(load_onnx_with(
            Path::new(name),
            settings,
            options,
        )?));
    }
    if !settings.is_empty() {
        return Err(Error::Invalid(format!(
            "{name} is a zoo model with fixed preprocessing; --input-size, --resize, --mean, \
             --std and --pixel-scale are for ONNX files"
        )));
    }
    super::load_with(spec(name)?, weights, options, status)
}
