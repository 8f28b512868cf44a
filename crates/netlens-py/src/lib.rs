//! `netlens._core`: the native half of the netlens Python package (PyO3, abi3).
//!
//! About 690 lines: one thin binding per library entry point (the `Model` methods — classify,
//! saliency, evaluate, ... — and the module's functions) with its argument conversions, kept
//! together so the Python API reads as one list beside its stub `_core.pyi`.
//!
//! A thin layer over the `netlens` library that runs the very code the CLI runs, with the same
//! defaults and seeds, so that its numbers and files are the CLI's bytes. It trades only in
//! plain Python values: images come in as file paths or `(rgb_bytes, width, height)` tuples
//! (the Python half turns numpy arrays and PIL images into those), arrays go out as
//! little-endian `bytes` with a shape, which the Python half wraps as numpy arrays (so the
//! module needs no numpy at build time and one wheel serves every Python ≥ 3.9).
//!
//! The GIL is released while a network runs; a progress callback, when given, is called with
//! the GIL held again. Library errors become Python exceptions with the library's message:
//! `FileNotFoundError` for a missing file, `FileExistsError` for an output that exists,
//! `ValueError` for what a user got wrong (an unknown
//! class, model or method, a bad image, a setting out of range), `OSError` for other I/O and
//! `RuntimeError` for the rest.

use image::RgbImage;
use netlens::adversarial::pgd::{Norm, Pgd};
use netlens::adversarial::{attack, Attack, AttackMethod, Cs231nFooling, Goal};
use netlens::batch::ImageBatch;
use netlens::files::Existing;
use netlens::imaging::{self, Placement};
use netlens::models::{self, Classifier, Preprocessing};
use netlens::saliency::{self, Method, Run, Targets};
use netlens::saliency_files::{self, SaliencyFiles};
use netlens::synthesis::{self, Options, Recipe};
use netlens::{labels, Error};
use pyo3::exceptions::{
    PyFileExistsError, PyFileNotFoundError, PyOSError, PyRuntimeError, PyValueError,
};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyList};
use std::path::{Path, PathBuf};

mod evaluate;
mod options;
use options::settings;

/// Images per pass of the classification that picks each image's top-1 class (the CLI's).
const CLASSIFY_BATCH: usize = 16;

/// A library error as the Python exception that fits it, with the library's message.
fn py_err(e: Error) -> PyErr {
    let msg = e.to_string();
    match &e {
        Error::Io { source, .. } if source.kind() == std::io::ErrorKind::NotFound => {
            PyFileNotFoundError::new_err(msg)
        }
        Error::Write { source, .. } if source.kind() == std::io::ErrorKind::AlreadyExists => {
            PyFileExistsError::new_err(msg)
        }
        Error::Io { .. } | Error::Write { .. } => PyOSError::new_err(msg),
        Error::Class(_)
        | Error::UnknownModel { .. }
        | Error::Invalid(_)
        | Error::BadImage { .. }
        | Error::ImageSize { .. }
        | Error::Onnx { .. }
        | Error::Weights(_) => PyValueError::new_err(msg),
        Error::Fetch(_) | Error::Graph(_) => PyRuntimeError::new_err(msg),
    }
}

fn invalid(msg: String) -> PyErr {
    PyValueError::new_err(msg)
}

/// An image as Python hands it over: a file, or decoded 8-bit RGB pixels (row-major, HWC).
#[derive(FromPyObject)]
enum ImageIn {
    Path(PathBuf),
    Pixels(Vec<u8>, u32, u32),
}

impl ImageIn {
    /// The decoded image (a file decoded as the CLI decodes it).
    fn decode(&self) -> netlens::Result<RgbImage> {
        match self {
            ImageIn::Path(p) => imaging::load_rgb(p),
            ImageIn::Pixels(px, w, h) => {
                // The limits a decoded file is held to.
                let size_err = |reason: String| Error::ImageSize {
                    path: PathBuf::from("image array"),
                    reason,
                };
                let min = imaging::decode::MIN_SIDE;
                if *w < min || *h < min {
                    return Err(size_err(format!(
                        "image is {w}x{h}; netlens needs at least {min} pixels on each side"
                    )));
                }
                if u64::from(*w) * u64::from(*h) > imaging::decode::MAX_PIXELS {
                    return Err(size_err(format!(
                        "image is {w}x{h}; the limit is {} megapixels",
                        imaging::decode::MAX_PIXELS / 1_000_000
                    )));
                }
                RgbImage::from_raw(*w, *h, px.clone()).ok_or_else(|| {
                    Error::Invalid(format!(
                        "an image of {w}×{h} RGB pixels needs {} bytes, got {}",
                        3 * (*w as usize) * (*h as usize),
                        px.len()
                    ))
                })
            }
        }
    }
}

/// A progress callback from Python, called with the number of steps just done.
struct Progress(Option<Py<PyAny>>);

impl Progress {
    fn tick(&self, k: usize) {
        if let Some(cb) = &self.0 {
            // A failing callback must not stop the computation; Python prints its error.
            Python::attach(|py| {
                if let Err(e) = cb.call1(py, (k,)) {
                    e.print(py);
                }
            });
        }
    }
}

/// f32 values as little-endian bytes (numpy's `<f4`).
fn f32_bytes<'py>(py: Python<'py>, v: &[f32]) -> Bound<'py, PyBytes> {
    let b: Vec<u8> = v.iter().flat_map(|x| x.to_le_bytes()).collect();
    PyBytes::new(py, &b)
}

/// A loaded network: a zoo model (weights from the cache, fetched if missing) or an ONNX file.
#[pyclass(frozen, module = "netlens._core", name = "Model")]
struct PyModel {
    inner: Box<dyn Classifier>,
    /// Its own compute threads when `threads` was given (else rayon's global pool, all cores,
    /// as the CLI without --threads). The bytes of a result depend on the number of threads.
    pool: Option<rayon::ThreadPool>,
    /// What it was opened from (name, weights, preprocessing), to open it again as a graph
    /// network for the randomization metric.
    source: (String, Option<PathBuf>, Preprocessing),
    /// Its name in evaluation results: the zoo's canonical name, or the ONNX path as given
    /// (the CLI's).
    label: String,
}

impl PyModel {
    fn model(&self) -> &dyn Classifier {
        self.inner.as_ref()
    }

    /// Runs `f` without the GIL, on this model's threads.
    fn compute<T: Send>(&self, py: Python<'_>, f: impl FnOnce() -> T + Send) -> T {
        py.detach(|| match &self.pool {
            Some(pool) => pool.install(f),
            None => f(),
        })
    }

    /// Decodes and fits `images` to the model's input (the CLI's `load_images`).
    fn fit(&self, images: &[ImageIn]) -> netlens::Result<Vec<(RgbImage, Placement)>> {
        let g = self.model().spec().geometry();
        images
            .iter()
            .map(|i| Ok(imaging::fit_with(&i.decode()?, g.resize, g.crop)))
            .collect()
    }

    fn check_class(&self, c: usize) -> PyResult<usize> {
        let n = self.model().classes();
        if c >= n {
            return Err(invalid(format!(
                "class index {c} is out of range: {} has classes 0..{}",
                self.model().spec().name,
                n.saturating_sub(1)
            )));
        }
        Ok(c)
    }
}

#[pymethods]
impl PyModel {
    /// Loads `name` (a zoo name or an ONNX path) with optional preprocessing overrides (ONNX
    /// files only) and a weights file (zoo models only).
    #[new]
    #[pyo3(signature = (name, weights=None, input_size=None, resize=None, mean=None, std=None, pixel_scale=None, threads=None))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        py: Python<'_>,
        name: &str,
        weights: Option<PathBuf>,
        input_size: Option<u32>,
        resize: Option<u32>,
        mean: Option<[f32; 3]>,
        std: Option<[f32; 3]>,
        pixel_scale: Option<f32>,
        threads: Option<usize>,
    ) -> PyResult<Self> {
        let pool = match threads {
            None => None,
            Some(n) if (1..=256).contains(&n) => Some(
                rayon::ThreadPoolBuilder::new()
                    .num_threads(n)
                    .build()
                    .map_err(|e| {
                        PyRuntimeError::new_err(format!("cannot start {n} threads: {e}"))
                    })?,
            ),
            Some(n) => return Err(invalid(format!("threads {n} is out of range 1..=256"))),
        };
        let settings = Preprocessing {
            input_size,
            resize,
            mean,
            std,
            pixel_scale,
        };
        if models::onnx_model::is_onnx(name) && !Path::new(name).is_file() {
            return Err(PyFileNotFoundError::new_err(format!(
                "{name}: no such ONNX file (a model name with a / or ending in .onnx is read as \
                 a file)"
            )));
        }
        let inner = py
            .detach(|| models::open(name, weights.as_deref(), &settings, &mut |_| {}))
            .map_err(py_err)?;
        let label = if models::onnx_model::is_onnx(name) {
            name.to_string()
        } else {
            inner.spec().name.to_string()
        };
        Ok(PyModel {
            inner,
            pool,
            source: (name.to_string(), weights, settings),
            label,
        })
    }

    /// The model's name (the zoo name, or the ONNX file's).
    #[getter]
    fn name(&self) -> String {
        self.model().spec().name.to_string()
    }

    /// Side of the square input the network sees.
    #[getter]
    fn input_size(&self) -> u32 {
        self.model().spec().input_size
    }

    /// A photo's short side is resized to this before the centre crop.
    #[getter]
    fn resize(&self) -> u32 {
        self.model().spec().resize
    }

    /// Number of classes (the logits' width).
    #[getter]
    fn classes(&self) -> usize {
        self.model().classes()
    }

    /// Names of the layers Grad-CAM can explain from, in network order.
    fn layers(&self) -> Vec<String> {
        self.model().layers()
    }

    /// The layer Grad-CAM uses by default (the last convolutional block).
    fn cam_layer(&self) -> String {
        self.model().cam_layer()
    }

    /// The images as the network sees them: a list of (rgb_bytes, width, height) at the
    /// input size.
    fn fit_images<'py>(
        &self,
        py: Python<'py>,
        images: Vec<ImageIn>,
    ) -> PyResult<Vec<(Bound<'py, PyBytes>, u32, u32)>> {
        let fitted = self.compute(py, || self.fit(&images)).map_err(py_err)?;
        Ok(fitted
            .iter()
            .map(|(i, _)| (PyBytes::new(py, i.as_raw()), i.width(), i.height()))
            .collect())
    }

    /// Top-`top` classes of each image: a list of dicts {top: [(class, prob)], logits: bytes}.
    #[pyo3(signature = (images, top=5, batch_size=8, progress=None))]
    fn classify<'py>(
        &self,
        py: Python<'py>,
        images: Vec<ImageIn>,
        top: usize,
        batch_size: usize,
        progress: Option<Py<PyAny>>,
    ) -> PyResult<Bound<'py, PyList>> {
        if top == 0 || batch_size == 0 {
            return Err(invalid("top and batch_size must be at least 1".into()));
        }
        let progress = Progress(progress);
        let top = top.min(self.model().classes());
        let preds = self.compute(py, || -> netlens::Result<_> {
            let mut out = Vec::with_capacity(images.len());
            for chunk in images.chunks(batch_size) {
                let inputs: Vec<RgbImage> = self.fit(chunk)?.into_iter().map(|(i, _)| i).collect();
                out.extend(netlens::classify::classify(
                    self.model(),
                    &inputs,
                    top,
                    batch_size,
                ));
                progress.tick(chunk.len());
            }
            Ok(out)
        });
        let list = PyList::empty(py);
        for p in preds.map_err(py_err)? {
            let d = PyDict::new(py);
            d.set_item("top", p.top)?;
            d.set_item("logits", f32_bytes(py, &p.logits))?;
            list.append(d)?;
        }
        Ok(list)
    }

    /// Saliency maps, exactly as `netlens saliency` computes them: each image's top-1 class
    /// (classified 16 at a time) unless `target` is given, then `method` with `options`.
    /// Returns a list of dicts {map: bytes (f32, H×W), input: bytes (RGB the network saw),
    /// width, height, target, top1, prob, peak, delta}.
    #[pyo3(signature = (images, method="vanilla", target=None, batch_size=8, options=None, progress=None))]
    #[allow(clippy::too_many_arguments)] // a Python keyword signature
    fn saliency<'py>(
        &self,
        py: Python<'py>,
        images: Vec<ImageIn>,
        method: &str,
        target: Option<usize>,
        batch_size: usize,
        options: Option<Bound<'py, PyDict>>,
        progress: Option<Py<PyAny>>,
    ) -> PyResult<Bound<'py, PyList>> {
        if images.is_empty() {
            return Err(invalid("no image given".into()));
        }
        if batch_size == 0 || batch_size > 256 {
            return Err(invalid(format!(
                "batch_size {batch_size} is out of range 1..=256"
            )));
        }
        let m = Method::parse(method).map_err(py_err)?;
        let settings = settings(options.as_ref())?;
        if let Some(l) = &settings.grad_cam.layer {
            if !m.has_layer(&settings) {
                return Err(invalid(format!(
                    "layer applies to method grad-cam (or smoothgrad with inner grad-cam), not \
                     to {}",
                    m.name()
                )));
            }
            if !self.model().layers().contains(l) {
                return Err(invalid(format!(
                    "layer: {} has no tappable layer '{l}'; Model.layers() lists the {} it has",
                    self.model().spec().name,
                    self.model().layers().len()
                )));
            }
        }
        let target = target.map(|t| self.check_class(t)).transpose()?;
        // Checked here, built again inside the computation (an Attribution is not Sync).
        let name = saliency::build(m, &settings).map_err(py_err)?.name();
        let progress = Progress(progress);
        let results = self.compute(py, || -> netlens::Result<_> {
            let method = saliency::build(m, &settings)?;
            // The CLI's chunks: whole batches of the attribution and of the classification
            // (the bytes of one call on every image; seeded noise is drawn per image).
            let chunk = netlens::streaming::chunk_size(&[batch_size, CLASSIFY_BATCH]);
            let mut out = Vec::with_capacity(images.len());
            for chunk in images.chunks(chunk) {
                let fitted = self.fit(chunk)?;
                let inputs: Vec<RgbImage> = fitted.iter().map(|(i, _)| i.clone()).collect();
                let preds = netlens::classify::classify(self.model(), &inputs, 1, CLASSIFY_BATCH);
                let targets = match target {
                    Some(t) => Targets::All(t),
                    None => Targets::PerImage(preds.iter().map(|p| p.class()).collect()),
                };
                let x = ImageBatch::from_images(&inputs, &self.model().spec().normalization)?;
                let mut tick = |k: usize| progress.tick(k);
                let mut run = Run::new(batch_size, &mut tick);
                let maps = method.attribute(self.model(), x.view(), &targets, &mut run)?;
                for ((m, p), (input, placement)) in maps.into_iter().zip(preds).zip(fitted) {
                    let peak = saliency::metrics::peak(&m, &placement);
                    out.push((m, p, (peak.0.round(), peak.1.round()), input));
                }
            }
            Ok(out)
        });
        let list = PyList::empty(py);
        for (m, p, peak, input) in results.map_err(py_err)? {
            let d = PyDict::new(py);
            d.set_item("input", PyBytes::new(py, input.as_raw()))?;
            d.set_item("map", f32_bytes(py, &m.values))?;
            d.set_item("width", m.width)?;
            d.set_item("height", m.height)?;
            d.set_item("target", m.target)?;
            d.set_item("prob", p.probs[m.target])?;
            d.set_item("top1", p.class())?;
            d.set_item("peak", peak)?;
            d.set_item("signed", m.signed)?;
            d.set_item("delta", m.delta)?;
            d.set_item("method", &name)?;
            list.append(d)?;
        }
        Ok(list)
    }

    /// Writes one image's `<stem>.npy`, `<stem>.png` and `<stem>.overlay.png` into `dir`, the
    /// bytes `netlens saliency` writes. `input` is the image the network saw (input size).
    #[pyo3(signature = (map, width, height, input, dir, stem, overwrite=false, skip_existing=false, signed=false))]
    #[allow(clippy::too_many_arguments)]
    fn write_saliency(
        &self,
        py: Python<'_>,
        map: Vec<u8>,
        width: usize,
        height: usize,
        input: Vec<u8>,
        dir: PathBuf,
        stem: &str,
        overwrite: bool,
        skip_existing: bool,
        signed: bool,
    ) -> PyResult<Vec<PathBuf>> {
        let n = width * height;
        if map.len() != 4 * n || input.len() != 3 * n {
            return Err(invalid(format!(
                "a {width}×{height} map needs {} bytes of float32 and {} of RGB input; got {} and \
                 {}",
                4 * n,
                3 * n,
                map.len(),
                input.len()
            )));
        }
        let values: Vec<f32> = map
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect();
        let m = saliency::Map {
            width,
            height,
            values,
            target: 0,
            signed,
            delta: None,
        };
        let Some(img) = RgbImage::from_raw(width as u32, height as u32, input) else {
            return Err(invalid("input image of the wrong size".into()));
        };
        let files = SaliencyFiles::new(&dir, stem);
        let existing = if overwrite {
            Existing::Replace
        } else {
            Existing::Refuse
        };
        self.compute(py, || {
            saliency_files::write(&m, &img, &files, existing, skip_existing)
        })
        .map_err(py_err)?;
        Ok(files.all().iter().map(|p| p.to_path_buf()).collect())
    }

    /// Fooling images, as `netlens fool` makes them. Returns a list of dicts with the fooled
    /// image (RGB bytes at the input size) and the figures of the CLI's JSON line.
    #[pyo3(signature = (images, target=None, method="cs231n", epsilon=None, steps=None, step_size=None, norm="linf", random_start=true, full_steps=false, learning_rate=None, max_iterations=None, seed=0, batch_size=8, progress=None))]
    #[allow(clippy::too_many_arguments)]
    fn fool<'py>(
        &self,
        py: Python<'py>,
        images: Vec<ImageIn>,
        target: Option<usize>,
        method: &str,
        epsilon: Option<f32>,
        steps: Option<usize>,
        step_size: Option<f32>,
        norm: &str,
        random_start: bool,
        full_steps: bool,
        learning_rate: Option<f32>,
        max_iterations: Option<usize>,
        seed: u64,
        batch_size: usize,
        progress: Option<Py<PyAny>>,
    ) -> PyResult<Bound<'py, PyList>> {
        if batch_size == 0 {
            return Err(invalid("batch_size must be at least 1".into()));
        }
        let norm = match norm {
            "linf" => Norm::Linf,
            "l2" => Norm::L2,
            other => return Err(invalid(format!("norm '{other}': give 'linf' or 'l2'"))),
        };
        let eps = epsilon.unwrap_or(if norm == Norm::Linf { 8.0 } else { 127.5 });
        let method = match method {
            "cs231n" => {
                let d = Cs231nFooling::default();
                AttackMethod::Cs231n(Cs231nFooling {
                    learning_rate: learning_rate.unwrap_or(d.learning_rate),
                    max_iterations: max_iterations.unwrap_or(d.max_iterations),
                })
            }
            "fgsm" => AttackMethod::Fgsm { epsilon: eps },
            "pgd" => AttackMethod::Pgd(Pgd {
                epsilon: eps,
                steps: steps.unwrap_or(10),
                step_size,
                norm,
                random_start,
                seed,
                full_steps,
            }),
            other => {
                return Err(invalid(format!(
                    "unknown attack method '{other}'; known: cs231n, fgsm, pgd"
                )))
            }
        };
        let target = target.map(|t| self.check_class(t)).transpose()?;
        let progress = Progress(progress);
        let fooled = self.compute(py, || -> netlens::Result<_> {
            let inputs: Vec<RgbImage> = self.fit(&images)?.into_iter().map(|(i, _)| i).collect();
            let config = Attack {
                method,
                goal: match target {
                    Some(t) => Goal::Targets(vec![t; inputs.len()]),
                    None => Goal::Untargeted,
                },
                batch: batch_size,
            };
            let mut last = 0usize;
            attack(self.model(), &inputs, &config, &mut |_, t| {
                if t.iteration > last {
                    progress.tick(t.iteration - last);
                }
                last = t.iteration;
            })
        });
        let list = PyList::empty(py);
        for f in fooled.map_err(py_err)? {
            let d = PyDict::new(py);
            d.set_item("image", PyBytes::new(py, f.image.as_raw()))?;
            d.set_item("width", f.image.width())?;
            d.set_item("height", f.image.height())?;
            d.set_item("original_class", f.original_class)?;
            d.set_item("original_prob", f.original_prob)?;
            d.set_item("target", (!f.untargeted).then_some(f.class))?;
            d.set_item("untargeted", f.untargeted)?;
            d.set_item("final_class", f.final_class)?;
            d.set_item("final_prob", f.final_prob)?;
            d.set_item("iterations", f.iterations)?;
            d.set_item("linf", f.distance.linf)?;
            d.set_item("l2", f.distance.l2)?;
            d.set_item("success", f.success)?;
            list.append(d)?;
        }
        Ok(list)
    }

    /// A class visualization, as `netlens visualize` makes it: `recipe` ("cs231n" or "lucid")
    /// with `settings` (the CLI's --set KEY=VALUE pairs), from `init` or from noise.
    #[pyo3(signature = (class_index, recipe="cs231n", seed=0, settings=None, init=None, progress=None))]
    #[allow(clippy::too_many_arguments)] // a Python keyword signature
    fn visualize<'py>(
        &self,
        py: Python<'py>,
        class_index: usize,
        recipe: &str,
        seed: u64,
        settings: Option<Vec<(String, String)>>,
        init: Option<ImageIn>,
        progress: Option<Py<PyAny>>,
    ) -> PyResult<Bound<'py, PyDict>> {
        let class = self.check_class(class_index)?;
        let mut r = Recipe::by_name(recipe).map_err(py_err)?;
        for (k, v) in settings.unwrap_or_default() {
            r.set(&k, &v).map_err(py_err)?;
        }
        let progress = Progress(progress);
        let v = self.compute(py, || -> netlens::Result<_> {
            let init = match &init {
                Some(i) => Some(self.fit(std::slice::from_ref(i))?.remove(0).0),
                None => None,
            };
            let options = Options {
                seed,
                init,
                snapshot_every: 0,
            };
            let mut last = 0usize;
            synthesis::visualize(self.model(), class, &r, &options, &mut |t| {
                if t.iteration > last {
                    progress.tick(t.iteration - last);
                }
                last = t.iteration;
            })
        });
        let v = v.map_err(py_err)?;
        let d = PyDict::new(py);
        d.set_item("image", PyBytes::new(py, v.image.as_raw()))?;
        d.set_item("width", v.image.width())?;
        d.set_item("height", v.image.height())?;
        d.set_item("class", v.class)?;
        d.set_item("prob", v.prob)?;
        d.set_item("start_prob", v.start_prob)?;
        d.set_item("iterations", v.iterations)?;
        d.set_item("recipe", r.name())?;
        Ok(d)
    }
}

/// The index of an ImageNet class named by `query` (an index, a name, a synonym or a WordNet
/// id), as the CLI resolves `--target`.
#[pyfunction]
fn imagenet_class(query: &str) -> PyResult<usize> {
    let q = query.trim();
    if let Ok(i) = q.parse::<usize>() {
        if i < labels::NUM_CLASSES {
            return Ok(i);
        }
    }
    labels::resolve(q).map_err(py_err)
}

/// The ImageNet name of class `index`.
#[pyfunction]
fn imagenet_label(index: usize) -> PyResult<String> {
    if index >= labels::NUM_CLASSES {
        return Err(invalid(format!(
            "class index {index} is out of range: ImageNet has classes 0..{}",
            labels::NUM_CLASSES - 1
        )));
    }
    Ok(labels::label(index).to_string())
}

/// Image passes (forward and backward of one image) `method` with `options` takes for `n`
/// images: the total a progress bar counts to.
#[pyfunction]
#[pyo3(signature = (method, n, options=None))]
fn saliency_passes(method: &str, n: usize, options: Option<Bound<'_, PyDict>>) -> PyResult<usize> {
    let m = Method::parse(method).map_err(py_err)?;
    let s = settings(options.as_ref())?;
    Ok(saliency::build(m, &s).map_err(py_err)?.passes(n))
}

/// Names of the zoo's models.
#[pyfunction]
fn zoo() -> Vec<String> {
    models::zoo().iter().map(|s| s.name.to_string()).collect()
}

/// Names of the saliency methods.
#[pyfunction]
fn methods() -> Vec<String> {
    Method::ALL
        .into_iter()
        .chain(Method::TRANSFORMER_ONLY)
        .map(|m| m.name().to_string())
        .collect()
}

#[pymodule]
fn _core(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PyModel>()?;
    m.add_function(wrap_pyfunction!(imagenet_class, m)?)?;
    m.add_function(wrap_pyfunction!(imagenet_label, m)?)?;
    m.add_function(wrap_pyfunction!(zoo, m)?)?;
    m.add_function(wrap_pyfunction!(methods, m)?)?;
    m.add_function(wrap_pyfunction!(saliency_passes, m)?)?;
    m.add_function(wrap_pyfunction!(evaluate::evaluate, m)?)?;
    m.add_function(wrap_pyfunction!(evaluate::evaluate_names, m)?)?;
    m.add("DEFAULT_MODEL", models::DEFAULT_MODEL)?;
    Ok(())
}
