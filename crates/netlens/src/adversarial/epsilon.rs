//! Perturbation sizes as users write them: `8` (0–255 pixel units) or `8/255` (a fraction of
//! the pixel range).

use crate::error::{Error, Result};

/// Parses an epsilon into 0–255 pixel units: `"8"` → 8, `"8/255"` → 8, `"0.5/255"` → 0.5,
/// `"1/64"` → 3.984375. A plain number is already in pixel units.
pub fn parse_epsilon(s: &str) -> Result<f32> {
    let bad = || {
        Error::Invalid(format!(
            "bad epsilon {s:?}: give 0–255 pixel units (8) or a fraction of the range (8/255)"
        ))
    };
    let num = |t: &str| t.trim().parse::<f64>().map_err(|_| bad());
    let v = match s.split_once('/') {
        Some((a, b)) => {
            let d = num(b)?;
            if d == 0.0 {
                return Err(bad());
            }
            num(a)? / d * 255.0
        }
        None => num(s)?,
    };
    if !v.is_finite() || v < 0.0 {
        return Err(bad());
    }
    if v > 255.0 * 443.5 {
        return Err(Error::Invalid(format!(
            "epsilon {s:?} is larger than any image change"
        )));
    }
    Ok(v as f32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units_and_fractions() {
        assert_eq!(parse_epsilon("8").unwrap(), 8.0);
        assert!((parse_epsilon("8/255").unwrap() - 8.0).abs() < 1e-5);
        assert!((parse_epsilon(" 1 / 255 ").unwrap() - 1.0).abs() < 1e-5);
        assert!(parse_epsilon("x").is_err());
        assert!(parse_epsilon("1/0").is_err());
        assert!(parse_epsilon("-2").is_err());
    }
}
