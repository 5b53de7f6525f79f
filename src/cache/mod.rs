//! The encoded-video cache on disk: a video's rows as the connector produced them, kept so
//! that another question about the same video (in this run or a later one) skips decoding,
//! preprocessing and both encoders. A hit gives the very rows a miss computes, so the answer
//! is bit-identical.
//!
//! Where: `APOLLO_CACHE_DIR`, else `$XDG_CACHE_HOME/apollo`, else `~/.cache/apollo`; entries
//! in `rows/` (see [`entry`]), content-hash memos in `hashes/` (see [`hash`]). What a key
//! covers: [`key`]. Size: at most `APOLLO_CACHE_MAX` (default 20 GiB); after each write the
//! least recently used files go (a read counts as a use). Several processes may share it:
//! every file is written aside and renamed into place, and a file that vanished or is damaged
//! is a miss, removed and written again, never trusted and never an error. A cache that cannot
//! be written is a warning, not a failure.

pub mod entry;
pub mod hash;
pub mod key;
pub mod size;

use crate::error::{Error, Result};
use candle_core::{Device, Tensor};
use hash::{hex, Digest, FileHashes};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

pub const DEFAULT_MAX: u64 = 20 << 30;

/// A temporary file younger than this may be another process's write in progress.
const TEMP_GRACE: Duration = Duration::from_secs(3600);

/// Where a video's rows came from, as records say it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CacheUse {
    /// Read from the cache.
    Hit,
    /// Computed, and stored for next time.
    Miss,
    /// Computed; the cache is not used (`--no-cache`).
    Off,
}

pub struct VideoCache {
    pub dir: PathBuf,
    /// Bytes the cache may hold.
    pub max: u64,
}

/// What `apollo cache info` shows.
#[derive(Debug, Serialize)]
pub struct Info {
    pub location: PathBuf,
    /// Encoded videos held.
    pub entries: usize,
    /// Bytes of every file the cache holds.
    pub bytes: u64,
    pub max_bytes: u64,
}

/// The folder the environment names: `APOLLO_CACHE_DIR`, `$XDG_CACHE_HOME/apollo` (an
/// absolute one, as the XDG spec wants), `$HOME/.cache/apollo`.
pub fn default_dir() -> Option<PathBuf> {
    let var = |name| {
        std::env::var_os(name)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    };
    var("APOLLO_CACHE_DIR")
        .or_else(|| {
            var("XDG_CACHE_HOME")
                .filter(|d| d.is_absolute())
                .map(|d| d.join("apollo"))
        })
        .or_else(|| var("HOME").map(|h| h.join(".cache/apollo")))
}

/// Sets `path`'s modification time to now: the cache's "last used".
pub(crate) fn touch(path: &Path) {
    let _ = std::fs::File::options()
        .append(true)
        .open(path)
        .and_then(|f| f.set_modified(SystemTime::now()));
}

impl VideoCache {
    /// The cache the environment names; its size limit from `APOLLO_CACHE_MAX`.
    pub fn from_env() -> Result<Self> {
        let dir = default_dir().ok_or_else(|| {
            Error::usage("no cache folder: set APOLLO_CACHE_DIR (or HOME), or use --no-cache")
        })?;
        let max = match std::env::var("APOLLO_CACHE_MAX") {
            Ok(text) => size::parse_size(&text)
                .map_err(|e| Error::usage(format!("APOLLO_CACHE_MAX: {e}")))?,
            Err(_) => DEFAULT_MAX,
        };
        Ok(Self { dir, max })
    }

    fn rows_dir(&self) -> PathBuf {
        self.dir.join("rows")
    }

    pub fn hashes(&self) -> FileHashes {
        FileHashes {
            dir: self.dir.join("hashes"),
        }
    }

    fn entry_path(&self, key: &Digest) -> PathBuf {
        self.rows_dir().join(format!("{}.rows", hex(key)))
    }

    /// The rows stored under `key`, if a whole entry of what is expected is there. A damaged
    /// or foreign file is removed.
    pub fn load(&self, expected: &entry::Expected, device: &Device) -> Option<Tensor> {
        let path = self.entry_path(expected.key);
        let bytes = std::fs::read(&path).ok()?;
        match entry::decode(&bytes, expected, device) {
            Ok(rows) => {
                touch(&path);
                Some(rows)
            }
            Err(why) => {
                tracing::warn!("cache: {path:?} is damaged ({why}): computed again");
                let _ = std::fs::remove_file(&path);
                None
            }
        }
    }

    /// Stores `rows` under `key` (unless they alone are larger than the cache may hold), then
    /// makes room. Failing to is a warning.
    pub fn store(&self, key: &Digest, rows: &Tensor) {
        if let Err(e) = self.try_store(key, rows) {
            tracing::warn!(
                "cache: cannot store the video's rows in {:?}: {e}",
                self.dir
            );
        }
    }

    fn try_store(&self, key: &Digest, rows: &Tensor) -> Result<()> {
        let Some(bytes) = entry::encode(key, rows)? else {
            return Ok(());
        };
        if bytes.len() as u64 > self.max {
            tracing::debug!(
                "cache: an entry of {} is more than the cache may hold ({})",
                size::human(bytes.len() as u64),
                size::human(self.max)
            );
            return Ok(());
        }
        let dir = self.rows_dir();
        std::fs::create_dir_all(&dir)
            .map_err(|e| Error::runtime(Some(&dir), format!("cannot create: {e}")))?;
        crate::atomic_file::write_atomically(&self.entry_path(key), &bytes)?;
        self.evict(self.max);
        Ok(())
    }

    /// Every file the cache holds (entries, memos, temporary files): path, size, last use.
    fn files(&self) -> Vec<(PathBuf, u64, SystemTime)> {
        let mut out = Vec::new();
        for dir in [self.rows_dir(), self.hashes().dir] {
            let Ok(entries) = std::fs::read_dir(&dir) else {
                continue;
            };
            for entry in entries.flatten() {
                // Gone since it was listed: another process removed it.
                let Ok(meta) = entry.metadata() else { continue };
                if meta.is_file() {
                    let used = meta.modified().unwrap_or(SystemTime::UNIX_EPOCH);
                    out.push((entry.path(), meta.len(), used));
                }
            }
        }
        out
    }

    /// Removes the least recently used files until at most `max` bytes are held. Another
    /// process's write in progress (a young temporary file) is left alone.
    fn evict(&self, max: u64) {
        let now = SystemTime::now();
        let mut files = self.files();
        let mut total: u64 = files.iter().map(|f| f.1).sum();
        files.sort_by_key(|f| f.2);
        for (path, size, used) in files {
            if total <= max {
                break;
            }
            let temporary = path
                .file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with(".apollo-"));
            if temporary && now.duration_since(used).unwrap_or_default() < TEMP_GRACE {
                continue;
            }
            match std::fs::remove_file(&path) {
                Ok(()) => tracing::debug!("cache: evicted {path:?}"),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => tracing::warn!("cache: cannot remove {path:?}: {e}"),
            }
            total -= size;
        }
    }

    pub fn info(&self) -> Info {
        let files = self.files();
        Info {
            location: self.dir.clone(),
            entries: files
                .iter()
                .filter(|f| f.0.extension().is_some_and(|e| e == "rows"))
                .count(),
            bytes: files.iter().map(|f| f.1).sum(),
            max_bytes: self.max,
        }
    }

    /// Removes everything the cache holds (its own folders; the folder itself stays).
    pub fn clear(&self) -> Result<Info> {
        let before = self.info();
        for dir in [self.rows_dir(), self.hashes().dir] {
            match std::fs::remove_dir_all(&dir) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => {
                    return Err(Error::runtime(Some(&dir), format!("cannot remove: {e}")));
                }
            }
        }
        Ok(before)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::random_tensor;
    use candle_core::DType;

    fn cache(dir: &Path, max: u64) -> VideoCache {
        VideoCache {
            dir: dir.to_path_buf(),
            max,
        }
    }

    fn expected(key: &Digest) -> entry::Expected<'_> {
        entry::Expected {
            key,
            dtype: DType::F32,
            rows: 4,
            width: 8,
        }
    }

    /// An entry's size: the header and 4x8 f32 values.
    const ENTRY: u64 = 101 + 4 * 8 * 4;

    #[test]
    fn stored_rows_load_and_a_damaged_entry_is_a_miss_and_removed() {
        let dir = tempfile::tempdir().unwrap();
        let c = cache(dir.path(), DEFAULT_MAX);
        let key = hash::sha256(b"a");
        assert!(c.load(&expected(&key), &Device::Cpu).is_none());
        let rows = random_tensor(&[4, 8], 1);
        c.store(&key, &rows);
        let back = c.load(&expected(&key), &Device::Cpu).unwrap();
        assert_eq!(
            back.flatten_all().unwrap().to_vec1::<f32>().unwrap(),
            rows.flatten_all().unwrap().to_vec1::<f32>().unwrap()
        );
        let info = c.info();
        assert_eq!((info.entries, info.bytes), (1, ENTRY));
        let file = c.entry_path(&key);
        let mut bytes = std::fs::read(&file).unwrap();
        bytes[200] ^= 0x40;
        std::fs::write(&file, bytes).unwrap();
        assert!(c.load(&expected(&key), &Device::Cpu).is_none());
        assert!(!file.exists(), "removed");
        assert_eq!(c.clear().unwrap().entries, 0);
    }

    #[test]
    fn the_least_recently_used_go_first_and_a_read_counts_as_a_use() {
        let dir = tempfile::tempdir().unwrap();
        let c = cache(dir.path(), 2 * ENTRY);
        let keys: Vec<Digest> = (0..3u8).map(|i| hash::sha256(&[i])).collect();
        let rows = random_tensor(&[4, 8], 1);
        let age = |key: &Digest, seconds: u64| {
            let f = std::fs::File::options()
                .append(true)
                .open(c.entry_path(key))
                .unwrap();
            f.set_modified(SystemTime::now() - Duration::from_secs(seconds))
                .unwrap();
        };
        c.store(&keys[0], &rows);
        age(&keys[0], 30);
        c.store(&keys[1], &rows);
        age(&keys[1], 20);
        // Reading the older one makes it the more recent.
        assert!(c.load(&expected(&keys[0]), &Device::Cpu).is_some());
        c.store(&keys[2], &rows);
        let held: Vec<bool> = keys.iter().map(|k| c.entry_path(k).exists()).collect();
        assert_eq!(held, [true, false, true]);
        assert_eq!(c.info().bytes, 2 * ENTRY);
        // An entry larger than the whole cache is not stored.
        let small = cache(dir.path(), ENTRY - 1);
        small.store(&hash::sha256(b"big"), &rows);
        assert!(!small.entry_path(&hash::sha256(b"big")).exists());
    }

    #[test]
    fn concurrent_writers_of_one_key_leave_one_whole_entry() {
        let dir = tempfile::tempdir().unwrap();
        let key = hash::sha256(b"shared");
        let rows = random_tensor(&[4, 8], 2);
        std::thread::scope(|s| {
            for _ in 0..4 {
                s.spawn(|| {
                    let c = cache(dir.path(), DEFAULT_MAX);
                    for _ in 0..20 {
                        c.store(&key, &rows);
                        // A reader never sees a partial file.
                        if let Ok(bytes) = std::fs::read(c.entry_path(&key)) {
                            entry::decode(&bytes, &expected(&key), &Device::Cpu).unwrap();
                        }
                    }
                });
            }
        });
        let c = cache(dir.path(), DEFAULT_MAX);
        assert!(c.load(&expected(&key), &Device::Cpu).is_some());
        assert_eq!(c.info().entries, 1);
        assert_eq!(c.files().len(), 1, "no temporary file left");
    }
}
