//! The inputs every engine times, defined so that Rust and Python compute the same values
//! bit for bit without sharing a random generator: value `j` of the flat `[B, 3, S, S]` batch
//! is `h / 2³² · 2 − 1` with `h = (2654435761 · j + 12345) mod 2³²` (Knuth's multiplicative
//! hash; integer arithmetic, then one float64 → float32 rounding), and image `i` explains
//! class `(366 + 97 i) mod classes` (366 = gorilla, the class the practical visualizes).
//! `tools/reference/bench_common.py` (`bench_inputs`, `bench_targets`) is the Python copy.

/// The class of the first image, and of the class-visualization run.
pub const CLASS: usize = 366;

/// The batch `[batch, 3, size, size]` (flat, row-major) every engine times.
pub fn inputs(batch: usize, size: usize) -> Vec<f32> {
    (0..(batch * 3 * size * size) as u64)
        .map(|j| {
            let h = j.wrapping_mul(2_654_435_761).wrapping_add(12_345) & 0xFFFF_FFFF;
            (h as f64 / 4_294_967_296.0 * 2.0 - 1.0) as f32
        })
        .collect()
}

/// The class each of `batch` images explains, for a model with `classes` classes.
pub fn targets(batch: usize, classes: usize) -> Vec<usize> {
    (0..batch)
        .map(|i| (CLASS + 97 * i) % classes.max(1))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_python_computes_too() {
        // numpy: ((np.arange(4, dtype=np.uint64) * 2654435761 + 12345) & 0xFFFFFFFF)
        //        / 2**32 * 2 - 1, as float32
        let x = inputs(1, 2);
        assert_eq!(x.len(), 12);
        let expect = [
            (12_345f64 / 4_294_967_296.0 * 2.0 - 1.0) as f32,
            ((2_654_435_761u64 + 12_345) as f64 / 4_294_967_296.0 * 2.0 - 1.0) as f32,
        ];
        assert_eq!(&x[..2], &expect);
        assert!(x.iter().all(|v| (-1.0..1.0).contains(v)));
        assert_eq!(targets(3, 1000), [366, 463, 560]);
        assert_eq!(targets(2, 10), [6, 3]);
    }
}
