//! Localization metrics against a known object box: the pointing game (Zhang et al. 2016: is
//! the map's maximum inside the object?) and box overlap (intersection over union, a hit at
//! IoU ≥ 0.5 as in PASCAL VOC).

use super::locate::BoundingBox;
use super::Map;
use crate::imaging::Placement;

/// Intersection over union of two boxes (0 when either is empty).
pub fn iou(a: &BoundingBox, b: &BoundingBox) -> f64 {
    let inter = BoundingBox {
        x0: a.x0.max(b.x0),
        y0: a.y0.max(b.y0),
        x1: a.x1.min(b.x1),
        y1: a.y1.min(b.y1),
        score: 0.0,
    }
    .area();
    let union = a.area() + b.area() - inter;
    if union > 0.0 {
        inter / union
    } else {
        0.0
    }
}

/// The map's maximum, as the centre of its pixel, in the original photo's coordinates.
pub fn peak(map: &Map, placement: &Placement) -> (f64, f64) {
    let (x, y) = map.argmax();
    placement.to_original(x as f64 + 0.5, y as f64 + 0.5)
}

/// Pointing game: does the map's maximum fall inside `truth` (original pixels), grown by
/// `tolerance` pixels?
pub fn pointing_hit(map: &Map, placement: &Placement, truth: &BoundingBox, tolerance: f64) -> bool {
    let (x, y) = peak(map, placement);
    truth.contains(x, y, tolerance)
}

/// Running totals for one method over a benchmark.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Tally {
    pub scenes: usize,
    pub pointing_hits: usize,
    pub iou_hits: usize,
    pub iou_sum: f64,
}

impl Tally {
    /// Records one scene: whether the maximum was inside, and the best box's IoU (0 if none).
    pub fn add(&mut self, pointing_hit: bool, iou: f64) {
        self.scenes += 1;
        self.pointing_hits += usize::from(pointing_hit);
        self.iou_hits += usize::from(iou >= 0.5);
        self.iou_sum += iou;
    }

    /// Pointing-game accuracy (0–1).
    pub fn pointing(&self) -> f64 {
        self.pointing_hits as f64 / self.scenes.max(1) as f64
    }

    /// Share of scenes whose best box has IoU ≥ 0.5 with the truth (0–1).
    pub fn iou_rate(&self) -> f64 {
        self.iou_hits as f64 / self.scenes.max(1) as f64
    }

    /// Mean IoU of the best box.
    pub fn mean_iou(&self) -> f64 {
        self.iou_sum / self.scenes.max(1) as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bx(x0: f64, y0: f64, x1: f64, y1: f64) -> BoundingBox {
        BoundingBox {
            x0,
            y0,
            x1,
            y1,
            score: 1.0,
        }
    }

    #[test]
    fn iou_cases() {
        assert_eq!(iou(&bx(0., 0., 2., 2.), &bx(0., 0., 2., 2.)), 1.0);
        assert_eq!(iou(&bx(0., 0., 2., 2.), &bx(2., 2., 4., 4.)), 0.0);
        assert!((iou(&bx(0., 0., 2., 2.), &bx(1., 0., 3., 2.)) - 1.0 / 3.0).abs() < 1e-12);
    }

    #[test]
    fn tally_rates() {
        let mut t = Tally::default();
        t.add(true, 0.7);
        t.add(false, 0.2);
        assert_eq!((t.pointing(), t.iou_rate()), (0.5, 0.5));
        assert!((t.mean_iou() - 0.45).abs() < 1e-12);
    }
}
