//! The library's error type: one variant per thing a user can get wrong or a file can be.
//!
//! Every message is one sentence that says what failed and, where there is one, what to do.

use std::path::PathBuf;

/// Everything that can go wrong in netlens.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A file could not be opened or read.
    #[error("cannot read {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A file could not be written.
    #[error("cannot write {path}: {source}")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The file exists but is not an image netlens can decode.
    #[error("{path} is not a readable image: {reason}")]
    BadImage { path: PathBuf, reason: String },
    /// The image is too small or too large to be a sensible input.
    #[error("{path}: {reason}")]
    ImageSize { path: PathBuf, reason: String },
    /// A class name or index that does not name exactly one ImageNet class.
    #[error("{0}")]
    Class(String),
    /// An unknown model name.
    #[error("unknown model '{name}'; known models: {known}")]
    UnknownModel { name: String, known: String },
    /// A weights file that cannot be read, or whose tensors do not fit the architecture.
    #[error("{0}")]
    Weights(String),
    /// Fetching weights failed (pip missing, offline, bad checksum...).
    #[error("{0}")]
    Fetch(String),
    /// A network graph that cannot be run (a shape mismatch, an unsupported operation).
    #[error("{0}")]
    Graph(String),
    /// An ONNX file that cannot be imported.
    #[error("{path}: {reason}")]
    Onnx { path: PathBuf, reason: String },
    /// An argument out of its valid range.
    #[error("{0}")]
    Invalid(String),
}

/// Shorthand for results in netlens.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }
    pub(crate) fn write(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Write {
            path: path.into(),
            source,
        }
    }
}
