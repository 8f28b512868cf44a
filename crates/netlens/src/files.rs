//! Files in and out, safely: every output netlens writes goes through [`write_with`], and every
//! input file it reads whole goes through [`read_regular`].
//!
//! An output is written to a hidden temporary file in the destination's own folder, flushed to
//! disk, and renamed onto its name only once complete, so it appears whole or not at all: a full
//! disk, an error or a kill during the write never leaves a truncated file under the final name,
//! and never destroys the previous file. A temporary file is removed when the write fails; one
//! left by a run that was killed is removed by the next successful write of the same output.
//!
//! Without [`Existing::Replace`] the final rename refuses to replace an existing file *at that
//! moment* (Linux `renameat2(RENAME_NOREPLACE)`, else a hard link, which also fails on an
//! existing name), so of two runs racing for the same output the second gets an error instead of
//! silently replacing the first one's result.
//!
//! Inputs are read only from regular files (a FIFO, a device such as `/dev/zero` or a folder is
//! refused before any byte is read) whose size is checked against a limit first.

use crate::error::{Error, Result};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// What to do when an output's name is already taken when it is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Existing {
    /// Fail with "already exists" and leave the existing file as it is.
    Refuse,
    /// Replace the existing file atomically (readers see the old or the new file, whole).
    Replace,
}

/// Writes `path` through `write`, atomically (see the module documentation); creates the
/// parent folder if needed.
pub fn write_with(
    path: &Path,
    existing: Existing,
    write: impl FnOnce(&mut dyn Write) -> std::io::Result<()>,
) -> Result<()> {
    let err = |e: std::io::Error| Error::write(path, e);
    let name = path
        .file_name()
        .ok_or_else(|| err(std::io::Error::other("not a file name")))?;
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    std::fs::create_dir_all(&dir).map_err(|e| Error::write(&dir, e))?;
    if existing == Existing::Refuse && std::fs::symlink_metadata(path).is_ok() {
        return Err(already_exists(path));
    }
    let (file, tmp) = create_temp(&dir, name).map_err(err)?;
    let mut guard = TempGuard(Some(tmp.clone()));
    let mut out = std::io::BufWriter::new(file);
    write(&mut out).map_err(err)?;
    let file = out.into_inner().map_err(|e| err(e.into_error()))?;
    file.sync_all().map_err(err)?;
    drop(file);
    match existing {
        Existing::Replace => std::fs::rename(&tmp, path).map_err(err)?,
        Existing::Refuse => match rename_noreplace(&tmp, path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                return Err(already_exists(path))
            }
            Err(e) => return Err(err(e)),
        },
    }
    guard.0 = None;
    remove_stale_temps(&dir, name);
    Ok(())
}

/// Removes what runs that were killed while writing `name` left in `dir`: hidden
/// `.<name>.netlens-tmp-<pid>-<n>` files whose process no longer exists (a live process's
/// file, even another run's, is left alone). Best effort: failures are ignored.
fn remove_stale_temps(dir: &Path, name: &std::ffi::OsStr) {
    let Some(name) = name.to_str() else {
        return;
    };
    let prefix = format!(".{name}.netlens-tmp-");
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let file = e.file_name();
        let Some(rest) = file.to_str().and_then(|f| f.strip_prefix(&prefix)) else {
            continue;
        };
        let pid = rest.split('-').next().and_then(|p| p.parse::<u32>().ok());
        if pid.is_some_and(|p| p != std::process::id() && !process_alive(p)) {
            let _ = std::fs::remove_file(e.path());
        }
    }
}

/// Whether a process with this id exists (on systems without a way to tell: assume it does).
fn process_alive(pid: u32) -> bool {
    #[cfg(unix)]
    {
        let Ok(pid) = libc::pid_t::try_from(pid) else {
            return false;
        };
        // SAFETY: signal 0 only checks that the process exists and may be signalled.
        let r = unsafe { libc::kill(pid, 0) };
        r == 0 || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
    }
    #[cfg(not(unix))]
    {
        let _ = pid;
        true
    }
}

/// Writes `bytes` to `path` with [`write_with`].
pub fn write_bytes(path: &Path, existing: Existing, bytes: &[u8]) -> Result<()> {
    write_with(path, existing, |w| w.write_all(bytes))
}

fn already_exists(path: &Path) -> Error {
    Error::write(
        path,
        std::io::Error::new(
            std::io::ErrorKind::AlreadyExists,
            "it already exists (another run may have written it meanwhile); pass --force to \
             overwrite it or choose another output",
        ),
    )
}

/// Removes a temporary file unless the write that made it succeeded.
struct TempGuard(Option<PathBuf>);

impl Drop for TempGuard {
    fn drop(&mut self) {
        if let Some(p) = self.0.take() {
            let _ = std::fs::remove_file(p);
        }
    }
}

/// Creates a fresh hidden file beside the destination: `.<name>.netlens-tmp-<pid>-<n>`.
fn create_temp(dir: &Path, name: &std::ffi::OsStr) -> std::io::Result<(std::fs::File, PathBuf)> {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    loop {
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let mut tmp_name = std::ffi::OsString::from(".");
        tmp_name.push(name);
        tmp_name.push(format!(".netlens-tmp-{}-{n}", std::process::id()));
        let tmp = dir.join(tmp_name);
        match std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&tmp)
        {
            Ok(f) => return Ok((f, tmp)),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e),
        }
    }
}

/// Renames `from` to `to` unless `to` exists, atomically where the system allows: Linux's
/// `renameat2(RENAME_NOREPLACE)`, else (files only) a hard link and the removal of `from`;
/// as a last resort a check immediately before the rename. Works on folders too (without the
/// hard-link step). An existing `to` gives [`std::io::ErrorKind::AlreadyExists`].
pub fn rename_noreplace(from: &Path, to: &Path) -> std::io::Result<()> {
    #[cfg(target_os = "linux")]
    {
        match renameat2(from, to, libc::RENAME_NOREPLACE) {
            Ok(()) => return Ok(()),
            // Not supported by this kernel or file system: fall through.
            Err(e) if matches!(e.raw_os_error(), Some(libc::EINVAL | libc::ENOSYS)) => {}
            Err(e) => return Err(e),
        }
    }
    if std::fs::symlink_metadata(from)?.is_file() {
        match std::fs::hard_link(from, to) {
            Ok(()) => {
                let _ = std::fs::remove_file(from);
                return Ok(());
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => return Err(e),
            Err(_) => {} // no hard links here (FAT, some network file systems)
        }
    }
    if std::fs::symlink_metadata(to).is_ok() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::AlreadyExists,
            "already exists",
        ));
    }
    std::fs::rename(from, to)
}

/// Swaps two existing paths atomically (Linux `renameat2(RENAME_EXCHANGE)`); elsewhere, or
/// where the file system cannot, `a` is renamed aside, `b` onto `a`, and the old `a` onto `b`.
/// Afterwards `a` holds what was `b` and `b` what was `a`.
pub fn exchange(a: &Path, b: &Path) -> std::io::Result<()> {
    #[cfg(target_os = "linux")]
    {
        match renameat2(b, a, libc::RENAME_EXCHANGE) {
            Ok(()) => return Ok(()),
            Err(e) if matches!(e.raw_os_error(), Some(libc::EINVAL | libc::ENOSYS)) => {}
            Err(e) => return Err(e),
        }
    }
    let mut aside = a.as_os_str().to_owned();
    aside.push(format!(".netlens-swap-{}", std::process::id()));
    let aside = PathBuf::from(aside);
    std::fs::rename(a, &aside)?;
    if let Err(e) = std::fs::rename(b, a) {
        let _ = std::fs::rename(&aside, a);
        return Err(e);
    }
    std::fs::rename(&aside, b)
}

#[cfg(target_os = "linux")]
fn renameat2(from: &Path, to: &Path, flags: libc::c_uint) -> std::io::Result<()> {
    use std::os::unix::ffi::OsStrExt;
    let c = |p: &Path| {
        std::ffi::CString::new(p.as_os_str().as_bytes())
            .map_err(|_| std::io::Error::new(std::io::ErrorKind::InvalidInput, "NUL in path"))
    };
    let (f, t) = (c(from)?, c(to)?);
    // SAFETY: both strings are valid NUL-terminated paths that outlive the call; renameat2
    // only reads them. The raw syscall avoids depending on the C library's wrapper.
    let r = unsafe {
        libc::syscall(
            libc::SYS_renameat2,
            libc::AT_FDCWD,
            f.as_ptr(),
            libc::AT_FDCWD,
            t.as_ptr(),
            flags,
        )
    };
    if r == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// Opens `path` for reading if it is a regular file of at most `max_bytes`; returns the file
/// and its size. A FIFO, a device, a socket or a folder is refused before reading, with
/// `what` ("images", "weights files"...) in the message.
pub fn open_regular(path: &Path, max_bytes: u64, what: &str) -> Result<(std::fs::File, u64)> {
    let mut options = std::fs::OpenOptions::new();
    options.read(true);
    // Non-blocking, so that opening a FIFO returns at once instead of waiting for a writer
    // (it makes no difference to a regular file).
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::custom_flags(&mut options, libc::O_NONBLOCK);
    let file = options.open(path).map_err(|e| Error::io(path, e))?;
    // Checked on the opened file, so that the file cannot be swapped between check and read.
    let meta = file.metadata().map_err(|e| Error::io(path, e))?;
    if !meta.is_file() {
        let kind = if meta.is_dir() {
            "a folder"
        } else {
            "not a regular file (a device, pipe or socket)"
        };
        return Err(Error::io(
            path,
            std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                format!("it is {kind}; netlens reads {what} only from regular files"),
            ),
        ));
    }
    let size = meta.len();
    if size > max_bytes {
        return Err(Error::io(
            path,
            std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                format!(
                    "it is {} MB; netlens reads {what} of at most {} MB",
                    size.div_ceil(1 << 20),
                    max_bytes >> 20
                ),
            ),
        ));
    }
    Ok((file, size))
}

/// Reads a whole regular file of at most `max_bytes` (see [`open_regular`]); never reads more
/// than the size the file had when opened, plus one byte to notice it growing.
pub fn read_regular(path: &Path, max_bytes: u64, what: &str) -> Result<Vec<u8>> {
    let (file, size) = open_regular(path, max_bytes, what)?;
    let mut bytes = Vec::with_capacity(size as usize);
    file.take(size.saturating_add(1).min(max_bytes))
        .read_to_end(&mut bytes)
        .map_err(|e| Error::io(path, e))?;
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(name: &str) -> PathBuf {
        let d =
            std::env::temp_dir().join(format!("netlens-files-test-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    fn leftovers(dir: &Path) -> Vec<String> {
        std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.contains("netlens-tmp"))
            .collect()
    }

    #[test]
    fn a_killed_runs_temporary_file_goes_with_the_next_write() {
        let dir = scratch("stale");
        let out = dir.join("out.png");
        // A process id above Linux's maximum (2^22) is never alive; pid 1 always is.
        let dead = dir.join(".out.png.netlens-tmp-999999999-0");
        let live = dir.join(".out.png.netlens-tmp-1-0");
        let other = dir.join(".other.png.netlens-tmp-999999999-0");
        for p in [&dead, &live, &other] {
            std::fs::write(p, b"partial").unwrap();
        }
        write_bytes(&out, Existing::Refuse, b"whole").unwrap();
        assert_eq!(std::fs::read(&out).unwrap(), b"whole");
        assert!(!dead.exists(), "the dead run's file stays");
        assert!(
            live.exists() && other.exists(),
            "removed a file it does not own"
        );
    }

    #[test]
    fn failed_write_leaves_neither_output_nor_temporary_file() {
        let d = scratch("fail");
        let p = d.join("out.bin");
        let r = write_with(&p, Existing::Refuse, |w| {
            w.write_all(b"half")?;
            Err(std::io::Error::other("disk full"))
        });
        assert!(r.is_err());
        assert!(!p.exists());
        assert!(leftovers(&d).is_empty(), "{:?}", leftovers(&d));
    }

    #[test]
    fn failed_forced_write_keeps_the_previous_file() {
        let d = scratch("keep");
        let p = d.join("out.bin");
        write_bytes(&p, Existing::Refuse, b"old").unwrap();
        let r = write_with(&p, Existing::Replace, |w| {
            w.write_all(b"ne")?;
            Err(std::io::Error::other("disk full"))
        });
        assert!(r.is_err());
        assert_eq!(std::fs::read(&p).unwrap(), b"old");
        write_bytes(&p, Existing::Replace, b"new").unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"new");
        assert!(leftovers(&d).is_empty());
    }

    #[test]
    fn refuse_holds_at_the_moment_of_writing() {
        let d = scratch("race");
        let p = d.join("out.bin");
        // The name is taken while this write is under way (another run finishing first).
        let r = write_with(&p, Existing::Refuse, |w| {
            write_bytes(&p, Existing::Replace, b"first").map_err(std::io::Error::other)?;
            w.write_all(b"second")
        });
        let e = r.unwrap_err().to_string();
        assert!(e.contains("already exists"), "{e}");
        assert_eq!(std::fs::read(&p).unwrap(), b"first");
        assert!(leftovers(&d).is_empty());
    }

    #[test]
    fn rename_noreplace_refuses_an_existing_folder() {
        let d = scratch("dirs");
        let (a, b) = (d.join("a"), d.join("b"));
        std::fs::create_dir_all(&a).unwrap();
        std::fs::create_dir_all(&b).unwrap();
        let e = rename_noreplace(&a, &b).unwrap_err();
        assert_eq!(e.kind(), std::io::ErrorKind::AlreadyExists);
        write_bytes(&a.join("x"), Existing::Refuse, b"1").unwrap();
        exchange(&b, &a).unwrap();
        assert!(b.join("x").is_file() && !a.join("x").exists());
    }

    #[test]
    fn only_regular_files_of_bounded_size_are_read() {
        let d = scratch("read");
        let e = read_regular(&d, 1 << 20, "images").unwrap_err().to_string();
        assert!(e.contains("folder"), "{e}");
        let e = read_regular(Path::new("/dev/zero"), 1 << 20, "images")
            .unwrap_err()
            .to_string();
        assert!(e.contains("regular file"), "{e}");
        let p = d.join("big");
        write_bytes(&p, Existing::Refuse, &vec![0u8; 3 << 20]).unwrap();
        let e = read_regular(&p, 2 << 20, "images").unwrap_err().to_string();
        assert!(e.contains("images of at most"), "{e}");
        assert_eq!(read_regular(&p, 4 << 20, "images").unwrap().len(), 3 << 20);
    }
}
