//! External tensor data: files named by a tensor's `location`, which must stay inside the
//! model's folder (a relative path without `..`, no symbolic link out of it, a regular
//! file), read at the tensor's `offset` for exactly its length.

use super::import::R;
use super::proto::TensorProto;
use std::collections::HashMap;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Component, Path, PathBuf};

/// Reads external tensor data from files in the model's folder.
pub(super) struct External {
    dir: PathBuf,
    /// The folder, canonicalized on first use.
    root: Option<PathBuf>,
    /// location → (canonical path, size in bytes).
    files: HashMap<String, (PathBuf, u64)>,
}

impl External {
    pub(super) fn new(dir: PathBuf) -> Self {
        Self {
            dir,
            root: None,
            files: HashMap::new(),
        }
    }

    /// The `nbytes` bytes of tensor `t`'s external data.
    pub(super) fn read(&mut self, t: &TensorProto, what: &str, nbytes: usize) -> R<Vec<u8>> {
        let key = |k: &str| {
            t.external_data
                .iter()
                .rev()
                .find(|e| e.key == k)
                .map(|e| e.value.as_str())
        };
        let location = key("location")
            .filter(|l| !l.is_empty())
            .ok_or_else(|| format!("{what} is stored externally but names no location"))?;
        let number = |k: &str| -> R<Option<u64>> {
            key(k)
                .map(|v| {
                    v.trim().parse::<u64>().map_err(|_| {
                        format!("{what}: external data {k} '{v}' is not a non-negative integer")
                    })
                })
                .transpose()
        };
        let offset = number("offset")?.unwrap_or(0);
        let want = nbytes as u64;
        if let Some(len) = number("length")? {
            if len != want {
                return Err(format!(
                    "{what} declares dims {:?} ({nbytes} bytes) but its external data length \
                     is {len}",
                    t.dims
                ));
            }
        }
        let (file, size) = self.open(location, what)?;
        let end = offset
            .checked_add(want)
            .ok_or_else(|| format!("{what}: external data offset {offset} is too large"))?;
        if end > size {
            return Err(format!(
                "{what}: external data at offset {offset}, length {want} runs past the end of \
                 '{location}' ({size} bytes)"
            ));
        }
        let io = |e: std::io::Error| format!("{what}: cannot read external data '{location}': {e}");
        let mut f = std::fs::File::open(&file).map_err(io)?;
        f.seek(SeekFrom::Start(offset)).map_err(io)?;
        let mut buf = Vec::new();
        buf.try_reserve_exact(nbytes)
            .map_err(|_| format!("{what}: cannot allocate {nbytes} bytes"))?;
        f.take(want).read_to_end(&mut buf).map_err(io)?;
        if buf.len() != nbytes {
            return Err(format!(
                "{what}: external data '{location}' ended after {} of {nbytes} bytes",
                buf.len()
            ));
        }
        Ok(buf)
    }

    /// The canonical path and size of external data file `location`, which must be a
    /// regular file inside the model's folder.
    fn open(&mut self, location: &str, what: &str) -> R<(PathBuf, u64)> {
        if let Some(f) = self.files.get(location) {
            return Ok(f.clone());
        }
        let rel = Path::new(location);
        let outside = || {
            format!(
                "{what}: external data location '{location}' is outside the model's folder \
                 (it must be a relative path without '..')"
            )
        };
        if location.contains('\0') || rel.is_absolute() || rel.has_root() {
            return Err(outside());
        }
        if rel
            .components()
            .any(|c| !matches!(c, Component::Normal(_) | Component::CurDir))
        {
            return Err(outside());
        }
        let root = match &self.root {
            Some(r) => r.clone(),
            None => {
                let r = self.dir.canonicalize().map_err(|e| {
                    format!(
                        "cannot resolve the model's folder {}: {e}",
                        self.dir.display()
                    )
                })?;
                self.root = Some(r.clone());
                r
            }
        };
        let file = self
            .dir
            .join(rel)
            .canonicalize()
            .map_err(|e| format!("{what}: cannot open external data file '{location}': {e}"))?;
        if !file.starts_with(&root) {
            return Err(format!(
                "{what}: external data file '{location}' resolves outside the model's folder \
                 (a symbolic link?)"
            ));
        }
        let meta = std::fs::metadata(&file)
            .map_err(|e| format!("{what}: cannot open external data file '{location}': {e}"))?;
        if !meta.is_file() {
            return Err(format!(
                "{what}: external data '{location}' is not a regular file"
            ));
        }
        let entry = (file, meta.len());
        self.files.insert(location.to_string(), entry.clone());
        Ok(entry)
    }
}
