//! The unit tests' checkpoint: a tiny random one written by the synthetic writer in the
//! published layout, with the variations a loader must cope with (SigLIP in a folder of
//! another name, InternVideo2 under a wrapper prefix, an llm in two shards split mid-layer).

use super::synthetic::{
    write, ConnectorSizes, InternVideo2Sizes, Layers, QwenSizes, Sharding, SiglipSizes, Sizes,
};
use std::path::Path;

/// Sizes of the tiny checkpoint.
pub const SIGLIP_HIDDEN: usize = 8;
pub const IMAGE: usize = 28;
pub const FRAMES: usize = 2;
pub const LLM_HIDDEN: usize = 8;
pub const VOCAB: usize = 20;
pub const TOKENS_PER_CLIP: usize = 3;

/// Writes the checkpoint into `dir`: SigLIP (2 layers, 2x2 patches), InternVideo2 (depth 2,
/// 2 frames, 2x2 patches), grid (2, 2, 2), a one-layer perceiver with grouped heads behind a
/// two-layer projector, and a one-layer untied Qwen2; clips encoded two at a time.
pub fn write_tiny_checkpoint(dir: &Path) {
    let sizes = Sizes {
        siglip: SiglipSizes {
            folder: "siglip-tiny",
            hidden: SIGLIP_HIDDEN,
            intermediate: 12,
            heads: 2,
            image: IMAGE,
            patch: 14,
            layers: 2,
        },
        internvideo2: InternVideo2Sizes {
            prefix: "vision_tower.",
            hidden: 6,
            heads: 2,
            image: IMAGE,
            patch: 14,
            frames: FRAMES,
            depth: 2,
            clip_embed: 4,
            clip_teacher: 5,
            clip_teacher_final: 4,
            clip_return_layers: 1,
        },
        connector: ConnectorSizes {
            tokens_per_clip: TOKENS_PER_CLIP,
            projector_depth: 2,
            heads: 2,
            head_dim: 3,
            kv_heads: 1,
            ff_multi: 2,
        },
        llm: QwenSizes {
            hidden: LLM_HIDDEN,
            intermediate: 16,
            heads: 2,
            kv_heads: 1,
            vocab: VOCAB,
            layers: 1,
            tied: false,
        },
        encode_batch_size: 2,
        llm_sharding: Sharding::SecondFrom(".mlp."),
    };
    // One layer run: SigLIP and InternVideo2 store two.
    write(dir, &sizes, Layers::Run(1)).unwrap();
}

/// Rewrites a JSON file through `edit`.
pub fn edit_json(path: &Path, edit: impl FnOnce(&mut serde_json::Value)) {
    let mut value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    edit(&mut value);
    std::fs::write(path, serde_json::to_string_pretty(&value).unwrap()).unwrap();
}
