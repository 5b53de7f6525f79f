//! vision_tower/config.json and the two encoders it lists: SigLIP (with its image processor's
//! settings) and InternVideo2.

use super::{config_error, read_json, Activation};
use crate::checkpoint::layout::{CONFIG, PREPROCESSOR_CONFIG};
use crate::error::Result;
use serde::Deserialize;
use std::path::{Path, PathBuf};

/// vision_tower/config.json and the encoders it lists.
#[derive(Debug, Clone)]
pub struct VisionConfig {
    pub dir: PathBuf,
    /// Encoders in channel concatenation order.
    pub towers: Vec<Tower>,
    /// The common token grid (T, H, W) every encoder's features are resized to.
    pub token_output_shape: [usize; 3],
    pub siglip: SiglipConfig,
    pub internvideo2: InternVideo2Config,
}

/// One entry of `vision_towers`: its folder name and its kind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tower {
    pub name: String,
    pub kind: TowerKind,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TowerKind {
    Siglip,
    InternVideo2,
}

/// What the caller needs to make one encoder's pixels: side, mean and std per channel.
#[derive(Debug, Clone, PartialEq)]
pub struct PixelSpec {
    pub size: usize,
    pub mean: [f64; 3],
    pub std: [f64; 3],
}

#[derive(Debug, Clone)]
pub struct SiglipConfig {
    pub dir: PathBuf,
    pub hidden_size: usize,
    pub intermediate_size: usize,
    pub num_hidden_layers: usize,
    pub num_attention_heads: usize,
    pub num_channels: usize,
    pub image_size: usize,
    pub patch_size: usize,
    pub layer_norm_eps: f64,
    pub hidden_act: Activation,
    pub pixels: PixelSpec,
}

impl SiglipConfig {
    /// Patches per side.
    pub fn grid(&self) -> usize {
        self.image_size / self.patch_size
    }
}

#[derive(Debug, Clone)]
pub struct InternVideo2Config {
    pub dir: PathBuf,
    pub d_model: usize,
    pub num_heads: usize,
    pub img_size: usize,
    pub patch_size: usize,
    pub num_frames: usize,
    pub tubelet_size: usize,
    /// Blocks of the full model; the select layer counts back from here.
    pub depth: usize,
    pub mlp_hidden: usize,
    pub qkv_bias: bool,
    pub qk_normalization: bool,
    pub norm_eps: f64,
    pub pixels: PixelSpec,
}

impl InternVideo2Config {
    /// Patches per side.
    pub fn grid(&self) -> usize {
        self.img_size / self.patch_size
    }

    /// Token frames per clip.
    pub fn temporal(&self) -> usize {
        self.num_frames / self.tubelet_size
    }
}

#[derive(Deserialize)]
struct VisionFile {
    vision_towers: Vec<String>,
    token_output_shape: [usize; 3],
}

impl VisionConfig {
    pub(super) fn read(dir: &Path) -> Result<Self> {
        let file = dir.join(CONFIG);
        let raw: VisionFile = read_json(&file)?;
        let mut towers = Vec::new();
        for name in raw.vision_towers {
            // The reference picks the encoder class by a substring of the folder name.
            let kind = if name.contains("siglip") {
                TowerKind::Siglip
            } else if name.contains("internvideo") {
                TowerKind::InternVideo2
            } else {
                return Err(config_error(
                    &file,
                    format!("unsupported vision tower {name:?}"),
                ));
            };
            towers.push(Tower { name, kind });
        }
        let folder = |kind: TowerKind, what: &str| -> Result<PathBuf> {
            let mut found = towers.iter().filter(|t| t.kind == kind);
            match (found.next(), found.next()) {
                (Some(t), None) => Ok(dir.join(&t.name)),
                _ => Err(config_error(
                    &file,
                    format!("vision_towers must name exactly one {what} encoder"),
                )),
            }
        };
        let siglip = SiglipConfig::read(&folder(TowerKind::Siglip, "SigLIP")?)?;
        let internvideo2 =
            InternVideo2Config::read(&folder(TowerKind::InternVideo2, "InternVideo2")?)?;
        // The hybrid tower derives the grid from its encoders (max T, max side); the stored
        // value must agree with it.
        let derived = [
            internvideo2.temporal().max(1),
            siglip.grid().max(internvideo2.grid()),
            siglip.grid().max(internvideo2.grid()),
        ];
        if raw.token_output_shape != derived {
            return Err(config_error(
                &file,
                format!(
                    "token_output_shape {:?} does not match the encoders' grid {:?}",
                    raw.token_output_shape, derived
                ),
            ));
        }
        Ok(Self {
            dir: dir.to_path_buf(),
            towers,
            token_output_shape: raw.token_output_shape,
            siglip,
            internvideo2,
        })
    }
}

/// SiglipVisionConfig with transformers' defaults for the keys a saved config may omit.
#[derive(Deserialize)]
struct SiglipFile {
    #[serde(default = "siglip_defaults::hidden_size")]
    hidden_size: usize,
    #[serde(default = "siglip_defaults::intermediate_size")]
    intermediate_size: usize,
    #[serde(default = "siglip_defaults::num_hidden_layers")]
    num_hidden_layers: usize,
    #[serde(default = "siglip_defaults::num_attention_heads")]
    num_attention_heads: usize,
    #[serde(default = "siglip_defaults::num_channels")]
    num_channels: usize,
    #[serde(default = "siglip_defaults::image_size")]
    image_size: usize,
    #[serde(default = "siglip_defaults::patch_size")]
    patch_size: usize,
    #[serde(default = "siglip_defaults::layer_norm_eps")]
    layer_norm_eps: f64,
    #[serde(default = "siglip_defaults::hidden_act")]
    hidden_act: String,
    /// A full SiglipConfig nests the vision part.
    vision_config: Option<Box<SiglipFile>>,
}

mod siglip_defaults {
    pub fn hidden_size() -> usize {
        768
    }
    pub fn intermediate_size() -> usize {
        3072
    }
    pub fn num_hidden_layers() -> usize {
        12
    }
    pub fn num_attention_heads() -> usize {
        12
    }
    pub fn num_channels() -> usize {
        3
    }
    pub fn image_size() -> usize {
        224
    }
    pub fn patch_size() -> usize {
        16
    }
    pub fn layer_norm_eps() -> f64 {
        1e-6
    }
    pub fn hidden_act() -> String {
        "gelu_pytorch_tanh".into()
    }
}

#[derive(Deserialize)]
struct ImageProcessorFile {
    image_mean: [f64; 3],
    image_std: [f64; 3],
    size: ProcessorSize,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum ProcessorSize {
    HeightWidth { height: usize, width: usize },
    Side(usize),
}

impl SiglipConfig {
    pub(super) fn read(dir: &Path) -> Result<Self> {
        let file = dir.join(CONFIG);
        let mut raw: SiglipFile = read_json(&file)?;
        if let Some(vision) = raw.vision_config.take() {
            raw = *vision;
        }
        if raw.patch_size == 0 || raw.image_size < raw.patch_size {
            return Err(config_error(
                &file,
                "image_size must hold at least one patch",
            ));
        }
        if raw.num_attention_heads == 0 || !raw.hidden_size.is_multiple_of(raw.num_attention_heads)
        {
            return Err(config_error(
                &file,
                "hidden_size is not a multiple of num_attention_heads",
            ));
        }
        let processor_file = dir.join(PREPROCESSOR_CONFIG);
        let processor: ImageProcessorFile = read_json(&processor_file)?;
        let size = match processor.size {
            ProcessorSize::HeightWidth { height, width } if height == width => height,
            ProcessorSize::Side(side) => side,
            ProcessorSize::HeightWidth { .. } => {
                return Err(config_error(&processor_file, "size must be square"))
            }
        };
        if size != raw.image_size {
            return Err(config_error(
                &processor_file,
                format!(
                    "size {size} differs from the model's image_size {}",
                    raw.image_size
                ),
            ));
        }
        Ok(Self {
            dir: dir.to_path_buf(),
            hidden_size: raw.hidden_size,
            intermediate_size: raw.intermediate_size,
            num_hidden_layers: raw.num_hidden_layers,
            num_attention_heads: raw.num_attention_heads,
            num_channels: raw.num_channels,
            image_size: raw.image_size,
            patch_size: raw.patch_size,
            layer_norm_eps: raw.layer_norm_eps,
            hidden_act: Activation::parse(&raw.hidden_act, &file)?,
            pixels: PixelSpec {
                size,
                mean: processor.image_mean,
                std: processor.image_std,
            },
        })
    }
}

/// InternVideo2's config.json; `depth`, `mlp_ratio` and `qk_normalization` are absent from the
/// published file, whose training class hard-codes 40, 48/11 and true.
#[derive(Deserialize)]
struct InternVideo2File {
    d_model: usize,
    num_heads: usize,
    img_size: usize,
    patch_size: usize,
    num_frames: usize,
    #[serde(default = "one")]
    tubelet_size: usize,
    #[serde(default = "internvideo2_depth")]
    depth: usize,
    #[serde(default = "internvideo2_mlp_ratio")]
    mlp_ratio: f64,
    #[serde(default)]
    qkv_bias: bool,
    #[serde(default = "yes")]
    qk_normalization: bool,
}

fn one() -> usize {
    1
}

fn yes() -> bool {
    true
}

fn internvideo2_depth() -> usize {
    40
}

fn internvideo2_mlp_ratio() -> f64 {
    48.0 / 11.0
}

/// InternVideo2's processor normalises with the ImageNet statistics, fixed in Apollo's code
/// (internvideo_encoder.py), not in a file.
const IMAGENET_MEAN: [f64; 3] = [0.485, 0.456, 0.406];
const IMAGENET_STD: [f64; 3] = [0.229, 0.224, 0.225];

impl InternVideo2Config {
    pub(super) fn read(dir: &Path) -> Result<Self> {
        let file = dir.join(CONFIG);
        let raw: InternVideo2File = read_json(&file)?;
        if raw.patch_size == 0 || raw.img_size < raw.patch_size {
            return Err(config_error(&file, "img_size must hold at least one patch"));
        }
        if raw.tubelet_size == 0 || !raw.num_frames.is_multiple_of(raw.tubelet_size) {
            return Err(config_error(
                &file,
                "num_frames is not a multiple of tubelet_size",
            ));
        }
        if raw.num_heads == 0 || !raw.d_model.is_multiple_of(raw.num_heads) {
            return Err(config_error(
                &file,
                "d_model is not a multiple of num_heads",
            ));
        }
        Ok(Self {
            dir: dir.to_path_buf(),
            d_model: raw.d_model,
            num_heads: raw.num_heads,
            img_size: raw.img_size,
            patch_size: raw.patch_size,
            num_frames: raw.num_frames,
            tubelet_size: raw.tubelet_size,
            depth: raw.depth,
            // int(dim * mlp_ratio) in f64, as timm's Block computes it.
            mlp_hidden: (raw.d_model as f64 * raw.mlp_ratio) as usize,
            qkv_bias: raw.qkv_bias,
            qk_normalization: raw.qk_normalization,
            norm_eps: 1e-6,
            pixels: PixelSpec {
                size: raw.img_size,
                mean: IMAGENET_MEAN,
                std: IMAGENET_STD,
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn internvideo2_defaults_are_the_training_class_constants() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join(CONFIG),
            r#"{"d_model": 1408, "num_heads": 16, "img_size": 224, "patch_size": 14,
                "num_frames": 4, "tubelet_size": 1, "qkv_bias": false}"#,
        )
        .unwrap();
        let c = InternVideo2Config::read(dir.path()).unwrap();
        assert_eq!(
            (c.depth, c.mlp_hidden, c.qk_normalization),
            (40, 6144, true)
        );
        assert_eq!((c.grid(), c.temporal()), (16, 4));
    }
}
