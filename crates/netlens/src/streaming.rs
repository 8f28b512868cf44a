//! How many images a run holds at once: commands (and the Python package) decode, run, write
//! and drop images a chunk at a time, so that memory does not grow with the number of images.

/// Images per chunk, about.
pub const STREAM_IMAGES: usize = 32;

/// Images per streamed chunk: about [`STREAM_IMAGES`], rounded up to a multiple of every
/// batch size in `batches`, so that the network sees the very batches it would see were all
/// images run at once (same bytes out, chunked or not).
pub fn chunk_size(batches: &[usize]) -> usize {
    fn gcd(a: usize, b: usize) -> usize {
        if b == 0 {
            a
        } else {
            gcd(b, a % b)
        }
    }
    let lcm = batches
        .iter()
        .map(|&b| b.max(1))
        .fold(1, |l, b| l / gcd(l, b) * b);
    lcm * STREAM_IMAGES.div_ceil(lcm)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whole_batches_of_every_size() {
        assert_eq!(chunk_size(&[8, 16]), 32);
        assert_eq!(chunk_size(&[5, 16]), 80);
        assert_eq!(chunk_size(&[1]), 32);
        assert_eq!(chunk_size(&[0]), 32);
    }
}
