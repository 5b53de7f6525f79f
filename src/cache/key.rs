//! What a cache entry is named after: everything the video rows depend on, hashed. The
//! video's bytes, the clips (which frames, counted from the first frame of the segment asked
//! for, and where that segment starts; how long, how many frames and rows each), the
//! encoders' and connector's files (weights and configurations, by content and by their part
//! of the checkpoint, not by where they lie), the top-level config (its encode batch size and
//! feature selection), the dtype and the kind of device, and this program's version (its
//! preprocessing). A change to any of them is another key.

use super::entry::FORMAT;
use super::hash::{sha256, Digest};
use crate::checkpoint::Checkpoint;
use crate::video::clips::{ClipPlan, ClipSampling};
use candle_core::{DType, Device};
use std::path::{Path, PathBuf};

/// The inputs of one video's rows.
pub struct RowsInputs<'a> {
    pub video: Digest,
    /// The frame the plan's indices count from (a segment's first; 0 for a whole video).
    pub first_frame: u64,
    pub plan: &'a ClipPlan,
    pub sampling: &'a ClipSampling,
    pub encoders: Digest,
    pub dtype: DType,
    pub device: &'a Device,
}

/// "cpu" or "cuda": which kind of device computed the rows.
fn device_kind(device: &Device) -> &'static str {
    match device.location() {
        candle_core::DeviceLocation::Cpu => "cpu",
        candle_core::DeviceLocation::Cuda { .. } => "cuda",
        candle_core::DeviceLocation::Metal { .. } => "metal",
    }
}

pub fn rows_key(inputs: &RowsInputs) -> Digest {
    let frames: Vec<&Vec<u64>> = inputs.plan.clips.iter().map(|c| &c.frame_indices).collect();
    let s = inputs.sampling;
    let text = format!(
        "apollo video rows, entry format {FORMAT}, apollo {}\nvideo {:?}\nfirst_frame {}\n\
         clip_duration {}\nframes_per_clip {}\ntokens_per_clip {}\nframes {frames:?}\n\
         encoders {:?}\ndtype {}\ndevice {}\n",
        env!("CARGO_PKG_VERSION"),
        inputs.video,
        inputs.first_frame,
        s.clip_duration,
        s.frames_per_clip,
        s.tokens_per_clip,
        inputs.encoders,
        inputs.dtype.as_str(),
        device_kind(inputs.device),
    );
    sha256(text.as_bytes())
}

/// The files the video rows depend on, each named by its part of the checkpoint: config.json,
/// and the configurations and weights (`.json`, `.safetensors`) in the vision tower's and the
/// connector's folders.
pub fn encoder_files(checkpoint: &Checkpoint) -> std::io::Result<Vec<(String, PathBuf)>> {
    let layout = &checkpoint.layout;
    let mut files = vec![("config.json".to_string(), layout.config_file())];
    for (part, dir) in [
        ("vision_tower", &layout.vision_tower),
        ("mm_connector", &layout.connector),
    ] {
        for file in files_under(dir)? {
            let name = file.strip_prefix(dir).unwrap_or(&file).to_string_lossy();
            files.push((format!("{part}/{name}"), file.clone()));
        }
    }
    Ok(files)
}

/// `.json` and `.safetensors` files under `dir`, links followed.
fn files_under(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        let meta = std::fs::metadata(&path)?;
        if meta.is_dir() {
            out.extend(files_under(&path)?);
        } else if matches!(
            path.extension().and_then(|e| e.to_str()),
            Some("json" | "safetensors")
        ) {
            out.push(path);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checkpoint::testing::write_tiny_checkpoint;
    use crate::video::clips::Clip;

    #[test]
    fn every_input_changes_the_key() {
        let plan = ClipPlan {
            effective_ratio: 1.0,
            clips: vec![Clip {
                start_s: 0.0,
                end_s: 1.0,
                frame_indices: vec![0, 5, 10, 15],
            }],
        };
        let sampling = ClipSampling::default();
        let cpu = Device::Cpu;
        let base = RowsInputs {
            video: sha256(b"video"),
            first_frame: 0,
            plan: &plan,
            sampling: &sampling,
            encoders: sha256(b"weights"),
            dtype: DType::F32,
            device: &cpu,
        };
        let key = rows_key(&base);
        assert_eq!(key, rows_key(&RowsInputs { ..base }), "deterministic");
        let mut other_plan = plan.clone();
        other_plan.clips[0].frame_indices[3] = 16;
        let longer = ClipSampling {
            clip_duration: 3.0,
            ..sampling.clone()
        };
        let variants = [
            RowsInputs {
                video: sha256(b"other"),
                ..base
            },
            RowsInputs {
                plan: &other_plan,
                ..base
            },
            RowsInputs {
                sampling: &longer,
                ..base
            },
            RowsInputs {
                encoders: sha256(b"w2"),
                ..base
            },
            RowsInputs {
                dtype: DType::BF16,
                ..base
            },
        ];
        for v in &variants {
            assert_ne!(rows_key(v), key);
        }
    }

    #[test]
    fn the_encoder_files_are_the_vision_and_connector_parts() {
        let dir = tempfile::tempdir().unwrap();
        write_tiny_checkpoint(dir.path());
        let checkpoint = Checkpoint::open(dir.path()).unwrap();
        let names: Vec<String> = encoder_files(&checkpoint)
            .unwrap()
            .into_iter()
            .map(|(name, _)| name)
            .collect();
        assert!(names.contains(&"config.json".to_string()), "{names:?}");
        assert!(
            names.contains(&"mm_connector/model.safetensors".to_string()),
            "{names:?}"
        );
        assert!(names
            .iter()
            .any(|n| n.starts_with("vision_tower/") && n.ends_with(".safetensors")));
        assert!(!names.iter().any(|n| n.contains("llm")), "{names:?}");
    }
}
