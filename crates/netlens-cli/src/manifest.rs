//! What one run of a command did, typed: the command line that reproduces it, the parameters
//! in force (in words from the library's `describe()`, and by name), the files it wrote, its
//! run time and its warnings.
//!
//! Every command that writes files runs as `execute(&Args, &Run)`: the [`Run`] collects its
//! output lines (printed as they come on the command line, kept by `netlens report`, which
//! calls the same functions in-process), the figures it marks and the notes it gives. The
//! files come from [`wrote`], which every writer of `common` calls, so a command cannot write
//! a file its manifest leaves out. With `--json`, the last line of the output carries the
//! manifest: a `"manifest"` field of the command's one JSON object (`robustness`,
//! `transfer`, `locate-bench`), or a line of its own after the JSON lines of the others.

use serde::{Deserialize, Serialize};
use std::cell::RefCell;
use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Instant;

/// A command's record of one run.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Manifest {
    /// The subcommand (`saliency`, `visualize`...).
    pub command: String,
    /// The arguments after `netlens` that reproduce the run.
    pub command_line: Vec<String>,
    /// The parameters in force, in words (from the library's `describe()` of its configs).
    pub summary: String,
    /// The parameters in force, by name.
    pub parameters: BTreeMap<String, serde_json::Value>,
    /// Every file written, in the order written.
    pub files: Vec<Written>,
    /// Wall-clock seconds of the run (model loading included).
    pub seconds: f64,
    /// Notes given on stderr ("netlens: note: ...").
    pub warnings: Vec<String>,
}

/// One file a run wrote.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Written {
    /// The path as the command was given it (relative to its working folder when relative).
    pub path: String,
    pub kind: FileKind,
}

/// What a written file is.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum FileKind {
    /// The picture that sums the run up (what a page shows).
    Figure,
    /// Another picture (a map, a fooling image, a snapshot).
    Image,
    /// Numbers (.npy).
    Array,
    /// A table or text (.csv, .txt, .json).
    Table,
}

impl FileKind {
    fn of(path: &Path) -> Self {
        match path
            .extension()
            .and_then(|e| e.to_str())
            .map(str::to_ascii_lowercase)
            .as_deref()
        {
            Some("npy") => FileKind::Array,
            Some("png" | "jpg" | "jpeg") => FileKind::Image,
            _ => FileKind::Table,
        }
    }
}

/// Files written since the current [`Run`] started (process-wide, like `common`'s inputs:
/// commands write from worker threads' results but one run at a time).
static WRITTEN: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());

/// Records a file as written (called by every writer in `common`; a file written twice is
/// listed once, by [`Run::manifest`]). A path per file: the list grows with the outputs, as
/// the manifest that lists them does.
pub fn wrote(path: &Path) {
    let mut w = WRITTEN.lock().unwrap_or_else(|e| e.into_inner());
    w.push(path.to_path_buf());
}

/// One run of a command: where its output lines go, and what it records for the manifest.
pub struct Run {
    start: Instant,
    /// `None`: lines are printed; `Some`: kept (the report).
    kept: Option<RefCell<Vec<String>>>,
    manifest: RefCell<Manifest>,
    figures: RefCell<Vec<PathBuf>>,
}

impl Run {
    /// A run of `command` with `command_line` (the arguments after `netlens`); `keep` keeps
    /// the output lines instead of printing them.
    pub fn new(command: &str, command_line: Vec<String>, keep: bool) -> Self {
        WRITTEN.lock().unwrap_or_else(|e| e.into_inner()).clear();
        Run {
            start: Instant::now(),
            kept: keep.then(|| RefCell::new(Vec::new())),
            manifest: RefCell::new(Manifest {
                command: command.to_string(),
                command_line,
                ..Manifest::default()
            }),
            figures: RefCell::new(Vec::new()),
        }
    }

    /// A run of the command this process was started with (its arguments, `--json` or not;
    /// an argument that is not UTF-8, such as a file name, shown with U+FFFD).
    pub fn from_process(command: &str) -> Self {
        let args = std::env::args_os().skip(1);
        Self::new(
            command,
            args.map(|a| a.to_string_lossy().into_owned()).collect(),
            false,
        )
    }

    /// One line of the command's standard output.
    pub fn line(&self, s: impl std::fmt::Display) {
        match &self.kept {
            Some(k) => k.borrow_mut().push(s.to_string()),
            None => println!("{s}"),
        }
    }

    /// Marks a written (or about to be written) file as the run's figure.
    pub fn figure(&self, path: &Path) {
        self.figures.borrow_mut().push(path.to_path_buf());
    }

    /// The parameters in words (from the library's `describe()`), appended with "; ".
    pub fn summary(&self, s: impl Into<String>) {
        let mut m = self.manifest.borrow_mut();
        let s = s.into();
        if m.summary.is_empty() {
            m.summary = s;
        } else {
            m.summary = format!("{}; {s}", m.summary);
        }
    }

    /// One parameter in force.
    pub fn param(&self, name: &str, value: impl Serialize) {
        let v = serde_json::to_value(value).unwrap_or(serde_json::Value::Null);
        self.manifest
            .borrow_mut()
            .parameters
            .insert(name.to_string(), v);
    }

    /// A status line (a timing) on stderr from the command line; a report, which keeps the
    /// run's time in the manifest, leaves it out.
    pub fn status(&self, s: impl std::fmt::Display) {
        if self.kept.is_none() {
            eprintln!("{s}");
        }
    }

    /// A note for the user: on stderr as "netlens: note: ...", and in the manifest.
    pub fn warn(&self, s: impl Into<String>) {
        let s = s.into();
        eprintln!("netlens: note: {s}");
        self.manifest.borrow_mut().warnings.push(s);
    }

    /// The finished manifest (the files written so far, the time so far).
    pub fn manifest(&self) -> Manifest {
        let mut m = self.manifest.borrow().clone();
        let marked = self.figures.borrow();
        let figures: HashSet<&PathBuf> = marked.iter().collect();
        let written = WRITTEN.lock().unwrap_or_else(|e| e.into_inner());
        let mut seen = HashSet::new();
        m.files = written
            .iter()
            .filter(|p| seen.insert(*p))
            .map(|p| Written {
                path: p.display().to_string(),
                kind: if figures.contains(p) {
                    FileKind::Figure
                } else {
                    FileKind::of(p)
                },
            })
            .collect();
        m.seconds = self.start.elapsed().as_secs_f64();
        m
    }

    /// The lines kept so far (empty when they were printed).
    pub fn lines(&self) -> Vec<String> {
        self.kept
            .as_ref()
            .map(|k| k.borrow().clone())
            .unwrap_or_default()
    }

    /// Ends the output of a `--json` run: `json` (the command's one object, if it has one)
    /// with a `"manifest"` field, else the manifest on a line of its own.
    pub fn finish_json(&self, json: Option<serde_json::Value>) {
        let manifest = serde_json::to_value(self.manifest()).unwrap_or_default();
        match json {
            Some(serde_json::Value::Object(mut o)) => {
                o.insert("manifest".into(), manifest);
                self.line(serde_json::Value::Object(o));
            }
            _ => self.line(serde_json::json!({ "manifest": manifest })),
        }
    }
}

/// Runs a command from the command line: `execute` with a [`Run`] that prints, then (with
/// `--json`) the manifest after its output (see [`Run::finish_json`]); `execute` answers the
/// command's one JSON object, if it has one.
pub fn cli(
    command: &str,
    json: bool,
    execute: impl FnOnce(&Run) -> anyhow::Result<Option<serde_json::Value>>,
) -> anyhow::Result<()> {
    let run = Run::from_process(command);
    let object = execute(&run)?;
    if json {
        run.finish_json(object);
    } else if let Some(o) = object {
        run.line(o);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_and_figures() {
        let run = Run::new("x", vec![], true);
        wrote(Path::new("a/figure.png"));
        wrote(Path::new("a/m.npy"));
        wrote(Path::new("a/m.png"));
        wrote(Path::new("a/t.csv"));
        wrote(Path::new("a/m.png"));
        run.figure(Path::new("a/figure.png"));
        run.line("one");
        run.finish_json(None);
        let m = run.manifest();
        let kinds: Vec<FileKind> = m.files.iter().map(|f| f.kind).collect();
        use FileKind::*;
        assert_eq!(kinds, [Figure, Array, Image, Table]);
        let lines = run.lines();
        assert_eq!(lines.len(), 2);
        let back: serde_json::Value = serde_json::from_str(&lines[1]).unwrap_or_default();
        let back: Manifest = serde_json::from_value(back["manifest"].clone()).unwrap_or_default();
        assert_eq!(back.files, m.files);
    }
}
