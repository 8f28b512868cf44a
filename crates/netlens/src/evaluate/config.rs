//! What an evaluation runs: the methods (the library's and the two chance baselines), the
//! metrics and every setting of both, with the defaults `netlens evaluate` documents, checked
//! before any work.

use crate::error::{Error, Result};
use crate::metrics::deletion_insertion::{self as di, Fill};
use crate::metrics::infidelity::Infidelity;
use crate::metrics::max_sensitivity::Sensitivity;
use crate::metrics::pointing;
use crate::metrics::road::Road;
use crate::metrics::{CentreMap, Metric, RandomMap};
use crate::saliency::{self, Attribution, Method, Settings};

/// A method to evaluate: one of the library's, or a chance baseline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EvalMethod {
    /// A saliency method ([`Method`]).
    Saliency(Method),
    /// Uniform noise ([`RandomMap`]), seeded.
    Random,
    /// A Gaussian on the centre ([`CentreMap`]).
    Centre,
}

impl EvalMethod {
    /// Every method of the library that works on any CNN, then the baselines: the default.
    pub fn defaults() -> Vec<EvalMethod> {
        let mut v: Vec<EvalMethod> = Method::ALL.into_iter().map(EvalMethod::Saliency).collect();
        v.extend([EvalMethod::Random, EvalMethod::Centre]);
        v
    }

    /// Looks a method up by name (`centre` or `center`; a saliency method as
    /// [`Method::parse`]).
    pub fn parse(name: &str) -> Result<EvalMethod> {
        match name.trim().to_lowercase().as_str() {
            "random" => Ok(EvalMethod::Random),
            "centre" | "center" => Ok(EvalMethod::Centre),
            other => Method::parse(other)
                .map(EvalMethod::Saliency)
                .map_err(|e| Error::Invalid(format!("{e}, and the baselines random and centre"))),
        }
    }

    /// The method's name.
    pub fn name(&self) -> &'static str {
        match self {
            EvalMethod::Saliency(m) => m.name(),
            EvalMethod::Random => "random",
            EvalMethod::Centre => "centre",
        }
    }

    /// The attribution, with `s`'s settings (the seed of the random map too).
    pub fn build(&self, s: &Settings) -> Result<Box<dyn Attribution>> {
        match self {
            EvalMethod::Random => Ok(Box::new(RandomMap { seed: s.seed })),
            EvalMethod::Centre => Ok(Box::new(CentreMap)),
            EvalMethod::Saliency(m) => saliency::build(*m, s),
        }
    }
}

/// The items of a comma-separated list, trimmed, empty ones and repeats left out.
pub fn split_list(s: &str) -> Vec<String> {
    unique(s.split(','))
}

/// `items` trimmed, empty ones and repeats left out, in their order.
pub fn unique<'a>(items: impl IntoIterator<Item = &'a str>) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for p in items.into_iter().map(str::trim).filter(|p| !p.is_empty()) {
        if !out.iter().any(|o| o == p) {
            out.push(p.to_string());
        }
    }
    out
}

/// Everything an evaluation needs besides the model and the images. `Default` gives
/// `netlens evaluate`'s defaults.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// Methods, in the table's order.
    pub methods: Vec<EvalMethod>,
    /// Metrics to compute (the table's columns follow [`Metric::ALL`]'s order).
    pub metrics: Vec<Metric>,
    /// Deletion / insertion: pixels changed per step (the paper: 224 on 224×224 images).
    pub step: usize,
    /// Deletion: what removed pixels become (the paper: black).
    pub deletion_baseline: Fill,
    /// Insertion: the canvas pixels are put back onto (the paper: a blur of σ = 5 pixels).
    pub insertion_baseline: Fill,
    /// ROAD: percentages of the pixels removed, each in (0, 100).
    pub road_percentages: Vec<f64>,
    /// ROAD: standard deviation of the imputation noise, normalized input units, 0–1.
    pub road_noise: f32,
    /// Infidelity: Gaussian perturbations per image.
    pub infidelity_samples: usize,
    /// Infidelity: standard deviation of the perturbation, normalized input units.
    pub infidelity_sigma: f32,
    /// Max-sensitivity: noise draws per image (each recomputes the maps).
    pub sensitivity_samples: usize,
    /// Max-sensitivity: half-width of the uniform noise, normalized input units.
    pub sensitivity_radius: f32,
    /// Pointing game: pixels of the photo the maximum may lie outside a box and still hit.
    pub pointing_tolerance: f64,
    /// SmoothGrad: noisy copies per image.
    pub samples: usize,
    /// Integrated Gradients: points on the path from the black baseline.
    pub ig_steps: usize,
    /// RISE: random masks per map.
    pub rise_masks: usize,
    /// Occlusion: stride of the sliding window (the window is twice the stride).
    pub occlusion_stride: usize,
    /// Seed of every random draw (SmoothGrad's noise, the random map, the re-drawn weights,
    /// the perturbations of the metrics).
    pub seed: u64,
    /// Images sent through the network at once.
    pub batch_size: usize,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            methods: EvalMethod::defaults(),
            metrics: Metric::ALL.to_vec(),
            step: 224,
            deletion_baseline: Fill::Black,
            insertion_baseline: Fill::PAPER_BLUR,
            road_percentages: Road::paper_percentages(),
            road_noise: 0.01,
            infidelity_samples: 32,
            infidelity_sigma: 0.1,
            sensitivity_samples: 10,
            sensitivity_radius: 0.2,
            pointing_tolerance: pointing::PAPER_TOLERANCE,
            samples: 25,
            ig_steps: 64,
            rise_masks: 250,
            occlusion_stride: 16,
            seed: 0,
            batch_size: 8,
        }
    }
}

/// `what` out of `range` as an error naming the setting.
fn out_of_range(what: &str, v: impl std::fmt::Display, range: &str) -> Error {
    Error::Invalid(format!("{what} {v} is out of range {range}"))
}

impl Config {
    /// Whether `m` is asked for.
    pub fn has(&self, m: Metric) -> bool {
        self.metrics.contains(&m)
    }

    /// Whether the run needs a graph network (whose weights it re-draws).
    pub fn needs_graph(&self) -> bool {
        self.has(Metric::Randomization)
    }

    /// Whether the run needs object boxes.
    pub fn needs_boxes(&self) -> bool {
        self.has(Metric::PointingGame) || self.has(Metric::Iou)
    }

    /// Whether the run draws curves (deletion, insertion, ROAD).
    pub fn has_curves(&self) -> bool {
        [
            Metric::Deletion,
            Metric::Insertion,
            Metric::RoadMorf,
            Metric::RoadLerf,
        ]
        .into_iter()
        .any(|m| self.has(m))
    }

    /// Every setting in its range (those of `netlens evaluate --help`), one error naming the
    /// first that is not.
    pub fn check(&self) -> Result<()> {
        if self.methods.is_empty() {
            return Err(Error::Invalid("no method to evaluate".into()));
        }
        if self.metrics.is_empty() {
            return Err(Error::Invalid("no metric to compute".into()));
        }
        let count = |what: &str, v: usize, lo: usize, hi: usize| {
            if (lo..=hi).contains(&v) {
                Ok(())
            } else {
                Err(out_of_range(what, v, &format!("{lo}..={hi}")))
            }
        };
        count("step", self.step, 1, u32::MAX as usize)?;
        count("infidelity_samples", self.infidelity_samples, 1, 10_000)?;
        count("sensitivity_samples", self.sensitivity_samples, 1, 10_000)?;
        count("samples", self.samples, 1, 10_000)?;
        count("ig_steps", self.ig_steps, 2, 1024)?;
        count("rise_masks", self.rise_masks, 1, 100_000)?;
        count("occlusion_stride", self.occlusion_stride, 1, 1024)?;
        count("batch_size", self.batch_size, 1, 256)?;
        let real = |what: &str, v: f64, lo: f64, hi: f64, open_lo: bool| {
            let above = if open_lo { v > lo } else { v >= lo };
            if v.is_finite() && above && v <= hi {
                Ok(())
            } else {
                let l = if open_lo { "(" } else { "[" };
                Err(out_of_range(what, v, &format!("{l}{lo}, {hi}]")))
            }
        };
        real("road_noise", self.road_noise.into(), 0.0, 1.0, false)?;
        real(
            "infidelity_sigma",
            self.infidelity_sigma.into(),
            0.0,
            10.0,
            true,
        )?;
        real(
            "sensitivity_radius",
            self.sensitivity_radius.into(),
            0.0,
            10.0,
            true,
        )?;
        real(
            "pointing_tolerance",
            self.pointing_tolerance,
            0.0,
            2048.0,
            false,
        )?;
        if self.road_percentages.is_empty() {
            return Err(Error::Invalid("road_percentages is empty".into()));
        }
        if let Some(p) = self
            .road_percentages
            .iter()
            .find(|p| !(p.is_finite() && **p > 0.0 && **p < 100.0))
        {
            return Err(Error::Invalid(format!(
                "road_percentages: {p} is not a number strictly between 0 and 100"
            )));
        }
        Ok(())
    }

    /// The saliency settings every method is built with.
    pub fn settings(&self) -> Settings {
        let mut s = Settings {
            seed: self.seed,
            ..Settings::default()
        };
        s.smoothgrad.samples = self.samples;
        s.integrated_gradients.steps = self.ig_steps;
        s.rise.masks = self.rise_masks;
        s.occlusion.stride = self.occlusion_stride;
        s.occlusion.window = 2 * self.occlusion_stride;
        s
    }

    /// The attributions, in order.
    pub fn attributions(&self) -> Result<Vec<Box<dyn Attribution>>> {
        let s = self.settings();
        self.methods.iter().map(|m| m.build(&s)).collect()
    }

    /// Max-sensitivity's settings.
    pub fn sensitivity(&self) -> Sensitivity {
        Sensitivity {
            radius: self.sensitivity_radius,
            samples: self.sensitivity_samples,
            seed: self.seed,
        }
    }

    /// ROAD's settings.
    pub fn road(&self) -> Road {
        Road {
            percentages: self.road_percentages.clone(),
            noise: self.road_noise,
            seed: self.seed,
        }
    }

    /// Infidelity's settings.
    pub fn infidelity(&self) -> Infidelity {
        Infidelity {
            sigma: self.infidelity_sigma,
            samples: self.infidelity_samples,
            seed: self.seed,
        }
    }

    /// Image passes of deletion or insertion on `n` images of `plane` pixels.
    pub(crate) fn curve_passes(&self, plane: usize, n: usize) -> usize {
        di::passes(plane, self.step) * n
    }
}

impl Config {
    /// The settings in force, in words, for pages: the methods, the metrics and the settings
    /// of the metrics chosen.
    pub fn describe(&self) -> String {
        let names = |v: Vec<&str>| v.join(", ");
        let mut parts = vec![
            format!(
                "methods {}",
                names(self.methods.iter().map(|m| m.name()).collect())
            ),
            format!(
                "metrics {}",
                names(self.metrics.iter().map(|m| m.name()).collect())
            ),
        ];
        if self.has(Metric::Deletion) || self.has(Metric::Insertion) {
            parts.push(format!(
                "deletion ({} baseline) / insertion ({} canvas) {} pixels a step",
                self.deletion_baseline.name(),
                self.insertion_baseline.name(),
                self.step
            ));
        }
        if self.has(Metric::RoadMorf) || self.has(Metric::RoadLerf) {
            let p: Vec<String> = self
                .road_percentages
                .iter()
                .map(|p| p.to_string())
                .collect();
            parts.push(format!("ROAD at {} %", p.join("/")));
        }
        if self.has(Metric::Infidelity) {
            parts.push(format!(
                "infidelity {} perturbations of σ {}",
                self.infidelity_samples, self.infidelity_sigma
            ));
        }
        if self.has(Metric::MaxSensitivity) {
            parts.push(format!(
                "max-sensitivity {} draws of radius {}",
                self.sensitivity_samples, self.sensitivity_radius
            ));
        }
        parts.push(format!("seed {}", self.seed));
        parts.join("; ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_the_clis() {
        let c = Config::default();
        assert!(c.check().is_ok());
        assert_eq!(c.methods.last(), Some(&EvalMethod::Centre));
        assert_eq!(c.metrics.len(), Metric::ALL.len());
        assert_eq!(c.settings().occlusion.window, 32);
    }

    #[test]
    fn names_and_errors() {
        assert_eq!(EvalMethod::parse("Center").unwrap(), EvalMethod::Centre);
        assert_eq!(
            EvalMethod::parse("grad_cam").unwrap(),
            EvalMethod::Saliency(Method::GradCam)
        );
        let e = EvalMethod::parse("gradcam").unwrap_err().to_string();
        assert!(e.starts_with("unknown method 'gradcam'"), "{e}");
        assert!(e.ends_with("and the baselines random and centre"), "{e}");
        assert_eq!(split_list(" a,b,,a , c"), ["a", "b", "c"]);
        let bad = Config {
            road_percentages: vec![10.0, 100.0],
            ..Config::default()
        };
        assert!(bad.check().unwrap_err().to_string().contains("100"));
        let bad = Config {
            batch_size: 0,
            ..Config::default()
        };
        assert_eq!(
            bad.check().unwrap_err().to_string(),
            "batch_size 0 is out of range 1..=256"
        );
    }
}
