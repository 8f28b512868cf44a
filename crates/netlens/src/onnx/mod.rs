//! ONNX import: an `.onnx` file into netlens's own [`Graph`](crate::graph::Graph).
//!
//! The file is untrusted input. It is read only when it is a regular file of at most
//! [`MAX_MODEL_BYTES`], decoded with prost against a hand-written subset of the ONNX schema
//! ([`proto`]), and every part that could make a later step misbehave is checked before it
//! is used: the opset (13 to 21), the one image input and the one output, every tensor's
//! data type and its dims against the bytes it really holds (overflow-safe, at most 2^31
//! elements, before anything is allocated), external data files (inside the model's folder,
//! regular files, the range within the file), value names (no unknown reads, no duplicate
//! writes), the node order (sorted here, a cycle is an error), and each operation's
//! attributes. A malformed file is an [`Error::Onnx`](crate::Error::Onnx) naming what is
//! wrong, never a panic.
//!
//! Why not burn's `onnx-ir`: it panics on inputs it does not expect (an unusual attribute or
//! a malformed file would abort the process rather than return an error), and its types are
//! its parser's, shaped for burn's code generator. netlens interprets one small graph of its
//! own (the zoo's networks are built as the same [`Graph`](crate::graph::Graph)), so all it
//! needs is the protobuf schema and a mapping of each ONNX operation onto
//! [`Op`](crate::graph::Op). The subset of the schema is small enough to write by hand as
//! prost messages: no `protoc`, no build script.

mod attrs;
mod build;
mod checks;
mod external;
mod import;
mod ops;
mod order;
pub mod proto;
mod tensor;

use crate::error::{Error, Result};
use std::io::Read;
use std::path::Path;

/// The largest model file netlens reads (protobuf itself caps a message at 2 GiB; weights
/// beyond that live in external data files, which are read tensor by tensor).
pub const MAX_MODEL_BYTES: u64 = 4 << 30;

/// An imported model.
#[derive(Debug, Clone)]
pub struct Imported {
    /// The network, validated ([`Graph::validate`](crate::graph::Graph::validate)), with a
    /// final Softmax taken off.
    pub graph: crate::graph::Graph,
    /// The declared input shape `[N, C, H, W]`; `None` for a symbolic or unknown dimension.
    pub input_dims: [Option<usize>; 4],
    /// Whether a final Softmax (or LogSoftmax) was taken off
    /// ([`strip_softmax`](crate::graph::fold::strip_softmax)).
    pub ends_in_softmax: bool,
    /// Version of the default ONNX operator set the model uses.
    pub opset: i64,
    /// The tool that wrote the file: `producer_name` and `producer_version`.
    pub producer: String,
}

/// Reads and imports the ONNX model at `path`.
pub fn import(path: &Path) -> Result<Imported> {
    let bytes = read_model(path)?;
    let model = <proto::ModelProto as prost::Message>::decode(prost::bytes::Bytes::from(bytes))
        .map_err(|e| Error::Onnx {
            path: path.to_path_buf(),
            reason: format!("not an ONNX model (the protobuf does not decode: {e})"),
        })?;
    import::convert(&model, path).map_err(|reason| Error::Onnx {
        path: path.to_path_buf(),
        reason: one_line(&reason),
    })
}

/// `reason` with control characters escaped (names come from the file) and cut to a
/// readable length.
fn one_line(reason: &str) -> String {
    const MAX_CHARS: usize = 4000;
    let mut out = String::with_capacity(reason.len().min(MAX_CHARS + 8));
    for (i, c) in reason.chars().enumerate() {
        if i == MAX_CHARS {
            out.push_str(" [...]");
            break;
        }
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

/// The file's bytes, if it is a regular file no larger than [`MAX_MODEL_BYTES`].
fn read_model(path: &Path) -> Result<Vec<u8>> {
    let onnx = |reason: String| Error::Onnx {
        path: path.to_path_buf(),
        reason,
    };
    let file = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
    let meta = file.metadata().map_err(|e| Error::io(path, e))?;
    if meta.is_dir() {
        return Err(onnx("is a folder, not an ONNX file".into()));
    }
    if !meta.is_file() {
        return Err(onnx("is not a regular file".into()));
    }
    if meta.len() > MAX_MODEL_BYTES {
        return Err(onnx(format!(
            "is {} bytes; netlens reads ONNX files up to {} bytes (store the weights as \
             external data)",
            meta.len(),
            MAX_MODEL_BYTES
        )));
    }
    let mut bytes = Vec::with_capacity(usize::try_from(meta.len()).unwrap_or(0));
    file.take(MAX_MODEL_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| Error::io(path, e))?;
    if bytes.len() as u64 > MAX_MODEL_BYTES {
        return Err(onnx("grew past the size limit while being read".into()));
    }
    Ok(bytes)
}
