//! Sparseness: the Gini index of the map's magnitudes (Chalasani et al. 2020, "Concise
//! Explanations of Neural Networks using Adversarial Training", ICML; the Gini index after
//! Hurley & Rickard 2009). 0 when every pixel matters equally, → 1 when one pixel carries it
//! all. As Quantus's `Sparseness` with its defaults: |a| divided by its maximum, plus 1e-7
//! (so that an all-zero map is defined), sorted ascending, `Σ (2i − n − 1) a_i / (n Σ a_i)` with i = 1..n, in float64.

/// The Gini index of `|values|`.
pub fn sparseness(values: &[f32]) -> f64 {
    let n = values.len();
    if n == 0 {
        return f64::NAN;
    }
    let max = values.iter().fold(0f64, |m, v| m.max(f64::from(v.abs())));
    let scale = if max > 0.0 { 1.0 / max } else { 1.0 };
    let mut a: Vec<f64> = values
        .iter()
        .map(|v| f64::from(v.abs()) * scale + 1e-7)
        .collect();
    a.sort_by(f64::total_cmp);
    let nf = n as f64;
    let num: f64 = a
        .iter()
        .enumerate()
        .map(|(i, v)| (2.0 * (i + 1) as f64 - nf - 1.0) * v)
        .sum();
    num / (nf * a.iter().sum::<f64>())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uniform_and_peaked() {
        assert!(sparseness(&[1.0; 100]).abs() < 1e-12);
        let mut one = vec![0.0f32; 100];
        one[7] = -5.0;
        // (n − 1)/n for a single non-zero value (less the 1e-7 added to each of the zeros).
        assert!((sparseness(&one) - 0.99).abs() < 1e-4);
    }
}
