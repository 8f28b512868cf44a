//! The localization benchmark's two numbers on photos with known object boxes, in the metrics
//! table: the pointing game (Zhang, Bargal, Lin, Brandt, Shen & Sclaroff 2016, "Top-down
//! Neural Attention by Excitation Backprop", ECCV: a hit when the map's maximum falls inside an
//! object box, grown by a tolerance; the paper's is 15 pixels) and IoU (the box netlens's
//! `locate` draws around the map's strongest region, with its defaults, against the best
//! matching object box; PASCAL VOC counts IoU ≥ 0.5 as found). Both reuse the benchmark's
//! code ([`crate::saliency::metrics`], [`crate::saliency::locate`]), so the numbers mean what
//! `netlens locate-bench` reports, there on pasted-object scenes and here on real photos.
//!
//! Ground truth is a JSON object from an image's file name (or its path as given) to a list of
//! boxes `[x0, y0, x1, y1]` in the original photo's pixels (x right, y down); other keys, such
//! as `"_about"`, are ignored. [`GroundTruth::load`] reads one file.

use crate::error::{Error, Result};
use crate::imaging::Placement;
use crate::saliency::locate::{self, BoundingBox, LocateOptions};
use crate::saliency::metrics::{iou, pointing_hit};
use crate::saliency::Map;
use std::collections::BTreeMap;
use std::path::Path;

/// The pointing game's tolerance in Zhang et al. (original pixels).
pub const PAPER_TOLERANCE: f64 = 15.0;

/// Object boxes per image.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct GroundTruth {
    boxes: BTreeMap<String, Vec<BoundingBox>>,
}

impl GroundTruth {
    /// Parses the JSON text of a boxes file (`source` names it in errors).
    pub fn parse(text: &str, source: &str) -> Result<GroundTruth> {
        let v: serde_json::Value = serde_json::from_str(text)
            .map_err(|e| Error::Invalid(format!("{source}: not JSON: {e}")))?;
        let obj = v.as_object().ok_or_else(|| {
            Error::Invalid(format!(
                "{source}: expected an object from image names to lists of [x0, y0, x1, y1]"
            ))
        })?;
        let mut boxes = BTreeMap::new();
        for (name, list) in obj {
            if name.starts_with('_') {
                continue;
            }
            let bad = || {
                Error::Invalid(format!(
                    "{source}: \"{name}\" must be a list of boxes [x0, y0, x1, y1] with x0 < x1, \
                     y0 < y1"
                ))
            };
            let list = list.as_array().ok_or_else(bad)?;
            let mut bs = Vec::with_capacity(list.len());
            for b in list {
                let c: Vec<f64> = b
                    .as_array()
                    .ok_or_else(bad)?
                    .iter()
                    .map(|x| x.as_f64().filter(|x| x.is_finite()).ok_or_else(bad))
                    .collect::<Result<_>>()?;
                if c.len() != 4 || c[0] >= c[2] || c[1] >= c[3] {
                    return Err(bad());
                }
                bs.push(BoundingBox {
                    x0: c[0],
                    y0: c[1],
                    x1: c[2],
                    y1: c[3],
                    score: 1.0,
                });
            }
            boxes.insert(name.clone(), bs);
        }
        Ok(GroundTruth { boxes })
    }

    /// Reads a boxes file.
    pub fn load(path: &Path) -> Result<GroundTruth> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| Error::Invalid(format!("cannot read {}: {e}", path.display())))?;
        Self::parse(&text, &path.display().to_string())
    }

    /// The boxes of `image` (looked up by its path as given, then by its file name).
    pub fn of(&self, image: &Path) -> Option<&[BoundingBox]> {
        let full = image.to_string_lossy();
        self.boxes
            .get(full.as_ref())
            .or_else(|| {
                image
                    .file_name()
                    .and_then(|n| self.boxes.get(n.to_string_lossy().as_ref()))
            })
            .map(Vec::as_slice)
            .filter(|b| !b.is_empty())
    }

    /// Number of images with boxes.
    pub fn len(&self) -> usize {
        self.boxes.len()
    }

    /// Whether no image has boxes.
    pub fn is_empty(&self) -> bool {
        self.boxes.is_empty()
    }
}

/// Pointing game: 1 when the maximum of `map` (mapped back into the photo by `placement`)
/// lies inside one of `truth`, grown by `tolerance` pixels, else 0.
pub fn pointing_game(
    map: &Map,
    placement: &Placement,
    truth: &[BoundingBox],
    tolerance: f64,
) -> f64 {
    let hit = truth
        .iter()
        .any(|t| pointing_hit(map, placement, t, tolerance));
    f64::from(u8::from(hit))
}

/// IoU of the best box `locate` draws on `map` (default options) with the best matching box
/// of `truth`; 0 when the map yields no box.
pub fn locate_iou(map: &Map, placement: &Placement, truth: &[BoundingBox]) -> Result<f64> {
    let Some(b) = locate::boxes(map, &LocateOptions::default())?
        .first()
        .map(|b| b.to_original(placement))
    else {
        return Ok(0.0);
    };
    Ok(truth.iter().map(|t| iou(&b, t)).fold(0.0, f64::max))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_lookup_and_errors() {
        let g = GroundTruth::parse(
            r#"{"_about": "x", "a.png": [[1, 2, 3, 4]], "dir/b.jpg": [[0, 0, 1, 1], [2, 2, 5, 5]]}"#,
            "t",
        )
        .unwrap();
        assert_eq!(g.len(), 2);
        assert_eq!(g.of(Path::new("photos/a.png")).unwrap()[0].x1, 3.0);
        assert_eq!(g.of(Path::new("dir/b.jpg")).unwrap().len(), 2);
        assert!(g.of(Path::new("c.png")).is_none());
        assert!(GroundTruth::parse(r#"{"a.png": [[3, 0, 1, 1]]}"#, "t").is_err());
        assert!(GroundTruth::parse(r#"{"a.png": [[0, 0, 1]]}"#, "t").is_err());
        assert!(GroundTruth::parse("[1]", "t").is_err());
    }

    #[test]
    fn pointing_and_iou_on_a_map() {
        // A 16-pixel square blob on a 64×64 map (locate smooths with σ = 8 pixels).
        let (w, h) = (64usize, 64usize);
        let mut values = vec![0f32; w * h];
        for y in 8..24 {
            for x in 8..24 {
                values[y * w + x] = 1.0;
            }
        }
        values[12 * w + 12] = 2.0;
        let map = Map {
            width: w,
            height: h,
            values,
            target: 0,
            signed: false,
            delta: None,
        };
        let p = Placement {
            original: (64, 64),
            resized: (64, 64),
            crop: (0, 0),
            size: 64,
        };
        let inside = BoundingBox {
            x0: 8.0,
            y0: 8.0,
            x1: 24.0,
            y1: 24.0,
            score: 1.0,
        };
        let elsewhere = BoundingBox {
            x0: 40.0,
            y0: 40.0,
            x1: 64.0,
            y1: 64.0,
            score: 1.0,
        };
        assert_eq!(pointing_game(&map, &p, &[elsewhere, inside], 0.0), 1.0);
        assert_eq!(pointing_game(&map, &p, &[elsewhere], 0.0), 0.0);
        assert_eq!(pointing_game(&map, &p, &[elsewhere], 28.0), 1.0);
        assert_eq!(locate_iou(&map, &p, &[elsewhere]).unwrap(), 0.0);
        assert!(locate_iou(&map, &p, &[inside]).unwrap() > 0.4);
    }
}
