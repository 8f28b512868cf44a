//! Typed recipe settings: one [`Setting`] per tunable value, named by its command-line flag.
//!
//! Callers with typed values (the CLI's flags) build settings directly
//! (`Setting::LearningRate(25.0)`) and a recipe applies them ([`super::Recipe::apply`]);
//! text (`--sweep key=v1,v2`, Python keyword pairs) is parsed once, here, by
//! [`Setting::parse`]. Which recipe takes which setting is an exhaustive `match` in each
//! recipe's `apply`, so a new setting cannot be forgotten by one of them.

use crate::error::{Error, Result};

/// One recipe setting with its value.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Setting {
    /// Iterations of the loop (both recipes).
    Iterations(usize),
    /// Step size (both: cs231n's normalized-gradient step, lucid's Adam).
    LearningRate(f32),
    /// cs231n: weight λ of the L2 penalty.
    L2Reg(f32),
    /// cs231n: blur every N iterations (0: never).
    BlurEvery(usize),
    /// cs231n: σ of the blur, in pixels.
    BlurSigma(f32),
    /// cs231n: largest random roll, in pixels.
    MaxJitter(usize),
    /// lucid: standard deviation of the initial spectrum noise.
    Sd(f32),
    /// lucid: spectrum scale `1 / f^decay_power`.
    DecayPower(f32),
    /// lucid: colour decorrelation on or off.
    Decorrelate(bool),
    /// lucid: transformation robustness on or off.
    Transforms(bool),
    /// lucid: padding before the first jitter, in pixels.
    Pad(usize),
    /// lucid: first jitter (random crop), in pixels.
    Jitter(usize),
}

impl Setting {
    /// One of each setting (values irrelevant): what [`super::Recipe::keys`] filters.
    pub const ALL: [Setting; 12] = [
        Setting::Iterations(1),
        Setting::LearningRate(1.0),
        Setting::L2Reg(0.0),
        Setting::BlurEvery(0),
        Setting::BlurSigma(0.0),
        Setting::MaxJitter(0),
        Setting::Sd(0.0),
        Setting::DecayPower(0.0),
        Setting::Decorrelate(true),
        Setting::Transforms(true),
        Setting::Pad(0),
        Setting::Jitter(0),
    ];

    /// The setting's command-line name (`learning-rate`, `l2-reg`...).
    pub fn key(&self) -> &'static str {
        match self {
            Setting::Iterations(_) => "iterations",
            Setting::LearningRate(_) => "learning-rate",
            Setting::L2Reg(_) => "l2-reg",
            Setting::BlurEvery(_) => "blur-every",
            Setting::BlurSigma(_) => "blur-sigma",
            Setting::MaxJitter(_) => "max-jitter",
            Setting::Sd(_) => "sd",
            Setting::DecayPower(_) => "decay-power",
            Setting::Decorrelate(_) => "decorrelate",
            Setting::Transforms(_) => "transforms",
            Setting::Pad(_) => "pad",
            Setting::Jitter(_) => "jitter",
        }
    }

    /// The setting named `key` with `value` parsed to its type (booleans are `true` /
    /// `false`); an error names the setting, or lists the known names.
    pub fn parse(key: &str, value: &str) -> Result<Setting> {
        let Some(kind) = Setting::ALL.iter().find(|s| s.key() == key) else {
            return Err(Error::Invalid(format!(
                "no setting '{key}'; settings: {}",
                Setting::ALL.map(|s| s.key()).join(", ")
            )));
        };
        Ok(match kind {
            Setting::Iterations(_) => Setting::Iterations(parse_value(key, value)?),
            Setting::LearningRate(_) => Setting::LearningRate(parse_value(key, value)?),
            Setting::L2Reg(_) => Setting::L2Reg(parse_value(key, value)?),
            Setting::BlurEvery(_) => Setting::BlurEvery(parse_value(key, value)?),
            Setting::BlurSigma(_) => Setting::BlurSigma(parse_value(key, value)?),
            Setting::MaxJitter(_) => Setting::MaxJitter(parse_value(key, value)?),
            Setting::Sd(_) => Setting::Sd(parse_value(key, value)?),
            Setting::DecayPower(_) => Setting::DecayPower(parse_value(key, value)?),
            Setting::Decorrelate(_) => Setting::Decorrelate(parse_value(key, value)?),
            Setting::Transforms(_) => Setting::Transforms(parse_value(key, value)?),
            Setting::Pad(_) => Setting::Pad(parse_value(key, value)?),
            Setting::Jitter(_) => Setting::Jitter(parse_value(key, value)?),
        })
    }
}

/// The error for a setting `key` that recipe `recipe` (whose settings `takes` accepts) does
/// not have, listing the ones it has.
pub(crate) fn no_setting(recipe: &str, key: &str, takes: impl Fn(&Setting) -> bool) -> Error {
    let keys: Vec<&str> = Setting::ALL
        .iter()
        .filter(|s| takes(s))
        .map(Setting::key)
        .collect();
    Error::Invalid(format!(
        "{recipe} has no setting '{key}'; settings: {}",
        keys.join(", ")
    ))
}

/// Parses a setting's value, with an error that names the setting.
fn parse_value<T: std::str::FromStr>(key: &str, value: &str) -> Result<T> {
    value
        .trim()
        .parse()
        .map_err(|_| Error::Invalid(format!("{key}: '{value}' is not a valid value")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_setting_parses_back_from_its_key() {
        for s in Setting::ALL {
            let text = match s {
                Setting::Decorrelate(_) | Setting::Transforms(_) => "false",
                _ => "3",
            };
            let parsed = Setting::parse(s.key(), text).unwrap();
            assert_eq!(parsed.key(), s.key());
            assert_ne!(parsed, s, "{}: the value was not parsed", s.key());
        }
        assert!(Setting::parse("learning-rate", "fast").is_err());
        assert!(Setting::parse("decorrelate", "1").is_err());
        let e = Setting::parse("speed", "1").unwrap_err().to_string();
        assert!(e.contains("speed") && e.contains("max-jitter"), "{e}");
    }
}
