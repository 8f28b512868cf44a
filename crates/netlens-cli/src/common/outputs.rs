//! Output-path safety and the CLI's writers: `--force`, never writing over an input, and
//! every file written whole (and recorded in the run's manifest).

use anyhow::Result;
use netlens::files::Existing;
use netlens::imaging::output;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

static FORCE: AtomicBool = AtomicBool::new(false);

/// The files this run reads (canonical paths): never written, even with `--force`.
static INPUTS: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());

/// Records the global `--force` flag.
pub fn set_force(force: bool) {
    FORCE.store(force, Ordering::SeqCst);
}

/// Whether `--force` was given.
pub fn forced() -> bool {
    FORCE.load(Ordering::SeqCst)
}

/// What a write does with an existing file: replace it with `--force`, else refuse (checked
/// again at the moment the finished file is renamed into place).
pub fn existing() -> Existing {
    if forced() {
        Existing::Replace
    } else {
        Existing::Refuse
    }
}

/// Records files this run reads, so that no output is ever written over one of them.
pub fn note_inputs<'a>(paths: impl IntoIterator<Item = &'a Path>) {
    let mut inputs = INPUTS.lock().unwrap_or_else(|e| e.into_inner());
    for p in paths {
        if let Ok(c) = p.canonicalize() {
            if !inputs.contains(&c) {
                inputs.push(c);
            }
        }
    }
}

/// Fails if `path` is (the same file as) one of the inputs noted with [`note_inputs`].
pub fn check_not_input(path: &Path) -> Result<()> {
    let Ok(c) = path.canonicalize() else {
        return Ok(()); // does not exist yet, so it is no input
    };
    let inputs = INPUTS.lock().unwrap_or_else(|e| e.into_inner());
    if inputs.iter().any(|i| *i == c || same_file(i, &c)) {
        anyhow::bail!(
            "{} is one of this run's inputs; netlens never writes over an input, even with \
             --force: choose another output",
            path.display()
        );
    }
    Ok(())
}

#[cfg(unix)]
fn same_file(a: &Path, b: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (std::fs::metadata(a), std::fs::metadata(b)) {
        (Ok(x), Ok(y)) => x.dev() == y.dev() && x.ino() == y.ino(),
        _ => false,
    }
}

#[cfg(not(unix))]
fn same_file(_: &Path, _: &Path) -> bool {
    false
}

/// Fails if `path` is an input, or exists and `--force` was not given: netlens never
/// overwrites a user's file silently. (Checked before the work starts, so that a long run does
/// not fail at the end; the write itself checks again.)
pub fn check_writable(path: &Path) -> Result<()> {
    check_not_input(path)?;
    if std::fs::symlink_metadata(path).is_ok() && !forced() {
        anyhow::bail!(
            "{} already exists; pass --force to overwrite it or choose another output",
            path.display()
        );
    }
    Ok(())
}

/// Checks every path with [`check_writable`] before anything is written.
pub fn check_all_writable<'a>(paths: impl IntoIterator<Item = &'a Path>) -> Result<()> {
    paths.into_iter().try_for_each(check_writable)
}

/// Notes `inputs` ([`note_inputs`]), then checks every output with [`check_writable`].
pub fn check_outputs<'a>(
    outputs: impl IntoIterator<Item = &'a Path>,
    inputs: impl IntoIterator<Item = &'a Path>,
) -> Result<()> {
    let inputs: Vec<&Path> = inputs.into_iter().collect();
    note_inputs(inputs.iter().copied());
    let outputs: Vec<&Path> = outputs.into_iter().collect();
    // Outputs named after an input whose name is not UTF-8 would get U+FFFD in place of its
    // bytes (and two such inputs the same name): refused.
    let lossy = outputs
        .iter()
        .any(|o| o.to_string_lossy().contains('\u{FFFD}'));
    if let Some(bad) = inputs
        .iter()
        .find(|i| lossy && i.file_name().is_some_and(|n| n.to_str().is_none()))
    {
        anyhow::bail!(
            "{}: the file name is not UTF-8, and outputs are named after it; rename the file",
            bad.display()
        );
    }
    check_all_writable(outputs)
}

/// Writes an image as PNG, whatever the name's extension (see [`save_image`]).
pub fn save_png(img: &image::RgbImage, path: &Path) -> Result<()> {
    check_not_input(path)?;
    output::save_image_as(img, path, output::Format::Png, existing())?;
    crate::manifest::wrote(path);
    Ok(())
}

/// Writes an image in the format its extension names (.png, .jpg/.jpeg; others refused):
/// whole or not at all, never over an input, never over an existing file without `--force`.
pub fn save_image(img: &image::RgbImage, path: &Path) -> Result<()> {
    check_not_input(path)?;
    output::save_image(img, path, existing())?;
    crate::manifest::wrote(path);
    Ok(())
}

/// Writes a text file (a table, a CSV), like [`save_image`].
pub fn save_text(text: &str, path: &Path) -> Result<()> {
    check_not_input(path)?;
    netlens::files::write_bytes(path, existing(), text.as_bytes())?;
    crate::manifest::wrote(path);
    Ok(())
}
