//! What every `plotters` figure shares: the embedded DejaVu Sans registered once under one
//! family name, and plotters' errors as netlens errors.

use crate::error::{Error, Result};
use plotters::style::FontStyle;
use std::sync::OnceLock;

/// The font family every plot uses (DejaVu Sans, embedded).
pub const FONT: &str = "sans-serif";

/// Registers the embedded font with plotters (once per process).
pub fn fonts() -> Result<()> {
    static DONE: OnceLock<bool> = OnceLock::new();
    let ok = *DONE.get_or_init(|| {
        plotters::style::register_font(FONT, FontStyle::Normal, dejavu::sans::regular()).is_ok()
            && plotters::style::register_font(FONT, FontStyle::Bold, dejavu::sans::bold()).is_ok()
    });
    if ok {
        Ok(())
    } else {
        Err(Error::Invalid("cannot load the embedded plot font".into()))
    }
}

/// A plotters error as a netlens error.
pub fn plot_err<E: std::fmt::Display>(e: E) -> Error {
    Error::Invalid(format!("plot: {e}"))
}
