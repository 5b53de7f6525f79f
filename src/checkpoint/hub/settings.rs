//! The hub settings, read from the environment as huggingface_hub reads it: HF_HUB_CACHE,
//! else HF_HOME/hub, else $XDG_CACHE_HOME/huggingface/hub or ~/.cache/huggingface/hub;
//! HF_TOKEN, else the token file beside the cache; HF_HUB_OFFLINE=1 to never touch the
//! network; HF_ENDPOINT for a mirror. APOLLO_HUB_TIMEOUT is apollo's own: the seconds a
//! connection may take to open and a response to send its next bytes.

use crate::error::{Error, Result};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The hub's own address.
const DEFAULT_ENDPOINT: &str = "https://huggingface.co";
/// As huggingface_hub's HF_HUB_ETAG_TIMEOUT and HF_HUB_DOWNLOAD_TIMEOUT.
const DEFAULT_TIMEOUT_S: f64 = 10.0;

#[derive(Debug, Clone, PartialEq)]
pub struct HubSettings {
    pub cache_dir: PathBuf,
    pub token: Option<String>,
    pub offline: bool,
    /// Without a trailing slash.
    pub endpoint: String,
    /// How long a connection may take to open, and a response to go without sending bytes.
    pub timeout: Duration,
}

impl HubSettings {
    pub fn from_env() -> Result<Self> {
        Self::from_vars(|name| std::env::var(name).ok().filter(|v| !v.is_empty()))
    }

    /// Settings from any source of variables (the environment, or a test's map).
    pub fn from_vars(var: impl Fn(&str) -> Option<String>) -> Result<Self> {
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
        let timeout = match var("APOLLO_HUB_TIMEOUT") {
            None => DEFAULT_TIMEOUT_S,
            Some(v) => v
                .trim()
                .parse::<f64>()
                .ok()
                .filter(|s| (0.1..=3600.0).contains(s))
                .ok_or_else(|| {
                    Error::usage(format!(
                        "APOLLO_HUB_TIMEOUT is {v:?}: expected a number of seconds from 0.1 to \
                         3600"
                    ))
                })?,
        };
        Ok(Self {
            cache_dir,
            token,
            offline,
            endpoint: var("HF_ENDPOINT")
                .unwrap_or_else(|| DEFAULT_ENDPOINT.into())
                .trim_end_matches('/')
                .to_string(),
            timeout: Duration::from_secs_f64(timeout),
        })
    }

    /// The cache folder of one model repo (`models--org--name`).
    pub fn repo_dir(&self, repo: &str) -> PathBuf {
        self.cache_dir.join(repo_folder(repo))
    }

    /// The lock of one blob while it downloads, where huggingface_hub keeps its own (so that
    /// the two never write one file at once).
    pub fn lock_file(&self, repo: &str, etag: &str) -> PathBuf {
        self.cache_dir
            .join(".locks")
            .join(repo_folder(repo))
            .join(format!("{etag}.lock"))
    }
}

fn repo_folder(repo: &str) -> String {
    format!("models--{}", repo.replace('/', "--"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    pub(crate) fn settings(vars: &[(&str, &str)]) -> Result<HubSettings> {
        let vars: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        HubSettings::from_vars(|name| vars.get(name).cloned())
    }

    #[test]
    fn the_cache_follows_huggingface_hub_precedence() {
        let s = settings(&[("HOME", "/home/u")]).unwrap();
        assert_eq!(s.cache_dir, Path::new("/home/u/.cache/huggingface/hub"));
        assert!(!s.offline);
        let s = settings(&[("HOME", "/home/u"), ("XDG_CACHE_HOME", "/xdg")]).unwrap();
        assert_eq!(s.cache_dir, Path::new("/xdg/huggingface/hub"));
        let s = settings(&[("HOME", "/home/u"), ("HF_HOME", "/hf")]).unwrap();
        assert_eq!(s.cache_dir, Path::new("/hf/hub"));
        let s = settings(&[("HF_HOME", "/hf"), ("HF_HUB_CACHE", "/cache")]).unwrap();
        assert_eq!(s.cache_dir, Path::new("/cache"));
        assert_eq!(
            s.repo_dir("org/name"),
            Path::new("/cache/models--org--name")
        );
        assert_eq!(
            s.lock_file("org/name", "abc"),
            Path::new("/cache/.locks/models--org--name/abc.lock")
        );
        for on in ["1", "true", "YES", "on"] {
            assert!(settings(&[("HF_HUB_OFFLINE", on)]).unwrap().offline, "{on}");
        }
        assert!(!settings(&[("HF_HUB_OFFLINE", "0")]).unwrap().offline);
    }

    #[test]
    fn the_token_comes_from_hf_token_or_the_token_file() {
        let home = tempfile::tempdir().unwrap();
        std::fs::write(home.path().join("token"), "hf_file\n").unwrap();
        let h = home.path().to_str().unwrap();
        let token = |vars: &[(&str, &str)]| settings(vars).unwrap().token;
        assert_eq!(token(&[("HF_HOME", h)]).as_deref(), Some("hf_file"));
        assert_eq!(
            token(&[("HF_HOME", h), ("HF_TOKEN", "hf_env")]).as_deref(),
            Some("hf_env")
        );
        assert_eq!(token(&[("HF_HOME", "/nonexistent")]), None);
    }

    #[test]
    fn endpoint_and_timeout_have_defaults_and_bounds() {
        let s = settings(&[]).unwrap();
        assert_eq!(s.endpoint, "https://huggingface.co");
        assert_eq!(s.timeout, Duration::from_secs(10));
        let s = settings(&[("HF_ENDPOINT", "http://m/"), ("APOLLO_HUB_TIMEOUT", "0.5")]).unwrap();
        assert_eq!(
            (s.endpoint.as_str(), s.timeout),
            ("http://m", Duration::from_millis(500))
        );
        for bad in ["0", "-1", "nan", "1e9", "soon"] {
            let e = settings(&[("APOLLO_HUB_TIMEOUT", bad)]).unwrap_err();
            assert_eq!(e.exit_code(), 2, "{bad}");
            assert!(e.to_string().contains("from 0.1 to 3600"), "{e}");
        }
    }
}
