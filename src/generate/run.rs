//! The decoding loop: prefill the prompt (in its blocks, reusing those the KV cache holds),
//! then one token at a time through the KV cache until an eos id, a stop string, the token
//! limit, the end of the context or an interruption (Ctrl-C in `apollo chat`, a client gone in
//! `apollo serve`).

use super::logprobs::{token_logprob, TokenLogprob};
use super::sampler::{TokenSampler, TokenSampling};
use super::stream::TextStream;
use crate::error::Result;
use crate::model::finite::check_values;
use crate::model::{ApolloModel, BlockPrompt, TokenId};
use crate::prompt::chat::STOP_STRING;
use crate::prompt::tokens::PromptTokenizer;
use serde::{Deserialize, Serialize};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

#[derive(Debug, Clone, PartialEq)]
pub struct GenerateOptions {
    pub sampling: TokenSampling,
    pub seed: u64,
    pub max_new_tokens: usize,
    /// Alternatives per token to report; `None` reports no logprobs.
    pub logprobs: Option<usize>,
    /// Eos ids of the checkpoint's generation config.
    pub eos_token_ids: Vec<TokenId>,
    /// Positions the model can hold, prompt included.
    pub context_length: usize,
    /// Stop strings besides the model's own (OpenAI's `stop`); none is empty.
    pub stop: Vec<String>,
}

impl GenerateOptions {
    /// The most likely token every time, for `max_new_tokens` tokens whatever they are (no eos
    /// id ends it: random weights would stop at a chance one), without logprobs: for
    /// measuring and comparing.
    pub fn greedy(max_new_tokens: usize, context_length: usize) -> Self {
        Self {
            sampling: TokenSampling {
                temperature: 0.0,
                top_p: 1.0,
                top_k: 0,
                repetition_penalty: 1.0,
            },
            seed: 0,
            max_new_tokens,
            logprobs: None,
            eos_token_ids: Vec::new(),
            context_length,
            stop: Vec::new(),
        }
    }
}

/// Why generation ended, as OpenAI names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Finish {
    /// An eos id or a stop string.
    Stop,
    /// `max_new_tokens` or the end of the context.
    Length,
    /// Stopped by the user (Ctrl-C in `apollo chat`) or a client gone (`apollo serve`).
    Interrupted,
}

#[derive(Debug, Clone)]
pub struct Generation {
    /// Every generated id, the final eos included.
    pub ids: Vec<TokenId>,
    pub text: String,
    pub finish: Finish,
    pub logprobs: Option<Vec<TokenLogprob>>,
    /// Prompt positions whose keys and values came from the cache.
    pub reused: usize,
    /// The prompt's forward pass, up to the first token's logits.
    pub prefill: Duration,
    /// Everything after the prefill.
    pub generate: Duration,
}

/// Generates an answer to `prompt`, calling `on_text` with each piece of settled answer text
/// as it comes; stops after the token being made when `interrupt` is set.
pub fn generate(
    model: &mut ApolloModel,
    prompt: &BlockPrompt,
    tokenizer: &PromptTokenizer,
    options: &GenerateOptions,
    interrupt: Option<&AtomicBool>,
    mut on_text: impl FnMut(&str) -> Result<()>,
) -> Result<Generation> {
    let prompt_len = *prompt.ends.last().unwrap_or(&0);
    let mut sampler = TokenSampler::new(options.sampling, options.seed);
    let stops = std::iter::once(STOP_STRING.to_string())
        .chain(options.stop.iter().cloned())
        .collect();
    let mut stream = TextStream::new(|ids: &[TokenId]| tokenizer.decode(ids), stops);
    let mut ids = Vec::new();
    // The answer is exactly what was streamed.
    let mut text = String::new();
    let mut emit = |piece: &str| -> Result<()> {
        text.push_str(piece);
        on_text(piece)
    };
    let mut logprobs = options.logprobs.map(|_| Vec::new());
    let start = Instant::now();
    let (logits, reused) = model.prefill(prompt)?;
    let mut scores: Vec<f32> = logits.to_vec1()?;
    check_values(&scores, "prefill logits", model.dtype())?;
    let prefill = start.elapsed();
    let finish = loop {
        let next = sampler.next_token(&scores, &ids);
        if let (Some(entries), Some(k)) = (logprobs.as_mut(), options.logprobs) {
            entries.push(token_logprob(&scores, next, k, tokenizer));
        }
        ids.push(next);
        if options.eos_token_ids.contains(&next)
            || tokenizer.token(next).as_deref() == Some(STOP_STRING)
        {
            break Finish::Stop;
        }
        let step = stream.push(next)?;
        if !step.text.is_empty() {
            emit(&step.text)?;
        }
        if step.stopped {
            break Finish::Stop;
        }
        if ids.len() >= options.max_new_tokens || prompt_len + ids.len() >= options.context_length {
            break Finish::Length;
        }
        if interrupt.is_some_and(|i| i.load(Ordering::Relaxed)) {
            break Finish::Interrupted;
        }
        let row = model.embed_tokens(&[next])?;
        scores = model.forward(&row, prompt_len + ids.len() - 1)?.to_vec1()?;
        let stage = format!("logits after {} generated tokens", ids.len());
        check_values(&scores, &stage, model.dtype())?;
    };
    let rest = stream.finish()?;
    if !rest.is_empty() {
        emit(&rest)?;
    }
    Ok(Generation {
        text,
        ids,
        finish,
        logprobs,
        reused,
        prefill,
        generate: start.elapsed() - prefill,
    })
}
