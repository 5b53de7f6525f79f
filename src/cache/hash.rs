//! Content hashes (SHA-256 of every byte) of videos and weight files, memoised in the cache's
//! `hashes/` folder by what identifies a file as it is now: its real path, size, modification
//! time in nanoseconds, inode and device. A second run reads 64 bytes instead of hashing a
//! 2 GB video again; a file changed in any of those ways is hashed anew.

use sha2::{Digest as _, Sha256};
use std::io::Read;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

pub type Digest = [u8; 32];

pub fn sha256(bytes: &[u8]) -> Digest {
    Sha256::digest(bytes).into()
}

pub fn hex(digest: &Digest) -> String {
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

fn from_hex(text: &str) -> Option<Digest> {
    if text.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(text.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(out)
}

/// SHA-256 of everything `reader` gives.
pub fn hash_reader(mut reader: impl Read) -> std::io::Result<Digest> {
    let mut hasher = Sha256::new();
    let mut buffer = vec![0u8; 1 << 20];
    loop {
        match reader.read(&mut buffer)? {
            0 => return Ok(hasher.finalize().into()),
            n => hasher.update(&buffer[..n]),
        }
    }
}

/// The memo folder.
pub struct FileHashes {
    pub dir: PathBuf,
}

/// What a memo is named after: the file's real path and its metadata now.
fn identity(path: &Path) -> std::io::Result<(Digest, u64, i64)> {
    let meta = std::fs::metadata(path)?;
    let real = std::fs::canonicalize(path)?;
    let mut id = real.as_os_str().as_bytes().to_vec();
    for field in [
        meta.len(),
        meta.mtime() as u64,
        meta.mtime_nsec() as u64,
        meta.ino(),
        meta.dev(),
    ] {
        id.push(0);
        id.extend_from_slice(field.to_string().as_bytes());
    }
    Ok((sha256(&id), meta.len(), meta.mtime_nsec()))
}

impl FileHashes {
    /// The content hash of the file at `path`, from the memo when it is there.
    pub fn of(&self, path: &Path) -> std::io::Result<Digest> {
        let (id, ..) = identity(path)?;
        let memo = self.dir.join(hex(&id));
        if let Some(digest) = std::fs::read_to_string(&memo)
            .ok()
            .and_then(|t| from_hex(t.trim()))
        {
            super::touch(&memo);
            return Ok(digest);
        }
        let digest = hash_reader(std::fs::File::open(path)?)?;
        // A file that changed while it was read gets no memo: its hash is of neither version.
        if identity(path)?.0 == id {
            let stored = std::fs::create_dir_all(&self.dir)
                .map_err(|e| e.to_string())
                .and_then(|()| {
                    crate::atomic_file::write_atomically(
                        &memo,
                        format!("{}\n", hex(&digest)).as_bytes(),
                    )
                    .map_err(|e| e.to_string())
                });
            if let Err(e) = stored {
                tracing::warn!("cache: cannot keep the hash of {path:?}: {e}");
            }
        }
        Ok(digest)
    }

    /// One hash of several files' contents and their names: `files` are (name, path) pairs,
    /// the names saying which part each is (not where it lies on disk).
    pub fn of_files(&self, files: &[(String, PathBuf)]) -> std::io::Result<Digest> {
        let mut sorted: Vec<&(String, PathBuf)> = files.iter().collect();
        sorted.sort();
        let mut hasher = Sha256::new();
        for (name, path) in sorted {
            hasher.update(name.as_bytes());
            hasher.update([0]);
            hasher.update(self.of(path)?);
        }
        Ok(hasher.finalize().into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sha256_is_the_published_function() {
        assert_eq!(
            hex(&sha256(b"abc")),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        let d = sha256(b"x");
        assert_eq!(from_hex(&hex(&d)), Some(d));
        assert_eq!(from_hex("zz"), None);
    }

    #[test]
    fn a_memo_serves_the_same_file_and_a_changed_file_is_hashed_again() {
        let dir = tempfile::tempdir().unwrap();
        let hashes = FileHashes {
            dir: dir.path().join("hashes"),
        };
        let file = dir.path().join("video.mp4");
        std::fs::write(&file, b"first").unwrap();
        let first = hashes.of(&file).unwrap();
        assert_eq!(first, sha256(b"first"));
        let memos: Vec<_> = std::fs::read_dir(&hashes.dir).unwrap().collect();
        assert_eq!(memos.len(), 1);
        // The memo is what a second call reads: a planted value is served as it is.
        let memo = memos[0].as_ref().unwrap().path();
        std::fs::write(&memo, format!("{}\n", hex(&sha256(b"planted")))).unwrap();
        assert_eq!(hashes.of(&file).unwrap(), sha256(b"planted"));
        // A broken memo is ignored.
        std::fs::write(&memo, "garbage").unwrap();
        assert_eq!(hashes.of(&file).unwrap(), first);
        // New content (another size and time): another memo, the new hash.
        std::fs::write(&file, b"second!").unwrap();
        assert_eq!(hashes.of(&file).unwrap(), sha256(b"second!"));
        // Names count, places do not.
        let other = dir.path().join("copy.bin");
        std::fs::write(&other, b"second!").unwrap();
        let a = hashes.of_files(&[("x".into(), file.clone())]).unwrap();
        assert_eq!(a, hashes.of_files(&[("x".into(), other.clone())]).unwrap());
        assert_ne!(a, hashes.of_files(&[("y".into(), other)]).unwrap());
        assert!(hashes.of(&dir.path().join("missing")).is_err());
    }
}
