//! [`Map`]: what every attribution method returns for one image, with the views the outputs
//! need (magnitude, peak, a display scaling with Captum's outlier clipping).

/// One image's attribution map, row-major `height` × `width` at the model's input resolution.
#[derive(Debug, Clone, PartialEq)]
pub struct Map {
    pub width: usize,
    pub height: usize,
    pub values: Vec<f32>,
    /// The class it explains.
    pub target: usize,
    /// Whether values carry a sign (gradient × input, Integrated Gradients) or are magnitudes.
    pub signed: bool,
    /// Integrated Gradients' completeness error: Σ attributions − (score(x) − score(baseline)).
    pub delta: Option<f32>,
}

impl Map {
    /// How much each pixel matters, whatever the sign: |v| for signed maps.
    pub fn magnitude(&self) -> Vec<f32> {
        if self.signed {
            self.values.iter().map(|v| v.abs()).collect()
        } else {
            self.values.clone()
        }
    }

    /// `(x, y)` of the largest magnitude (the first one on ties).
    pub fn argmax(&self) -> (usize, usize) {
        let m = self.magnitude();
        let i = m
            .iter()
            .enumerate()
            .fold((0, f32::NEG_INFINITY), |(bi, bv), (i, &v)| {
                if v > bv {
                    (i, v)
                } else {
                    (bi, bv)
                }
            })
            .0;
        (i % self.width.max(1), i / self.width.max(1))
    }

    /// Magnitudes scaled to [0, 1] for display, the top `clip` fraction saturated (Captum's
    /// `outlier_perc`): one extreme pixel would otherwise leave the rest of the map black.
    pub fn display(&self, clip: f32) -> Vec<f32> {
        let m = self.magnitude();
        let mut sorted: Vec<f32> = m.iter().copied().filter(|v| v.is_finite()).collect();
        if sorted.is_empty() {
            return vec![0.0; m.len()];
        }
        sorted.sort_by(f32::total_cmp);
        let k = ((1.0 - clip.clamp(0.0, 1.0)) * (sorted.len() - 1) as f32).round() as usize;
        let top = sorted[k.min(sorted.len() - 1)];
        let top = if top > 0.0 {
            top
        } else {
            sorted[sorted.len() - 1].max(f32::MIN_POSITIVE)
        };
        m.iter()
            .map(|&v| {
                if v.is_finite() {
                    (v / top).clamp(0.0, 1.0)
                } else {
                    0.0
                }
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(values: Vec<f32>, signed: bool) -> Map {
        Map {
            width: 2,
            height: 2,
            values,
            target: 0,
            signed,
            delta: None,
        }
    }

    #[test]
    fn argmax_and_display() {
        let m = map(vec![0.5, -3.0, 1.0, 2.0], true);
        assert_eq!(m.argmax(), (1, 0));
        assert_eq!(m.display(0.0), vec![0.5 / 3.0, 1.0, 1.0 / 3.0, 2.0 / 3.0]);
        let u = map(vec![0.0, 0.0, 0.0, 0.0], false);
        assert_eq!(u.display(0.01), vec![0.0; 4]);
    }
}
