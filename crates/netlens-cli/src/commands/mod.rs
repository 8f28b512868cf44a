//! One module per subcommand.

pub mod bench;
pub mod classify;
pub mod evaluate;
pub mod fool;
pub mod labels;
pub mod layers;
pub mod locate;
pub mod locate_bench;
pub mod models;
pub mod report;

pub mod robustness;
pub mod saliency;
pub mod transfer;
pub mod visualize;
