//! Checkpoints from the Hugging Face hub, kept in the standard hub cache so that a model
//! downloaded with Python is reused and the other way round. Only the files the loader reads
//! are fetched: config.json first, then, in the component folders its layout names, the
//! configs, the llm's tokenizer, and each component's weights (the shards its index names,
//! else its model.safetensors).
//!
//! [`settings`] reads the environment, [`client`] speaks to the hub (timeouts, tries, resumed
//! downloads), [`cache`] keeps the files as huggingface_hub does. When the hub cannot be
//! reached, stalls or keeps failing, a complete cached copy is used, as huggingface_hub does.

pub mod cache;
pub mod client;
pub mod settings;

pub use settings::HubSettings;

use super::layout::{TopConfig, CONFIG, GENERATION_CONFIG, INDEX, PREPROCESSOR_CONFIG, SINGLE};
use super::safetensors::index_shards;
use crate::error::{Error, Kind, Result};
use cache::{cached_commit, is_commit, is_safe_repo_path, store, write_ref};
use client::{Client, Failure};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// A published Apollo-3B-t32 with the full layout. The official Apollo-LMMs repos were taken
/// down; this mirror keeps their files unchanged.
pub const DEFAULT_MODEL: &str = "GoodiesHere/Apollo-LMMs-Apollo-3B-t32";

/// Reports download progress; one call of `start` per file (again for each try), and a note
/// when a request is tried again.
pub trait DownloadObserver {
    fn start(&mut self, file: &str, bytes: u64);
    fn advance(&mut self, bytes: u64);
    fn done(&mut self);
    fn note(&mut self, line: &str);
}

/// A checkpoint in the cache: its snapshot folder and the commit it holds.
#[derive(Debug, Clone, PartialEq)]
pub struct Snapshot {
    pub dir: PathBuf,
    pub commit: String,
}

/// A repo id as the hub accepts one (huggingface_hub's `validate_repo_id`): `name` or
/// `owner/name`, each of ASCII letters, digits, `-`, `_` and `.`, beginning and ending with a
/// letter, digit or `_`, without `--` or `..`, the name at most 96 characters and not ending
/// in `.git`. A clap value parser.
pub fn repo_id(text: &str) -> std::result::Result<String, String> {
    let part_ok = |part: &str, max: usize| {
        let edge = |c: Option<char>| c.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_');
        !part.is_empty()
            && part.len() <= max
            && part
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
            && edge(part.chars().next())
            && edge(part.chars().last())
    };
    let ok = match text.split_once('/') {
        Some((owner, name)) => part_ok(owner, 96) && part_ok(name, 96),
        None => part_ok(text, 96),
    } && !text.contains("--")
        && !text.contains("..")
        && !text.ends_with(".git");
    if ok {
        Ok(text.to_string())
    } else {
        Err(
            "expected a Hugging Face repo id, owner/name: letters, digits, '-', '_' and '.', \
             at most 96 each"
                .into(),
        )
    }
}

/// A revision (branch, tag or commit) that names one ref: no spaces or control characters,
/// no `..`, no empty path component. A clap value parser.
pub fn revision(text: &str) -> std::result::Result<String, String> {
    let ok = !text.is_empty()
        && text.len() <= 256
        && !text.contains("..")
        && !text
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || "\\~^:?*[".contains(c))
        && text.split('/').all(|part| !part.is_empty() && part != ".");
    if ok {
        Ok(text.to_string())
    } else {
        Err("expected a branch, tag or commit of the repo".into())
    }
}

/// The local snapshot of `repo` at `revision` with every file the loader needs, downloading
/// what is missing unless offline.
pub fn fetch(
    repo: &str,
    revision: &str,
    settings: &HubSettings,
    observer: &mut dyn DownloadObserver,
) -> Result<Snapshot> {
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
        // No usable answer: a complete cached copy does, as huggingface_hub falls back to it.
        Failure::Unreachable(reason) => {
            let snapshot = cached(repo, revision, settings).map_err(|missing| {
                model_error(
                    repo,
                    format!(
                        "{missing}, and {reason}; pass --model-dir DIR to use a local checkpoint"
                    ),
                )
            })?;
            observer.note(&format!("{reason}; using the cached copy of {repo}"));
            Ok(snapshot)
        }
        Failure::Other(e) => Err(e),
    })
}

pub(crate) fn model_error(repo: &str, message: String) -> Error {
    Error::new(Kind::Model, None, format!("model {repo}: {message}"))
}

/// The snapshot in the cache, if it holds every needed file; else what is missing.
fn cached(
    repo: &str,
    revision: &str,
    settings: &HubSettings,
) -> std::result::Result<Snapshot, String> {
    let not_cached = || {
        format!(
            "revision {revision} is not in the Hugging Face cache {:?}",
            settings.cache_dir
        )
    };
    let commit = cached_commit(&settings.repo_dir(repo), revision).ok_or_else(not_cached)?;
    let snapshot = settings.repo_dir(repo).join("snapshots").join(&commit);
    if !snapshot.join(CONFIG).is_file() {
        return Err(not_cached());
    }
    let broken = |e: String| format!("the cached copy is broken: {e}");
    let paths = RepoPaths::read(&snapshot).map_err(|e| broken(e.to_string()))?;
    let listing = list_files(&snapshot);
    let index = |file: &str| index_shards(&snapshot.join(file)).map_err(|e| e.to_string());
    let needed = needed_files(&listing, &paths, index).map_err(broken)?;
    match needed.iter().find(|f| !snapshot.join(f).is_file()) {
        Some(missing) => Err(format!("the cached copy ({snapshot:?}) lacks {missing}")),
        None => Ok(Snapshot {
            dir: snapshot,
            commit,
        }),
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

/// Downloads what the cache lacks of `repo` at `revision`, all from the commit the revision
/// is at when asked, whatever the branch does meanwhile.
fn download(
    repo: &str,
    revision: &str,
    settings: &HubSettings,
    observer: &mut dyn DownloadObserver,
) -> std::result::Result<Snapshot, Failure> {
    let client = Client::new(repo, settings);
    let info = client.info(revision, observer)?;
    let other = |message: String| Failure::Other(model_error(repo, message));
    if !is_commit(&info.sha) {
        return Err(other(format!("the hub named the commit {:?}", info.sha)));
    }
    let commit = info.sha;
    let snapshot = settings.repo_dir(repo).join("snapshots").join(&commit);
    let listing: Vec<String> = info.siblings.into_iter().map(|s| s.rfilename).collect();
    let get = |file: &str, observer: &mut dyn DownloadObserver| {
        if !is_safe_repo_path(file) {
            return Err(other(format!("the repo names the unsafe path {file:?}")));
        }
        store(&client, settings, repo, &commit, file, observer)
    };
    // config.json first: it names the folders of everything else.
    get(CONFIG, observer)?;
    let paths = RepoPaths::read(&snapshot).map_err(Failure::Other)?;
    for file in config_files(&listing, &paths) {
        get(&file, observer)?;
    }
    let index = |file: &str| index_shards(&snapshot.join(file)).map_err(|e| e.to_string());
    for file in needed_files(&listing, &paths, index).map_err(other)? {
        get(&file, observer)?;
    }
    write_ref(&settings.repo_dir(repo), revision, &commit).map_err(Failure::Other)?;
    Ok(Snapshot {
        dir: snapshot,
        commit,
    })
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
        HubSettings::from_vars(|name| vars.get(name).cloned()).unwrap()
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
        assert_eq!(cached("org/m", "main", &s).unwrap().dir, snapshot);
        assert_eq!(cached("org/m", &commit, &s).unwrap().commit, commit);

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
    fn repo_ids_and_revisions_follow_the_hubs_rules() {
        for ok in [
            "GoodiesHere/Apollo-LMMs-Apollo-3B-t32",
            "gpt2",
            "org_1/name.v2",
            "_a/b_",
        ] {
            assert_eq!(repo_id(ok).as_deref(), Ok(ok));
        }
        let long = "a".repeat(97);
        for bad in [
            "",
            "a/b/c",
            "org/",
            "/name",
            "org/na me",
            "org/-name",
            "org/name-",
            "org/a--b",
            "org/a..b",
            "org/name.git",
            "../etc",
            "org/Ünïcode",
            long.as_str(),
        ] {
            assert!(repo_id(bad).is_err(), "{bad:?}");
        }
        for ok in ["main", "v1.0", "refs/pr/1", &"a".repeat(40)] {
            assert!(revision(ok).is_ok(), "{ok}");
        }
        for bad in ["", "../x", "a b", "a//b", "/main", "main/", "x\ny", "a:b"] {
            assert!(revision(bad).is_err(), "{bad:?}");
        }
    }
}
