//! Output files, written where the user pointed and whole or not at all.
//!
//! - A regular file, or a name with nothing there yet, is written atomically: the content goes
//!   to a temporary file beside it, which is then renamed over it, so an interrupted run never
//!   leaves a truncated file.
//! - A symbolic link is followed: its target is written (atomically, the temporary file beside
//!   the target) and the link stays a link, also when it dangles.
//! - A FIFO or a character device (a pipe, `/dev/null`, a terminal) is written in place, as a
//!   stream: it cannot be replaced, and what the user wants is the bytes sent there.
//! - Anything else (a directory, a block device, a socket) is refused.
//!
//! A new file gets mode 0666 less the umask, as files any program creates; a replaced file
//! keeps its mode.

use crate::error::{Error, Result};
use std::fs::{File, OpenOptions, Permissions};
use std::io::Write;
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// How many links a chain may have, as Linux allows (`ELOOP` beyond).
const MAX_LINKS: usize = 40;

/// Where the bytes for a path go.
enum Target {
    /// A regular file (or none yet) at this real path, keeping this mode if it has one.
    Replace { file: PathBuf, mode: Option<u32> },
    /// A FIFO or character device, written where it is.
    Stream,
}

/// Writes `path` with `fill`, as the module says.
pub fn write_with(path: &Path, fill: impl FnOnce(&mut File) -> std::io::Result<()>) -> Result<()> {
    let fail = |e: std::io::Error| Error::runtime(Some(path), format!("cannot write: {e}"));
    match target(path)? {
        Target::Stream => {
            let mut file = OpenOptions::new().write(true).open(path).map_err(fail)?;
            fill(&mut file).and_then(|()| file.flush()).map_err(fail)
        }
        Target::Replace { file, mode } => {
            let dir = file
                .parent()
                .filter(|p| !p.as_os_str().is_empty())
                .unwrap_or(Path::new("."));
            if !dir.is_dir() {
                return Err(Error::runtime(
                    Some(path),
                    format!("cannot write: the folder {dir:?} does not exist"),
                ));
            }
            // Created with 0666 (the umask applies), or the mode of the file it replaces.
            let mut tmp = tempfile::Builder::new()
                .prefix(".apollo-")
                .permissions(Permissions::from_mode(mode.unwrap_or(0o666)))
                .tempfile_in(dir)
                .map_err(fail)?;
            if let Some(mode) = mode {
                // The umask must not narrow the mode it keeps.
                tmp.as_file()
                    .set_permissions(Permissions::from_mode(mode))
                    .map_err(fail)?;
            }
            fill(tmp.as_file_mut()).map_err(fail)?;
            tmp.as_file_mut().flush().map_err(fail)?;
            tmp.persist(&file).map_err(|e| fail(e.error))?;
            Ok(())
        }
    }
}

/// Writes `bytes` to `path`, as the module says.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> Result<()> {
    write_with(path, |f| f.write_all(bytes))
}

/// What is at `path`, links followed.
fn target(path: &Path) -> Result<Target> {
    let refuse = |what: &str| {
        Error::runtime(
            Some(path),
            format!("is {what}; apollo writes only to files, FIFOs and character devices"),
        )
    };
    match std::fs::metadata(path) {
        Ok(meta) => {
            let kind = meta.file_type();
            if kind.is_file() {
                let file = std::fs::canonicalize(path)
                    .map_err(|e| Error::runtime(Some(path), format!("cannot resolve: {e}")))?;
                Ok(Target::Replace {
                    file,
                    mode: Some(meta.permissions().mode() & 0o7777),
                })
            } else if kind.is_fifo() || kind.is_char_device() {
                Ok(Target::Stream)
            } else if kind.is_dir() {
                Err(refuse("a directory"))
            } else if kind.is_block_device() {
                Err(refuse("a block device"))
            } else {
                Err(refuse("a socket or other special file"))
            }
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Target::Replace {
            file: link_destination(path)?,
            mode: None,
        }),
        Err(e) => Err(Error::runtime(Some(path), format!("cannot write: {e}"))),
    }
}

/// The path a new file at `path` must have: `path` itself, or where its (dangling) chain of
/// symbolic links ends.
fn link_destination(path: &Path) -> Result<PathBuf> {
    let mut current = path.to_path_buf();
    for _ in 0..MAX_LINKS {
        match std::fs::read_link(&current) {
            Ok(next) => {
                let base = current.parent().unwrap_or(Path::new(""));
                current = base.join(next);
            }
            // Not a link (nothing there): the file goes here.
            Err(_) => return Ok(current),
        }
    }
    Err(Error::runtime(
        Some(path),
        "too many levels of symbolic links",
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    #[test]
    fn a_failed_write_leaves_the_old_file_and_no_temporary() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("a.json");
        write_atomically(&file, b"old").unwrap();
        let e = write_with(&file, |f| {
            f.write_all(b"partial")?;
            Err(std::io::Error::other("disk full"))
        })
        .unwrap_err();
        assert!(e.to_string().contains("disk full"), "{e}");
        assert_eq!(std::fs::read(&file).unwrap(), b"old");
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
        write_atomically(&file, b"new").unwrap();
        assert_eq!(std::fs::read(&file).unwrap(), b"new");
    }

    fn is_link(path: &Path) -> bool {
        std::fs::symlink_metadata(path)
            .unwrap()
            .file_type()
            .is_symlink()
    }

    #[test]
    fn links_are_followed_and_stay_links() {
        let dir = tempfile::tempdir().unwrap();
        let (real, link) = (dir.path().join("real.png"), dir.path().join("link.png"));
        std::fs::write(&real, "old").unwrap();
        symlink("real.png", &link).unwrap();
        write_atomically(&link, b"new").unwrap();
        assert!(is_link(&link));
        assert_eq!(std::fs::read(&real).unwrap(), b"new");

        // A dangling link, through a second link in another folder: the file is created where
        // the chain ends, beside which the temporary file was.
        let (sub, other) = (dir.path().join("sub"), dir.path().join("other"));
        std::fs::create_dir(&sub).unwrap();
        std::fs::create_dir(&other).unwrap();
        // Relative to the folder of the link that holds it.
        symlink("../sub/made.png", other.join("hop.png")).unwrap();
        let first = dir.path().join("first.png");
        symlink(other.join("hop.png"), &first).unwrap();
        write_atomically(&first, b"made").unwrap();
        assert!(is_link(&first) && is_link(&other.join("hop.png")));
        assert_eq!(std::fs::read(sub.join("made.png")).unwrap(), b"made");
        assert_eq!(
            std::fs::read_dir(&sub).unwrap().count(),
            1,
            "no temporary left"
        );

        let looped = dir.path().join("loop.png");
        symlink("loop.png", &looped).unwrap();
        let e = write_atomically(&looped, b"x").unwrap_err();
        assert!(e.to_string().contains("symbolic links"), "{e}");
    }

    #[test]
    fn devices_and_fifos_are_written_in_place_and_directories_refused() {
        write_atomically(Path::new("/dev/null"), b"gone").unwrap();
        assert!(Path::new("/dev/null").exists());
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("pipe");
        let made = std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap();
        assert!(made.success());
        let reader = {
            let fifo = fifo.clone();
            std::thread::spawn(move || std::fs::read(fifo).unwrap())
        };
        write_atomically(&fifo, b"streamed").unwrap();
        assert_eq!(reader.join().unwrap(), b"streamed");
        assert!(std::fs::metadata(&fifo).unwrap().file_type().is_fifo());

        let e = write_atomically(dir.path(), b"x").unwrap_err();
        assert!(e.to_string().contains("is a directory"), "{e}");
        let e = write_atomically(&dir.path().join("no/such.png"), b"x").unwrap_err();
        assert!(e.to_string().ends_with("/no\" does not exist"), "{e}");
    }

    #[test]
    fn new_files_follow_the_umask_and_replaced_ones_keep_their_mode() {
        let dir = tempfile::tempdir().unwrap();
        let umask = current_umask();
        let new = dir.path().join("new.json");
        write_atomically(&new, b"x").unwrap();
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o7777;
        assert_eq!(mode(&new), 0o666 & !umask);
        std::fs::set_permissions(&new, Permissions::from_mode(0o640)).unwrap();
        write_atomically(&new, b"y").unwrap();
        assert_eq!(mode(&new), 0o640);
    }

    /// The process's umask, read from /proc (setting it would race with other tests).
    fn current_umask() -> u32 {
        let status = std::fs::read_to_string("/proc/self/status").unwrap();
        let line = status.lines().find(|l| l.starts_with("Umask:")).unwrap();
        u32::from_str_radix(line.trim_start_matches("Umask:").trim(), 8).unwrap()
    }
}
