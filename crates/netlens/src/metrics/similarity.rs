//! Similarities of two maps, as Adebayo et al. (2018, "Sanity Checks for Saliency Maps",
//! section 3) compare a map with the map of a randomized network: besides Spearman's rank
//! correlation ([`super::randomization::spearman`]), the structural similarity index (SSIM;
//! Wang, Bovik, Sheikh & Simoncelli 2004) and the Pearson correlation of the histograms of
//! oriented gradients (HOG; Dalal & Triggs 2005) of the two maps. As in the paper's code,
//! both take the maps' magnitudes scaled to [0, 1] (min to max). The implementations follow
//! scikit-image's, which the paper used and the tests compare with:
//! `structural_similarity(a, b, data_range=1)` (7×7 uniform window, K1 = 0.01, K2 = 0.03,
//! sample covariances, the mean over the windows that fit inside the image) and
//! `hog(orientations=9, pixels_per_cell=(8, 8), cells_per_block=(3, 3), block_norm="L2-Hys")`.

/// `v` scaled to [0, 1] (all zeros when constant), as float64.
pub fn unit_range(v: &[f32]) -> Vec<f64> {
    let (lo, hi) = v
        .iter()
        .filter(|x| x.is_finite())
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &x| {
            (lo.min(f64::from(x)), hi.max(f64::from(x)))
        });
    let span = hi - lo;
    v.iter()
        .map(|&x| {
            if span > 0.0 && x.is_finite() {
                (f64::from(x) - lo) / span
            } else {
                0.0
            }
        })
        .collect()
}

/// SSIM of two `h`×`w` images with values in [0, 1] (scikit-image's defaults, data range 1).
pub fn ssim(a: &[f64], b: &[f64], h: usize, w: usize) -> f64 {
    const WIN: usize = 7;
    if h < WIN || w < WIN || a.len() != h * w || b.len() != h * w {
        return f64::NAN;
    }
    let (c1, c2) = ((0.01f64).powi(2), (0.03f64).powi(2));
    let np = (WIN * WIN) as f64;
    let cov_norm = np / (np - 1.0);
    // Summed-area tables of a, b, a², b², ab.
    let table = |f: &dyn Fn(usize) -> f64| {
        let mut t = vec![0.0f64; (h + 1) * (w + 1)];
        for y in 0..h {
            let mut row = 0.0;
            for x in 0..w {
                row += f(y * w + x);
                t[(y + 1) * (w + 1) + x + 1] = t[y * (w + 1) + x + 1] + row;
            }
        }
        t
    };
    let ta = table(&|i| a[i]);
    let tb = table(&|i| b[i]);
    let taa = table(&|i| a[i] * a[i]);
    let tbb = table(&|i| b[i] * b[i]);
    let tab = table(&|i| a[i] * b[i]);
    let sum = |t: &[f64], y: usize, x: usize| {
        let (y1, x1) = (y + WIN, x + WIN);
        t[y1 * (w + 1) + x1] - t[y * (w + 1) + x1] - t[y1 * (w + 1) + x] + t[y * (w + 1) + x]
    };
    let mut total = 0.0;
    let mut count = 0usize;
    for y in 0..=h - WIN {
        for x in 0..=w - WIN {
            let ux = sum(&ta, y, x) / np;
            let uy = sum(&tb, y, x) / np;
            let vx = cov_norm * (sum(&taa, y, x) / np - ux * ux);
            let vy = cov_norm * (sum(&tbb, y, x) / np - uy * uy);
            let vxy = cov_norm * (sum(&tab, y, x) / np - ux * uy);
            let s = ((2.0 * ux * uy + c1) * (2.0 * vxy + c2))
                / ((ux * ux + uy * uy + c1) * (vx + vy + c2));
            total += s;
            count += 1;
        }
    }
    total / count as f64
}

/// scikit-image's HOG feature vector of an `h`×`w` image (9 orientations, 8×8-pixel cells,
/// 3×3-cell blocks, L2-Hys).
pub fn hog(img: &[f64], h: usize, w: usize) -> Vec<f64> {
    const BINS: usize = 9;
    const CELL: usize = 8;
    const BLOCK: usize = 3;
    let mut mag = vec![0.0f64; h * w];
    let mut ori = vec![0.0f64; h * w];
    for y in 0..h {
        for x in 0..w {
            let gr = if y > 0 && y + 1 < h {
                img[(y + 1) * w + x] - img[(y - 1) * w + x]
            } else {
                0.0
            };
            let gc = if x > 0 && x + 1 < w {
                img[y * w + x + 1] - img[y * w + x - 1]
            } else {
                0.0
            };
            mag[y * w + x] = gr.hypot(gc);
            ori[y * w + x] = gr.atan2(gc).to_degrees().rem_euclid(180.0);
        }
    }
    let (cr, cc) = (h / CELL, w / CELL);
    let mut cells = vec![0.0f64; cr * cc * BINS];
    let width = 180.0 / BINS as f64;
    for r in 0..cr {
        for c in 0..cc {
            for y in r * CELL..(r + 1) * CELL {
                for x in c * CELL..(c + 1) * CELL {
                    let o = ori[y * w + x];
                    // scikit-image's bins: [i·20°, (i+1)·20°), orientation 180 never occurs.
                    let bin = ((o / width).floor() as usize).min(BINS - 1);
                    cells[(r * cc + c) * BINS + bin] += mag[y * w + x];
                }
            }
        }
    }
    let area = (CELL * CELL) as f64;
    cells.iter_mut().for_each(|v| *v /= area);
    let eps = 1e-5f64;
    let mut out = Vec::new();
    if cr < BLOCK || cc < BLOCK {
        return out;
    }
    for r in 0..=cr - BLOCK {
        for c in 0..=cc - BLOCK {
            let mut block = Vec::with_capacity(BLOCK * BLOCK * BINS);
            for dr in 0..BLOCK {
                for dc in 0..BLOCK {
                    let i = ((r + dr) * cc + c + dc) * BINS;
                    block.extend_from_slice(&cells[i..i + BINS]);
                }
            }
            let n = (block.iter().map(|v| v * v).sum::<f64>() + eps * eps).sqrt();
            block.iter_mut().for_each(|v| *v = (*v / n).min(0.2));
            let n = (block.iter().map(|v| v * v).sum::<f64>() + eps * eps).sqrt();
            out.extend(block.into_iter().map(|v| v / n));
        }
    }
    out
}

/// Pearson correlation of two vectors (NaN when either is constant).
pub fn pearson(a: &[f64], b: &[f64]) -> f64 {
    let n = a.len().min(b.len()) as f64;
    let (ma, mb) = (a.iter().sum::<f64>() / n, b.iter().sum::<f64>() / n);
    let (mut sab, mut saa, mut sbb) = (0.0, 0.0, 0.0);
    for (x, y) in a.iter().zip(b) {
        sab += (x - ma) * (y - mb);
        saa += (x - ma).powi(2);
        sbb += (y - mb).powi(2);
    }
    sab / (saa * sbb).sqrt()
}

/// SSIM of the magnitudes of two maps, each scaled to [0, 1].
pub fn map_ssim(a: &[f32], b: &[f32], h: usize, w: usize) -> f64 {
    ssim(&unit_range(a), &unit_range(b), h, w)
}

/// Pearson correlation of the HOG features of the magnitudes of two maps, each scaled to
/// [0, 1].
pub fn hog_similarity(a: &[f32], b: &[f32], h: usize, w: usize) -> f64 {
    pearson(&hog(&unit_range(a), h, w), &hog(&unit_range(b), h, w))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identical_maps_are_similar_and_unrelated_ones_are_not() {
        let (h, w) = (32, 40);
        let a: Vec<f32> = (0..h * w)
            .map(|i| ((i % w) as f32 * 0.3).sin() + (i / w) as f32 * 0.05)
            .collect();
        let b: Vec<f32> = (0..h * w)
            .map(|i| (i * 7919 % 1000) as f32 / 1000.0)
            .collect();
        assert!((map_ssim(&a, &a, h, w) - 1.0).abs() < 1e-12);
        assert!((hog_similarity(&a, &a, h, w) - 1.0).abs() < 1e-12);
        assert!(map_ssim(&a, &b, h, w) < 0.3);
        assert!(hog_similarity(&a, &b, h, w) < 0.5);
        assert_eq!(hog(&unit_range(&a), h, w).len(), (4 - 2) * (5 - 2) * 81);
    }
}
