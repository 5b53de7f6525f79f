//! The whole Apollo model: both vision encoders, the token grid, the connector and the llm,
//! loaded from a checkpoint in the published layout.

use super::connector::Connector;
use super::finite;
use super::grid;
use super::input::{PromptChunk, TokenId};
use super::internvideo2::{fitted_frames, InternVideo2};
use super::prefix::{BlockPrompt, Prefix};
use super::qwen2::Qwen2;
use super::siglip::{frame_stride, Siglip};
use crate::checkpoint::config::{ApolloConfig, TowerKind};
use crate::checkpoint::safetensors::WeightFiles;
use crate::checkpoint::Checkpoint;
use crate::error::{Error, Result};
use candle_core::{DType, Device, Tensor};

/// Whether both encoders take clips of `frames` frames (SigLIP needs at least the grid's token
/// frames; InternVideo2 must make exactly its `num_frames` by repeating or striding); if not,
/// which counts they take. Checked before any decoding.
pub fn check_frames_per_clip(config: &ApolloConfig, frames: usize) -> Result<(), String> {
    let vision = &config.vision;
    let fits = |f: usize| {
        frame_stride(f, vision.token_output_shape[0]).is_some()
            && fitted_frames(f, vision.internvideo2.num_frames).is_some()
    };
    if fits(frames) {
        return Ok(());
    }
    let taken: Vec<String> = (1..=1024)
        .filter(|&f| fits(f))
        .take(4)
        .map(|f| f.to_string())
        .collect();
    Err(match taken.as_slice() {
        [] => "this model's encoders take no clip length up to 1024 frames".into(),
        _ => format!(
            "this model's encoders take clips of {}, ... frames",
            taken.join(", ")
        ),
    })
}

pub struct ApolloModel {
    config: ApolloConfig,
    siglip: Siglip,
    internvideo2: InternVideo2,
    connector: Connector,
    llm: Qwen2,
    /// What the llm's cache holds as prompt blocks.
    prefix: Prefix,
    device: Device,
    dtype: DType,
}

impl ApolloModel {
    /// Loads the weights the forward pass uses onto `device` in `dtype`.
    pub fn load(checkpoint: &Checkpoint, device: &Device, dtype: DType) -> Result<Self> {
        let (config, layout) = (&checkpoint.config, &checkpoint.layout);
        let vision = &config.vision;
        let open = |dir| WeightFiles::open(dir, device, dtype);
        let siglip = Siglip::load(
            &vision.siglip,
            config.siglip_layers()?,
            &open(&vision.siglip.dir)?,
        )?;
        let internvideo2 = InternVideo2::load(
            &vision.internvideo2,
            config.internvideo2_blocks(),
            &open(&vision.internvideo2.dir)?,
        )?;
        let connector = Connector::load(&config.connector, &open(&layout.connector)?.weights(""))?;
        let llm = Qwen2::load(&config.llm, &open(&layout.llm)?.weights(""))?;
        Ok(Self {
            config: config.clone(),
            siglip,
            internvideo2,
            connector,
            llm,
            prefix: Prefix::default(),
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
        Ok(self.siglip.forward_clips(pixels, out_t)?)
    }

    /// InternVideo2 features (clips, T, g, g, d_model) of pixels (clips, 3, frames, size, size).
    pub fn internvideo2_features(&self, pixels: &Tensor) -> Result<Tensor> {
        Ok(self.internvideo2.forward_clips(pixels)?)
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
        Ok(grid::token_grid(
            &ordered,
            self.config.vision.token_output_shape,
        )?)
    }

    /// The connector: token grids (clips, tokens, channels) to (clips, tokens_per_clip, hidden).
    pub fn connect(&self, grid: &Tensor) -> Result<Tensor> {
        Ok(self.connector.forward(grid)?)
    }

    /// Encoders, grid and connector for one batch of clips, as video rows in clip order:
    /// (clips * tokens_per_clip, hidden).
    /// Each stage's output is checked to be finite.
    pub fn encode_batch(&self, siglip: &Tensor, internvideo2: &Tensor) -> Result<Tensor> {
        let siglip = self.siglip_features(siglip)?;
        finite::check_tensor(&siglip, "SigLIP features", self.dtype)?;
        let internvideo2 = self.internvideo2_features(internvideo2)?;
        finite::check_tensor(&internvideo2, "InternVideo2 features", self.dtype)?;
        let rows = self
            .connect(&self.token_grid(&siglip, &internvideo2)?)?
            .flatten_to(1)?;
        finite::check_tensor(&rows, "video rows (connector output)", self.dtype)?;
        Ok(rows)
    }

    /// The llm's input embeddings (positions, hidden) of a prompt whose video chunks take the
    /// rows of `video_rows` (rows, hidden) in order.
    pub fn embed_prompt(&self, chunks: &[PromptChunk], video_rows: &Tensor) -> Result<Tensor> {
        let wanted = super::input::video_rows(chunks);
        let rows = video_rows.dim(0)?;
        if wanted != rows {
            return Err(Error::runtime(
                None,
                format!("the prompt has {wanted} video slots for {rows} video rows"),
            ));
        }
        let mut parts = Vec::new();
        let mut next_row = 0;
        for chunk in chunks.iter().filter(|c| !c.is_empty()) {
            match chunk {
                PromptChunk::Text(ids) => parts.push(self.embed_tokens(ids)?),
                PromptChunk::Video(n) => {
                    let rows = video_rows.narrow(0, next_row, *n)?;
                    parts.push(rows.to_dtype(self.dtype)?);
                    next_row += n;
                }
            }
        }
        Ok(Tensor::cat(&parts, 0)?)
    }

    /// Token embeddings (ids.len(), hidden), e.g. of each generated token.
    pub fn embed_tokens(&self, ids: &[TokenId]) -> Result<Tensor> {
        let vocab = self.llm.vocab_size();
        if let Some(id) = ids.iter().find(|&&id| id as usize >= vocab) {
            return Err(Error::runtime(
                None,
                format!("token id {id} is outside the vocabulary of {vocab}"),
            ));
        }
        Ok(self.llm.embed(ids)?)
    }

    /// Runs `embeds` (seq, hidden) at positions offset..offset+seq and returns the logits
    /// (vocab,) in f32 of the last position. The cache must hold at least `offset` positions;
    /// it keeps those (0 starts a new sequence) and takes the new ones.
    pub fn forward(&mut self, embeds: &Tensor, offset: usize) -> Result<Tensor> {
        let hidden = self.run_llm(embeds, offset)?;
        let last = hidden.dim(0)? - 1;
        let logits = self.llm.logits(&hidden.narrow(0, last, 1)?)?;
        Ok(logits.squeeze(0)?)
    }

    /// As [`forward`](Self::forward), with the logits of every position: (seq, vocab).
    pub fn forward_all(&mut self, embeds: &Tensor, offset: usize) -> Result<Tensor> {
        let hidden = self.run_llm(embeds, offset)?;
        Ok(self.llm.logits(&hidden)?)
    }

    /// As [`forward`](Self::forward) without logits: fills the cache for positions that
    /// more will follow.
    pub fn extend_cache(&mut self, embeds: &Tensor, offset: usize) -> Result<()> {
        self.run_llm(embeds, offset).map(drop)
    }

    /// Positions in the llm's cache.
    pub fn cached(&self) -> usize {
        self.llm.cached()
    }

    fn run_llm(&mut self, embeds: &Tensor, offset: usize) -> Result<Tensor> {
        let cached = self.llm.cached();
        if offset > cached {
            return Err(Error::runtime(
                None,
                format!("forward at position {offset} but the cache holds {cached} positions"),
            ));
        }
        if embeds.dim(0)? == 0 {
            return Err(Error::runtime(None, "forward needs at least one position"));
        }
        self.llm.truncate_cache(offset);
        self.prefix.truncate(offset);
        Ok(self.llm.forward_hidden(embeds, offset)?)
    }

    /// Prefills `prompt` block by block, starting after the blocks the cache already holds of
    /// it (see [`super::prefix`]); returns the logits (vocab,) of its last position and how
    /// many positions were reused.
    pub fn prefill(&mut self, prompt: &BlockPrompt) -> Result<(Tensor, usize)> {
        let reused = self.prefix.reusable(prompt, self.cached());
        let embeds = self.embed_prompt(prompt.chunks, &prompt.video.rows)?;
        let (last, before) = prompt
            .ends
            .split_last()
            .ok_or_else(|| Error::runtime(None, "a prompt of no blocks"))?;
        let mut start = reused;
        for &end in before.iter().filter(|&&end| end > reused) {
            self.extend_cache(&embeds.narrow(0, start, end - start)?, start)?;
            start = end;
        }
        let logits = self.forward(&embeds.narrow(0, start, last - start)?, start)?;
        self.prefix.set(prompt);
        Ok((logits, reused))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checkpoint::testing::{self, write_tiny_checkpoint, FRAMES, IMAGE};
    use crate::error::Kind;
    use crate::rng::random_tensor;
    use std::collections::HashMap;
    use std::path::Path;

    fn tiny() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        write_tiny_checkpoint(dir.path());
        dir
    }

    fn load(dir: &Path, dtype: DType) -> Result<ApolloModel> {
        ApolloModel::load(&Checkpoint::open(dir)?, &Device::Cpu, dtype)
    }

    /// Pixels of `clips` clips for each encoder.
    fn pixels(clips: usize, seed: u64) -> (Tensor, Tensor) {
        (
            random_tensor(&[clips, FRAMES, 3, IMAGE, IMAGE], seed),
            random_tensor(&[clips, 3, FRAMES, IMAGE, IMAGE], seed + 10),
        )
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
        let e = load(dir, DType::F32).err().unwrap();
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
    fn a_nan_weight_fails_the_stage_it_reaches_first() {
        let stages = [
            (
                "siglip-tiny",
                "embeddings.patch_embedding.bias",
                "SigLIP features",
            ),
            (
                "internvideo2",
                "patch_embed.proj.bias",
                "InternVideo2 features",
            ),
            (
                "mm_connector",
                "proj.0.bias",
                "video rows (connector output)",
            ),
        ];
        for (folder, tensor, stage) in stages {
            let dir = tiny();
            let file = walk_files(dir.path())
                .into_iter()
                .find(|f| f.ends_with(format!("{folder}/model.safetensors")))
                .unwrap();
            edit_file(&file, |tensors| {
                let name = tensors
                    .keys()
                    .find(|k| k.ends_with(tensor))
                    .unwrap()
                    .clone();
                let nan = tensors[&name].affine(0.0, f64::NAN).unwrap();
                tensors.insert(name, nan);
            });
            let model = load(dir.path(), DType::F32).unwrap();
            let (siglip, internvideo2) = pixels(1, 0);
            let e = model.encode_batch(&siglip, &internvideo2).unwrap_err();
            assert_eq!(e.kind, Kind::NonFinite, "{folder}: {e}");
            assert!(e.message.contains(stage), "{folder}: {e}");
        }
    }

    /// Every file under `dir`.
    fn walk_files(dir: &Path) -> Vec<std::path::PathBuf> {
        let mut files = Vec::new();
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                files.extend(walk_files(&path));
            } else {
                files.push(path);
            }
        }
        files
    }

    #[test]
    fn the_frame_check_agrees_with_what_the_encoders_take() {
        let dir = tiny();
        let model = load(dir.path(), DType::F32).unwrap();
        for frames in 1..=9 {
            let siglip = random_tensor(&[1, frames, 3, IMAGE, IMAGE], 1);
            let internvideo2 = random_tensor(&[1, 3, frames, IMAGE, IMAGE], 2);
            let encodes = model.encode_batch(&siglip, &internvideo2).is_ok();
            let check = check_frames_per_clip(model.config(), frames);
            assert_eq!(check.is_ok(), encodes, "{frames} frames: {check:?}");
        }
        assert_eq!(
            check_frames_per_clip(model.config(), 3).unwrap_err(),
            "this model's encoders take clips of 2, 4, 6, 8, ... frames"
        );
    }

    #[test]
    fn runs_every_stage_with_the_cache() {
        let dir = tiny();
        let mut model = load(dir.path(), DType::F32).unwrap();
        let (siglip, internvideo2) = pixels(3, 0);
        let rows = model.encode_batch(&siglip, &internvideo2).unwrap();
        assert_eq!(
            rows.dims(),
            &[3 * testing::TOKENS_PER_CLIP, testing::LLM_HIDDEN]
        );

        let chunks = [
            PromptChunk::Text(vec![1, 2]),
            PromptChunk::Video(9),
            PromptChunk::Text(vec![3]),
        ];
        let embeds = model.embed_prompt(&chunks, &rows).unwrap();
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

        let short = [PromptChunk::Text(vec![1, 2]), PromptChunk::Video(3)];
        let e = model.embed_prompt(&short, &rows).unwrap_err();
        assert!(
            e.to_string().contains("3 video slots for 9 video rows"),
            "{e}"
        );
        let bad = [PromptChunk::Video(1), PromptChunk::Text(vec![99])];
        let e = model.embed_prompt(&bad, &rows.narrow(0, 0, 1).unwrap());
        assert!(e.unwrap_err().to_string().contains("token id 99"));
        let e = model
            .forward(&embeds.narrow(0, 0, 1).unwrap(), 13)
            .unwrap_err();
        assert!(e.to_string().contains("cache holds 12 positions"), "{e}");
        // An offset below the cached positions cuts the cache back: the positions after it
        // are computed anew, as in a pass that never went further.
        model
            .extend_cache(&embeds.narrow(0, 0, 7).unwrap(), 0)
            .unwrap();
        let again = step(&mut model, 5, 7);
        assert_eq!(
            again.to_vec1::<f32>().unwrap(),
            step(&mut model, 5, 7).to_vec1::<f32>().unwrap()
        );
        assert!(max_diff(&again, &full.get(11).unwrap()) < 1e-5);
    }

    #[test]
    fn runs_in_bf16_close_to_f32() {
        let dir = tiny();
        let (siglip, internvideo2) = pixels(1, 1);
        let run = |dtype| {
            let mut model = load(dir.path(), dtype).unwrap();
            let cast = |t: &Tensor| t.to_dtype(dtype).unwrap();
            let rows = model
                .encode_batch(&cast(&siglip), &cast(&internvideo2))
                .unwrap();
            let chunks = [
                PromptChunk::Text(vec![5]),
                PromptChunk::Video(3),
                PromptChunk::Text(vec![7]),
            ];
            let embeds = model.embed_prompt(&chunks, &rows).unwrap();
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
        let (siglip, internvideo2) = pixels(1, 1);
        let encode = |dir: &Path| {
            let model = load(dir, DType::F32).unwrap();
            model.encode_batch(&siglip, &internvideo2).unwrap()
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
            e.starts_with(&format!("{file:?}: ")) && e.contains("missing"),
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
        assert!(e.starts_with(&format!("{file:?}: ")), "{e}");
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
            e.starts_with(&format!("{file:?}: ")) && e.contains("truncated: tensor "),
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
            e.starts_with(&format!("{file:?}: "))
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
            t.insert(name.into(), random_tensor(&[13, testing::SIGLIP_HIDDEN], 0));
        });
        let e = load_error(dir.path());
        assert!(
            e.starts_with(&format!("{file:?}: "))
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
            e.starts_with(&format!("{shard:?}: "))
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
            e.starts_with(&format!("{config:?}: ")) && e.contains("text_hidden_size 16"),
            "{e}"
        );
    }
}
