//! Weights of one checkpoint component (a folder holding `model.safetensors`, or shards listed
//! by `model.safetensors.index.json`), memory-mapped and loaded tensor by tensor straight to
//! the target device and dtype. Only the tensors a module asks for are read, so unused ones
//! (distillation heads, pooling heads, layers past the selected one) cost nothing.
//!
//! Every failure is a `Kind::Model` error naming the file and, where there is one, the tensor.

use super::layout::{INDEX, SINGLE};
use crate::error::{Error, Kind, Result};
use candle_core::safetensors::MmapedSafetensors;
use candle_core::{DType, Device, Tensor};
use std::collections::{BTreeSet, HashMap};
use std::fmt::Display;
use std::io::Read;
use std::path::{Path, PathBuf};

struct SafetensorsFile {
    path: PathBuf,
    data: MmapedSafetensors,
}

/// The safetensors of one component.
pub struct WeightFiles {
    dir: PathBuf,
    files: Vec<SafetensorsFile>,
    /// Tensor name -> index into `files`.
    routes: HashMap<String, usize>,
    /// Where a name missing from `routes` should have been listed.
    listing: PathBuf,
    device: Device,
    dtype: DType,
}

fn model_error(path: &Path, message: impl Into<String>) -> Error {
    Error::new(Kind::Model, Some(path), message)
}

impl WeightFiles {
    /// Opens `dir/model.safetensors`, or the shards that `dir/model.safetensors.index.json`
    /// lists. Headers are read and checked now; tensor data only when asked for.
    pub fn open(dir: &Path, device: &Device, dtype: DType) -> Result<Self> {
        let index = dir.join(INDEX);
        let (paths, listing) = if index.is_file() {
            (shard_paths(dir, &index)?, index)
        } else {
            let single = dir.join(SINGLE);
            if !single.is_file() {
                return Err(model_error(
                    &single,
                    format!("missing (and no {INDEX} beside it)"),
                ));
            }
            (vec![single.clone()], single)
        };
        let mut files = Vec::new();
        let mut routes = HashMap::new();
        for (i, path) in paths.into_iter().enumerate() {
            let data = map_file(&path)?;
            for (name, _) in data.tensors() {
                routes.insert(name, i);
            }
            files.push(SafetensorsFile { path, data });
        }
        Ok(Self {
            dir: dir.to_path_buf(),
            files,
            routes,
            listing,
            device: device.clone(),
            dtype,
        })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn contains(&self, name: &str) -> bool {
        self.routes.contains_key(name)
    }

    /// Names as stored.
    fn names(&self) -> impl Iterator<Item = &str> {
        self.routes.keys().map(String::as_str)
    }

    /// The prefix under which `anchor` is stored: "" when stored as is, "x." when stored as
    /// "x.{anchor}" with one leading component (a wrapper module's name).
    pub fn prefix_of(&self, anchor: &str) -> Option<String> {
        if self.contains(anchor) {
            return Some(String::new());
        }
        let suffix = format!(".{anchor}");
        let mut found = self.names().filter_map(|n| {
            let head = n.strip_suffix(&suffix)?;
            (!head.is_empty() && !head.contains('.')).then(|| format!("{head}."))
        });
        match (found.next(), found.next()) {
            (Some(prefix), None) => Some(prefix),
            _ => None,
        }
    }

    /// A view of every tensor under `prefix` (with its trailing dot, or "").
    pub fn weights(&self, prefix: &str) -> Weights<'_> {
        Weights {
            files: self,
            prefix: prefix.to_string(),
        }
    }

    fn load(&self, name: &str, shape: &[usize]) -> Result<Tensor> {
        let Some(&file) = self.routes.get(name) else {
            return Err(model_error(
                &self.listing,
                format!("tensor {name} is missing"),
            ));
        };
        let SafetensorsFile { path, data } = &self.files[file];
        let view = data
            .get(name)
            .map_err(|e| model_error(path, format!("tensor {name}: {e}")))?;
        if view.shape() != shape {
            return Err(model_error(
                path,
                format!(
                    "tensor {name} has shape {:?}, the config implies {shape:?}",
                    view.shape()
                ),
            ));
        }
        if !DType::try_from(view.dtype()).is_ok_and(|d| d.is_float()) {
            return Err(model_error(
                path,
                format!(
                    "tensor {name} is stored as {:?}, not floating point",
                    view.dtype()
                ),
            ));
        }
        data.load(name, &self.device)
            .and_then(|t| t.to_dtype(self.dtype))
            .map_err(|e| model_error(path, format!("tensor {name}: {e}")))
    }
}

/// The shard file names an index lists, each once, in name order.
pub fn index_shards(index: &Path) -> Result<Vec<String>> {
    #[derive(serde::Deserialize)]
    struct Index {
        weight_map: HashMap<String, String>,
    }
    let text = std::fs::read_to_string(index)
        .map_err(|e| model_error(index, format!("cannot read: {e}")))?;
    let parsed: Index = serde_json::from_str(&text)
        .map_err(|e| model_error(index, format!("invalid index: {e}")))?;
    let shards: BTreeSet<String> = parsed.weight_map.into_values().collect();
    Ok(shards.into_iter().collect())
}

/// The shard files an index lists, each once, in name order.
fn shard_paths(dir: &Path, index: &Path) -> Result<Vec<PathBuf>> {
    let mut paths = Vec::new();
    for shard in index_shards(index)? {
        let path = dir.join(shard);
        if !path.is_file() {
            return Err(model_error(&path, format!("missing (listed in {INDEX})")));
        }
        paths.push(path);
    }
    Ok(paths)
}

fn map_file(path: &Path) -> Result<MmapedSafetensors> {
    // SAFETY: the mapping is read-only; a checkpoint file changed on disk while loaded would
    // be a problem for any reader, and this one holds the map only while loading weights.
    unsafe { MmapedSafetensors::new(path) }.map_err(|e| {
        let detail = truncation(path).unwrap_or_else(|| e.to_string());
        model_error(path, format!("not a readable safetensors file: {detail}"))
    })
}

/// When a file is shorter than its header says, which tensor is cut off.
fn truncation(path: &Path) -> Option<String> {
    let mut file = std::fs::File::open(path).ok()?;
    let file_len = file.metadata().ok()?.len();
    let mut len = [0u8; 8];
    file.read_exact(&mut len).ok()?;
    let header_len = u64::from_le_bytes(len);
    if 8 + header_len > file_len {
        return Some(format!(
            "truncated: the header needs {} bytes, the file has {file_len}",
            8 + header_len
        ));
    }
    let mut header = vec![0u8; usize::try_from(header_len).ok()?];
    file.read_exact(&mut header).ok()?;
    let header: serde_json::Map<String, serde_json::Value> =
        serde_json::from_slice(&header).ok()?;
    let data_len = file_len - 8 - header_len;
    header.iter().find_map(|(name, info)| {
        let end = info.get("data_offsets")?.get(1)?.as_u64()?;
        (end > data_len).then(|| {
            format!("truncated: tensor {name} ends at data byte {end}, the file holds {data_len}")
        })
    })
}

/// Tensors under a name prefix, as a module sees them.
#[derive(Clone)]
pub struct Weights<'a> {
    files: &'a WeightFiles,
    prefix: String,
}

impl<'a> Weights<'a> {
    /// The view one level down: `pp("layers").pp(3)` reads "layers.3.*".
    pub fn pp(&self, part: impl Display) -> Weights<'a> {
        Weights {
            files: self.files,
            prefix: format!("{}{part}.", self.prefix),
        }
    }

    /// The tensor `name` under this prefix, which must have exactly `shape`.
    pub fn get(&self, name: &str, shape: &[usize]) -> Result<Tensor> {
        self.files.load(&format!("{}{name}", self.prefix), shape)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn write(path: &Path, tensors: &[(&str, Tensor)]) {
        let map: HashMap<String, Tensor> = tensors
            .iter()
            .map(|(n, t)| (n.to_string(), t.clone()))
            .collect();
        candle_core::safetensors::save(&map, path).unwrap();
    }

    fn ones(shape: &[usize]) -> Tensor {
        Tensor::ones(shape, DType::F32, &Device::Cpu).unwrap()
    }

    fn open(dir: &Path) -> Result<WeightFiles> {
        WeightFiles::open(dir, &Device::Cpu, DType::F32)
    }

    fn message(e: Error) -> String {
        assert_eq!(e.kind, Kind::Model);
        e.to_string()
    }

    #[test]
    fn loads_a_single_file_with_and_without_prefix() {
        let dir = tempfile::tempdir().unwrap();
        write(
            &dir.path().join(SINGLE),
            &[("wrap.a.weight", ones(&[2, 3])), ("wrap.b", ones(&[4]))],
        );
        let ckpt = open(dir.path()).unwrap();
        assert_eq!(ckpt.prefix_of("a.weight").as_deref(), Some("wrap."));
        assert_eq!(ckpt.prefix_of("wrap.a.weight").as_deref(), Some(""));
        assert_eq!(ckpt.prefix_of("c"), None);
        let w = ckpt.weights("wrap.");
        assert_eq!(w.pp("a").get("weight", &[2, 3]).unwrap().dims(), &[2, 3]);
        assert_eq!(w.get("b", &[4]).unwrap().dims(), &[4]);
    }

    #[test]
    fn converts_to_the_target_dtype() {
        let dir = tempfile::tempdir().unwrap();
        let t = Tensor::new(&[1.5f32, -2.25], &Device::Cpu)
            .unwrap()
            .to_dtype(DType::BF16)
            .unwrap();
        write(&dir.path().join(SINGLE), &[("x", t)]);
        let ckpt = WeightFiles::open(dir.path(), &Device::Cpu, DType::F32).unwrap();
        let x = ckpt.weights("").get("x", &[2]).unwrap();
        assert_eq!(x.dtype(), DType::F32);
        assert_eq!(x.to_vec1::<f32>().unwrap(), vec![1.5, -2.25]);
    }

    #[test]
    fn follows_the_shard_index() {
        let dir = tempfile::tempdir().unwrap();
        write(&dir.path().join("s1.safetensors"), &[("a", ones(&[1]))]);
        write(&dir.path().join("s2.safetensors"), &[("b", ones(&[2]))]);
        std::fs::write(
            dir.path().join(INDEX),
            r#"{"metadata": {}, "weight_map": {"a": "s1.safetensors", "b": "s2.safetensors"}}"#,
        )
        .unwrap();
        let ckpt = open(dir.path()).unwrap();
        let w = ckpt.weights("");
        assert_eq!(w.get("b", &[2]).unwrap().dims(), &[2]);
        let e = message(w.get("c", &[1]).unwrap_err());
        assert!(
            e.contains(INDEX) && e.contains("tensor c is missing"),
            "{e}"
        );
    }

    #[test]
    fn names_a_missing_file() {
        let dir = tempfile::tempdir().unwrap();
        let e = message(open(dir.path()).err().unwrap());
        assert!(e.contains(SINGLE) && e.contains("missing"), "{e}");
    }

    #[test]
    fn names_a_missing_shard() {
        let dir = tempfile::tempdir().unwrap();
        write(&dir.path().join("s1.safetensors"), &[("a", ones(&[1]))]);
        std::fs::write(
            dir.path().join(INDEX),
            r#"{"weight_map": {"a": "s1.safetensors", "b": "s2.safetensors"}}"#,
        )
        .unwrap();
        let e = message(open(dir.path()).err().unwrap());
        assert!(e.contains("s2.safetensors") && e.contains("missing"), "{e}");
    }

    #[test]
    fn names_the_tensor_a_truncated_file_cuts_off() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(SINGLE);
        write(&path, &[("first", ones(&[4])), ("second", ones(&[1000]))]);
        let len = std::fs::metadata(&path).unwrap().len();
        let file = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
        file.set_len(len - 100).unwrap();
        let e = message(open(dir.path()).err().unwrap());
        assert!(
            e.contains(SINGLE) && e.contains("truncated: tensor second"),
            "{e}"
        );

        file.set_len(5).unwrap();
        let e = message(open(dir.path()).err().unwrap());
        assert!(e.contains("not a readable safetensors file"), "{e}");
    }

    #[test]
    fn names_a_tensor_with_the_wrong_shape() {
        let dir = tempfile::tempdir().unwrap();
        write(&dir.path().join(SINGLE), &[("layer.w", ones(&[2, 3]))]);
        let ckpt = open(dir.path()).unwrap();
        let e = message(ckpt.weights("").pp("layer").get("w", &[3, 2]).unwrap_err());
        assert!(
            e.contains(SINGLE) && e.contains("tensor layer.w has shape [2, 3]"),
            "{e}"
        );
    }

    #[test]
    fn rejects_integer_tensors() {
        let dir = tempfile::tempdir().unwrap();
        let t = Tensor::new(&[1u32, 2], &Device::Cpu).unwrap();
        write(&dir.path().join(SINGLE), &[("ids", t)]);
        let ckpt = open(dir.path()).unwrap();
        let e = message(ckpt.weights("").get("ids", &[2]).unwrap_err());
        assert!(e.contains("not floating point"), "{e}");
    }
}
