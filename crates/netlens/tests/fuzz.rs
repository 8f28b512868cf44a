//! Fuzz tests of everything netlens reads from a user: image files, weights files and ONNX
//! models. Each starts from the committed seed corpus (`tests/fuzz/corpus/`, written by
//! `tools/reference/fuzz_corpus.py`: small valid files of every format), applies random
//! mutations (bit flips, byte stores, 32-bit stores of boundary values — sizes and counts
//! are where parsers break —, insertions, deletions, duplicated spans, truncation) with
//! proptest, and checks that the reader returns a value or an error and never panics or
//! aborts. The case counts bound the run (a few seconds each in release mode); failures
//! proptest finds are kept in `tests/fuzz/regressions/` and replayed first on every run.
//!
//! Coverage-guided fuzzing (cargo-fuzz) needs a nightly toolchain this project does not
//! assume; these targets take the same inputs and can be run longer with
//! `PROPTEST_CASES=100000 cargo test --release --test fuzz`.

use netlens::imaging::decode::decode_rgb;
use proptest::prelude::*;
use proptest::test_runner::{Config, FileFailurePersistence};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

fn corpus(kind: &str) -> Vec<(String, Vec<u8>)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fuzz/corpus")
        .join(kind);
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.expect("corpus entry").path())
        .collect();
    files.sort();
    let out: Vec<_> = files
        .into_iter()
        .map(|p| {
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            (name, std::fs::read(&p).expect("read corpus file"))
        })
        .collect();
    assert!(!out.is_empty(), "empty corpus {}", dir.display());
    out
}

/// One change to a file's bytes; positions are taken modulo the length at the time.
#[derive(Debug, Clone)]
enum Mutation {
    FlipBit(usize, u8),
    Store(usize, u8),
    Store32(usize, u32),
    Insert(usize, Vec<u8>),
    Delete(usize, usize),
    Duplicate(usize, usize),
    Truncate(usize),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    let boundary = prop_oneof![
        Just(0u32),
        Just(1),
        Just(0x7FFF_FFFF),
        Just(0x8000_0000),
        Just(0xFFFF_FFFF),
        Just(0xFFFF),
        Just(0x1_0000),
        any::<u32>(),
    ];
    prop_oneof![
        4 => (any::<usize>(), 0u8..8).prop_map(|(p, b)| Mutation::FlipBit(p, b)),
        3 => (any::<usize>(), any::<u8>()).prop_map(|(p, v)| Mutation::Store(p, v)),
        3 => (any::<usize>(), boundary).prop_map(|(p, v)| Mutation::Store32(p, v)),
        1 => (any::<usize>(), proptest::collection::vec(any::<u8>(), 1..16))
            .prop_map(|(p, v)| Mutation::Insert(p, v)),
        1 => (any::<usize>(), 1usize..64).prop_map(|(p, n)| Mutation::Delete(p, n)),
        1 => (any::<usize>(), 1usize..64).prop_map(|(p, n)| Mutation::Duplicate(p, n)),
        1 => any::<usize>().prop_map(Mutation::Truncate),
    ]
}

fn apply(bytes: &mut Vec<u8>, m: &Mutation) {
    if bytes.is_empty() {
        return;
    }
    let at = |p: usize, b: &Vec<u8>| p % b.len();
    match m {
        Mutation::FlipBit(p, bit) => {
            let i = at(*p, bytes);
            bytes[i] ^= 1 << bit;
        }
        Mutation::Store(p, v) => {
            let i = at(*p, bytes);
            bytes[i] = *v;
        }
        Mutation::Store32(p, v) => {
            let i = at(*p, bytes);
            for (k, b) in v.to_le_bytes().into_iter().enumerate() {
                if let Some(slot) = bytes.get_mut(i + k) {
                    *slot = b;
                }
            }
        }
        Mutation::Insert(p, v) => {
            let i = at(*p, bytes);
            bytes.splice(i..i, v.iter().copied());
        }
        Mutation::Delete(p, n) => {
            let i = at(*p, bytes);
            let end = (i + n).min(bytes.len());
            bytes.drain(i..end);
        }
        Mutation::Duplicate(p, n) => {
            let i = at(*p, bytes);
            let end = (i + n).min(bytes.len());
            let span: Vec<u8> = bytes[i..end].to_vec();
            bytes.splice(end..end, span);
        }
        Mutation::Truncate(p) => {
            let n = at(*p, bytes);
            bytes.truncate(n);
        }
    }
}

/// A corpus file with 1–6 mutations applied.
fn mutated(kind: &'static str) -> impl Strategy<Value = (String, Vec<u8>)> {
    let files = corpus(kind);
    (0..files.len(), proptest::collection::vec(mutation(), 1..=6)).prop_map(move |(k, ms)| {
        let (name, mut bytes) = files[k].clone();
        for m in &ms {
            apply(&mut bytes, m);
        }
        (name, bytes)
    })
}

fn config(cases: u32) -> Config {
    Config {
        cases: std::env::var("PROPTEST_CASES")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(cases),
        failure_persistence: Some(Box::new(FileFailurePersistence::Direct(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fuzz/regressions/fuzz.txt"
        )))),
        ..Config::default()
    }
}

/// A file of its own for readers that take a path; removed when dropped.
struct Scratch(PathBuf);

impl Scratch {
    fn with(name: &str, bytes: &[u8]) -> Self {
        static N: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "netlens-fuzz-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::SeqCst)
        ));
        std::fs::create_dir_all(&dir).expect("scratch dir");
        let path = dir.join(name);
        std::fs::write(&path, bytes).expect("scratch file");
        Self(path)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        if let Some(d) = self.0.parent() {
            let _ = std::fs::remove_dir_all(d);
        }
    }
}

#[test]
fn corpus_files_are_valid() {
    for (name, bytes) in corpus("images") {
        decode_rgb(&bytes, Path::new(&name)).unwrap_or_else(|e| panic!("{name}: {e}"));
    }
    for (name, bytes) in corpus("weights") {
        let f = Scratch::with(&name, &bytes);
        let sd = netlens::weights::read_state_dict(&f.0).unwrap_or_else(|e| panic!("{name}: {e}"));
        // Four float tensors; the integer `num_batches_tracked` is bookkeeping, skipped.
        assert_eq!(sd.len(), 4, "{name}");
    }
    for (name, bytes) in corpus("onnx") {
        let f = Scratch::with(&name, &bytes);
        netlens::onnx::import(&f.0).unwrap_or_else(|e| panic!("{name}: {e}"));
    }
}

proptest! {
    #![proptest_config(config(5000))]
    #[test]
    fn mutated_images_decode_or_fail_cleanly((name, bytes) in mutated("images")) {
        if let Ok(img) = decode_rgb(&bytes, Path::new(&name)) {
            prop_assert!(img.width() >= 8 && img.height() >= 8);
        }
    }
}

proptest! {
    #![proptest_config(config(1500))]
    #[test]
    fn mutated_weights_load_or_fail_cleanly((name, bytes) in mutated("weights")) {
        let f = Scratch::with(&name, &bytes);
        if let Ok(sd) = netlens::weights::read_state_dict(&f.0) {
            prop_assert!(sd.len() <= 64);
        }
    }
}

proptest! {
    #![proptest_config(config(1500))]
    #[test]
    fn mutated_onnx_files_import_or_fail_cleanly((name, bytes) in mutated("onnx")) {
        let f = Scratch::with(&name, &bytes);
        let _ = netlens::onnx::import(&f.0);
    }
}
