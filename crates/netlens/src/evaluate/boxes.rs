//! Object boxes for the pointing game and IoU when none are given: every `boxes.json` in the
//! images' folders or the folders above them (`assets/boxes.json` for `assets/photos`, so
//! that `assets/photos/*` stays images only); entries of an image's own folder win.

use crate::error::{Error, Result};
use crate::metrics::pointing::GroundTruth;
use std::path::{Path, PathBuf};

/// Largest boxes file read (a list of boxes per image name is a few kilobytes).
const MAX_BYTES: u64 = 64 << 20;

/// The boxes found beside `images` (none found: an empty [`GroundTruth`]).
pub fn boxes_beside(images: &[PathBuf]) -> Result<GroundTruth> {
    let mut text = serde_json::Map::new();
    let mut seen: Vec<PathBuf> = Vec::new();
    for img in images {
        let dir = img.parent().unwrap_or(Path::new("."));
        let up = dir.parent().unwrap_or(Path::new(".."));
        for f in [dir.join("boxes.json"), up.join("boxes.json")] {
            if seen.contains(&f) || !f.is_file() {
                continue;
            }
            let bytes = crate::files::read_regular(&f, MAX_BYTES, "boxes files")?;
            let g: serde_json::Value = serde_json::from_slice(&bytes)
                .map_err(|e| Error::Invalid(format!("{}: not JSON: {e}", f.display())))?;
            if let Some(o) = g.as_object() {
                for (k, v) in o {
                    text.entry(k.clone()).or_insert_with(|| v.clone());
                }
            }
            seen.push(f);
        }
    }
    GroundTruth::parse(&serde_json::Value::Object(text).to_string(), "boxes.json")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sample_photos_have_boxes() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../assets/photos");
        let g = boxes_beside(&[root.join("chelsea.png")]).unwrap();
        assert!(g.of(&root.join("chelsea.png")).is_some());
        assert!(boxes_beside(&[PathBuf::from("/nonexistent/x.png")])
            .unwrap()
            .is_empty());
    }
}
