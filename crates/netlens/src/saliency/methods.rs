//! The methods by name ([`Method`]), their settings ([`Settings`]: one config struct per
//! configurable method, whose `Default` is the library's default and the CLI's) and [`build`],
//! which turns a name and settings into a checked [`Attribution`].
//!
//! Adding a method means its file (a struct with [`super::FromGradient`], [`super::CamWeights`]
//! or [`Attribution`]), a variant here with its name, and its arm in [`build`]; a method with
//! settings adds its config struct to [`Settings`]. The CLI lists methods from [`Method::ALL`]
//! and takes every default from [`Settings::default`].

use super::{
    AttentionRollout, Attribution, GradCam, GradCamConfig, GradientXInput, GuidedBackprop,
    GuidedGradCam, IntegratedGradients, IntegratedGradientsConfig, NoiseTunnel, Occlusion,
    OcclusionConfig, Rise, RiseConfig, SmoothGradConfig, Vanilla,
};
use crate::error::{Error, Result};

/// The methods netlens offers, by name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Vanilla,
    GradientXInput,
    SmoothGrad,
    IntegratedGradients,
    GradCam,
    GuidedBackprop,
    GuidedGradCam,
    Occlusion,
    Rise,
    AttentionRollout,
}

impl Method {
    /// Methods that need attention layers (vision transformers).
    pub const TRANSFORMER_ONLY: [Method; 1] = [Method::AttentionRollout];

    /// Every method, in the order tables list them.
    pub const ALL: [Method; 9] = [
        Method::Vanilla,
        Method::GradientXInput,
        Method::SmoothGrad,
        Method::IntegratedGradients,
        Method::GradCam,
        Method::GuidedBackprop,
        Method::GuidedGradCam,
        Method::Occlusion,
        Method::Rise,
    ];

    /// The name the CLI uses.
    pub fn name(&self) -> &'static str {
        match self {
            Method::Vanilla => "vanilla",
            Method::GradientXInput => "gradient-x-input",
            Method::SmoothGrad => "smoothgrad",
            Method::IntegratedGradients => "integrated-gradients",
            Method::GradCam => "grad-cam",
            Method::GuidedBackprop => "guided-backprop",
            Method::GuidedGradCam => "guided-grad-cam",
            Method::Occlusion => "occlusion",
            Method::Rise => "rise",
            Method::AttentionRollout => "attention-rollout",
        }
    }

    /// Looks a method up by name (`_` and `-` alike, case-insensitive).
    pub fn parse(name: &str) -> Result<Method> {
        let n = name.trim().to_lowercase().replace('_', "-");
        Method::ALL
            .into_iter()
            .chain(Method::TRANSFORMER_ONLY)
            .find(|m| m.name() == n)
            .ok_or_else(|| {
                Error::Invalid(format!(
                    "unknown method '{name}'; methods: {}, {}",
                    Method::ALL.map(|m| m.name()).join(", "),
                    Method::TRANSFORMER_ONLY.map(|m| m.name()).join(", ")
                ))
            })
    }

    /// Whether the method needs guided backpropagation (a ReLU CNN on the fast path).
    pub fn guided(&self) -> bool {
        matches!(self, Method::GuidedBackprop | Method::GuidedGradCam)
    }

    /// Whether the method built from `s` explains from a layer ([`GradCamConfig::layer`]):
    /// Grad-CAM, Guided Grad-CAM, or SmoothGrad around either.
    pub fn has_layer(&self, s: &Settings) -> bool {
        match self {
            Method::GradCam | Method::GuidedGradCam => true,
            Method::SmoothGrad => {
                s.smoothgrad.inner != Method::SmoothGrad && s.smoothgrad.inner.has_layer(s)
            }
            _ => false,
        }
    }
}

/// Settings of every method; `Settings::default()` holds the defaults the CLI shows. A method
/// reads only its own part (and the seed), so one value serves a list of methods.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Settings {
    pub smoothgrad: SmoothGradConfig,
    pub integrated_gradients: IntegratedGradientsConfig,
    pub grad_cam: GradCamConfig,
    pub occlusion: OcclusionConfig,
    pub rise: RiseConfig,
    /// Seeds the noise of SmoothGrad, of Integrated Gradients' noise baseline and RISE's
    /// masks.
    pub seed: u64,
}

/// The configured method, its settings checked.
pub fn build(method: Method, s: &Settings) -> Result<Box<dyn Attribution>> {
    Ok(match method {
        Method::Vanilla => Box::new(Vanilla),
        Method::GradientXInput => Box::new(GradientXInput),
        Method::IntegratedGradients => {
            let c = &s.integrated_gradients;
            Box::new(IntegratedGradients::new(
                c.steps,
                c.baseline.clone(),
                s.seed,
            )?)
        }
        Method::GradCam => Box::new(GradCam::on(s.grad_cam.layer.clone())),
        Method::GuidedBackprop => Box::new(GuidedBackprop),
        Method::GuidedGradCam => Box::new(GuidedGradCam {
            cam: GradCam::on(s.grad_cam.layer.clone()),
        }),
        Method::Occlusion => Box::new(Occlusion::new(s.occlusion.clone())?),
        Method::Rise => Box::new(Rise::new(s.rise.clone(), s.seed)?),
        Method::AttentionRollout => Box::new(AttentionRollout),
        Method::SmoothGrad => {
            let c = &s.smoothgrad;
            if c.inner == Method::SmoothGrad {
                return Err(Error::Invalid(
                    "smoothgrad cannot wrap itself; pick any other method as --inner".into(),
                ));
            }
            let inner = build(c.inner, s)?;
            Box::new(NoiseTunnel::new(inner, c.samples, c.noise, s.seed)?)
        }
    })
}

impl Method {
    /// The method with the settings of `s` it reads, in words, for pages and titles:
    /// "smoothgrad (8 samples, noise 0.15 of the range, around vanilla), seed 0".
    pub fn describe(&self, s: &Settings) -> String {
        let layer = |s: &Settings| match &s.grad_cam.layer {
            Some(l) => format!(" on {l}"),
            None => " on the last convolutional block".to_string(),
        };
        match self {
            Method::SmoothGrad => {
                let c = &s.smoothgrad;
                let inner = if c.inner == Method::SmoothGrad {
                    String::new()
                } else {
                    format!(", around {}", c.inner.describe(s))
                };
                format!(
                    "smoothgrad ({} samples, noise {} of the range{inner}), seed {}",
                    c.samples, c.noise, s.seed
                )
            }
            Method::IntegratedGradients => {
                let c = &s.integrated_gradients;
                format!(
                    "integrated-gradients ({} steps from a {} baseline)",
                    c.steps,
                    c.baseline.name()
                )
            }
            Method::GradCam | Method::GuidedGradCam => format!("{}{}", self.name(), layer(s)),
            Method::Occlusion => {
                let c = &s.occlusion;
                format!(
                    "occlusion ({} px window, stride {}, fill {})",
                    c.window, c.stride, c.fill
                )
            }
            Method::Rise => {
                let c = &s.rise;
                format!(
                    "rise ({} masks of {}×{} cells, keep p {}), seed {}",
                    c.masks, c.cell, c.cell, c.p, s.seed
                )
            }
            _ => self.name().to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn method_names_roundtrip() {
        for m in Method::ALL {
            assert_eq!(Method::parse(m.name()).unwrap(), m);
        }
        assert_eq!(Method::parse("Grad_CAM").unwrap(), Method::GradCam);
        assert!(Method::parse("lime").is_err());
    }

    #[test]
    fn settings_reach_the_methods() {
        let mut s = Settings::default();
        s.grad_cam.layer = Some("blocks.14".into());
        s.smoothgrad.inner = Method::GradCam;
        assert!(Method::SmoothGrad.has_layer(&s) && Method::GradCam.has_layer(&s));
        assert!(!Method::Vanilla.has_layer(&s));
        assert_eq!(
            build(Method::SmoothGrad, &s).unwrap().name(),
            "smoothgrad(grad-cam)"
        );
        s.smoothgrad.inner = Method::SmoothGrad;
        assert!(build(Method::SmoothGrad, &s).is_err());
        s.integrated_gradients.steps = 1;
        assert!(build(Method::IntegratedGradients, &s).is_err());
    }
}
