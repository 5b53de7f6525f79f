//! The whole Apollo model: both vision encoders, the token grid, the connector and the llm,
//! loaded from a checkpoint directory in the published layout.

use super::config::{ApolloConfig, TowerKind};
use super::connector::Connector;
use super::grid;
use super::internvideo2::InternVideo2;
use super::loader::Checkpoint;
use super::qwen2::Qwen2;
use super::runtime;
use super::siglip::Siglip;
use crate::error::{Error, Result};
use crate::prompt::tokens::VIDEO_SLOT;
use crate::video::preprocess::ClipTensor;
use candle_core::{DType, Device, Tensor};
use std::path::Path;

pub struct ApolloModel {
    config: ApolloConfig,
    siglip: Siglip,
    internvideo2: InternVideo2,
    connector: Connector,
    llm: Qwen2,
    device: Device,
    dtype: DType,
}

impl ApolloModel {
    /// Reads the configs in `dir` and loads the weights the forward pass uses onto `device`
    /// in `dtype`.
    pub fn load(dir: &Path, device: &Device, dtype: DType) -> Result<Self> {
        let config = ApolloConfig::load(dir)?;
        let vision = &config.vision;
        let siglip = Siglip::load(
            &vision.siglip,
            config.siglip_layers()?,
            &Checkpoint::open(&vision.siglip.dir, device, dtype)?,
        )?;
        let internvideo2 = InternVideo2::load(
            &vision.internvideo2,
            config.internvideo2_blocks(),
            &Checkpoint::open(&vision.internvideo2.dir, device, dtype)?,
        )?;
        let connector = Connector::load(
            &config.connector,
            &Checkpoint::open(&config.connector_dir, device, dtype)?.weights(""),
        )?;
        let llm = Qwen2::load(
            &config.llm,
            &Checkpoint::open(&config.llm_dir, device, dtype)?.weights(""),
        )?;
        Ok(Self {
            config,
            siglip,
            internvideo2,
            connector,
            llm,
            device: device.clone(),
            dtype,
        })
    }

    pub fn config(&self) -> &ApolloConfig {
        &self.config
    }

    pub fn device(&self) -> &Device {
        &self.device
    }

    pub fn dtype(&self) -> DType {
        self.dtype
    }

    /// Video rows each clip contributes to the prompt.
    pub fn tokens_per_clip(&self) -> usize {
        self.config.connector.num_output_tokens
    }

    /// SigLIP features (clips, T, g, g, hidden) of pixels (clips, frames, 3, size, size).
    pub fn siglip_features(&self, pixels: &Tensor) -> Result<Tensor> {
        let out_t = self.config.vision.token_output_shape[0];
        self.siglip.forward_clips(pixels, out_t).map_err(runtime)
    }

    /// InternVideo2 features (clips, T, g, g, d_model) of pixels (clips, 3, frames, size, size).
    pub fn internvideo2_features(&self, pixels: &Tensor) -> Result<Tensor> {
        self.internvideo2.forward_clips(pixels).map_err(runtime)
    }

    /// Both encoders' features on the common grid, in `vision_towers` order, flattened:
    /// (clips, T*H*W, channels).
    pub fn token_grid(&self, siglip: &Tensor, internvideo2: &Tensor) -> Result<Tensor> {
        let ordered: Vec<Tensor> = self
            .config
            .vision
            .towers
            .iter()
            .map(|t| match t.kind {
                TowerKind::Siglip => siglip.clone(),
                TowerKind::InternVideo2 => internvideo2.clone(),
            })
            .collect();
        grid::token_grid(&ordered, self.config.vision.token_output_shape).map_err(runtime)
    }

    /// The connector: token grids (clips, tokens, channels) to (clips, tokens_per_clip, hidden).
    pub fn connect(&self, grid: &Tensor) -> Result<Tensor> {
        self.connector.forward(grid).map_err(runtime)
    }

    /// Encoders, grid and connector for one batch of clips: (clips, tokens_per_clip, hidden).
    pub fn encode_batch(&self, siglip: &Tensor, internvideo2: &Tensor) -> Result<Tensor> {
        let grid = self.token_grid(
            &self.siglip_features(siglip)?,
            &self.internvideo2_features(internvideo2)?,
        )?;
        self.connect(&grid)
    }

    /// Every clip's video rows, in order: (clips * tokens_per_clip, hidden). Clips go through
    /// the encoders `encode_batch_size` at a time.
    pub fn encode_clips(
        &self,
        siglip: &[ClipTensor],
        internvideo2: &[ClipTensor],
    ) -> Result<Tensor> {
        if siglip.len() != internvideo2.len() || siglip.is_empty() {
            return Err(Error::runtime(
                None,
                format!(
                    "encode_clips needs the same non-zero number of clips per encoder, got {} and {}",
                    siglip.len(),
                    internvideo2.len()
                ),
            ));
        }
        let batch = self.config.encode_batch_size;
        let mut rows = Vec::new();
        for (s, i) in siglip.chunks(batch).zip(internvideo2.chunks(batch)) {
            let out = self.encode_batch(&self.stack_clips(s)?, &self.stack_clips(i)?)?;
            rows.push(out.flatten_to(1).map_err(runtime)?);
        }
        Tensor::cat(&rows, 0).map_err(runtime)
    }

    /// Clips of one encoder as a (clips, ...) tensor on the device, in the model's dtype.
    pub fn stack_clips(&self, clips: &[ClipTensor]) -> Result<Tensor> {
        let shape = clips[0].shape;
        if let Some(other) = clips.iter().find(|c| c.shape != shape) {
            return Err(Error::runtime(
                None,
                format!(
                    "clips of different shapes: {:?} and {:?}",
                    shape, other.shape
                ),
            ));
        }
        let data: Vec<f32> = clips.iter().flat_map(|c| c.data.iter().copied()).collect();
        let dims = [clips.len(), shape[0], shape[1], shape[2], shape[3]];
        Tensor::from_vec(data, &dims, &self.device)
            .and_then(|t| t.to_dtype(self.dtype))
            .map_err(runtime)
    }

    /// The llm's input embeddings (ids.len(), hidden) for prompt ids in which every
    /// `VIDEO_SLOT` takes the next row of `video_rows` (rows, hidden), in order.
    pub fn embed_prompt(&self, ids: &[i64], video_rows: &Tensor) -> Result<Tensor> {
        let slots = ids.iter().filter(|&&id| id == VIDEO_SLOT).count();
        let rows = video_rows.dim(0).map_err(runtime)?;
        if slots != rows {
            return Err(Error::runtime(
                None,
                format!("the prompt has {slots} video slots for {rows} video rows"),
            ));
        }
        let mut parts = Vec::new();
        let mut next_row = 0;
        for run in ids.chunk_by(|a, b| (*a == VIDEO_SLOT) == (*b == VIDEO_SLOT)) {
            if run[0] == VIDEO_SLOT {
                let rows = video_rows.narrow(0, next_row, run.len());
                parts.push(rows.and_then(|r| r.to_dtype(self.dtype)).map_err(runtime)?);
                next_row += run.len();
                continue;
            }
            let text = run
                .iter()
                .map(|&id| {
                    u32::try_from(id).map_err(|_| {
                        Error::runtime(None, format!("token id {id} is not a vocabulary id"))
                    })
                })
                .collect::<Result<Vec<u32>>>()?;
            parts.push(self.embed_tokens(&text)?);
        }
        Tensor::cat(&parts, 0).map_err(runtime)
    }

    /// Token embeddings (ids.len(), hidden), e.g. of each generated token.
    pub fn embed_tokens(&self, ids: &[u32]) -> Result<Tensor> {
        let vocab = self.llm.vocab_size();
        if let Some(id) = ids.iter().find(|&&id| id as usize >= vocab) {
            return Err(Error::runtime(
                None,
                format!("token id {id} is outside the vocabulary of {vocab}"),
            ));
        }
        self.llm.embed(ids).map_err(runtime)
    }

    /// Runs `embeds` (seq, hidden) at positions offset..offset+seq and returns the logits
    /// (vocab,) in f32 of the last position. `offset` 0 starts a new sequence (the cache is
    /// cleared); otherwise it must equal the positions already cached.
    pub fn forward(&mut self, embeds: &Tensor, offset: usize) -> Result<Tensor> {
        let hidden = self.run_llm(embeds, offset)?;
        let last = hidden.dim(0).map_err(runtime)? - 1;
        let logits = self
            .llm
            .logits(&hidden.narrow(0, last, 1).map_err(runtime)?);
        logits.and_then(|l| l.squeeze(0)).map_err(runtime)
    }

    /// As [`forward`](Self::forward), with the logits of every position: (seq, vocab).
    pub fn forward_all(&mut self, embeds: &Tensor, offset: usize) -> Result<Tensor> {
        let hidden = self.run_llm(embeds, offset)?;
        self.llm.logits(&hidden).map_err(runtime)
    }

    fn run_llm(&mut self, embeds: &Tensor, offset: usize) -> Result<Tensor> {
        if offset == 0 {
            self.llm.clear_cache();
        } else if offset != self.llm.cached() {
            return Err(Error::runtime(
                None,
                format!(
                    "forward at position {offset} but the cache holds {} positions",
                    self.llm.cached()
                ),
            ));
        }
        if embeds.dim(0).map_err(runtime)? == 0 {
            return Err(Error::runtime(None, "forward needs at least one position"));
        }
        self.llm.forward_hidden(embeds, offset).map_err(runtime)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Kind;
    use crate::model::testing::{self, randn, write_tiny_checkpoint, FRAMES, IMAGE};
    use std::collections::HashMap;

    fn tiny() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        write_tiny_checkpoint(dir.path());
        dir
    }

    fn clip(shape: [usize; 4], seed: u64) -> ClipTensor {
        let data = randn(&shape, seed)
            .flatten_all()
            .unwrap()
            .to_vec1()
            .unwrap();
        ClipTensor { shape, data }
    }

    fn max_diff(a: &Tensor, b: &Tensor) -> f32 {
        let d = (a.to_dtype(DType::F32).unwrap() - b.to_dtype(DType::F32).unwrap()).unwrap();
        d.abs()
            .unwrap()
            .flatten_all()
            .unwrap()
            .max(0)
            .unwrap()
            .to_scalar()
            .unwrap()
    }

    fn load_error(dir: &Path) -> String {
        let e = ApolloModel::load(dir, &Device::Cpu, DType::F32)
            .err()
            .unwrap();
        assert_eq!(e.kind, Kind::Model, "{e}");
        e.to_string()
    }

    /// Rewrites one safetensors file through `edit`.
    fn edit_file(path: &Path, edit: impl FnOnce(&mut HashMap<String, Tensor>)) {
        let mut tensors = candle_core::safetensors::load(path, &Device::Cpu).unwrap();
        edit(&mut tensors);
        candle_core::safetensors::save(&tensors, path).unwrap();
    }

    #[test]
    fn runs_every_stage_with_batches_and_cache() {
        let dir = tiny();
        let mut model = ApolloModel::load(dir.path(), &Device::Cpu, DType::F32).unwrap();
        let siglip: Vec<_> = (0..3).map(|i| clip([FRAMES, 3, IMAGE, IMAGE], i)).collect();
        let internvideo2: Vec<_> = (0..3)
            .map(|i| clip([3, FRAMES, IMAGE, IMAGE], 10 + i))
            .collect();
        // encode_batch_size is 2: batches of 2 and 1 give what one batch of 3 gives.
        let rows = model.encode_clips(&siglip, &internvideo2).unwrap();
        assert_eq!(
            rows.dims(),
            &[3 * testing::TOKENS_PER_CLIP, testing::LLM_HIDDEN]
        );
        let whole = model
            .encode_batch(
                &model.stack_clips(&siglip).unwrap(),
                &model.stack_clips(&internvideo2).unwrap(),
            )
            .unwrap()
            .flatten_to(1)
            .unwrap();
        assert!(max_diff(&rows, &whole) < 1e-6);

        let mut ids = vec![1i64, 2];
        ids.extend([VIDEO_SLOT; 9]);
        ids.push(3);
        let embeds = model.embed_prompt(&ids, &rows).unwrap();
        assert_eq!(embeds.dims(), &[12, testing::LLM_HIDDEN]);
        assert!(max_diff(&embeds.narrow(0, 2, 9).unwrap(), &rows) == 0.0);

        // The cache gives the logits a full pass gives, in any split.
        let full = model.forward_all(&embeds, 0).unwrap();
        assert_eq!(full.dims(), &[12, testing::VOCAB]);
        let step = |m: &mut ApolloModel, from: usize, len: usize| {
            m.forward(&embeds.narrow(0, from, len).unwrap(), from)
                .unwrap()
        };
        for (from, len) in [(0, 5), (5, 1), (6, 6)] {
            let logits = step(&mut model, from, len);
            let want = full.get(from + len - 1).unwrap();
            assert!(max_diff(&logits, &want) < 1e-5, "{from}+{len}");
        }

        let e = model.embed_prompt(&ids[..5], &rows).unwrap_err();
        assert!(
            e.to_string().contains("3 video slots for 9 video rows"),
            "{e}"
        );
        let e = model.embed_prompt(&[VIDEO_SLOT, 99], &rows.narrow(0, 0, 1).unwrap());
        assert!(e.unwrap_err().to_string().contains("token id 99"));
        let e = model
            .forward(&embeds.narrow(0, 0, 1).unwrap(), 3)
            .unwrap_err();
        assert!(e.to_string().contains("cache holds 12 positions"), "{e}");
    }

    #[test]
    fn runs_in_bf16_close_to_f32() {
        let dir = tiny();
        let siglip = [clip([FRAMES, 3, IMAGE, IMAGE], 1)];
        let internvideo2 = [clip([3, FRAMES, IMAGE, IMAGE], 2)];
        let run = |dtype| {
            let mut model = ApolloModel::load(dir.path(), &Device::Cpu, dtype).unwrap();
            let rows = model.encode_clips(&siglip, &internvideo2).unwrap();
            let ids = [[5i64].as_slice(), &[VIDEO_SLOT; 3], &[7]].concat();
            let embeds = model.embed_prompt(&ids, &rows).unwrap();
            assert_eq!(embeds.dtype(), dtype);
            model.forward(&embeds, 0).unwrap()
        };
        let (full, half) = (run(DType::F32), run(DType::BF16));
        assert_eq!(half.dtype(), DType::F32);
        assert!(max_diff(&full, &half) < 0.1, "{}", max_diff(&full, &half));
    }

    #[test]
    fn reads_siglip_names_with_or_without_the_vision_model_prefix() {
        let dir = tiny();
        let siglip = [clip([FRAMES, 3, IMAGE, IMAGE], 1)];
        let internvideo2 = [clip([3, FRAMES, IMAGE, IMAGE], 2)];
        let encode = |dir: &Path| {
            let model = ApolloModel::load(dir, &Device::Cpu, DType::F32).unwrap();
            model.encode_clips(&siglip, &internvideo2).unwrap()
        };
        let before = encode(dir.path());
        // transformers 5.x writes the names without the prefix.
        edit_file(
            &dir.path()
                .join("vision_tower/siglip-tiny/model.safetensors"),
            |t| {
                *t = t
                    .drain()
                    .map(|(k, v)| (k.trim_start_matches("vision_model.").to_string(), v))
                    .collect();
            },
        );
        assert_eq!(max_diff(&before, &encode(dir.path())), 0.0);
    }

    #[test]
    fn names_a_missing_weights_file() {
        let dir = tiny();
        let file = dir
            .path()
            .join("vision_tower/internvideo2/model.safetensors");
        std::fs::remove_file(&file).unwrap();
        let e = load_error(dir.path());
        assert!(
            e.starts_with(&file.display().to_string()) && e.contains("missing"),
            "{e}"
        );
    }

    #[test]
    fn names_a_missing_config() {
        let dir = tiny();
        let file = dir
            .path()
            .join("vision_tower/siglip-tiny/preprocessor_config.json");
        std::fs::remove_file(&file).unwrap();
        let e = load_error(dir.path());
        assert!(e.starts_with(&file.display().to_string()), "{e}");
    }

    #[test]
    fn names_the_tensor_a_truncated_file_cuts_off() {
        let dir = tiny();
        let file = dir.path().join("mm_connector/model.safetensors");
        let len = std::fs::metadata(&file).unwrap().len();
        let f = std::fs::OpenOptions::new().write(true).open(&file).unwrap();
        f.set_len(len - 7).unwrap();
        let e = load_error(dir.path());
        assert!(
            e.starts_with(&file.display().to_string()) && e.contains("truncated: tensor "),
            "{e}"
        );
    }

    #[test]
    fn names_a_missing_tensor() {
        let dir = tiny();
        let file = dir
            .path()
            .join("vision_tower/internvideo2/model.safetensors");
        edit_file(&file, |t| {
            t.remove("vision_tower.blocks.0.ls2.gamma");
        });
        let e = load_error(dir.path());
        assert!(
            e.starts_with(&file.display().to_string())
                && e.contains("tensor vision_tower.blocks.0.ls2.gamma is missing"),
            "{e}"
        );
    }

    #[test]
    fn names_a_tensor_with_the_wrong_shape() {
        let dir = tiny();
        let file = dir
            .path()
            .join("vision_tower/siglip-tiny/model.safetensors");
        let name = "vision_model.encoder.layers.0.mlp.fc1.weight";
        edit_file(&file, |t| {
            t.insert(name.into(), randn(&[13, testing::SIGLIP_HIDDEN], 0));
        });
        let e = load_error(dir.path());
        assert!(
            e.starts_with(&file.display().to_string())
                && e.contains(&format!("tensor {name} has shape [13, 8]")),
            "{e}"
        );
    }

    #[test]
    fn names_the_tensor_a_config_contradicts() {
        let dir = tiny();
        let config = dir.path().join("llm/config.json");
        testing::edit_json(&config, |c| c["intermediate_size"] = 24.into());
        let e = load_error(dir.path());
        let shard = dir.path().join("llm/model-00002-of-00002.safetensors");
        assert!(
            e.starts_with(&shard.display().to_string())
                && e.contains("tensor model.layers.0.mlp.gate_proj.weight has shape [16, 8], the config implies [24, 8]"),
            "{e}"
        );
    }

    #[test]
    fn rejects_configs_that_disagree_with_each_other() {
        let dir = tiny();
        let config = dir.path().join("mm_connector/config.json");
        testing::edit_json(&config, |c| c["text_hidden_size"] = 16.into());
        let e = load_error(dir.path());
        assert!(
            e.starts_with(&config.display().to_string()) && e.contains("text_hidden_size 16"),
            "{e}"
        );
    }
}
