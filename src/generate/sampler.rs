//! Token sampling, the next-token choice as transformers' `generate` makes it: the repetition
//! penalty on the logits of tokens already generated, then (when sampling) temperature, top-k
//! and top-p, and a draw from the softmax; without sampling, the first maximum. (Not
//! candle-transformers' `LogitsProcessor`, which has no repetition penalty.)

use crate::model::TokenId;
use rand::distr::{weighted::WeightedIndex, Distribution};
use rand::rngs::StdRng;
use rand::SeedableRng;

/// Token-sampling settings (the JSON records' `sampling`); `temperature == 0` means greedy
/// decoding.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TokenSampling {
    pub temperature: f32,
    pub top_p: f32,
    /// 0 turns top-k off.
    pub top_k: usize,
    /// 1 turns the penalty off.
    pub repetition_penalty: f32,
}

pub struct TokenSampler {
    params: TokenSampling,
    rng: StdRng,
}

impl TokenSampler {
    /// A sampler whose draws are fixed by `seed`.
    pub fn new(params: TokenSampling, seed: u64) -> Self {
        Self {
            params,
            rng: StdRng::seed_from_u64(seed),
        }
    }

    /// The next token from one position's logits, given the tokens generated so far.
    pub fn next_token(&mut self, logits: &[f32], generated: &[TokenId]) -> TokenId {
        let mut scores = logits.to_vec();
        apply_repetition_penalty(&mut scores, generated, self.params.repetition_penalty);
        if self.params.temperature <= 0.0 {
            return argmax(&scores);
        }
        for s in scores.iter_mut() {
            *s /= self.params.temperature;
        }
        apply_top_k(&mut scores, self.params.top_k);
        apply_top_p(&mut scores, self.params.top_p);
        let probs = softmax(&scores);
        match WeightedIndex::new(&probs) {
            Ok(dist) => dist.sample(&mut self.rng) as u32,
            // Every weight zero cannot happen after softmax; fall back to the best token.
            Err(_) => argmax(&scores),
        }
    }
}

/// Divides positive and multiplies negative logits of each generated token by `penalty`.
fn apply_repetition_penalty(scores: &mut [f32], generated: &[TokenId], penalty: f32) {
    if penalty == 1.0 {
        return;
    }
    let mut seen = std::collections::HashSet::new();
    for &t in generated {
        if seen.insert(t) {
            if let Some(s) = scores.get_mut(t as usize) {
                *s = if *s < 0.0 { *s * penalty } else { *s / penalty };
            }
        }
    }
}

/// The first index of the largest score, as `torch.argmax` picks it.
fn argmax(scores: &[f32]) -> TokenId {
    let mut best = 0;
    for (i, &s) in scores.iter().enumerate() {
        if s > scores[best] {
            best = i;
        }
    }
    best as TokenId
}

/// Keeps the scores at least as large as the k-th largest (ties kept, as transformers does).
fn apply_top_k(scores: &mut [f32], k: usize) {
    if k == 0 || k >= scores.len() {
        return;
    }
    let mut sorted = scores.to_vec();
    sorted.sort_unstable_by(|a, b| b.total_cmp(a));
    let threshold = sorted[k - 1];
    for s in scores.iter_mut() {
        if *s < threshold {
            *s = f32::NEG_INFINITY;
        }
    }
}

/// Removes the least likely tokens whose total probability is at most `1 - top_p`, always
/// keeping the most likely one (transformers' TopPLogitsWarper).
fn apply_top_p(scores: &mut [f32], top_p: f32) {
    if top_p >= 1.0 {
        return;
    }
    let probs = softmax(scores);
    let mut order: Vec<usize> = (0..scores.len()).collect();
    order.sort_by(|&a, &b| scores[a].total_cmp(&scores[b]));
    let mut cumulative = 0.0f32;
    for &i in &order[..order.len() - 1] {
        cumulative += probs[i];
        if cumulative > 1.0 - top_p {
            break;
        }
        scores[i] = f32::NEG_INFINITY;
    }
}

fn softmax(scores: &[f32]) -> Vec<f32> {
    let max = scores.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let exp: Vec<f32> = scores.iter().map(|&s| (s - max).exp()).collect();
    let sum: f32 = exp.iter().sum();
    exp.into_iter().map(|e| e / sum).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn greedy(penalty: f32) -> TokenSampling {
        TokenSampling {
            temperature: 0.0,
            top_p: 1.0,
            top_k: 0,
            repetition_penalty: penalty,
        }
    }

    #[test]
    fn greedy_takes_the_first_maximum() {
        let mut p = TokenSampler::new(greedy(1.0), 0);
        assert_eq!(p.next_token(&[0.5, 2.0, 2.0, -1.0], &[]), 1);
    }

    #[test]
    fn repetition_penalty_shrinks_generated_tokens_once_each() {
        let mut scores = vec![2.0, -2.0, 1.5];
        apply_repetition_penalty(&mut scores, &[0, 1, 0], 2.0);
        assert_eq!(scores, vec![1.0, -4.0, 1.5]);
        let mut p = TokenSampler::new(greedy(2.0), 0);
        assert_eq!(p.next_token(&[2.0, -2.0, 1.5], &[0]), 2);
    }

    #[test]
    fn top_k_and_top_p_keep_what_transformers_keeps() {
        let mut s = vec![1.0, 3.0, 2.0, 3.0];
        apply_top_k(&mut s, 2);
        assert_eq!(s, vec![f32::NEG_INFINITY, 3.0, f32::NEG_INFINITY, 3.0]);
        // Probabilities 0.6, 0.3, 0.1: top_p 0.7 keeps the two most likely.
        let mut s: Vec<f32> = [0.6f32, 0.3, 0.1].iter().map(|p| p.ln()).collect();
        apply_top_p(&mut s, 0.7);
        assert!(s[0].is_finite() && s[1].is_finite() && s[2] == f32::NEG_INFINITY);
        // A tiny top_p still keeps the best token.
        let mut s: Vec<f32> = [0.6f32, 0.3, 0.1].iter().map(|p| p.ln()).collect();
        apply_top_p(&mut s, 0.01);
        assert!(s[0].is_finite() && s[1] == f32::NEG_INFINITY);
    }

    #[test]
    fn sampling_is_reproducible_by_seed_and_stays_in_the_nucleus() {
        let params = TokenSampling {
            temperature: 0.7,
            top_p: 0.9,
            top_k: 3,
            repetition_penalty: 1.0,
        };
        let logits = [1.0, 0.5, 3.0, 2.9, 2.8, -5.0];
        let draw = |seed| {
            let mut p = TokenSampler::new(params, seed);
            (0..50)
                .map(|_| p.next_token(&logits, &[]))
                .collect::<Vec<_>>()
        };
        assert_eq!(draw(7), draw(7));
        let tokens = draw(7);
        assert!(tokens.iter().all(|t| [2, 3, 4].contains(t)), "{tokens:?}");
        assert!(tokens.iter().any(|&t| t != tokens[0]), "it does sample");
    }
}
