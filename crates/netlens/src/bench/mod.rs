//! The benchmark protocol `netlens bench` runs, as a library: what is timed, on which inputs,
//! by which rule, and the records every engine reports in.
//!
//! - [`inputs`]: the batch and the target classes every engine times — netlens's workers and
//!   the PyTorch scripts (`tools/reference/bench_common.py` computes the same values, exactly);
//! - [`measure`]: the timing rule (warm-up, repeats, time budget, median), also the scripts';
//! - [`records`]: the typed (serde) records an engine prints as one JSON line and `netlens
//!   bench` reads back — the PyTorch scripts print the same fields;
//! - [`passes`]: netlens's side — the forward, forward+backward and class-visualization
//!   measurements of one loaded model;
//! - [`methods`]: whole methods (SmoothGrad-50, IG-64, Grad-CAM, PGD-20, class visualization
//!   200) on the sample photos, each beside the library a user would otherwise run;
//! - [`profile`]: one model's forward + backward pass timed node by node (`--profile`);
//! - [`peak`]: the machine's measured FMA peak, against which each pass's FLOP rate is read;
//! - [`system`]: what the machine says about itself (`/proc`): peak memory, how busy the CPUs
//!   were with other work.
//!
//! The command (`netlens bench`) only chooses weights, starts one process per engine and prints
//! the table.

pub mod inputs;
pub mod measure;
pub mod methods;
pub mod passes;
pub mod peak;
pub mod profile;
pub mod records;
pub mod system;

pub use measure::{measure, Budget};
pub use records::{ClassvizRecord, EngineRecord, PassRecord};
