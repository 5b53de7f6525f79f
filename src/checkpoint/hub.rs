//! Checkpoints from the Hugging Face hub, kept in the standard hub cache so that a model
//! downloaded with Python is reused and the other way round. Only the files the loader reads
//! are fetched: config.json first, then, in the component folders its layout names, the
//! configs, the llm's tokenizer, and each component's weights (the shards its index names,
//! else its model.safetensors).
//!
//! Environment, as huggingface_hub reads it: HF_HUB_CACHE, else HF_HOME/hub, else
//! $XDG_CACHE_HOME/huggingface/hub or ~/.cache/huggingface/hub; HF_TOKEN, else the token file
//! beside the cache; HF_HUB_OFFLINE=1 to never touch the network; HF_ENDPOINT for a mirror.

use super::layout::{TopConfig, CONFIG, GENERATION_CONFIG, INDEX, PREPROCESSOR_CONFIG, SINGLE};
use super::safetensors::index_shards;
use crate::atomic_file::write_atomically;
use crate::error::{Error, Kind, Result};
use hf_hub::api::sync::ApiBuilder;
use hf_hub::api::Progress;
use hf_hub::{Repo, RepoType};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// A published Apollo-3B-t32 with the full layout. The official Apollo-LMMs repos were taken
/// down; this mirror keeps their files unchanged.
pub const DEFAULT_MODEL: &str = "GoodiesHere/Apollo-LMMs-Apollo-3B-t32";

/// Hub settings from the environment.
#[derive(Debug, Clone, PartialEq)]
pub struct HubSettings {
    pub cache_dir: PathBuf,
    pub token: Option<String>,
    pub offline: bool,
    pub endpoint: Option<String>,
}

impl HubSettings {
    pub fn from_env() -> Self {
        Self::from_vars(|name| std::env::var(name).ok().filter(|v| !v.is_empty()))
    }

    /// Settings from any source of variables (the environment, or a test's map).
    pub fn from_vars(var: impl Fn(&str) -> Option<String>) -> Self {
        let home = var("HF_HOME").map(PathBuf::from).unwrap_or_else(|| {
            let cache = var("XDG_CACHE_HOME")
                .map(PathBuf::from)
                .or_else(|| var("HOME").map(|h| Path::new(&h).join(".cache")))
                .unwrap_or_else(|| PathBuf::from(".cache"));
            cache.join("huggingface")
        });
        let cache_dir = var("HF_HUB_CACHE")
            .map(PathBuf::from)
            .unwrap_or_else(|| home.join("hub"));
        let token = var("HF_TOKEN").or_else(|| {
            let file = var("HF_TOKEN_PATH")
                .map(PathBuf::from)
                .unwrap_or_else(|| home.join("token"));
            std::fs::read_to_string(file)
                .ok()
                .map(|t| t.trim().to_string())
                .filter(|t| !t.is_empty())
        });
        // huggingface_hub's truthy values.
        let offline = var("HF_HUB_OFFLINE")
            .is_some_and(|v| ["1", "ON", "YES", "TRUE"].contains(&v.to_uppercase().as_str()));
        Self {
            cache_dir,
            token,
            offline,
            endpoint: var("HF_ENDPOINT"),
        }
    }

    /// The cache folder of one model repo (`models--org--name`).
    fn repo_dir(&self, repo: &str) -> PathBuf {
        self.cache_dir
            .join(format!("models--{}", repo.replace('/', "--")))
    }
}

/// Reports download progress; one call of `start` per file.
pub trait DownloadObserver {
    fn start(&mut self, file: &str, bytes: u64);
    fn advance(&mut self, bytes: u64);
    fn done(&mut self);
}

/// A checkpoint in the cache: its snapshot folder and the commit it holds.
#[derive(Debug, Clone, PartialEq)]
pub struct Snapshot {
    pub dir: PathBuf,
    pub commit: String,
}

/// The local snapshot of `repo` at `revision` with every file the loader needs, downloading
/// what is missing unless offline.
pub fn fetch(
    repo: &str,
    revision: &str,
    settings: &HubSettings,
    observer: &mut dyn DownloadObserver,
) -> Result<Snapshot> {
    let dir = fetch_dir(repo, revision, settings, observer)?;
    // Snapshot folders are named after their commit.
    let commit = dir
        .file_name()
        .map(|c| c.to_string_lossy().into_owned())
        .unwrap_or_default();
    Ok(Snapshot { dir, commit })
}

fn fetch_dir(
    repo: &str,
    revision: &str,
    settings: &HubSettings,
    observer: &mut dyn DownloadObserver,
) -> Result<PathBuf> {
    if settings.offline {
        return cached(repo, revision, settings).map_err(|missing| {
            model_error(
                repo,
                format!(
                    "{missing}, and HF_HUB_OFFLINE is set; download it with `apollo download {repo}` \
                     where the hub is reachable, or pass --model-dir DIR"
                ),
            )
        });
    }
    download(repo, revision, settings, observer).or_else(|e| match e {
        // No network: a complete cached copy does, as huggingface_hub falls back to it.
        Failure::Unreachable(reason) => cached(repo, revision, settings).map_err(|missing| {
            model_error(
                repo,
                format!(
                    "{missing}, and the hub is unreachable ({reason}); pass --model-dir DIR to use \
                     a local checkpoint"
                ),
            )
        }),
        Failure::Other(e) => Err(e),
    })
}

enum Failure {
    Unreachable(String),
    Other(Error),
}

fn model_error(repo: &str, message: String) -> Error {
    Error::new(Kind::Model, None, format!("model {repo}: {message}"))
}

/// The snapshot in the cache, if it holds every needed file; else what is missing.
fn cached(
    repo: &str,
    revision: &str,
    settings: &HubSettings,
) -> std::result::Result<PathBuf, String> {
    let repo_dir = settings.repo_dir(repo);
    let commit = if is_commit(revision) {
        revision.to_string()
    } else {
        std::fs::read_to_string(repo_dir.join("refs").join(revision))
            .map(|c| c.trim().to_string())
            .map_err(|_| {
                format!(
                    "revision {revision} is not in the Hugging Face cache {}",
                    settings.cache_dir.display()
                )
            })?
    };
    let snapshot = repo_dir.join("snapshots").join(&commit);
    if !snapshot.join(CONFIG).is_file() {
        return Err(format!(
            "revision {revision} is not in the Hugging Face cache {}",
            settings.cache_dir.display()
        ));
    }
    let broken = |e: String| format!("the cached copy is broken: {e}");
    let paths = RepoPaths::read(&snapshot).map_err(|e| broken(e.to_string()))?;
    let listing = list_files(&snapshot);
    let index = |file: &str| index_shards(&snapshot.join(file)).map_err(|e| e.to_string());
    let needed = needed_files(&listing, &paths, index).map_err(broken)?;
    match needed.iter().find(|f| !snapshot.join(f).is_file()) {
        Some(missing) => Err(format!(
            "the cached copy ({}) lacks {missing}",
            snapshot.display()
        )),
        None => Ok(snapshot),
    }
}

/// Where a checkpoint's parts are, as repo paths: its component folders ("llm/") and its
/// tokenizer, as the layout of its config.json names them.
struct RepoPaths {
    folders: Vec<String>,
    tokenizer: String,
}

impl RepoPaths {
    /// From the config.json in `snapshot`.
    fn read(snapshot: &Path) -> Result<Self> {
        let (_, layout) = TopConfig::read(snapshot)?;
        // A folder outside the checkpoint cannot come from its repo.
        let repo_path = |p: &Path| {
            let relative = p.strip_prefix(snapshot).ok()?;
            Some(relative.to_string_lossy().replace('\\', "/"))
        };
        Ok(Self {
            folders: [&layout.llm, &layout.vision_tower, &layout.connector]
                .into_iter()
                .filter_map(|f| repo_path(f))
                .map(|f| format!("{f}/"))
                .collect(),
            tokenizer: repo_path(&layout.tokenizer()).unwrap_or_default(),
        })
    }
}

fn is_commit(revision: &str) -> bool {
    revision.len() == 40 && revision.bytes().all(|b| b.is_ascii_hexdigit())
}

/// Every file under `dir`, as repo paths with `/`.
fn list_files(dir: &Path) -> Vec<String> {
    fn walk(dir: &Path, prefix: &str, out: &mut Vec<String>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for entry in entries.flatten() {
            let name = format!("{prefix}{}", entry.file_name().to_string_lossy());
            let path = entry.path();
            if path.is_dir() {
                walk(&path, &format!("{name}/"), out);
            } else {
                out.push(name);
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, "", &mut out);
    out
}

/// The configuration files the loader reads, in a repo's file list: config.json, the llm's
/// tokenizer, and the configs and shard indexes inside the component folders (nothing outside
/// them is needed).
fn config_files(listing: &[String], paths: &RepoPaths) -> Vec<String> {
    const NAMES: [&str; 4] = [CONFIG, GENERATION_CONFIG, PREPROCESSOR_CONFIG, INDEX];
    listing
        .iter()
        .filter(|f| {
            let in_component = paths.folders.iter().any(|folder| f.starts_with(folder));
            let name = f.rsplit('/').next().unwrap_or(f);
            f.as_str() == CONFIG
                || **f == paths.tokenizer
                || (in_component && NAMES.contains(&name))
        })
        .cloned()
        .collect()
}

/// Every file the loader needs: the configs, then per component folder the shards its index
/// names (`index` reads an index given its repo path) or else its model.safetensors.
fn needed_files(
    listing: &[String],
    paths: &RepoPaths,
    index: impl Fn(&str) -> std::result::Result<Vec<String>, String>,
) -> std::result::Result<Vec<String>, String> {
    let mut needed = config_files(listing, paths);
    let folders: BTreeSet<String> = needed
        .iter()
        .filter_map(|f| f.strip_suffix(CONFIG))
        .filter(|folder| folder.ends_with('/'))
        .map(str::to_string)
        .collect();
    for folder in folders {
        let index_file = format!("{folder}{INDEX}");
        let single = format!("{folder}{SINGLE}");
        if listing.contains(&index_file) {
            let shards = index(&index_file)?;
            needed.extend(shards.into_iter().map(|s| format!("{folder}{s}")));
        } else if listing.contains(&single) {
            needed.push(single);
        }
    }
    Ok(needed)
}

fn download(
    repo: &str,
    revision: &str,
    settings: &HubSettings,
    observer: &mut dyn DownloadObserver,
) -> std::result::Result<PathBuf, Failure> {
    let mut builder = ApiBuilder::new()
        .with_cache_dir(settings.cache_dir.clone())
        .with_token(settings.token.clone())
        .with_progress(false);
    if let Some(endpoint) = &settings.endpoint {
        builder = builder.with_endpoint(endpoint.clone());
    }
    let api = builder.build().map_err(|e| {
        Failure::Other(model_error(
            repo,
            format!("cannot set up the hub client: {e}"),
        ))
    })?;
    let info = api
        .repo(Repo::with_revision(
            repo.into(),
            RepoType::Model,
            revision.into(),
        ))
        .info()
        .map_err(|e| classify(repo, e))?;
    // Every file from the same commit, whatever the branch does meanwhile.
    let pinned = api.repo(Repo::with_revision(
        repo.into(),
        RepoType::Model,
        info.sha.clone(),
    ));
    let snapshot = settings.repo_dir(repo).join("snapshots").join(&info.sha);
    let listing: Vec<String> = info.siblings.into_iter().map(|s| s.rfilename).collect();
    let get =
        |file: &str, observer: &mut dyn DownloadObserver| -> std::result::Result<(), Failure> {
            if snapshot.join(file).is_file() {
                return Ok(());
            }
            pinned
                .download_with_progress(file, Reporter(observer))
                .map(drop)
                .map_err(|e| classify(repo, e))
        };
    // config.json first: it names the folders of everything else.
    get(CONFIG, observer)?;
    let paths =
        RepoPaths::read(&snapshot).map_err(|e| Failure::Other(model_error(repo, e.to_string())))?;
    for file in config_files(&listing, &paths) {
        get(&file, observer)?;
    }
    let index = |file: &str| index_shards(&snapshot.join(file)).map_err(|e| e.to_string());
    let needed =
        needed_files(&listing, &paths, index).map_err(|e| Failure::Other(model_error(repo, e)))?;
    for file in needed {
        get(&file, observer)?;
    }
    write_ref(&settings.repo_dir(repo), revision, &info.sha).map_err(|e| {
        Failure::Other(model_error(
            repo,
            format!("cannot write the cache ref: {e}"),
        ))
    })?;
    Ok(snapshot)
}

/// refs/<revision> -> commit, as huggingface_hub records a branch; written atomically.
fn write_ref(repo_dir: &Path, revision: &str, commit: &str) -> Result<()> {
    if is_commit(revision) {
        return Ok(());
    }
    let file = repo_dir.join("refs").join(revision);
    let dir = file.parent().unwrap_or(repo_dir);
    std::fs::create_dir_all(dir)
        .map_err(|e| Error::runtime(Some(dir), format!("cannot create: {e}")))?;
    write_atomically(&file, commit.as_bytes())
}

fn classify(repo: &str, e: hf_hub::api::sync::ApiError) -> Failure {
    use hf_hub::api::sync::ApiError;
    match e {
        ApiError::RequestError(ref err) if matches!(**err, ureq::Error::Transport(_)) => {
            Failure::Unreachable(e.to_string())
        }
        ApiError::RequestError(ref err) if matches!(**err, ureq::Error::Status(401 | 403, _)) => {
            Failure::Other(model_error(
                repo,
                "access denied: set HF_TOKEN for a gated or private repo".into(),
            ))
        }
        ApiError::RequestError(ref err) if matches!(**err, ureq::Error::Status(404, _)) => {
            Failure::Other(model_error(
                repo,
                "no such repo, revision or file on the hub".into(),
            ))
        }
        other => Failure::Other(model_error(repo, format!("download failed: {other}"))),
    }
}

/// hf-hub's progress callbacks forwarded to an observer.
struct Reporter<'a>(&'a mut dyn DownloadObserver);

impl Progress for Reporter<'_> {
    fn init(&mut self, size: usize, filename: &str) {
        self.0.start(filename, size as u64);
    }
    fn update(&mut self, size: usize) {
        self.0.advance(size as u64);
    }
    fn finish(&mut self) {
        self.0.done();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn settings(vars: &[(&str, &str)]) -> HubSettings {
        let vars: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        HubSettings::from_vars(|name| vars.get(name).cloned())
    }

    #[test]
    fn the_cache_follows_huggingface_hub_precedence() {
        let s = settings(&[("HOME", "/home/u")]);
        assert_eq!(s.cache_dir, Path::new("/home/u/.cache/huggingface/hub"));
        assert!(!s.offline);
        let s = settings(&[("HOME", "/home/u"), ("XDG_CACHE_HOME", "/xdg")]);
        assert_eq!(s.cache_dir, Path::new("/xdg/huggingface/hub"));
        let s = settings(&[("HOME", "/home/u"), ("HF_HOME", "/hf")]);
        assert_eq!(s.cache_dir, Path::new("/hf/hub"));
        let s = settings(&[("HF_HOME", "/hf"), ("HF_HUB_CACHE", "/cache")]);
        assert_eq!(s.cache_dir, Path::new("/cache"));
        assert_eq!(
            s.repo_dir("org/name"),
            Path::new("/cache/models--org--name")
        );
        for on in ["1", "true", "YES", "on"] {
            assert!(settings(&[("HF_HUB_OFFLINE", on)]).offline, "{on}");
        }
        assert!(!settings(&[("HF_HUB_OFFLINE", "0")]).offline);
    }

    #[test]
    fn the_token_comes_from_hf_token_or_the_token_file() {
        let home = tempfile::tempdir().unwrap();
        std::fs::write(home.path().join("token"), "hf_file\n").unwrap();
        let h = home.path().to_str().unwrap();
        assert_eq!(
            settings(&[("HF_HOME", h)]).token.as_deref(),
            Some("hf_file")
        );
        assert_eq!(
            settings(&[("HF_HOME", h), ("HF_TOKEN", "hf_env")])
                .token
                .as_deref(),
            Some("hf_env")
        );
        assert_eq!(settings(&[("HF_HOME", "/nonexistent")]).token, None);
    }

    /// The file list of a published Apollo checkpoint.
    fn published() -> Vec<String> {
        [
            ".gitattributes",
            "README.md",
            "config.json",
            "configuration_apollo.py",
            "modeling_apollo.py",
            "llm/added_tokens.json",
            "llm/config.json",
            "llm/generation_config.json",
            "llm/merges.txt",
            "llm/model-00001-of-00002.safetensors",
            "llm/model-00002-of-00002.safetensors",
            "llm/model.safetensors.index.json",
            "llm/special_tokens_map.json",
            "llm/tokenizer.json",
            "llm/tokenizer_config.json",
            "llm/vocab.json",
            "mm_connector/config.json",
            "mm_connector/model.safetensors",
            "vision_tower/config.json",
            "vision_tower/internvideo2/config.json",
            "vision_tower/internvideo2/model.safetensors",
            "vision_tower/siglip-so400m-patch14-384/config.json",
            "vision_tower/siglip-so400m-patch14-384/model.safetensors",
            "vision_tower/siglip-so400m-patch14-384/preprocessor_config.json",
        ]
        .map(String::from)
        .to_vec()
    }

    #[test]
    fn only_what_the_loader_reads_is_needed() {
        let index = |file: &str| {
            assert_eq!(file, "llm/model.safetensors.index.json");
            Ok(vec![
                "model-00001-of-00002.safetensors".to_string(),
                "model-00002-of-00002.safetensors".to_string(),
            ])
        };
        let paths = RepoPaths {
            folders: ["llm/", "vision_tower/", "mm_connector/"]
                .map(String::from)
                .to_vec(),
            tokenizer: "llm/tokenizer.json".into(),
        };
        let mut needed = needed_files(&published(), &paths, index).unwrap();
        needed.sort();
        assert_eq!(
            needed,
            [
                "config.json",
                "llm/config.json",
                "llm/generation_config.json",
                "llm/model-00001-of-00002.safetensors",
                "llm/model-00002-of-00002.safetensors",
                "llm/model.safetensors.index.json",
                "llm/tokenizer.json",
                "mm_connector/config.json",
                "mm_connector/model.safetensors",
                "vision_tower/config.json",
                "vision_tower/internvideo2/config.json",
                "vision_tower/internvideo2/model.safetensors",
                "vision_tower/siglip-so400m-patch14-384/config.json",
                "vision_tower/siglip-so400m-patch14-384/model.safetensors",
                "vision_tower/siglip-so400m-patch14-384/preprocessor_config.json",
            ]
        );
    }

    #[test]
    fn a_cached_snapshot_is_found_through_its_ref_and_checked_whole() {
        let root = tempfile::tempdir().unwrap();
        let s = settings(&[("HF_HUB_CACHE", root.path().to_str().unwrap())]);
        let commit = "a".repeat(40);
        let repo = s.repo_dir("org/m");
        let snapshot = repo.join("snapshots").join(&commit);
        for file in [
            "config.json",
            "mm_connector/config.json",
            "mm_connector/model.safetensors",
        ] {
            let path = snapshot.join(file);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, "{}").unwrap();
        }
        assert!(cached("org/m", "main", &s)
            .unwrap_err()
            .contains("revision main is not in the Hugging Face cache"));
        std::fs::create_dir_all(repo.join("refs")).unwrap();
        std::fs::write(repo.join("refs/main"), &commit).unwrap();
        assert_eq!(cached("org/m", "main", &s).unwrap(), snapshot);
        assert_eq!(cached("org/m", &commit, &s).unwrap(), snapshot);

        std::fs::remove_file(snapshot.join("mm_connector/model.safetensors")).unwrap();
        // An index that cannot be read makes the copy unusable.
        std::fs::write(
            snapshot.join("mm_connector/model.safetensors.index.json"),
            "{",
        )
        .unwrap();
        let e = cached("org/m", "main", &s).unwrap_err();
        assert!(e.contains("is broken"), "{e}");
        assert!(
            e.contains("mm_connector/model.safetensors.index.json"),
            "{e}"
        );
    }

    #[test]
    fn refs_are_written_atomically_and_commits_need_none() {
        let root = tempfile::tempdir().unwrap();
        write_ref(root.path(), "main", "abc").unwrap();
        assert_eq!(
            std::fs::read_to_string(root.path().join("refs/main")).unwrap(),
            "abc"
        );
        write_ref(root.path(), &"b".repeat(40), "x").unwrap();
        assert_eq!(
            std::fs::read_dir(root.path().join("refs")).unwrap().count(),
            1
        );
    }
}
