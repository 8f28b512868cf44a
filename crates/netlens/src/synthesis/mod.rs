//! Class visualization (filled in by the synthesis work).
