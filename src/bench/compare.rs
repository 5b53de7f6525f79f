//! `apollo bench --compare`: the same video and question through the model twice, on the device
//! and dtype under test and on the CPU in f32 (the reference the exactness tests hold to the
//! Python implementation), reporting the largest difference at every stage and whether greedy
//! answers agree. This is how a GPU build is checked on the machine it runs on.
//!
//! Differences are relative to the largest magnitude in the reference output, as the reference
//! tests measure them. Bounds: 1e-4 in f32 (the reference tests' own), 0.02 in bf16 and f16 (the
//! CPU bf16 test's, from 8 significant bits through a few dozen roundings per layer).
//!
//! Greedy ids are compared twice. Free-running, both sides choose their own next token; one
//! early near-tie sends them apart for good. Forced, the tested side is fed the reference's
//! tokens, so each step is compared on the same history: a step whose argmax differs is
//! explained when the reference's two best logits are closer than twice that step's largest
//! logit difference (a tie at this precision), and unexplained otherwise.

use crate::checkpoint::Checkpoint;
use crate::device::device_name;
use crate::error::Result;
use crate::model::input::positions;
use crate::model::{ApolloModel, PromptChunk, TokenId};
use crate::pipeline::batch::{batches, stack_clips};
use crate::pipeline::Pipeline;
use crate::records::compare::{CompareReport, Difference, Disagreement, Greedy, Side, Stages};
use crate::video::extract::for_each_clip;
use crate::video::preprocess::ClipTensor;
use candle_core::{DType, Device, Tensor, D};
use std::path::PathBuf;

pub struct CompareConfig {
    pub checkpoint: PathBuf,
    pub video: PathBuf,
    pub question: String,
    /// Greedy tokens generated on each side.
    pub tokens: usize,
    pub device: Device,
    pub dtype: DType,
}

/// What one side computed, in f32 on the CPU for comparing.
struct Outputs {
    siglip: Tensor,
    internvideo2: Tensor,
    rows: Tensor,
    prefill_logits: Tensor,
    greedy_ids: Vec<TokenId>,
    /// Logits of each step of the forced run (only on the tested side).
    forced_logits: Vec<Tensor>,
}

pub fn run(cfg: &CompareConfig, mut log: impl FnMut(&str)) -> Result<CompareReport> {
    // Planning, the prompt and preprocessing are the CPU's on both sides: computed once.
    let pipeline = Pipeline::new(Checkpoint::open(&cfg.checkpoint)?, Device::Cpu, DType::F32)?;
    let clip_sampling = pipeline.checkpoint().clip_sampling();
    let mut prepared = pipeline.prepare(&cfg.video, &clip_sampling)?;
    let prompt = pipeline.question_prompt(&prepared, &cfg.question, &clip_sampling)?;
    log(&format!(
        "{} clips, {} prompt positions",
        prepared.plan.clips.len(),
        prompt.positions()
    ));
    let (mut siglip_px, mut internvideo2_px) = (Vec::new(), Vec::new());
    for_each_clip(&mut prepared.video, &prepared.plan, |_, frames| {
        let (s, i) = pipeline.preprocessor().preprocess_clip(frames);
        siglip_px.push(s);
        internvideo2_px.push(i);
        Ok(())
    })?;
    let pixels = (siglip_px.as_slice(), internvideo2_px.as_slice());

    log("reference: cpu f32");
    let reference = {
        let mut model = ApolloModel::load(pipeline.checkpoint(), &Device::Cpu, DType::F32)?;
        outputs(&mut model, pixels, &prompt.chunks, cfg.tokens, None)?
    };
    log(&format!(
        "tested: {} {}",
        device_name(&cfg.device),
        cfg.dtype.as_str()
    ));
    let tested = {
        let mut model = ApolloModel::load(pipeline.checkpoint(), &cfg.device, cfg.dtype)?;
        outputs(
            &mut model,
            pixels,
            &prompt.chunks,
            cfg.tokens,
            Some(&reference.greedy_ids),
        )?
    };
    report(
        cfg,
        prompt.positions(),
        prepared.plan.clips.len(),
        reference,
        tested,
    )
}

fn report(
    cfg: &CompareConfig,
    prompt_tokens: usize,
    clips: usize,
    reference: Outputs,
    tested: Outputs,
) -> Result<CompareReport> {
    let tolerance = if cfg.dtype == DType::F32 { 1e-4 } else { 0.02 };
    let stages = Stages {
        siglip: difference(&reference.siglip, &tested.siglip)?,
        internvideo2: difference(&reference.internvideo2, &tested.internvideo2)?,
        connector: difference(&reference.rows, &tested.rows)?,
        prefill_logits: difference(&reference.prefill_logits, &tested.prefill_logits)?,
    };
    let (forced_disagreements, forced_logits) = forced_steps(&reference, &tested)?;
    let unexplained_disagreements = forced_disagreements
        .iter()
        .filter(|d| d.reference_gap >= 2.0 * d.max_abs_logit_error)
        .count();
    let within = |d: &Difference| d.relative_error <= tolerance;
    let pass = within(&stages.siglip)
        && within(&stages.internvideo2)
        && within(&stages.connector)
        && within(&stages.prefill_logits)
        && unexplained_disagreements == 0;
    let agreeing_prefix = reference
        .greedy_ids
        .iter()
        .zip(&tested.greedy_ids)
        .take_while(|(a, b)| a == b)
        .count();
    Ok(CompareReport {
        reference: Side {
            device: "cpu".into(),
            dtype: DType::F32.as_str(),
        },
        tested: Side {
            device: device_name(&cfg.device),
            dtype: cfg.dtype.as_str(),
        },
        checkpoint: cfg.checkpoint.clone(),
        video: cfg.video.clone(),
        clips,
        prompt_tokens,
        tolerance,
        stages,
        greedy: Greedy {
            reference_ids: reference.greedy_ids,
            tested_ids: tested.greedy_ids,
            agreeing_prefix,
            forced_disagreements,
            unexplained_disagreements,
            forced_logits,
        },
        pass,
    })
}

/// Each forced step compared: the steps whose argmax differs, and the largest logit
/// difference. Step 0 is the prefill's token; step k the one after feeding reference id k-1.
fn forced_steps(reference: &Outputs, tested: &Outputs) -> Result<(Vec<Disagreement>, Difference)> {
    let reference_steps =
        std::iter::once(&reference.prefill_logits).chain(&reference.forced_logits);
    let tested_steps = std::iter::once(&tested.prefill_logits).chain(&tested.forced_logits);
    let mut disagreements = Vec::new();
    let mut largest = Difference::zero();
    for (step, (want, got)) in reference_steps.zip(tested_steps).enumerate() {
        let d = difference(want, got)?;
        let (reference_id, reference_gap) = top_two_gap(want)?;
        let tested_id = argmax(got)?;
        if tested_id != reference_id {
            disagreements.push(Disagreement {
                step,
                reference_id,
                tested_id,
                reference_gap,
                max_abs_logit_error: d.max_abs_error,
            });
        }
        largest = largest.max(d);
    }
    Ok((disagreements, largest))
}

/// Every stage's output for the given pixels and prompt, greedy ids, and with `forced` the
/// logits of each step when fed those ids instead of its own.
fn outputs(
    model: &mut ApolloModel,
    (siglip_px, internvideo2_px): (&[ClipTensor], &[ClipTensor]),
    chunks: &[PromptChunk],
    tokens: usize,
    forced: Option<&[TokenId]>,
) -> Result<Outputs> {
    let (mut siglip, mut internvideo2, mut rows) = (Vec::new(), Vec::new(), Vec::new());
    for (s, i) in batches(model, siglip_px, internvideo2_px) {
        let fs = model.siglip_features(&stack_clips(model, s)?)?;
        let fi = model.internvideo2_features(&stack_clips(model, i)?)?;
        rows.push(model.connect(&model.token_grid(&fs, &fi)?)?.flatten_to(1)?);
        siglip.push(to_host(&fs)?);
        internvideo2.push(to_host(&fi)?);
    }
    let rows = Tensor::cat(&rows, 0)?;
    let embeds = model.embed_prompt(chunks, &rows)?;
    let prefill_logits = to_host(&model.forward(&embeds, 0)?)?;
    let greedy_ids = greedy(model, &embeds, &prefill_logits, tokens)?;
    let mut forced_logits = Vec::new();
    if let Some(forced) = forced {
        model.forward(&embeds, 0)?;
        // The last forced id's logits would pick a token past the compared length.
        for (n, &id) in forced.iter().take(tokens.saturating_sub(1)).enumerate() {
            let logits = model.forward(&model.embed_tokens(&[id])?, positions(chunks) + n)?;
            forced_logits.push(to_host(&logits)?);
        }
    }
    Ok(Outputs {
        siglip: Tensor::cat(&siglip, 0)?,
        internvideo2: Tensor::cat(&internvideo2, 0)?,
        rows: to_host(&rows)?,
        prefill_logits,
        greedy_ids,
        forced_logits,
    })
}

/// `tokens` greedy ids after a prefill whose last logits are `first`.
fn greedy(
    model: &mut ApolloModel,
    embeds: &Tensor,
    first: &Tensor,
    tokens: usize,
) -> Result<Vec<TokenId>> {
    let prompt = embeds.dim(0)?;
    let mut ids = Vec::with_capacity(tokens);
    let mut logits = first.clone();
    for n in 0..tokens {
        let id = argmax(&logits)?;
        ids.push(id);
        if n + 1 < tokens {
            logits = to_host(&model.forward(&model.embed_tokens(&[id])?, prompt + n)?)?;
        }
    }
    Ok(ids)
}

fn to_host(t: &Tensor) -> Result<Tensor> {
    Ok(t.to_device(&Device::Cpu)?.to_dtype(DType::F32)?)
}

fn argmax(logits: &Tensor) -> Result<TokenId> {
    Ok(logits.argmax(D::Minus1)?.to_scalar::<TokenId>()?)
}

/// The best id and how far its logit is above the second best.
fn top_two_gap(logits: &Tensor) -> Result<(TokenId, f64)> {
    let values = logits.to_vec1::<f32>()?;
    let (mut best, mut second) = ((0usize, f32::NEG_INFINITY), f32::NEG_INFINITY);
    for (i, &v) in values.iter().enumerate() {
        if v > best.1 {
            second = best.1;
            best = (i, v);
        } else if v > second {
            second = v;
        }
    }
    Ok((best.0 as TokenId, f64::from(best.1 - second)))
}

fn difference(reference: &Tensor, tested: &Tensor) -> Result<Difference> {
    let max_abs =
        |t: &Tensor| -> Result<f32> { Ok(t.abs()?.flatten_all()?.max(0)?.to_scalar::<f32>()?) };
    let error = f64::from(max_abs(&(reference - tested)?)?);
    let scale = f64::from(max_abs(reference)?);
    Ok(Difference {
        max_abs_error: error,
        max_abs_reference: scale,
        relative_error: if scale > 0.0 { error / scale } else { error },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn top_two_gap_finds_the_best_and_its_margin() {
        let t = Tensor::new(&[0.5f32, 3.0, -1.0, 2.25], &Device::Cpu).unwrap();
        let (id, gap) = top_two_gap(&t).unwrap();
        assert_eq!(id, 1);
        assert!((gap - 0.75).abs() < 1e-9);
    }

    #[test]
    fn difference_is_relative_to_the_reference() {
        let a = Tensor::new(&[1.0f32, -4.0, 2.0], &Device::Cpu).unwrap();
        let b = Tensor::new(&[1.5f32, -4.0, 2.0], &Device::Cpu).unwrap();
        let d = difference(&a, &b).unwrap();
        assert_eq!(d.max_abs_error, 0.5);
        assert_eq!(d.max_abs_reference, 4.0);
        assert_eq!(d.relative_error, 0.125);
    }
}
