//! Metrics of attribution maps: how faithful a map is to the network, how concentrated it
//! is, and whether it depends on the network at all. Each metric lives in its own file,
//! citing its paper and following its protocol:
//!
//! - [`deletion_insertion`]: deletion and insertion curves and their areas (Petsiuk et al.
//!   2018);
//! - [`road`]: ROAD, most- and least-relevant-first removal with noisy linear imputation
//!   ([`imputation`]; Rong et al. 2022);
//! - [`infidelity`]: how well the map predicts the effect of noise on the output (Yeh et al.
//!   2019);
//! - [`pointing`]: the pointing game and IoU against object boxes (Zhang et al. 2016; the
//!   localization benchmark's numbers);
//! - [`sparseness`]: the Gini index of the map (Chalasani et al. 2020);
//! - [`complexity`]: the entropy of the map (Bhatt et al. 2020);
//! - [`randomization`]: the model-parameter randomization test, cascading from the logits
//!   down and one layer at a time (Adebayo et al. 2018), with [`similarity`] (SSIM, HOG);
//! - [`max_sensitivity`]: the largest relative change of the map under small input noise
//!   (Yeh et al. 2019);
//! - [`baselines`]: the `random` and `centre` maps every table is read against;
//! - [`plot`]: the deletion / insertion curves as a figure.
//!
//! Maps come from [`crate::saliency`] (any [`crate::saliency::Attribution`]) and the metrics
//! that query the network work with any [`crate::Classifier`]; randomization needs a graph
//! network ([`crate::models::GraphModel`]). `tools/reference/quantus_reference.py` computes
//! the same numbers with Quantus where it has the metric.

pub mod baselines;
pub mod complexity;
pub mod deletion_insertion;
pub mod imputation;
pub mod infidelity;
pub mod max_sensitivity;
pub mod plot;
pub mod pointing;
pub mod randomization;
pub mod road;
pub mod similarity;
pub mod sparseness;

pub use baselines::{CentreMap, RandomMap};
pub use complexity::complexity;
pub use deletion_insertion::{Curve, Direction, Fill};
pub use sparseness::sparseness;

use crate::error::{Error, Result};

/// The metrics netlens computes, by name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Metric {
    Deletion,
    Insertion,
    RoadMorf,
    RoadLerf,
    Randomization,
    Infidelity,
    MaxSensitivity,
    Sparseness,
    Complexity,
    PointingGame,
    Iou,
}

impl Metric {
    /// Every metric, in the order tables list them.
    pub const ALL: [Metric; 11] = [
        Metric::Deletion,
        Metric::Insertion,
        Metric::RoadMorf,
        Metric::RoadLerf,
        Metric::Randomization,
        Metric::Infidelity,
        Metric::MaxSensitivity,
        Metric::Sparseness,
        Metric::Complexity,
        Metric::PointingGame,
        Metric::Iou,
    ];

    /// The name the CLI and the JSON use.
    pub fn name(&self) -> &'static str {
        match self {
            Metric::Deletion => "deletion",
            Metric::Insertion => "insertion",
            Metric::RoadMorf => "road-morf",
            Metric::RoadLerf => "road-lerf",
            Metric::Randomization => "randomization",
            Metric::Infidelity => "infidelity",
            Metric::MaxSensitivity => "max-sensitivity",
            Metric::Sparseness => "sparseness",
            Metric::Complexity => "complexity",
            Metric::PointingGame => "pointing-game",
            Metric::Iou => "iou",
        }
    }

    /// Which way is better: `true` when higher values mean a better map.
    pub fn higher_is_better(&self) -> bool {
        match self {
            Metric::Deletion
            | Metric::RoadMorf
            | Metric::Randomization
            | Metric::Infidelity
            | Metric::MaxSensitivity
            | Metric::Complexity => false,
            Metric::Insertion
            | Metric::RoadLerf
            | Metric::Sparseness
            | Metric::PointingGame
            | Metric::Iou => true,
        }
    }

    /// Whether the metric runs the network (beyond making the map).
    pub fn needs_model(&self) -> bool {
        matches!(
            self,
            Metric::Deletion
                | Metric::Insertion
                | Metric::RoadMorf
                | Metric::RoadLerf
                | Metric::Randomization
                | Metric::Infidelity
                | Metric::MaxSensitivity
        )
    }

    /// Whether the metric needs object boxes (`--boxes`).
    pub fn needs_boxes(&self) -> bool {
        matches!(self, Metric::PointingGame | Metric::Iou)
    }

    /// Looks a metric up by name (`_` and `-` alike, case-insensitive).
    pub fn parse(name: &str) -> Result<Metric> {
        let n = name.trim().to_lowercase().replace('_', "-");
        Metric::ALL
            .into_iter()
            .find(|m| m.name() == n)
            .ok_or_else(|| {
                Error::Invalid(format!(
                    "unknown metric '{name}'; metrics: {}",
                    Metric::ALL.map(|m| m.name()).join(", ")
                ))
            })
    }
}

/// Checks that `image` holds `[3, h, w]` values and `map` one per pixel; `what` names the
/// metric in the error.
pub(crate) fn check_image_and_map(
    what: &str,
    image: &[f32],
    map: &[f32],
    h: usize,
    w: usize,
) -> Result<()> {
    if image.len() != 3 * h * w || map.len() != h * w {
        return Err(Error::Invalid(format!(
            "{what}: image of {} values and map of {} for {h}×{w}",
            image.len(),
            map.len()
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metric_names_roundtrip() {
        for m in Metric::ALL {
            assert_eq!(Metric::parse(m.name()).unwrap(), m);
        }
        assert!(Metric::parse("road").is_err());
        assert_eq!(Metric::parse("ROAD_MORF").unwrap(), Metric::RoadMorf);
    }
}
