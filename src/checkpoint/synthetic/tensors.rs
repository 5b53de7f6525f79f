//! The tensors of a synthetic checkpoint and how they are written: bf16 safetensors streamed
//! tensor by tensor (so that memory stays bounded whatever the size), sharded as transformers
//! shards them, with random values initialised so that activations stay modest.

use crate::checkpoint::layout::INDEX;
use crate::error::{Error, Kind, Result};
use crate::rng::SeededRng;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;

/// Writes the tensors in shards with their index. The index is written even for one shard, so
/// that the loader's shard path is what runs.
pub(super) fn write_shards(dir: &Path, specs: Vec<Spec>, sharding: Sharding) -> Result<()> {
    let shards = sharding.split(specs);
    let count = shards.len();
    let mut weight_map = BTreeMap::new();
    let mut total_size = 0;
    for (i, shard) in shards.iter().enumerate() {
        let file = format!("model-{:05}-of-{count:05}.safetensors", i + 1);
        write_safetensors(&dir.join(&file), shard)?;
        for spec in shard {
            total_size += spec.bytes();
            weight_map.insert(spec.name.clone(), file.clone());
        }
    }
    write_json(
        &dir.join(INDEX),
        &json!({"metadata": {"total_size": total_size}, "weight_map": weight_map}),
    )
}

/// How a component's tensors are split into shard files.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sharding {
    /// transformers' `shard_checkpoint` with this `max_shard_size` in bytes.
    MaxBytes(u64),
    /// Two shards, the second from the first tensor whose name contains this (a split in the
    /// middle of a layer, for tests of the loader's shard routing).
    SecondFrom(&'static str),
}

impl Sharding {
    fn split(self, specs: Vec<Spec>) -> Vec<Vec<Spec>> {
        match self {
            Sharding::MaxBytes(limit) => split_shards(specs, limit),
            Sharding::SecondFrom(name) => {
                let at = specs.iter().position(|s| s.name.contains(name));
                let mut first = specs;
                let second = first.split_off(at.unwrap_or(first.len()));
                [first, second]
                    .into_iter()
                    .filter(|s| !s.is_empty())
                    .collect()
            }
        }
    }
}

/// transformers' `shard_checkpoint`: tensors in order, a new shard when the next tensor would
/// take a non-empty one past `limit` bytes.
fn split_shards(specs: Vec<Spec>, limit: u64) -> Vec<Vec<Spec>> {
    let mut shards: Vec<Vec<Spec>> = Vec::new();
    let mut size = 0;
    for spec in specs {
        match shards.last_mut() {
            Some(last) if size + spec.bytes() <= limit => {
                size += spec.bytes();
                last.push(spec);
            }
            _ => {
                size = spec.bytes();
                shards.push(vec![spec]);
            }
        }
    }
    shards
}

pub(super) fn write_json(path: &Path, value: &Value) -> Result<()> {
    let text = serde_json::to_string_pretty(value).expect("JSON values serialise");
    create_parent(path)?;
    std::fs::write(path, text + "\n").map_err(|e| write_error(path, e))
}

fn create_parent(path: &Path) -> Result<()> {
    let parent = path.parent().expect("a file inside a directory");
    std::fs::create_dir_all(parent).map_err(|e| write_error(parent, e))
}

fn write_error(path: &Path, e: std::io::Error) -> Error {
    Error::new(Kind::Runtime, Some(path), format!("cannot write: {e}"))
}

/// How a tensor is filled.
#[derive(Debug, Clone, Copy)]
enum Fill {
    /// Uniform with this standard deviation.
    Random(f32),
    Constant(f32),
}

/// One tensor to write.
pub(super) struct Spec {
    name: String,
    shape: Vec<usize>,
    fill: Fill,
}

impl Spec {
    fn len(&self) -> usize {
        self.shape.iter().product()
    }

    fn bytes(&self) -> u64 {
        2 * self.len() as u64
    }
}

/// The tensors of one file, initialised so that activations stay modest at the published
/// depths (largest |value| about 24 in SigLIP's output, 4 in the logits): matrices scaled to
/// unit-variance outputs, norms at one, small biases and embeddings.
#[derive(Default)]
pub(super) struct Specs {
    pub(super) specs: Vec<Spec>,
    /// Put before every name: a wrapper module's.
    prefix: &'static str,
}

impl Specs {
    /// Tensors whose names all start with `prefix`.
    pub(super) fn under(prefix: &'static str) -> Self {
        Self {
            specs: Vec::new(),
            prefix,
        }
    }

    fn push(&mut self, name: &str, shape: &[usize], fill: Fill) {
        self.specs.push(Spec {
            name: format!("{}{name}", self.prefix),
            shape: shape.to_vec(),
            fill,
        });
    }

    /// A Linear or convolution weight (outputs, inputs...).
    pub(super) fn weight(&mut self, name: &str, shape: &[usize]) {
        let fan_in: usize = shape[1..].iter().product();
        self.push(name, shape, Fill::Random(1.0 / (fan_in as f32).sqrt()));
    }

    pub(super) fn bias(&mut self, name: &str, size: usize) {
        self.push(name, &[size], Fill::Random(0.02));
    }

    pub(super) fn embedding(&mut self, name: &str, shape: &[usize]) {
        self.push(name, shape, Fill::Random(0.02));
    }

    /// `{prefix}.weight` (outputs, inputs) and, with `bias`, `{prefix}.bias`.
    pub(super) fn linear(&mut self, prefix: &str, inputs: usize, outputs: usize, bias: bool) {
        self.weight(&format!("{prefix}.weight"), &[outputs, inputs]);
        if bias {
            self.bias(&format!("{prefix}.bias"), outputs);
        }
    }

    /// A LayerNorm (`bias`) or RMSNorm at its initial values.
    pub(super) fn norm(&mut self, prefix: &str, size: usize, bias: bool) {
        self.push(&format!("{prefix}.weight"), &[size], Fill::Constant(1.0));
        if bias {
            self.push(&format!("{prefix}.bias"), &[size], Fill::Constant(0.0));
        }
    }

    /// The connector's LayerNorm times `wheight`.
    pub(super) fn weighted_norm(&mut self, prefix: &str, size: usize) {
        self.norm(&format!("{prefix}.norm"), size, true);
        self.push(&format!("{prefix}.wheight"), &[size], Fill::Constant(1.0));
    }

    /// LayerScale's gamma: larger than the 1e-5 of training so that the blocks count.
    pub(super) fn layer_scale(&mut self, name: &str, size: usize) {
        self.push(name, &[size], Fill::Constant(0.1));
    }
}

/// Values generated and written at a time: bounds memory whatever the tensor's size.
const CHUNK: usize = 1 << 20;

/// Writes a safetensors file (bf16, `format: pt` as torch's files have) streaming each
/// tensor's values, so that the largest tensor never sits in memory.
pub(super) fn write_safetensors(path: &Path, specs: &[Spec]) -> Result<()> {
    create_parent(path)?;
    let header = safetensors_header(specs);
    let file = File::create(path).map_err(|e| write_error(path, e))?;
    let mut out = BufWriter::with_capacity(CHUNK, file);
    let mut write = || -> std::io::Result<()> {
        out.write_all(&(header.len() as u64).to_le_bytes())?;
        out.write_all(&header)?;
        let mut buf = Vec::with_capacity(2 * CHUNK);
        for spec in specs {
            write_values(&mut out, spec, &mut buf)?;
        }
        out.flush()
    };
    write().map_err(|e| write_error(path, e))
}

/// The JSON header, padded with spaces to a multiple of 8 bytes as the safetensors library
/// pads it (so that the data is aligned).
fn safetensors_header(specs: &[Spec]) -> Vec<u8> {
    let mut header = serde_json::Map::new();
    header.insert("__metadata__".into(), json!({"format": "pt"}));
    let mut offset = 0;
    for spec in specs {
        let end = offset + spec.bytes();
        header.insert(
            spec.name.clone(),
            json!({"dtype": "BF16", "shape": spec.shape, "data_offsets": [offset, end]}),
        );
        offset = end;
    }
    let mut bytes = serde_json::to_vec(&header).expect("JSON values serialise");
    bytes.resize(bytes.len().next_multiple_of(8), b' ');
    bytes
}

/// Streams one tensor's values as little-endian bf16, `CHUNK` at a time. Random tensors are
/// seeded by their name, so a tensor's values do not depend on which file holds it.
fn write_values(out: &mut impl Write, spec: &Spec, buf: &mut Vec<u8>) -> std::io::Result<()> {
    let mut rng = SeededRng::new(fnv1a(&spec.name));
    let mut value = || match spec.fill {
        // 16 random bits as a signed fraction: uniform on [-1, 1), variance 1/3.
        Fill::Random(std) => {
            (rng.next_u64() >> 48) as u16 as i16 as f32 * (std * 3f32.sqrt() / 32768.0)
        }
        Fill::Constant(v) => v,
    };
    let mut left = spec.len();
    while left > 0 {
        let n = left.min(CHUNK);
        buf.clear();
        buf.extend((0..n).flat_map(|_| half::bf16::from_f32(value()).to_le_bytes()));
        out.write_all(buf)?;
        left -= n;
    }
    Ok(())
}

/// FNV-1a: a stable hash of a tensor name, for its seed.
fn fnv1a(text: &str) -> u64 {
    text.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{DType, Device};

    #[test]
    fn writes_safetensors_that_candle_reads() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("model.safetensors");
        let mut t = Specs::default();
        t.weight("w", &[300, 400]);
        t.norm("n", 3, true);
        write_safetensors(&path, &t.specs).unwrap();
        let tensors = candle_core::safetensors::load(&path, &Device::Cpu).unwrap();
        let w = tensors["w"].to_dtype(DType::F32).unwrap();
        assert_eq!(
            (w.dims(), tensors["w"].dtype()),
            (&[300, 400][..], DType::BF16)
        );
        let values = w.flatten_all().unwrap().to_vec1::<f32>().unwrap();
        let mean = values.iter().sum::<f32>() / values.len() as f32;
        let var = values.iter().map(|v| (v - mean).powi(2)).sum::<f32>() / values.len() as f32;
        // Uniform with std 1/sqrt(400) = 0.05.
        assert!(
            mean.abs() < 1e-3 && (var.sqrt() - 0.05).abs() < 1e-3,
            "{mean} {var}"
        );
        let n = |name: &str| {
            let t = tensors[name].to_dtype(DType::F32).unwrap();
            t.to_vec1::<f32>().unwrap()
        };
        assert_eq!((n("n.weight"), n("n.bias")), (vec![1.0; 3], vec![0.0; 3]));
    }

    #[test]
    fn shards_as_save_pretrained_does() {
        let mut t = Specs::default();
        for (name, len) in [("a", 3), ("b", 2), ("c", 8), ("d", 1)] {
            t.embedding(name, &[len]);
        }
        // Bytes 6, 4, 16, 2 with a 10-byte limit; a tensor above the limit gets its own shard.
        let names: Vec<Vec<String>> = split_shards(t.specs, 10)
            .iter()
            .map(|s| s.iter().map(|t| t.name.clone()).collect())
            .collect();
        assert_eq!(names, [vec!["a", "b"], vec!["c"], vec!["d"]]);
    }

    #[test]
    fn a_split_in_two_puts_the_named_tensor_first_in_the_second_shard() {
        let mut t = Specs::default();
        for name in ["a", "b.mlp", "c"] {
            t.embedding(name, &[1]);
        }
        let names: Vec<Vec<String>> = Sharding::SecondFrom("mlp")
            .split(t.specs)
            .iter()
            .map(|s| s.iter().map(|t| t.name.clone()).collect())
            .collect();
        assert_eq!(names, [vec!["a"], vec!["b.mlp", "c"]]);
    }
}
