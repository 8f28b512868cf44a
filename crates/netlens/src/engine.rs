//! The one place that names the compute backend: burn's `flex` CPU backend under `Autodiff`.
//!
//! Everything else in netlens asks this module for the device and never names a backend, so
//! swapping the engine is a one-file change. Weights are created with `from_data` on this
//! device and are therefore not tracked: backward passes compute input gradients only.

use burn::tensor::Device;

/// The device every tensor in netlens lives on: flex (pure-Rust CPU) with autodiff.
pub fn device() -> Device {
    Device::flex().autodiff()
}

/// Number of worker threads the engine uses (flex runs on the global rayon pool).
pub fn threads() -> usize {
    rayon::current_num_threads()
}

/// Sets the number of engine threads. Must be called before any tensor work; later calls
/// (or a pool that is already running) are ignored and the current count is returned.
pub fn set_threads(n: usize) -> usize {
    let _ = rayon::ThreadPoolBuilder::new()
        .num_threads(n.max(1))
        .build_global();
    rayon::current_num_threads()
}
