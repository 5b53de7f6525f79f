//! Clips into the encoders in the checkpoint's batches (`encode_batch_size` clips at a time):
//! the one place where preprocessed clips are grouped and moved to the device.

use crate::error::{Error, Result};
use crate::model::ApolloModel;
use crate::video::preprocess::ClipTensor;
use candle_core::Tensor;

/// Clips of one encoder as one (clips, ...) tensor on the model's device, in its dtype.
pub fn stack_clips(model: &ApolloModel, clips: &[ClipTensor]) -> Result<Tensor> {
    let Some(first) = clips.first() else {
        return Err(Error::runtime(None, "no clips to stack"));
    };
    let shape = first.shape;
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
    Ok(Tensor::from_vec(data, &dims, model.device())?.to_dtype(model.dtype())?)
}

/// The clips of both encoders in the model's encode batches.
pub fn batches<'a>(
    model: &ApolloModel,
    siglip: &'a [ClipTensor],
    internvideo2: &'a [ClipTensor],
) -> impl Iterator<Item = (&'a [ClipTensor], &'a [ClipTensor])> {
    let size = model.config().encode_batch_size;
    siglip.chunks(size).zip(internvideo2.chunks(size))
}

/// Every clip's video rows, in order: (clips * tokens_per_clip, hidden).
pub fn encode_clips(
    model: &ApolloModel,
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
    let rows = batches(model, siglip, internvideo2)
        .map(|(s, i)| model.encode_batch(&stack_clips(model, s)?, &stack_clips(model, i)?))
        .collect::<Result<Vec<_>>>()?;
    Ok(Tensor::cat(&rows, 0)?)
}

/// Clips waiting for a full batch, so that a video is encoded while it is still decoding and
/// only one batch of pixels is held at a time.
#[derive(Default)]
pub struct ClipQueue {
    siglip: Vec<ClipTensor>,
    internvideo2: Vec<ClipTensor>,
}

/// Video rows of the clips just encoded.
pub struct Encoded {
    pub rows: Tensor,
    pub clips: usize,
}

impl ClipQueue {
    /// Adds one clip's pixels for both encoders; encodes the batch once it is full.
    pub fn push(
        &mut self,
        model: &ApolloModel,
        (siglip, internvideo2): (ClipTensor, ClipTensor),
    ) -> Result<Option<Encoded>> {
        self.siglip.push(siglip);
        self.internvideo2.push(internvideo2);
        if self.siglip.len() < model.config().encode_batch_size {
            return Ok(None);
        }
        self.flush(model)
    }

    /// Encodes the clips still waiting, if any.
    pub fn flush(&mut self, model: &ApolloModel) -> Result<Option<Encoded>> {
        if self.siglip.is_empty() {
            return Ok(None);
        }
        let rows = encode_clips(model, &self.siglip, &self.internvideo2)?;
        let clips = self.siglip.len();
        self.siglip.clear();
        self.internvideo2.clear();
        Ok(Some(Encoded { rows, clips }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checkpoint::testing::{write_tiny_checkpoint, FRAMES, IMAGE};
    use crate::checkpoint::Checkpoint;
    use crate::rng::random_tensor;
    use candle_core::{DType, Device};

    fn clip(shape: [usize; 4], seed: u64) -> ClipTensor {
        let data = random_tensor(&shape, seed)
            .flatten_all()
            .unwrap()
            .to_vec1()
            .unwrap();
        ClipTensor { shape, data }
    }

    #[test]
    fn batches_of_two_and_one_give_what_one_batch_of_three_gives() {
        let dir = tempfile::tempdir().unwrap();
        write_tiny_checkpoint(dir.path());
        let checkpoint = Checkpoint::open(dir.path()).unwrap();
        let model = ApolloModel::load(&checkpoint, &Device::Cpu, DType::F32).unwrap();
        let siglip: Vec<_> = (0..3).map(|i| clip([FRAMES, 3, IMAGE, IMAGE], i)).collect();
        let internvideo2: Vec<_> = (0..3)
            .map(|i| clip([3, FRAMES, IMAGE, IMAGE], 10 + i))
            .collect();
        // encode_batch_size is 2.
        assert_eq!(batches(&model, &siglip, &internvideo2).count(), 2);
        let rows = encode_clips(&model, &siglip, &internvideo2).unwrap();
        let whole = model
            .encode_batch(
                &stack_clips(&model, &siglip).unwrap(),
                &stack_clips(&model, &internvideo2).unwrap(),
            )
            .unwrap();
        let diff = (rows - whole).unwrap().abs().unwrap();
        let max: f32 = diff
            .flatten_all()
            .unwrap()
            .max(0)
            .unwrap()
            .to_scalar()
            .unwrap();
        assert!(max < 1e-6, "{max}");

        // Queued one at a time, the clips come out in the same batches.
        let mut queue = ClipQueue::default();
        let mut encoded = Vec::new();
        for clip in siglip.into_iter().zip(internvideo2) {
            encoded.extend(queue.push(&model, clip).unwrap().map(|e| e.clips));
        }
        encoded.extend(queue.flush(&model).unwrap().map(|e| e.clips));
        assert_eq!(encoded, [2, 1]);
    }
}
