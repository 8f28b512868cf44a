//! Filters on float image planes (normalized CHW values): Gaussian blur as SciPy's
//! `gaussian_filter1d` computes it (kernel truncated at 4σ, "reflect" borders), applied along
//! rows then columns — the blur of the CS231n class-visualization loop.

/// The normalized 1-D Gaussian kernel SciPy uses for `sigma` (radius `int(4σ + 0.5)`).
pub fn gaussian_kernel(sigma: f32) -> Vec<f32> {
    let sigma = f64::from(sigma.max(1e-6));
    let radius = (4.0 * sigma + 0.5) as i64;
    let w: Vec<f64> = (-radius..=radius)
        .map(|i| (-0.5 * (i as f64 / sigma).powi(2)).exp())
        .collect();
    let s: f64 = w.iter().sum();
    w.into_iter().map(|v| (v / s) as f32).collect()
}

/// SciPy's "reflect" (half-sample symmetric) index for `i` in a line of `n`.
fn reflect(i: i64, n: i64) -> usize {
    let period = 2 * n;
    let mut m = i.rem_euclid(period);
    if m >= n {
        m = period - 1 - m;
    }
    m as usize
}

/// Blurs each `h`×`w` plane of `data` (any number of planes) in place.
pub fn gaussian_blur(data: &mut [f32], h: usize, w: usize, sigma: f32) {
    if sigma <= 0.0 {
        return;
    }
    let k = gaussian_kernel(sigma);
    let r = (k.len() / 2) as i64;
    let mut line = vec![0f32; h.max(w)];
    for plane in data.chunks_mut(h * w) {
        for y in 0..h {
            let row = &mut plane[y * w..(y + 1) * w];
            line[..w].copy_from_slice(row);
            for (x, out) in row.iter_mut().enumerate() {
                *out = k
                    .iter()
                    .enumerate()
                    .map(|(j, kv)| kv * line[reflect(x as i64 + j as i64 - r, w as i64)])
                    .sum();
            }
        }
        for x in 0..w {
            for y in 0..h {
                line[y] = plane[y * w + x];
            }
            for y in 0..h {
                plane[y * w + x] = k
                    .iter()
                    .enumerate()
                    .map(|(j, kv)| kv * line[reflect(y as i64 + j as i64 - r, h as i64)])
                    .sum();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kernel_matches_scipy() {
        // scipy.ndimage._filters._gaussian_kernel1d(0.5, 0, 2)
        let k = gaussian_kernel(0.5);
        let want = [2.63865e-4, 1.064e-1, 7.8657e-1, 1.064e-1, 2.63865e-4];
        assert_eq!(k.len(), 5);
        for (a, b) in k.iter().zip(want) {
            assert!((a - b).abs() < 2e-4, "{a} vs {b}");
        }
    }

    #[test]
    fn reflect_borders() {
        assert_eq!(reflect(-1, 5), 0);
        assert_eq!(reflect(-2, 5), 1);
        assert_eq!(reflect(5, 5), 4);
        assert_eq!(reflect(6, 5), 3);
    }

    #[test]
    fn blur_keeps_constants() {
        let mut d = vec![3.0f32; 2 * 7 * 9];
        gaussian_blur(&mut d, 7, 9, 1.3);
        assert!(d.iter().all(|v| (v - 3.0).abs() < 1e-5));
    }
}
