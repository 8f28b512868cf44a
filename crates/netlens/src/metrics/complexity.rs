//! Complexity: the Shannon entropy of the map's magnitudes taken as a distribution over pixels
//! (Bhatt, Weller & Moura 2020, "Evaluating and Aggregating Feature-based Model Explanations",
//! IJCAI). Lower is simpler: ln(n) for a flat map, 0 when one pixel carries it all. As
//! Quantus's `Complexity`: p = |a| / Σ|a|, entropy in nats (SciPy's `entropy`), float64.

/// The entropy (nats) of `|values| / Σ |values|`; NaN for an all-zero map.
pub fn complexity(values: &[f32]) -> f64 {
    let total: f64 = values.iter().map(|v| f64::from(v.abs())).sum();
    if values.is_empty() || total <= 0.0 || !total.is_finite() {
        return f64::NAN;
    }
    values
        .iter()
        .map(|v| f64::from(v.abs()) / total)
        .filter(|&p| p > 0.0)
        .map(|p| -p * p.ln())
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flat_and_single() {
        assert!((complexity(&[2.0; 64]) - (64f64).ln()).abs() < 1e-12);
        let mut one = vec![0.0f32; 64];
        one[3] = 1.0;
        assert_eq!(complexity(&one), 0.0);
        assert!(complexity(&[0.0; 4]).is_nan());
    }
}
