//! Log-probabilities of generated tokens in the shape of OpenAI's `logprobs` output, so answers
//! can be compared across implementations. They are those of the model's own distribution:
//! log-softmax of the raw logits, before repetition penalty, temperature, top-k or top-p.

use crate::model::TokenId;
use crate::prompt::tokens::PromptTokenizer;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TokenLogprob {
    /// The token's text; U+FFFD where it holds only part of a character (see `bytes`).
    pub token: String,
    pub id: TokenId,
    pub logprob: f64,
    /// The exact bytes the token stands for.
    pub bytes: Vec<u8>,
    /// The `k` most likely tokens at this position, most likely first.
    pub top_logprobs: Vec<Alternative>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Alternative {
    pub token: String,
    pub id: TokenId,
    pub logprob: f64,
    pub bytes: Vec<u8>,
}

/// The chosen token's entry from one position's logits, with the `k` best alternatives.
pub fn token_logprob(
    logits: &[f32],
    chosen: TokenId,
    k: usize,
    tokenizer: &PromptTokenizer,
) -> TokenLogprob {
    let logprobs = log_softmax(logits);
    let describe = |id: TokenId| {
        let bytes = tokenizer.token_bytes(id);
        (String::from_utf8_lossy(&bytes).into_owned(), bytes)
    };
    let (token, bytes) = describe(chosen);
    TokenLogprob {
        token,
        id: chosen,
        logprob: shortest(logprobs[chosen as usize]),
        bytes,
        top_logprobs: top_k(&logprobs, k)
            .into_iter()
            .map(|id| {
                let (token, bytes) = describe(id);
                Alternative {
                    token,
                    id,
                    logprob: shortest(logprobs[id as usize]),
                    bytes,
                }
            })
            .collect(),
    }
}

/// The f64 that prints as the f32 does (-2.12217, not -2.1221699714660645).
pub fn shortest(x: f32) -> f64 {
    x.to_string().parse().unwrap_or(f64::from(x))
}

/// log-softmax, with the normaliser summed in f64 so that small logprobs keep their digits.
fn log_softmax(logits: &[f32]) -> Vec<f32> {
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let sum: f64 = logits.iter().map(|&x| f64::from(x - max).exp()).sum();
    let log_sum = sum.ln();
    logits
        .iter()
        .map(|&x| (f64::from(x - max) - log_sum) as f32)
        .collect()
}

/// Ids of the `k` largest values, largest first; ties go to the lower id.
fn top_k(values: &[f32], k: usize) -> Vec<TokenId> {
    let mut ids: Vec<TokenId> = (0..values.len() as TokenId).collect();
    ids.sort_by(|&a, &b| {
        values[b as usize]
            .total_cmp(&values[a as usize])
            .then(a.cmp(&b))
    });
    ids.truncate(k);
    ids
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_softmax_normalises() {
        let lp = log_softmax(&[1.0, 2.0, 3.0, -1e4]);
        let total: f64 = lp.iter().map(|&x| f64::from(x).exp()).sum();
        assert!((total - 1.0).abs() < 1e-6);
        // log(e^3 / (e + e^2 + e^3)) = -0.40760596
        assert!((lp[2] + 0.407_605_96).abs() < 1e-6, "{}", lp[2]);
    }

    #[test]
    fn shortest_keeps_the_f32_digits() {
        assert_eq!(shortest(0.4), 0.4);
        assert_eq!(shortest(-2.122_17), -2.12217);
        assert_eq!(shortest(f32::NEG_INFINITY), f64::NEG_INFINITY);
    }

    #[test]
    fn top_k_orders_by_value_then_id() {
        assert_eq!(top_k(&[0.5, 2.0, 0.5, 3.0], 3), vec![3, 1, 0]);
        assert_eq!(top_k(&[1.0], 5), vec![0]);
    }
}
