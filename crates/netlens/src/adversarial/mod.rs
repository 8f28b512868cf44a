//! Fooling images and adversarial attacks (CS231n Q5–Q7; torchattacks / Foolbox vocabulary).
//!
//! Every attack is a configuration of the one gradient-ascent loop,
//! [`crate::gradients::ascend`], chosen by an [`AttackMethod`]:
//!
//! - [`cs231n`] ([`Cs231nFooling`]): the assignment's `make_fooling_image` — ascend the
//!   target's raw score with steps `lr · g / ‖g‖₂` on the normalized input until the network
//!   says the target;
//! - [`fgsm`]: one signed step of size ε on the cross-entropy (Goodfellow et al. 2015);
//! - [`pgd`]: a random start in the ε-ball, then signed (L∞) or normalized (L2) steps
//!   projected back into the ball and the valid pixel box (Madry et al. 2018).
//!
//! Targeted attacks maximize −CE(target); untargeted ones maximize CE(true class). Success is
//! always judged on the image *as saved*: clamped to 0–255, rounded to 8 bits, and kept
//! inside the ε-ball after rounding ([`crate::imaging::quantize_in_ball`]). [`attack()`]
//! runs any of them on a batch of model-resolution images; [`transfer`] crafts on one network
//! and tests on others; [`robustness`] compares random noise with PGD; [`plot`] and
//! [`figure`] draw the results.

pub mod attack;
pub mod cs231n;
pub mod epsilon;
pub mod fgsm;
pub mod figure;
pub mod measure;
pub mod objective;
pub mod pgd;
pub mod plot;
pub mod robustness;
pub mod transfer;

pub use attack::{attack, Attack, AttackMethod, Fooled, Goal};
pub use cs231n::Cs231nFooling;
pub use epsilon::parse_epsilon;
pub use measure::{distance, Distance};
pub use objective::CrossEntropy;
pub use pgd::Norm;
