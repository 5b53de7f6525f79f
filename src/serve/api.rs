//! The OpenAI chat completions API as apollo serves it: the request as it arrives, and the
//! completion, its streamed chunks and the model list as they go out, with apollo's own
//! fields (clips, cache, tokens, timings) in an `apollo` object made of the answer record's
//! pieces.

use crate::cache::CacheUse;
use crate::generate::logprobs::TokenLogprob;
use crate::generate::run::Finish;
use crate::records::answer::{AnswerRecord, ClipSpan, SamplingRecord, TimingsMs, TokenCounts};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// `POST /v1/chat/completions`' body; fields OpenAI defines that apollo has no use for are
/// ignored, as OpenAI ignores unknown ones. Messages' content and `stop` take several forms,
/// read in `request` with messages that name the field.
#[derive(Debug, Deserialize)]
pub struct ChatRequest {
    pub model: Option<String>,
    pub messages: Vec<Message>,
    pub temperature: Option<f64>,
    pub top_p: Option<f64>,
    pub max_tokens: Option<u64>,
    pub max_completion_tokens: Option<u64>,
    pub seed: Option<u64>,
    pub stop: Option<Value>,
    pub stream: Option<bool>,
    pub stream_options: Option<StreamOptions>,
    pub logprobs: Option<bool>,
    pub top_logprobs: Option<u64>,
    /// vLLM's: -1 (or 0) for every token.
    pub top_k: Option<i64>,
    /// vLLM's.
    pub repetition_penalty: Option<f64>,
    pub n: Option<u64>,
}

#[derive(Debug, Deserialize)]
pub struct Message {
    pub role: String,
    pub content: Option<Value>,
}

#[derive(Debug, Default, Deserialize)]
pub struct StreamOptions {
    #[serde(default)]
    pub include_usage: bool,
}

/// The completion of a request that did not stream.
#[derive(Debug, Serialize)]
pub struct Completion {
    pub id: String,
    pub object: &'static str,
    pub created: u64,
    pub model: String,
    pub choices: [Choice; 1],
    pub usage: Usage,
    pub apollo: Extension,
}

#[derive(Debug, Serialize)]
pub struct Choice {
    pub index: u32,
    pub message: AssistantMessage,
    pub logprobs: Option<Logprobs>,
    pub finish_reason: &'static str,
}

#[derive(Debug, Serialize)]
pub struct AssistantMessage {
    pub role: &'static str,
    pub content: String,
}

/// `logprobs.content`: the records' entries, which are OpenAI's with the token id added.
#[derive(Debug, Serialize)]
pub struct Logprobs {
    pub content: Vec<TokenLogprob>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Usage {
    /// Prompt positions: text tokens and video rows.
    pub prompt_tokens: usize,
    pub completion_tokens: usize,
    pub total_tokens: usize,
    pub prompt_tokens_details: PromptDetails,
}

/// The prompt positions whose keys and values an earlier request computed.
#[derive(Debug, Clone, Serialize)]
pub struct PromptDetails {
    pub cached_tokens: usize,
}

/// apollo's own fields, as the answer record has them.
#[derive(Debug, Serialize)]
pub struct Extension {
    pub clips: Vec<ClipSpan>,
    pub cache: CacheUse,
    pub tokens: TokenCounts,
    pub timings_ms: TimingsMs,
    pub tokens_per_s: Option<f64>,
    pub seed: u64,
    pub sampling: SamplingRecord,
    pub device: String,
    pub dtype: String,
}

/// One server-sent event of a streamed completion.
#[derive(Debug, Serialize)]
pub struct Chunk {
    pub id: String,
    pub object: &'static str,
    pub created: u64,
    pub model: String,
    pub choices: Vec<ChunkChoice>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub usage: Option<Usage>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub apollo: Option<Extension>,
}

#[derive(Debug, Serialize)]
pub struct ChunkChoice {
    pub index: u32,
    pub delta: Delta,
    pub logprobs: Option<Logprobs>,
    pub finish_reason: Option<&'static str>,
}

#[derive(Debug, Default, Serialize)]
pub struct Delta {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub role: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub content: Option<String>,
}

/// `GET /v1/models`.
#[derive(Debug, Serialize)]
pub struct ModelList {
    pub object: &'static str,
    pub data: [ModelCard; 1],
}

#[derive(Debug, Serialize)]
pub struct ModelCard {
    pub id: String,
    pub object: &'static str,
    pub created: u64,
    pub owned_by: &'static str,
}

/// OpenAI's name for why generation ended; a generation stopped because its client went
/// away is never sent, and is named as vLLM names it.
pub fn finish_reason(finish: Finish) -> &'static str {
    match finish {
        Finish::Stop => "stop",
        Finish::Length => "length",
        Finish::Interrupted => "abort",
    }
}

/// What identifies one completion in every object of it.
#[derive(Debug, Clone)]
pub struct Head {
    pub id: String,
    pub created: u64,
    pub model: String,
}

/// An answer record split into what OpenAI's objects carry.
pub struct Answered {
    pub text: String,
    pub finish: &'static str,
    pub logprobs: Option<Logprobs>,
    pub usage: Usage,
    pub apollo: Extension,
}

impl From<AnswerRecord> for Answered {
    fn from(r: AnswerRecord) -> Self {
        let usage = Usage {
            prompt_tokens: r.tokens.prompt,
            completion_tokens: r.tokens.generated,
            total_tokens: r.tokens.prompt + r.tokens.generated,
            prompt_tokens_details: PromptDetails {
                cached_tokens: r.tokens.reused,
            },
        };
        Self {
            text: r.answer,
            finish: finish_reason(r.finish),
            logprobs: r.logprobs.map(|content| Logprobs { content }),
            usage,
            apollo: Extension {
                clips: r.clips,
                cache: r.cache,
                tokens: r.tokens,
                timings_ms: r.timings_ms,
                tokens_per_s: r.tokens_per_s,
                seed: r.seed,
                sampling: r.sampling,
                device: r.device,
                dtype: r.dtype,
            },
        }
    }
}

impl Head {
    pub fn completion(&self, answered: Answered) -> Completion {
        Completion {
            id: self.id.clone(),
            object: "chat.completion",
            created: self.created,
            model: self.model.clone(),
            choices: [Choice {
                index: 0,
                message: AssistantMessage {
                    role: "assistant",
                    content: answered.text,
                },
                logprobs: answered.logprobs,
                finish_reason: answered.finish,
            }],
            usage: answered.usage,
            apollo: answered.apollo,
        }
    }

    /// A chunk with one choice.
    pub fn chunk(&self, delta: Delta, finish: Option<&'static str>) -> Chunk {
        self.chunk_of(vec![ChunkChoice {
            index: 0,
            delta,
            logprobs: None,
            finish_reason: finish,
        }])
    }

    /// The chunks that end a stream: the finish reason with the logprobs and apollo's
    /// fields, then the usage alone (no choices) when the client asked for it, as OpenAI
    /// sends it.
    pub fn last_chunks(&self, answered: Answered, include_usage: bool) -> Vec<Chunk> {
        let mut last = self.chunk(Delta::default(), Some(answered.finish));
        last.choices[0].logprobs = answered.logprobs;
        last.apollo = Some(answered.apollo);
        let mut chunks = vec![last];
        if include_usage {
            let mut usage = self.chunk_of(Vec::new());
            usage.usage = Some(answered.usage);
            chunks.push(usage);
        }
        chunks
    }

    fn chunk_of(&self, choices: Vec<ChunkChoice>) -> Chunk {
        Chunk {
            id: self.id.clone(),
            object: "chat.completion.chunk",
            created: self.created,
            model: self.model.clone(),
            choices,
            usage: None,
            apollo: None,
        }
    }
}
