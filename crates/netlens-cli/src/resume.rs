//! `--shard I/N` and `--skip-existing`: how a long run is split over machines (Slurm arrays,
//! xargs, any scheduler) or resumed after an interruption, in whole blocks of the streaming
//! chunks so that the bytes written are those of one whole run.

use clap::Args as ClapArgs;

/// `--shard I/N` and `--skip-existing`: how a long run is split over machines or resumed.
#[derive(ClapArgs, Debug, Clone, Default)]
pub struct ResumeArgs {
    /// Resume an interrupted run: leave out images whose output files all exist (in whole
    /// blocks of chunks, so the maps written are the bytes of an uninterrupted run); existing
    /// files are kept, never refused or replaced
    #[arg(long)]
    pub skip_existing: bool,
    /// Run only shard I of N (1 ≤ I ≤ N ≤ 100000): the images are cut into blocks of whole
    /// chunks in the order given, and block k goes to shard k mod N + 1; N runs with the same
    /// images and I = 1..N together do the whole run, with the same bytes (every method:
    /// seeded noise is drawn per image, from the seed and the image's pixels)
    #[arg(long, value_name = "I/N", value_parser = parse_shard)]
    pub shard: Option<Shard>,
}

/// One shard of a run: `index` (0-based) of `count`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    pub index: usize,
    pub count: usize,
}

/// Parses `I/N` with 1 ≤ I ≤ N ≤ 100000.
pub fn parse_shard(s: &str) -> std::result::Result<Shard, String> {
    let bad = || format!("'{s}' is not a shard I/N with 1 ≤ I ≤ N ≤ 100000 (e.g. 2/4)");
    let (i, n) = s.trim().split_once('/').ok_or_else(bad)?;
    let i: usize = i.trim().parse().map_err(|_| bad())?;
    let n: usize = n.trim().parse().map_err(|_| bad())?;
    if i == 0 || n == 0 || i > n || n > 100_000 {
        return Err(bad());
    }
    Ok(Shard {
        index: i - 1,
        count: n,
    })
}

impl ResumeArgs {
    /// Whether this run does only part of the images (a shard, or a resumed run).
    pub fn partial(&self) -> bool {
        self.skip_existing || self.shard.is_some()
    }

    /// Indices of the images this run does, of `n` in blocks of `block`: the blocks of this
    /// shard, less (with `--skip-existing`) those whose every image is `done`.
    pub fn select(&self, n: usize, block: usize, done: impl Fn(usize) -> bool) -> Vec<usize> {
        let block = block.max(1);
        (0..n.div_ceil(block))
            .filter(|k| self.shard.is_none_or(|s| k % s.count == s.index))
            .map(|k| k * block..((k + 1) * block).min(n))
            .filter(|r| !(self.skip_existing && r.clone().all(&done)))
            .flatten()
            .collect()
    }

    /// Why [`ResumeArgs::select`] left nothing of `n` images.
    pub fn why_empty(&self, n: usize) -> String {
        match self.shard {
            Some(s) if !self.skip_existing => format!(
                "shard {}/{} gets no image of {n} (blocks of whole chunks go round the shards)",
                s.index + 1,
                s.count
            ),
            _ => format!("the outputs of all {n} images of this run exist (--skip-existing)"),
        }
    }
}

#[cfg(test)]
mod resume_tests {
    use super::*;

    #[test]
    fn shards_cover_every_image_once_in_whole_blocks() {
        let n = 75;
        let mut seen = vec![0; n];
        for i in 1..=3 {
            let r = ResumeArgs {
                shard: Some(parse_shard(&format!("{i}/3")).expect("valid shard")),
                ..Default::default()
            };
            let picked = r.select(n, 16, |_| false);
            assert!(picked.chunks(16).all(|c| c[0] % 16 == 0));
            picked.into_iter().for_each(|j| seen[j] += 1);
        }
        assert!(seen.iter().all(|&c| c == 1));
        for bad in ["0/3", "4/3", "3", "a/b", "1/0", "1/100001"] {
            assert!(parse_shard(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn skip_existing_leaves_only_whole_done_blocks() {
        let r = ResumeArgs {
            skip_existing: true,
            ..Default::default()
        };
        // Block 0 (0..4) done, block 1 (4..8) half done, block 2 (8..10) not done.
        let picked = r.select(10, 4, |i| i < 6);
        assert_eq!(picked, (4..10).collect::<Vec<_>>());
    }
}
