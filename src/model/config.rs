//! The checkpoint's configuration files, read into one [`ApolloConfig`]. Every value comes from
//! the files; where a file may omit a key, the default is the one the reference class applies
//! (transformers' config defaults, or what Apollo's code does when the key is absent).

use crate::error::{Error, Kind, Result};
use serde::de::DeserializeOwned;
use serde::Deserialize;
use std::path::{Path, PathBuf};

/// An activation named by a config's `hidden_act`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Activation {
    Silu,
    /// Exact GELU (erf), torch's `nn.GELU()`.
    Gelu,
    /// tanh approximation (`gelu_pytorch_tanh`, `gelu_new`).
    GeluTanh,
}

impl Activation {
    fn parse(name: &str, file: &Path) -> Result<Self> {
        match name {
            "silu" | "swish" => Ok(Self::Silu),
            "gelu" => Ok(Self::Gelu),
            "gelu_pytorch_tanh" | "gelu_new" => Ok(Self::GeluTanh),
            other => Err(config_error(
                file,
                format!("unsupported hidden_act {other:?}"),
            )),
        }
    }
}

/// The checkpoint directory's configuration: the top-level config.json and one config per
/// component folder.
#[derive(Debug, Clone)]
pub struct ApolloConfig {
    pub dir: PathBuf,
    /// Seconds per clip (the prompt's "{clip_duration} second clips").
    pub clip_duration: f64,
    /// Clips encoded together.
    pub encode_batch_size: usize,
    /// Index into each encoder's hidden states, Python style (negative counts from the end).
    pub select_layer: i64,
    pub llm_dir: PathBuf,
    pub llm: Qwen2Config,
    pub vision: VisionConfig,
    pub connector_dir: PathBuf,
    pub connector: ConnectorConfig,
    /// The context the clip budget is sized against (`llm_cfg.model_max_length`, else the
    /// top-level `model_max_length`), when the checkpoint states it.
    pub model_max_length: Option<usize>,
}

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

#[derive(Debug, Clone)]
pub struct ConnectorConfig {
    /// Linear layers of the projector ("mlpNx_gelu": N; "linear": 1).
    pub projector_depth: usize,
    pub vision_hidden_size: usize,
    pub text_hidden_size: usize,
    pub num_output_tokens: usize,
    pub resampler_depth: usize,
    pub resampler_n_heads: usize,
    pub resampler_head_dim: usize,
    pub num_key_value_heads: usize,
    pub ff_multi: usize,
    pub hidden_act: Activation,
}

#[derive(Debug, Clone)]
pub struct Qwen2Config {
    pub vocab_size: usize,
    pub hidden_size: usize,
    pub intermediate_size: usize,
    pub num_hidden_layers: usize,
    pub num_attention_heads: usize,
    pub num_key_value_heads: usize,
    pub head_dim: usize,
    pub rope_theta: f64,
    pub rms_norm_eps: f64,
    pub tie_word_embeddings: bool,
    pub hidden_act: Activation,
    /// Longest sequence the rotary positions were trained for: the hard context limit.
    pub max_position_embeddings: usize,
    /// `eos_token_id` of llm/config.json (an id or a list), used when the checkpoint has no
    /// generation_config.json.
    pub eos_token_ids: Vec<u32>,
}

fn config_error(file: &Path, message: impl Into<String>) -> Error {
    Error::new(Kind::Model, Some(file), message)
}

/// A checkpoint's JSON file; a missing or malformed one is a model problem naming the file.
pub(crate) fn read_json<T: DeserializeOwned>(file: &Path) -> Result<T> {
    let text = std::fs::read_to_string(file)
        .map_err(|e| config_error(file, format!("cannot read config: {e}")))?;
    serde_json::from_str(&text).map_err(|e| config_error(file, format!("invalid config: {e}")))
}

/// A key of the top-level config naming a component: a dict means "the folder named after the
/// key" (`llm_cfg` -> llm/), a string is a path, as the reference's `get_model_config` reads it.
fn component_dir(
    dir: &Path,
    file: &Path,
    key: &str,
    value: &Option<serde_json::Value>,
) -> Result<PathBuf> {
    match value {
        Some(serde_json::Value::Object(_)) => Ok(dir.join(key.trim_end_matches("_cfg"))),
        Some(serde_json::Value::String(path)) => Ok(dir.join(path)),
        _ => Err(config_error(file, format!("{key} is missing"))),
    }
}

#[derive(Deserialize)]
struct TopFile {
    llm_cfg: Option<serde_json::Value>,
    vision_tower_cfg: Option<serde_json::Value>,
    mm_connector_cfg: Option<serde_json::Value>,
    clip_duration: f64,
    encode_batch_size: usize,
    #[serde(default = "default_select_layer")]
    mm_vision_select_layer: i64,
    #[serde(default = "default_select_feature")]
    mm_vision_select_feature: String,
    model_max_length: Option<usize>,
}

fn default_select_layer() -> i64 {
    -2
}

fn default_select_feature() -> String {
    "patch".into()
}

impl ApolloConfig {
    /// Reads config.json in `dir` and the configs of the component folders it names.
    pub fn load(dir: &Path) -> Result<Self> {
        let file = dir.join("config.json");
        let top: TopFile = read_json(&file)?;
        if top.encode_batch_size == 0 {
            return Err(config_error(&file, "encode_batch_size must be at least 1"));
        }
        // SigLIP keeps all its tokens whatever this says; for InternVideo2 only "patch" (drop
        // the class token) works: with "cls_patch" the reference fails on its reshape.
        if top.mm_vision_select_feature != "patch" {
            return Err(config_error(
                &file,
                format!(
                    "unsupported mm_vision_select_feature {:?} (InternVideo2 needs \"patch\")",
                    top.mm_vision_select_feature
                ),
            ));
        }
        let llm_dir = component_dir(dir, &file, "llm_cfg", &top.llm_cfg)?;
        let vision_dir = component_dir(dir, &file, "vision_tower_cfg", &top.vision_tower_cfg)?;
        let connector_dir = component_dir(dir, &file, "mm_connector_cfg", &top.mm_connector_cfg)?;
        let config = Self {
            dir: dir.to_path_buf(),
            clip_duration: top.clip_duration,
            encode_batch_size: top.encode_batch_size,
            select_layer: top.mm_vision_select_layer,
            llm: Qwen2Config::load(&llm_dir.join("config.json"))?,
            llm_dir,
            vision: VisionConfig::load(&vision_dir)?,
            connector: ConnectorConfig::load(&connector_dir.join("config.json"))?,
            connector_dir,
            model_max_length: top
                .llm_cfg
                .as_ref()
                .and_then(|llm| llm["model_max_length"].as_u64())
                .map(|m| m as usize)
                .or(top.model_max_length),
        };
        config.check_consistency()?;
        Ok(config)
    }

    /// The widths where components meet must agree, or no weight shape would reveal the problem
    /// until a forward pass.
    fn check_consistency(&self) -> Result<()> {
        let file = self.connector_dir.join("config.json");
        let vision = self.vision.siglip.hidden_size + self.vision.internvideo2.d_model;
        if self.connector.vision_hidden_size != vision {
            return Err(config_error(
                &file,
                format!(
                    "vision_hidden_size {} differs from the encoders' total width {vision}",
                    self.connector.vision_hidden_size
                ),
            ));
        }
        if self.connector.text_hidden_size != self.llm.hidden_size {
            return Err(config_error(
                &file,
                format!(
                    "text_hidden_size {} differs from the llm's hidden_size {}",
                    self.connector.text_hidden_size, self.llm.hidden_size
                ),
            ));
        }
        self.siglip_layers()?;
        Ok(())
    }

    /// Encoder layers SigLIP runs: `hidden_states[select_layer]` is the residual stream after
    /// that many layers (`hidden_states[0]` is the embeddings).
    pub fn siglip_layers(&self) -> Result<usize> {
        let layers = self.vision.siglip.num_hidden_layers as i64;
        let index = if self.select_layer < 0 {
            layers + 1 + self.select_layer
        } else {
            self.select_layer
        };
        if !(0..=layers).contains(&index) {
            return Err(config_error(
                &self.dir.join("config.json"),
                format!(
                    "mm_vision_select_layer {} is out of range for SigLIP's {layers} layers",
                    self.select_layer
                ),
            ));
        }
        Ok(index as usize)
    }

    /// Blocks InternVideo2 runs: its loop stops after block `depth + select_layer` when that
    /// index exists, and otherwise runs every block.
    pub fn internvideo2_blocks(&self) -> usize {
        let depth = self.vision.internvideo2.depth;
        let last = depth as i64 + self.select_layer;
        if (0..depth as i64).contains(&last) {
            last as usize + 1
        } else {
            depth
        }
    }
}

#[derive(Deserialize)]
struct VisionFile {
    vision_towers: Vec<String>,
    token_output_shape: [usize; 3],
}

impl VisionConfig {
    fn load(dir: &Path) -> Result<Self> {
        let file = dir.join("config.json");
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
        let siglip = SiglipConfig::load(&folder(TowerKind::Siglip, "SigLIP")?)?;
        let internvideo2 =
            InternVideo2Config::load(&folder(TowerKind::InternVideo2, "InternVideo2")?)?;
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
    fn load(dir: &Path) -> Result<Self> {
        let file = dir.join("config.json");
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
        let processor_file = dir.join("preprocessor_config.json");
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
    fn load(dir: &Path) -> Result<Self> {
        let file = dir.join("config.json");
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

#[derive(Deserialize)]
struct ConnectorFile {
    projector_type: String,
    resampler_type: String,
    vision_hidden_size: VisionHidden,
    text_hidden_size: usize,
    num_output_tokens: usize,
    resampler_depth: usize,
    resampler_n_heads: usize,
    resampler_head_dim: usize,
    num_key_value_heads: usize,
    ff_multi: usize,
    hidden_act: String,
}

/// The vision width: one number, or one per encoder (their sum is the concatenated width).
#[derive(Deserialize)]
#[serde(untagged)]
enum VisionHidden {
    Total(usize),
    PerEncoder(Vec<usize>),
}

impl ConnectorConfig {
    fn load(file: &Path) -> Result<Self> {
        let raw: ConnectorFile = read_json(file)?;
        let projector_depth = match raw.projector_type.as_str() {
            "linear" => 1,
            t => t
                .strip_suffix("x_gelu")
                .and_then(|rest| rest.rsplit_once("mlp"))
                .and_then(|(_, n)| n.parse::<usize>().ok())
                .filter(|&n| n >= 1)
                .ok_or_else(|| config_error(file, format!("unsupported projector_type {t:?}")))?,
        };
        if raw.resampler_type != "perciver" {
            return Err(config_error(
                file,
                format!("unsupported resampler_type {:?}", raw.resampler_type),
            ));
        }
        if raw.num_key_value_heads == 0
            || !raw
                .resampler_n_heads
                .is_multiple_of(raw.num_key_value_heads)
        {
            return Err(config_error(
                file,
                "resampler_n_heads is not a multiple of num_key_value_heads",
            ));
        }
        Ok(Self {
            projector_depth,
            vision_hidden_size: match raw.vision_hidden_size {
                VisionHidden::Total(n) => n,
                VisionHidden::PerEncoder(v) => v.iter().sum(),
            },
            text_hidden_size: raw.text_hidden_size,
            num_output_tokens: raw.num_output_tokens,
            resampler_depth: raw.resampler_depth,
            resampler_n_heads: raw.resampler_n_heads,
            resampler_head_dim: raw.resampler_head_dim,
            num_key_value_heads: raw.num_key_value_heads,
            ff_multi: raw.ff_multi,
            hidden_act: Activation::parse(&raw.hidden_act, file)?,
        })
    }
}

/// Qwen2Config with transformers' defaults for omitted keys. transformers 4.x writes
/// `rope_theta` at the top level, 5.x inside `rope_parameters`.
#[derive(Deserialize)]
struct Qwen2File {
    #[serde(default = "qwen2_defaults::vocab_size")]
    vocab_size: usize,
    #[serde(default = "qwen2_defaults::hidden_size")]
    hidden_size: usize,
    #[serde(default = "qwen2_defaults::intermediate_size")]
    intermediate_size: usize,
    #[serde(default = "qwen2_defaults::num_hidden_layers")]
    num_hidden_layers: usize,
    #[serde(default = "qwen2_defaults::num_attention_heads")]
    num_attention_heads: usize,
    num_key_value_heads: Option<usize>,
    head_dim: Option<usize>,
    rope_theta: Option<f64>,
    rope_parameters: Option<RopeParameters>,
    rope_scaling: Option<serde_json::Value>,
    #[serde(default = "qwen2_defaults::rms_norm_eps")]
    rms_norm_eps: f64,
    #[serde(default)]
    tie_word_embeddings: bool,
    #[serde(default)]
    use_sliding_window: bool,
    #[serde(default = "qwen2_defaults::hidden_act")]
    hidden_act: String,
    #[serde(default = "qwen2_defaults::max_position_embeddings")]
    max_position_embeddings: usize,
    #[serde(default)]
    eos_token_id: Option<TokenIds>,
}

/// A token id field that transformers accepts as one id or a list of them.
#[derive(Deserialize, Debug, Clone)]
#[serde(untagged)]
pub enum TokenIds {
    One(u32),
    Many(Vec<u32>),
}

impl TokenIds {
    pub fn to_vec(&self) -> Vec<u32> {
        match self {
            TokenIds::One(id) => vec![*id],
            TokenIds::Many(ids) => ids.clone(),
        }
    }
}

#[derive(Deserialize)]
struct RopeParameters {
    rope_theta: Option<f64>,
    rope_type: Option<String>,
}

mod qwen2_defaults {
    pub fn max_position_embeddings() -> usize {
        32768
    }
    pub fn vocab_size() -> usize {
        151936
    }
    pub fn hidden_size() -> usize {
        4096
    }
    pub fn intermediate_size() -> usize {
        22016
    }
    pub fn num_hidden_layers() -> usize {
        32
    }
    pub fn num_attention_heads() -> usize {
        32
    }
    pub fn rms_norm_eps() -> f64 {
        1e-6
    }
    pub fn hidden_act() -> String {
        "silu".into()
    }
}

impl Qwen2Config {
    fn load(file: &Path) -> Result<Self> {
        let raw: Qwen2File = read_json(file)?;
        // Only plain rotary embeddings are implemented; a scaled variant would be silently wrong.
        let scaled = raw.rope_scaling.as_ref().is_some_and(|v| !v.is_null())
            || raw
                .rope_parameters
                .as_ref()
                .and_then(|p| p.rope_type.as_deref())
                .is_some_and(|t| t != "default");
        if scaled {
            return Err(config_error(file, "rope scaling is not supported"));
        }
        if raw.use_sliding_window {
            return Err(config_error(
                file,
                "sliding-window attention is not supported",
            ));
        }
        let rope_theta = raw
            .rope_theta
            .or(raw.rope_parameters.and_then(|p| p.rope_theta))
            .unwrap_or(10000.0);
        let heads = raw.num_attention_heads;
        let kv_heads = raw.num_key_value_heads.unwrap_or(heads);
        if heads == 0 || kv_heads == 0 || !heads.is_multiple_of(kv_heads) {
            return Err(config_error(
                file,
                "num_attention_heads is not a multiple of num_key_value_heads",
            ));
        }
        let head_dim = raw.head_dim.unwrap_or(raw.hidden_size / heads);
        if !head_dim.is_multiple_of(2) {
            return Err(config_error(
                file,
                "head_dim must be even for rotary embeddings",
            ));
        }
        Ok(Self {
            vocab_size: raw.vocab_size,
            hidden_size: raw.hidden_size,
            intermediate_size: raw.intermediate_size,
            num_hidden_layers: raw.num_hidden_layers,
            num_attention_heads: heads,
            num_key_value_heads: kv_heads,
            head_dim,
            rope_theta,
            rms_norm_eps: raw.rms_norm_eps,
            tie_word_embeddings: raw.tie_word_embeddings,
            hidden_act: Activation::parse(&raw.hidden_act, file)?,
            max_position_embeddings: raw.max_position_embeddings,
            eos_token_ids: raw.eos_token_id.map(|ids| ids.to_vec()).unwrap_or_default(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::testing::{edit_json, write_tiny_checkpoint};

    fn write(dir: &Path, name: &str, json: &str) -> PathBuf {
        let path = dir.join(name);
        std::fs::write(&path, json).unwrap();
        path
    }

    #[test]
    fn reads_rope_theta_from_either_transformers_layout() {
        let dir = tempfile::tempdir().unwrap();
        let v4 = write(
            dir.path(),
            "v4.json",
            r#"{"rope_theta": 1000000.0, "rope_scaling": null}"#,
        );
        let v5 = write(
            dir.path(),
            "v5.json",
            r#"{"rope_parameters": {"rope_theta": 500000.0, "rope_type": "default"}}"#,
        );
        assert_eq!(Qwen2Config::load(&v4).unwrap().rope_theta, 1e6);
        assert_eq!(Qwen2Config::load(&v5).unwrap().rope_theta, 5e5);
        // Omitted keys take transformers' Qwen2Config defaults.
        let c = Qwen2Config::load(&v4).unwrap();
        assert_eq!(
            (c.hidden_size, c.num_key_value_heads, c.head_dim),
            (4096, 32, 128)
        );
        assert!(!c.tie_word_embeddings);
        let yarn = write(
            dir.path(),
            "yarn.json",
            r#"{"rope_scaling": {"type": "yarn"}}"#,
        );
        let e = Qwen2Config::load(&yarn).unwrap_err().to_string();
        assert!(e.contains("rope scaling is not supported"), "{e}");
    }

    #[test]
    fn internvideo2_defaults_are_the_training_class_constants() {
        let dir = tempfile::tempdir().unwrap();
        write(
            dir.path(),
            "config.json",
            r#"{"d_model": 1408, "num_heads": 16, "img_size": 224, "patch_size": 14,
                "num_frames": 4, "tubelet_size": 1, "qkv_bias": false}"#,
        );
        let c = InternVideo2Config::load(dir.path()).unwrap();
        assert_eq!(
            (c.depth, c.mlp_hidden, c.qk_normalization),
            (40, 6144, true)
        );
        assert_eq!((c.grid(), c.temporal()), (16, 4));
    }

    #[test]
    fn counts_the_layers_each_encoder_runs() {
        let dir = tempfile::tempdir().unwrap();
        write_tiny_checkpoint(dir.path());
        let mut c = ApolloConfig::load(dir.path()).unwrap();
        // SigLIP 2 layers, InternVideo2 depth 2.
        for (select, siglip, internvideo2) in [(-2, 1, 1), (-1, 2, 2), (0, 0, 2), (-3, 0, 2)] {
            c.select_layer = select;
            assert_eq!(c.siglip_layers().unwrap(), siglip, "{select}");
            assert_eq!(c.internvideo2_blocks(), internvideo2, "{select}");
        }
        c.select_layer = -4;
        assert!(c.siglip_layers().is_err());
        assert_eq!(c.vision.token_output_shape, [2, 2, 2]);
        assert_eq!(c.vision.siglip.pixels.size, 28);
        assert_eq!(c.connector.projector_depth, 2);
    }

    #[test]
    fn rejects_a_grid_the_encoders_do_not_make() {
        let dir = tempfile::tempdir().unwrap();
        write_tiny_checkpoint(dir.path());
        let file = dir.path().join("vision_tower/config.json");
        edit_json(&file, |c| {
            c["token_output_shape"] = serde_json::json!([1, 2, 2])
        });
        let e = ApolloConfig::load(dir.path()).unwrap_err().to_string();
        assert!(
            e.contains("token_output_shape [1, 2, 2] does not match"),
            "{e}"
        );
    }
}
