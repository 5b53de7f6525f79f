//! What an answer was made from, recorded as its `inputs` so that `caption --skip-existing`
//! reuses a record only for the same video file, question, model and settings.
//!
//! A video is identified by its absolute path (links resolved) and its content as seen from
//! any machine that mounts it: size, modification time (nanoseconds) and a hash of sampled
//! bytes. Device and inode numbers are left out: they differ between the clients of a shared
//! filesystem and change when a file is copied, while these survive both; a copy made with its
//! time kept (`cp -p`, `rsync -a`) at the same path is the same video. Hashing the whole file
//! would read gigabytes per video on every resume; the samples catch a replaced file whose
//! size and time were kept, as far as sampling can.

use crate::fnv::Fnv1a;
use serde::{Deserialize, Serialize};
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;
use std::time::UNIX_EPOCH;

/// Bytes hashed at each sample, and how many samples at most (the whole file up to 1 MiB).
const SAMPLE: u64 = 64 * 1024;
const SAMPLES: u64 = 16;

/// One video file's identity.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VideoIdentity {
    /// The absolute path, links resolved (lossily shown where it is not UTF-8).
    pub path: String,
    pub size: u64,
    /// Modification time, nanoseconds since the Unix epoch.
    pub modified_ns: u64,
    /// FNV-1a (64-bit, hex) of the size and of 16 blocks of 64 KiB spread evenly over the
    /// file (the whole file when it is smaller).
    pub sample_hash: String,
}

impl VideoIdentity {
    /// The identity of the regular file at `path`; `None` for anything else (a pipe cannot be
    /// read twice, a missing file has none), whose records are then never reused.
    pub fn of(path: &Path) -> Option<Self> {
        let meta = std::fs::metadata(path).ok().filter(|m| m.is_file())?;
        let modified = meta.modified().ok()?.duration_since(UNIX_EPOCH).ok()?;
        let mut file = std::fs::File::open(path).ok()?;
        Some(Self {
            path: absolute(path)?,
            size: meta.len(),
            modified_ns: u64::try_from(modified.as_nanos()).ok()?,
            sample_hash: format!("{:016x}", sample_hash(&mut file, meta.len()).ok()?),
        })
    }
}

/// Which checkpoint answered: a hub repo at a commit (whatever cache holds it), or a local
/// folder by its absolute path.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ModelIdentity {
    Hub { repo: String, commit: String },
    Dir(String),
}

/// `path` made absolute with links resolved, as a record shows it.
pub fn absolute(path: &Path) -> Option<String> {
    let real = std::fs::canonicalize(path).ok()?;
    Some(real.to_string_lossy().into_owned())
}

/// FNV-1a over the size, then the sampled blocks in order.
fn sample_hash(file: &mut (impl Read + Seek), size: u64) -> std::io::Result<u64> {
    let mut hash = Fnv1a::default();
    hash.write(&size.to_le_bytes());
    let offsets: Vec<u64> = if size <= SAMPLE * SAMPLES {
        (0..size.div_ceil(SAMPLE)).map(|i| i * SAMPLE).collect()
    } else {
        // First block at 0, last one ending at the end of the file.
        let span = size - SAMPLE;
        (0..SAMPLES).map(|i| span * i / (SAMPLES - 1)).collect()
    };
    let mut block = Vec::with_capacity(SAMPLE as usize);
    for offset in offsets {
        file.seek(SeekFrom::Start(offset))?;
        block.clear();
        file.by_ref().take(SAMPLE).read_to_end(&mut block)?;
        hash.write(&block);
    }
    Ok(hash.0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;

    #[test]
    fn the_samples_see_a_change_anywhere_in_a_small_file_and_at_each_sample_of_a_large_one() {
        let small: Vec<u8> = (0..300_000u32).map(|i| (i * 7 % 251) as u8).collect();
        let hash = |data: &[u8]| sample_hash(&mut Cursor::new(data), data.len() as u64).unwrap();
        let base = hash(&small);
        for at in [0, 70_000, 299_999] {
            let mut changed = small.clone();
            changed[at] ^= 1;
            assert_ne!(hash(&changed), base, "{at}");
        }
        let large = vec![5u8; 10 << 20];
        let base = hash(&large);
        let span = large.len() as u64 - SAMPLE;
        for i in [0, 7, 15] {
            let mut changed = large.clone();
            changed[(span * i / 15) as usize] = 6;
            assert_ne!(hash(&changed), base, "sample {i}");
        }
        let mut grown = large.clone();
        grown.push(5);
        assert_ne!(hash(&grown), base, "the size counts");
    }

    #[test]
    fn a_file_has_an_identity_and_a_pipe_or_missing_file_none() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("v.mp4");
        std::fs::write(&file, b"video").unwrap();
        let link = dir.path().join("link.mp4");
        std::os::unix::fs::symlink(&file, &link).unwrap();
        let id = VideoIdentity::of(&file).unwrap();
        assert_eq!(id.size, 5);
        assert!(Path::new(&id.path).is_absolute());
        assert_eq!(VideoIdentity::of(&link), Some(id.clone()), "links resolved");
        std::fs::write(&file, b"VIDEO").unwrap();
        assert_ne!(
            VideoIdentity::of(&file).unwrap().sample_hash,
            id.sample_hash
        );
        assert_eq!(VideoIdentity::of(&dir.path().join("missing.mp4")), None);
        assert_eq!(VideoIdentity::of(dir.path()), None);
    }
}
