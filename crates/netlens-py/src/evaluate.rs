//! `_core.evaluate`: `netlens evaluate` for Python, the library's [`netlens::evaluate::run`]
//! with the CLI's defaults; options are the CLI's flags with `_` for `-`. Gives back plain
//! Python values: the rows and means of `--json` as dicts (NaN as None), the curves and the
//! randomization tests' maps as little-endian bytes with their shapes, and the CSV texts.

use crate::{invalid, py_err, ImageIn, PyModel};
use netlens::evaluate::{
    boxes_beside, run, step_name, unique, Config, EvalMethod, Evaluation, Image, Network, Progress,
};
use netlens::metrics::deletion_insertion::Fill;
use netlens::metrics::pointing::GroundTruth;
use netlens::metrics::randomization::open_graph_model;
use netlens::metrics::Metric;
use netlens::Classifier;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyList};
use std::path::PathBuf;

/// Each of `names` (repeats left out, as the CLI's lists) by `parse`.
fn parse_all<T>(names: &[String], parse: fn(&str) -> netlens::Result<T>) -> PyResult<Vec<T>> {
    unique(names.iter().map(String::as_str))
        .iter()
        .map(|n| parse(n))
        .collect::<netlens::Result<_>>()
        .map_err(py_err)
}

/// The configuration from the method and metric names and the keyword options.
fn config(
    methods: Option<Vec<String>>,
    metrics: Option<Vec<String>>,
    options: Option<&Bound<'_, PyDict>>,
) -> PyResult<Config> {
    let mut c = Config::default();
    if let Some(m) = methods {
        c.methods = parse_all(&m, EvalMethod::parse)?;
    }
    if let Some(m) = metrics {
        c.metrics = parse_all(&m, Metric::parse)?;
    }
    if let Some(o) = options {
        for (k, v) in o.iter() {
            let key: String = k.extract()?;
            match key.as_str() {
                "step" => c.step = v.extract()?,
                "deletion_baseline" => {
                    c.deletion_baseline = Fill::parse(&v.extract::<String>()?).map_err(py_err)?
                }
                "insertion_baseline" => {
                    c.insertion_baseline = Fill::parse(&v.extract::<String>()?).map_err(py_err)?
                }
                "road_percentages" => c.road_percentages = v.extract()?,
                "road_noise" => c.road_noise = v.extract()?,
                "infidelity_samples" => c.infidelity_samples = v.extract()?,
                "infidelity_sigma" => c.infidelity_sigma = v.extract()?,
                "sensitivity_samples" => c.sensitivity_samples = v.extract()?,
                "sensitivity_radius" => c.sensitivity_radius = v.extract()?,
                "pointing_tolerance" => c.pointing_tolerance = v.extract()?,
                "samples" => c.samples = v.extract()?,
                "ig_steps" => c.ig_steps = v.extract()?,
                "rise_masks" => c.rise_masks = v.extract()?,
                "occlusion_stride" => c.occlusion_stride = v.extract()?,
                "seed" => c.seed = v.extract()?,
                "batch_size" => c.batch_size = v.extract()?,
                other => {
                    return Err(invalid(format!(
                        "unknown evaluate option '{other}'; known: step, deletion_baseline, \
                         insertion_baseline, road_percentages, road_noise, infidelity_samples, \
                         infidelity_sigma, sensitivity_samples, sensitivity_radius, \
                         pointing_tolerance, samples, ig_steps, rise_masks, occlusion_stride, \
                         seed, batch_size (the flags of `netlens evaluate`)"
                    )))
                }
            }
        }
    }
    c.attributions().map_err(py_err)?;
    c.check().map_err(py_err)?;
    Ok(c)
}

/// Progress reported to a Python object with `stage(what, total)`, `message(what)`,
/// `update(k)` and `done()` (the package's `_EvalProgress`); a failing call is printed, not
/// raised (the computation goes on).
struct PyProgress(Option<Py<PyAny>>);

impl PyProgress {
    fn call(&self, f: impl FnOnce(Python<'_>, &Py<PyAny>) -> PyResult<Py<PyAny>>) {
        if let Some(p) = &self.0 {
            Python::attach(|py| {
                if let Err(e) = f(py, p) {
                    e.print(py);
                }
            });
        }
    }
}

impl Progress for PyProgress {
    fn stage(&self, what: &str, total: usize) {
        self.call(|py, p| p.call_method1(py, "stage", (what, total)));
    }
    fn message(&self, what: &str) {
        self.call(|py, p| p.call_method1(py, "message", (what,)));
    }
    fn tick(&self, k: usize) {
        self.call(|py, p| p.call_method1(py, "update", (k,)));
    }
    fn done(&self) {
        self.call(|py, p| p.call_method0(py, "done"));
    }
}

/// f64 values as little-endian bytes (numpy's `<f8`).
fn f64_bytes<'py>(py: Python<'py>, v: impl Iterator<Item = f64>) -> Bound<'py, PyBytes> {
    let b: Vec<u8> = v.flat_map(|x| x.to_le_bytes()).collect();
    PyBytes::new(py, &b)
}

/// A value for Python: None for NaN (the JSON's null).
fn value(v: f64) -> Option<f64> {
    v.is_finite().then_some(v)
}

/// The evaluation as plain Python values.
fn to_python<'py>(py: Python<'py>, e: &Evaluation) -> PyResult<Bound<'py, PyDict>> {
    let row = |image: Option<&str>, method: &str, metric: Metric, v: f64| {
        let d = PyDict::new(py);
        d.set_item("image", image)?;
        d.set_item("model", &e.model)?;
        d.set_item("method", method)?;
        d.set_item("metric", metric.name())?;
        d.set_item("value", value(v))?;
        Ok::<_, PyErr>(d)
    };
    let rows = PyList::empty(py);
    for r in &e.rows {
        rows.append(row(Some(&r.image), &r.method, r.metric, r.value)?)?;
    }
    let means = PyList::empty(py);
    for (m, met, v) in e.means.all() {
        means.append(row(None, m, met, v)?)?;
    }
    let curves = PyList::empty(py);
    for c in &e.curves {
        let d = PyDict::new(py);
        d.set_item("method", &c.method)?;
        d.set_item("metric", c.metric.name())?;
        d.set_item("x", f64_bytes(py, c.x.iter().copied()))?;
        d.set_item("ys", f64_bytes(py, c.ys.iter().flatten().copied()))?;
        d.set_item("images", c.ys.len())?;
        curves.append(d)?;
    }
    let out = PyDict::new(py);
    out.set_item("model", &e.model)?;
    out.set_item("images", &e.images)?;
    out.set_item("methods", e.means.methods())?;
    out.set_item(
        "metrics",
        e.means
            .metrics()
            .iter()
            .map(|m| m.name())
            .collect::<Vec<_>>(),
    )?;
    out.set_item("rows", rows)?;
    out.set_item("means", means)?;
    out.set_item("curves", curves)?;
    out.set_item("csv", e.metrics_csv())?;
    out.set_item("notes", &e.notes)?;
    let tests = match &e.randomization {
        None => None,
        Some(t) => {
            let d = PyDict::new(py);
            d.set_item("image", &t.image)?;
            d.set_item("layers", t.layers)?;
            let steps: Vec<(&str, usize)> = t.steps.iter().map(|s| step_name(*s)).collect();
            d.set_item("steps", steps)?;
            let results = PyList::empty(py);
            for r in &t.results {
                let x = PyDict::new(py);
                let (mode, k) = step_name(r.step);
                x.set_item("method", &r.method)?;
                x.set_item("mode", mode)?;
                x.set_item("layers", k)?;
                x.set_item("spearman_abs", value(r.spearman_abs))?;
                x.set_item("spearman_signed", value(r.spearman_signed))?;
                x.set_item("ssim", value(r.ssim))?;
                x.set_item("hog", value(r.hog))?;
                results.append(x)?;
            }
            d.set_item("results", results)?;
            d.set_item("csv", t.csv())?;
            let first = t.cascade_maps.first().and_then(|m| m.first());
            let (h, w) = first.map_or((0, 0), |m| (m.height, m.width));
            let maps: Vec<u8> = t
                .cascade_maps
                .iter()
                .flatten()
                .flat_map(|m| m.values.iter().flat_map(|v| v.to_le_bytes()))
                .collect();
            d.set_item("cascade_maps", PyBytes::new(py, &maps))?;
            let steps_n = t.cascade_maps.first().map_or(0, Vec::len);
            d.set_item("cascade_shape", (t.cascade_maps.len(), steps_n, h, w))?;
            Some(d)
        }
    };
    out.set_item("randomization", tests)?;
    Ok(out)
}

/// `netlens evaluate` on `images` with `model`: see the package's `netlens.evaluate`.
/// `names` name the images in the results; object boxes come from `boxes_file`, else
/// `boxes_json` (the text of one), else the boxes.json files beside the images given as paths.
#[pyfunction]
#[pyo3(signature = (model, images, names, methods=None, metrics=None, options=None, boxes_file=None, boxes_json=None, progress=None))]
#[allow(clippy::too_many_arguments)] // a Python keyword signature
pub(crate) fn evaluate<'py>(
    py: Python<'py>,
    model: &PyModel,
    images: Vec<ImageIn>,
    names: Vec<String>,
    methods: Option<Vec<String>>,
    metrics: Option<Vec<String>>,
    options: Option<Bound<'py, PyDict>>,
    boxes_file: Option<PathBuf>,
    boxes_json: Option<String>,
    progress: Option<Py<PyAny>>,
) -> PyResult<Bound<'py, PyDict>> {
    if images.is_empty() {
        return Err(invalid("no image given".into()));
    }
    if names.len() != images.len() {
        return Err(invalid(format!(
            "{} names for {} images",
            names.len(),
            images.len()
        )));
    }
    let config = config(methods, metrics, options.as_ref())?;
    let truth = if !config.needs_boxes() {
        GroundTruth::default()
    } else if let Some(f) = &boxes_file {
        GroundTruth::load(f).map_err(py_err)?
    } else if let Some(text) = &boxes_json {
        GroundTruth::parse(text, "boxes").map_err(py_err)?
    } else {
        let paths: Vec<PathBuf> = images
            .iter()
            .filter_map(|i| match i {
                ImageIn::Path(p) => Some(p.clone()),
                ImageIn::Pixels(..) => None,
            })
            .collect();
        boxes_beside(&paths).map_err(py_err)?
    };
    let progress = PyProgress(progress);
    let result = model.compute(py, || -> netlens::Result<Evaluation> {
        let graph = if config.needs_graph() {
            let (name, weights, prep) = &model.source;
            Some(open_graph_model(
                name,
                weights.as_deref(),
                prep,
                &mut |_| {},
            )?)
        } else {
            None
        };
        let network = match &graph {
            Some(g) => Network::Graph(g),
            None => Network::Any(model.model()),
        };
        let geometry = match network {
            Network::Graph(g) => g.spec().geometry(),
            Network::Any(m) => m.spec().geometry(),
        };
        let mut fitted = Vec::with_capacity(images.len());
        for (img, name) in images.iter().zip(&names) {
            let (input, placement) =
                netlens::imaging::fit_with(&img.decode()?, geometry.resize, geometry.crop);
            let boxes = match img {
                ImageIn::Path(p) => truth.of(p),
                ImageIn::Pixels(..) => truth.of(std::path::Path::new(name)),
            };
            fitted.push(Image {
                name: name.clone(),
                input,
                placement,
                boxes: boxes.map(<[_]>::to_vec),
            });
        }
        run(network, &model.label, &fitted, &config, &progress)
    });
    let result = result.map_err(py_err)?;
    to_python(py, &result)
}

/// The names `evaluate` takes, in their default order: (methods, metrics).
#[pyfunction]
pub(crate) fn evaluate_names() -> (Vec<String>, Vec<String>) {
    (
        EvalMethod::defaults()
            .iter()
            .map(|m| m.name().to_string())
            .collect(),
        Metric::ALL.iter().map(|m| m.name().to_string()).collect(),
    )
}
