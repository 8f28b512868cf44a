//! Seeded randomness that belongs to an image, not to its place in a run.
//!
//! SmoothGrad's noise and Integrated Gradients' noise baseline are drawn from a generator
//! seeded by the user's seed *and the image's own values* (SHA-256 of both). An image's map
//! therefore depends on the seed and on the image only: not on which other images share the
//! call, their order, the batch size, how a command splits its images into chunks to bound
//! memory, `--shard`, or how many workers share a data set. Two equal images get the same
//! noise, as they should.

use rand::rngs::StdRng;
use rand::SeedableRng;
use sha2::{Digest, Sha256};

/// The generator for one image (`values`: its normalized values, `[3, H, W]` flat) under
/// `seed`; `purpose` separates streams drawn for different ends from the same image.
pub fn image_rng(seed: u64, purpose: &str, values: &[f32]) -> StdRng {
    let mut h = Sha256::new();
    h.update(b"netlens image rng v1\0");
    h.update(purpose.as_bytes());
    h.update([0]);
    h.update(seed.to_le_bytes());
    h.update((values.len() as u64).to_le_bytes());
    for v in values {
        h.update(v.to_le_bytes());
    }
    StdRng::from_seed(h.finalize().into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::Rng;

    fn first(mut r: StdRng) -> u64 {
        r.random()
    }

    #[test]
    fn streams_follow_seed_image_and_purpose() {
        let a = [0.5f32, -1.0, 2.0];
        let b = [0.5f32, -1.0, 2.5];
        let base = first(image_rng(7, "noise", &a));
        assert_eq!(base, first(image_rng(7, "noise", &a)));
        assert_ne!(base, first(image_rng(8, "noise", &a)));
        assert_ne!(base, first(image_rng(7, "noise", &b)));
        assert_ne!(base, first(image_rng(7, "baseline", &a)));
    }
}
