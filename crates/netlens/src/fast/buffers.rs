//! Buffer pools: activations and gradients come from a pool sized by the first pass at a
//! given input shape and reused afterwards, and what a forward pass saves for its backward
//! pass (masks, argmaxes, derivatives) is recycled the same way.

/// Reusable float buffers; a deterministic sequence of requests reuses the same buffers
/// every pass, so loops do not allocate after their first iteration.
#[derive(Debug, Default)]
pub(super) struct Pool {
    free: Vec<Vec<f32>>,
}

impl Pool {
    /// A buffer of at least `n` floats with arbitrary contents (callers use `[..n]`).
    /// Buffers are never shortened, so reusing one costs no zero-filling.
    pub(super) fn get(&mut self, n: usize) -> Vec<f32> {
        let pick = self
            .free
            .iter()
            .enumerate()
            .filter(|(_, b)| b.len() >= n)
            .min_by_key(|(_, b)| b.len())
            .map(|(i, _)| i)
            .or_else(|| {
                self.free
                    .iter()
                    .enumerate()
                    .max_by_key(|(_, b)| b.len())
                    .map(|(i, _)| i)
            });
        let mut b = match pick {
            Some(i) => self.free.swap_remove(i),
            None => Vec::new(),
        };
        if b.len() < n {
            b.resize(n, 0.0);
        }
        b
    }
    pub(super) fn put(&mut self, b: Vec<f32>) {
        self.free.push(b);
    }
}

/// What a forward pass keeps for its backward pass, per node: the ReLU family's 0/1 masks,
/// pooling argmaxes, and float state — a smooth activation's derivative, or a per-channel
/// scale's two inputs (`x` then `s`).
#[derive(Debug, Default)]
pub(super) struct SavedData {
    pub masks: Vec<Vec<u8>>,
    pub argmax: Vec<Vec<u32>>,
    pub floats: Vec<Vec<f32>>,
}
