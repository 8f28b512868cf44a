//! Saliency options from Python keywords: the CLI's method flags with `_` for `-`, turned
//! into the library's [`Settings`]; an unknown key is refused with the list of known ones.

use crate::{invalid, py_err};
use netlens::saliency::{Baseline, Method, Settings};
use pyo3::prelude::*;
use pyo3::types::PyDict;

/// The library's saliency settings from Python keyword options (the CLI's flags, with `_`
/// for `-`); an unknown key is refused with the list of known ones.
pub(crate) fn settings(options: Option<&Bound<'_, PyDict>>) -> PyResult<Settings> {
    let mut s = Settings::default();
    let (mut baseline, mut blur) = (None::<String>, Baseline::DEFAULT_BLUR_SIGMA);
    if let Some(o) = options {
        for (k, v) in o.iter() {
            let key: String = k.extract()?;
            match key.as_str() {
                "samples" => s.smoothgrad.samples = v.extract()?,
                "noise" => s.smoothgrad.noise = v.extract()?,
                "inner" => {
                    s.smoothgrad.inner = Method::parse(&v.extract::<String>()?).map_err(py_err)?
                }
                "steps" => s.integrated_gradients.steps = v.extract()?,
                "baseline" => baseline = Some(v.extract()?),
                "blur_sigma" => blur = v.extract()?,
                "layer" => s.grad_cam.layer = v.extract()?,
                "window" => s.occlusion.window = v.extract()?,
                "stride" => s.occlusion.stride = v.extract()?,
                "fill" => s.occlusion.fill = v.extract()?,
                "masks" => s.rise.masks = v.extract()?,
                "cell" => s.rise.cell = v.extract()?,
                "p" => s.rise.p = v.extract()?,
                "seed" => s.seed = v.extract()?,
                other => {
                    return Err(invalid(format!(
                        "unknown saliency option '{other}'; known: samples, noise, inner, steps, \
                         baseline, blur_sigma, layer (smoothgrad, integrated-gradients, \
                         grad-cam), window, stride, fill (occlusion), masks, cell, p (rise), seed"
                    )))
                }
            }
        }
    }
    let name = baseline.unwrap_or_else(|| s.integrated_gradients.baseline.name().to_string());
    s.integrated_gradients.baseline = Baseline::parse(&name, blur).map_err(py_err)?;
    Ok(s)
}
