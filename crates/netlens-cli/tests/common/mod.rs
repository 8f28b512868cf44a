//! Helpers the CLI's integration tests share: the repository root, running the binary there,
//! a fresh scratch folder.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicUsize, Ordering};

/// The repository root (commands run there, so fixture paths are relative to it).
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Runs the `netlens` binary in the repository root.
pub fn netlens(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_netlens"))
        .args(args)
        .current_dir(root())
        .output()
        .expect("run netlens")
}

/// A fresh, empty folder under the system's temporary folder, unique to this process and
/// call: `netlens-<kind>-test-<pid>-<n>-<name>`.
pub fn fresh_dir(kind: &str, name: &str) -> PathBuf {
    static N: AtomicUsize = AtomicUsize::new(0);
    let dir = std::env::temp_dir().join(format!(
        "netlens-{kind}-test-{}-{}-{name}",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst)
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}
