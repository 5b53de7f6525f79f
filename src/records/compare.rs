//! `apollo bench --compare`'s report: each stage's largest difference between the tested
//! device and dtype and the CPU in f32, and how greedy answers compare.

use crate::model::TokenId;
use serde::Serialize;
use std::path::PathBuf;

#[derive(Debug, Serialize)]
pub struct CompareReport {
    pub reference: Side,
    pub tested: Side,
    pub checkpoint: PathBuf,
    pub video: PathBuf,
    pub clips: usize,
    pub prompt_tokens: usize,
    /// The bound on every stage's relative error for the tested dtype.
    pub tolerance: f64,
    pub stages: Stages,
    pub greedy: Greedy,
    /// Every stage within the tolerance and every forced disagreement explained.
    pub pass: bool,
}

#[derive(Debug, Serialize)]
pub struct Side {
    pub device: String,
    pub dtype: &'static str,
}

#[derive(Debug, Serialize)]
pub struct Stages {
    pub siglip: Difference,
    pub internvideo2: Difference,
    /// The video rows (both encoders, grid and connector).
    pub connector: Difference,
    /// The logits of the prompt's last position.
    pub prefill_logits: Difference,
}

#[derive(Debug, Serialize)]
pub struct Difference {
    pub max_abs_error: f64,
    pub max_abs_reference: f64,
    pub relative_error: f64,
}

#[derive(Debug, Serialize)]
pub struct Greedy {
    pub reference_ids: Vec<TokenId>,
    pub tested_ids: Vec<TokenId>,
    /// Leading ids the free-running answers share.
    pub agreeing_prefix: usize,
    /// Steps where the tested side, fed the reference's tokens, chose another token.
    pub forced_disagreements: Vec<Disagreement>,
    pub unexplained_disagreements: usize,
    /// The largest logit difference over the forced steps, relative as the stages are.
    pub forced_logits: Difference,
}

#[derive(Debug, Serialize)]
pub struct Disagreement {
    pub step: usize,
    pub reference_id: TokenId,
    pub tested_id: TokenId,
    /// The reference's best logit minus its second best.
    pub reference_gap: f64,
    pub max_abs_logit_error: f64,
}

impl Difference {
    pub fn zero() -> Self {
        Self {
            max_abs_error: 0.0,
            max_abs_reference: 0.0,
            relative_error: 0.0,
        }
    }

    /// The larger of two differences, by relative error.
    pub fn max(self, other: Self) -> Self {
        if other.relative_error > self.relative_error {
            other
        } else {
            self
        }
    }
}
