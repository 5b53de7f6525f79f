//! The hub cache as huggingface_hub lays it out, so that either program reuses the other's
//! downloads: `models--org--name/` holds `blobs/<etag>` (the files), `snapshots/<commit>/<path>`
//! (relative links to the blobs), `refs/<revision>` (the commit a branch was at), and a
//! download in progress as `blobs/<etag>.incomplete`, locked through `.locks/`. A blob is
//! renamed into place only once it holds exactly the announced size, and a snapshot links only
//! to such blobs: a partial download is resumed or started over, never used.

use super::client::{Client, Failure, Outcome};
use super::settings::HubSettings;
use super::{model_error, DownloadObserver};
use crate::atomic_file::write_atomically;
use crate::error::{Error, Result};
use std::path::{Component, Path};

/// Whether `revision` names a commit itself.
pub fn is_commit(revision: &str) -> bool {
    revision.len() == 40 && revision.bytes().all(|b| b.is_ascii_hexdigit())
}

/// The commit `revision` is at in the cache (a commit is itself).
pub fn cached_commit(repo_dir: &Path, revision: &str) -> Option<String> {
    if is_commit(revision) {
        return Some(revision.to_string());
    }
    let commit = std::fs::read_to_string(repo_dir.join("refs").join(revision)).ok()?;
    Some(commit.trim().to_string()).filter(|c| is_commit(c))
}

/// `refs/<revision>` -> commit, as huggingface_hub records a branch; written atomically.
pub fn write_ref(repo_dir: &Path, revision: &str, commit: &str) -> Result<()> {
    if is_commit(revision) {
        return Ok(());
    }
    let file = repo_dir.join("refs").join(revision);
    let dir = file.parent().unwrap_or(repo_dir);
    std::fs::create_dir_all(dir)
        .map_err(|e| Error::runtime(Some(dir), format!("cannot create: {e}")))?;
    write_atomically(&file, commit.as_bytes())
}

/// A path inside a repo that stays inside the folder it is joined to.
pub fn is_safe_repo_path(file: &str) -> bool {
    !file.is_empty()
        && !file.contains('\\')
        && Path::new(file)
            .components()
            .all(|c| matches!(c, Component::Normal(_)))
}

/// Puts `file` of `repo` at `commit` into the cache unless its snapshot has it: fetches its
/// metadata, downloads the blob unless a blob of that size is there, and links it in.
pub fn store(
    client: &Client,
    settings: &HubSettings,
    repo: &str,
    commit: &str,
    file: &str,
    observer: &mut dyn DownloadObserver,
) -> Outcome<()> {
    let repo_dir = settings.repo_dir(repo);
    let pointer = repo_dir.join("snapshots").join(commit).join(file);
    if pointer.is_file() {
        return Ok(());
    }
    let url = client.file_url(commit, file);
    let meta = client.metadata(&url, observer)?;
    let unusable = |what: String| Failure::Other(model_error(repo, what));
    if meta.commit != commit {
        return Err(unusable(format!(
            "the hub answered for {file} at commit {} instead of {commit}",
            meta.commit
        )));
    }
    // The etag names a file of the cache: it must be a plain name.
    if meta.etag.is_empty() || !meta.etag.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return Err(unusable(format!(
            "the hub sent the unusable etag {:?} for {file}",
            meta.etag
        )));
    }
    let io = |path: &Path, e: std::io::Error| {
        Failure::Other(Error::runtime(
            Some(path),
            format!("cannot write the cache: {e}"),
        ))
    };
    let blobs = repo_dir.join("blobs");
    std::fs::create_dir_all(&blobs).map_err(|e| io(&blobs, e))?;
    let blob = blobs.join(&meta.etag);
    if !has_size(&blob, meta.size) {
        let lock_path = settings.lock_file(repo, &meta.etag);
        if let Some(dir) = lock_path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| io(dir, e))?;
        }
        let lock = std::fs::File::create(&lock_path).map_err(|e| io(&lock_path, e))?;
        // Another process downloading the same blob finishes first.
        lock.lock().map_err(|e| io(&lock_path, e))?;
        if !has_size(&blob, meta.size) {
            let partial = blobs.join(format!("{}.incomplete", meta.etag));
            client.download(&url, &partial, meta.size, file, observer)?;
            std::fs::rename(&partial, &blob).map_err(|e| io(&blob, e))?;
        }
    }
    link(&pointer, file, &meta.etag).map_err(|e| io(&pointer, e))
}

fn has_size(file: &Path, size: u64) -> bool {
    std::fs::metadata(file).is_ok_and(|m| m.is_file() && m.len() == size)
}

/// `snapshots/<commit>/<file>` -> `../../blobs/<etag>`, with one more `..` per folder of
/// `file`, replacing a link that points nowhere.
fn link(pointer: &Path, file: &str, etag: &str) -> std::io::Result<()> {
    if let Some(dir) = pointer.parent() {
        std::fs::create_dir_all(dir)?;
    }
    if std::fs::symlink_metadata(pointer).is_ok() {
        std::fs::remove_file(pointer)?;
    }
    let depth = Path::new(file).components().count() + 1;
    let target = format!("{}blobs/{etag}", "../".repeat(depth));
    std::os::unix::fs::symlink(target, pointer)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repo_paths_stay_inside_the_snapshot() {
        for ok in [
            "config.json",
            "llm/model-00001-of-00002.safetensors",
            "a/b/c",
        ] {
            assert!(is_safe_repo_path(ok), "{ok}");
        }
        for bad in [
            "",
            "../x",
            "llm/../../x",
            "/etc/passwd",
            "./x",
            "a\\b",
            "a//b/..",
        ] {
            assert!(!is_safe_repo_path(bad), "{bad}");
        }
    }

    #[test]
    fn snapshot_links_point_at_their_blob_from_any_depth() {
        let repo = tempfile::tempdir().unwrap();
        let blobs = repo.path().join("blobs");
        std::fs::create_dir_all(&blobs).unwrap();
        std::fs::write(blobs.join("e1"), "deep").unwrap();
        let commit = "c".repeat(40);
        let pointer = repo
            .path()
            .join("snapshots")
            .join(&commit)
            .join("a/b/f.json");
        link(&pointer, "a/b/f.json", "e1").unwrap();
        assert_eq!(std::fs::read_to_string(&pointer).unwrap(), "deep");
        assert_eq!(
            std::fs::read_link(&pointer).unwrap(),
            Path::new("../../../../blobs/e1")
        );
        // A link to nowhere is replaced.
        std::fs::write(blobs.join("e2"), "new").unwrap();
        link(&pointer, "a/b/f.json", "e2").unwrap();
        assert_eq!(std::fs::read_to_string(&pointer).unwrap(), "new");
    }

    #[test]
    fn refs_are_written_atomically_and_commits_need_none() {
        let root = tempfile::tempdir().unwrap();
        write_ref(root.path(), "main", &"a".repeat(40)).unwrap();
        assert_eq!(cached_commit(root.path(), "main"), Some("a".repeat(40)));
        write_ref(root.path(), &"b".repeat(40), "x").unwrap();
        assert_eq!(
            std::fs::read_dir(root.path().join("refs")).unwrap().count(),
            1
        );
        assert_eq!(cached_commit(root.path(), "dev"), None);
    }
}
