//! A chat completions request read and checked before it waits for the model: its
//! conversation in the form `apollo chat` builds its prompts from, and its generation settings
//! within the ranges the command line allows. Anything wrong is a 400 that names the field.
//!
//! The conversation: an optional system message first (its text replaces the reference's
//! system text, as a ChatML template writes a system message; without one the prompt is
//! exactly `ask`'s), then user and assistant messages in turn, ending with a user message.
//! The video, one `video_url` part, is in the first user message, where apollo's prompt puts
//! the video; several text parts of a message are joined with newlines, as vLLM joins them.

use super::api::{ChatRequest, Message};
use super::errors::ApiError;
use crate::cli::bounds;
use crate::generate::run::GenerateOptions;
use crate::prompt::chat::Exchange;
use serde_json::Value;

/// OpenAI's limit on `stop`.
const MAX_STOPS: usize = 4;

/// A conversation about one video.
#[derive(Debug, Clone, PartialEq)]
pub struct Conversation {
    pub video_url: String,
    pub system: Option<String>,
    pub earlier: Vec<Exchange>,
    pub question: String,
}

/// A request ready to queue.
#[derive(Debug)]
pub struct Checked {
    pub conversation: Conversation,
    pub options: GenerateOptions,
    /// The seed the request asked for (or the server's `--seed`); `None`: drawn at random.
    pub seed_asked: Option<u64>,
    pub stream: bool,
    pub include_usage: bool,
}

/// What a request's settings are checked against.
pub struct Limits<'a> {
    /// The server's settings: its flags over the checkpoint's generation config.
    pub defaults: &'a GenerateOptions,
    /// `--seed`, if given.
    pub seed: Option<u64>,
    /// The name `GET /v1/models` gives.
    pub model: &'a str,
    pub vocab_size: usize,
}

/// Reads `body` as a chat completions request.
pub fn check(body: &[u8], limits: &Limits) -> Result<Checked, ApiError> {
    let request: ChatRequest = serde_json::from_slice(body).map_err(|e| {
        ApiError::bad_request(format!("the body is not a chat completions request: {e}"))
    })?;
    match request.model.as_deref() {
        None => {
            return Err(ApiError::invalid(
                "model",
                "missing: name the model, e.g. as GET /v1/models lists it",
            ))
        }
        Some(m) if m != limits.model => {
            return Err(ApiError::not_found(format!(
                "the model {m:?} does not exist: this server serves {:?}",
                limits.model
            ))
            .code("model_not_found"))
        }
        Some(_) => {}
    }
    if let Some(n) = request.n.filter(|&n| n != 1) {
        return Err(ApiError::invalid(
            "n",
            format!("{n} choices asked: apollo gives one (n = 1)"),
        ));
    }
    let conversation = conversation(&request.messages)?;
    let (options, seed_asked) = options(&request, limits)?;
    let stream = request.stream.unwrap_or(false);
    if request.stream_options.is_some() && !stream {
        return Err(ApiError::invalid(
            "stream_options",
            "only allowed with stream: true",
        ));
    }
    Ok(Checked {
        conversation,
        options,
        seed_asked,
        stream,
        include_usage: request.stream_options.is_some_and(|o| o.include_usage),
    })
}

/// The generation settings: the server's, with the request's in their place.
fn options(
    request: &ChatRequest,
    limits: &Limits,
) -> Result<(GenerateOptions, Option<u64>), ApiError> {
    let mut options = limits.defaults.clone();
    let sampling = &mut options.sampling;
    // Each value goes through the flag's own parser, so that a request and the flag with the
    // same number get the same f32 and the same range.
    let ranged = |param, value: f64, parse: &dyn Fn(&str) -> Result<f32, String>| {
        parse(&value.to_string()).map_err(|e| ApiError::invalid(param, e))
    };
    if let Some(t) = request.temperature {
        sampling.temperature = ranged("temperature", t, &bounds::temperature())?;
    }
    if let Some(p) = request.top_p {
        sampling.top_p = ranged("top_p", p, &bounds::top_p())?;
    }
    if let Some(r) = request.repetition_penalty {
        sampling.repetition_penalty =
            ranged("repetition_penalty", r, &bounds::repetition_penalty())?;
    }
    if let Some(k) = request.top_k {
        let vocab = limits.vocab_size;
        sampling.top_k = match k {
            -1 => 0,
            k if (0..=vocab as i64).contains(&k) => k as usize,
            _ => {
                return Err(ApiError::invalid(
                    "top_k",
                    format!("expected -1 or a number from 0 to {vocab} (-1 and 0: every token)"),
                ))
            }
        };
    }
    let max_tokens = match (request.max_completion_tokens, request.max_tokens) {
        (Some(n), _) => Some(("max_completion_tokens", n)),
        (None, n) => n.map(|n| ("max_tokens", n)),
    };
    if let Some((param, n)) = max_tokens {
        options.max_new_tokens =
            bounds::max_new_tokens()(&n.to_string()).map_err(|e| ApiError::invalid(param, e))?;
    }
    options.logprobs = match (request.logprobs.unwrap_or(false), request.top_logprobs) {
        (false, Some(_)) => return Err(ApiError::invalid("top_logprobs", "needs logprobs: true")),
        (false, None) => None,
        (true, k) => Some(
            bounds::logprobs()(&k.unwrap_or(0).to_string())
                .map_err(|e| ApiError::invalid("top_logprobs", e))?,
        ),
    };
    options.stop = stops(request.stop.as_ref())?;
    let seed_asked = request.seed.or(limits.seed);
    // Below 2^53 when drawn, so that JSON readers keep every digit (as `ask`'s).
    options.seed = seed_asked.unwrap_or_else(|| rand::random::<u64>() >> 11);
    Ok((options, seed_asked))
}

/// `stop`: a string or a list of up to four, none empty.
fn stops(stop: Option<&Value>) -> Result<Vec<String>, ApiError> {
    let bad = || {
        ApiError::invalid(
            "stop",
            format!("expected a string or a list of 1 to {MAX_STOPS} strings, none empty"),
        )
    };
    let list = match stop {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(Value::String(s)) => vec![s.clone()],
        Some(Value::Array(items)) if (1..=MAX_STOPS).contains(&items.len()) => items
            .iter()
            .map(|v| v.as_str().map(str::to_string).ok_or_else(bad))
            .collect::<Result<_, _>>()?,
        Some(_) => return Err(bad()),
    };
    if list.iter().any(String::is_empty) {
        return Err(bad());
    }
    Ok(list)
}

/// The text and videos of one message's content.
struct Content {
    text: String,
    videos: Vec<String>,
}

fn content(at: usize, message: &Message) -> Result<Content, ApiError> {
    let param = "messages";
    let bad = |what: String| ApiError::invalid(param, format!("message {at}: {what}"));
    let mut texts = Vec::new();
    let mut videos = Vec::new();
    match &message.content {
        Some(Value::String(s)) => texts.push(s.clone()),
        Some(Value::Array(parts)) => {
            for part in parts {
                let kind = part.get("type").and_then(Value::as_str).unwrap_or_default();
                match kind {
                    "text" => texts.push(
                        part.get("text")
                            .and_then(Value::as_str)
                            .ok_or_else(|| bad("a text part needs \"text\": a string".into()))?
                            .to_string(),
                    ),
                    "video_url" => videos.push(
                        part.pointer("/video_url/url")
                            .and_then(Value::as_str)
                            .ok_or_else(|| {
                                bad("a video_url part needs \"video_url\": {\"url\": ...}".into())
                            })?
                            .to_string(),
                    ),
                    other => {
                        return Err(bad(format!(
                        "content parts of type {other:?} are not supported: text and video_url are"
                    )))
                    }
                }
            }
        }
        _ => return Err(bad("content must be a string or a list of parts".into())),
    }
    Ok(Content {
        text: texts.join("\n"),
        videos,
    })
}

fn conversation(messages: &[Message]) -> Result<Conversation, ApiError> {
    let bad = |what: String| ApiError::invalid("messages", what);
    let mut system = None;
    let mut turns = Vec::new();
    let mut videos = Vec::new();
    for (at, message) in messages.iter().enumerate() {
        let content = content(at, message)?;
        match message.role.as_str() {
            // OpenAI's newer name for the system role.
            "system" | "developer" if at == 0 => {
                if !content.videos.is_empty() {
                    return Err(bad("a system message cannot hold a video".into()));
                }
                system = Some(content.text);
                continue;
            }
            "system" | "developer" => {
                return Err(bad(format!(
                    "message {at}: a system message must come first, and only one"
                )))
            }
            "user" | "assistant" => {}
            other => {
                return Err(bad(format!(
                    "message {at}: role {other:?} is not supported: system, user and assistant are"
                )))
            }
        }
        let want = if turns.len() % 2 == 0 {
            "user"
        } else {
            "assistant"
        };
        if message.role != want {
            return Err(bad(format!(
                "message {at} is from the {}, where the {want}'s turn is: user and assistant \
                 messages take turns, starting with the user",
                message.role
            )));
        }
        if !content.videos.is_empty() && (message.role != "user" || !turns.is_empty()) {
            return Err(bad(format!(
                "message {at}: the video goes in the first user message, where apollo's prompt \
                 puts it"
            )));
        }
        videos.extend(content.videos);
        turns.push(content.text);
    }
    if turns.len() % 2 == 0 {
        return Err(bad("the last message must be the user's".into()));
    }
    let video_url = match videos.len() {
        1 => videos.remove(0),
        0 => {
            return Err(bad(
                "no video: put a video_url part in the first user message".into(),
            ))
        }
        n => {
            return Err(bad(format!(
                "{n} videos: apollo answers about one video per conversation"
            )))
        }
    };
    let question = turns.pop().expect("an odd count");
    let earlier = turns
        .chunks(2)
        .map(|pair| Exchange {
            question: pair[0].clone(),
            answer: pair[1].clone(),
        })
        .collect();
    Ok(Conversation {
        video_url,
        system,
        earlier,
        question,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::generate::run::GenerateOptions;
    use serde_json::json;

    fn defaults() -> GenerateOptions {
        GenerateOptions::greedy(256, 512)
    }

    fn check_json(body: Value) -> Result<Checked, ApiError> {
        let defaults = defaults();
        let limits = Limits {
            defaults: &defaults,
            seed: None,
            model: "m",
            vocab_size: 1000,
        };
        check(body.to_string().as_bytes(), &limits)
    }

    fn video(url: &str) -> Value {
        json!({"type": "video_url", "video_url": {"url": url}})
    }

    fn request(messages: Value, extra: Value) -> Value {
        let mut body = json!({"model": "m", "messages": messages});
        body.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        body
    }

    fn error(body: Value) -> String {
        let e = check_json(body).unwrap_err();
        assert_eq!(e.status.as_u16(), 400, "{e:?}");
        e.message
    }

    #[test]
    fn a_conversation_becomes_apollo_chats_turns() {
        let messages = json!([
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": [{"type": "text", "text": "What"}, video("/v.mp4"), {"type": "text", "text": "is it?"}]},
            {"role": "assistant", "content": "A dog."},
            {"role": "user", "content": "And then?"}
        ]);
        let checked = check_json(request(messages, json!({"unknown_field": 1}))).unwrap();
        assert_eq!(
            checked.conversation,
            Conversation {
                video_url: "/v.mp4".into(),
                system: Some("Be brief.".into()),
                earlier: vec![Exchange {
                    question: "What\nis it?".into(),
                    answer: "A dog.".into()
                }],
                question: "And then?".into(),
            }
        );
        assert!(!checked.stream);
        assert_eq!(checked.options.stop, Vec::<String>::new());
    }

    #[test]
    fn conversations_apollo_cannot_answer_are_refused_with_the_reason() {
        let user = |content: Value| json!({"role": "user", "content": content});
        let cases = [
            (json!([user(json!("Hi"))]), "no video"),
            (json!([user(json!([video("/a"), video("/b")]))]), "2 videos"),
            (
                json!([user(json!([video("/a")])), {"role": "assistant", "content": "x"}, user(json!([video("/a")]))]),
                "first user message",
            ),
            (
                json!([user(json!([video("/a")])), user(json!("again"))]),
                "take turns",
            ),
            (
                json!([user(json!([video("/a")])), {"role": "assistant", "content": "x"}]),
                "last message",
            ),
            (
                json!([user(json!([video("/a")])), {"role": "system", "content": "x"}, user(json!("q"))]),
                "must come first",
            ),
            (json!([{"role": "tool", "content": "x"}]), "role \"tool\""),
            (
                json!([user(
                    json!([{"type": "image_url", "image_url": {"url": "x"}}])
                )]),
                "\"image_url\" are not supported",
            ),
            (json!([user(json!(null))]), "a string or a list"),
            (json!([]), "last message"),
        ];
        for (messages, says) in cases {
            let message = error(request(messages.clone(), json!({})));
            assert!(message.contains(says), "{messages}: {message}");
        }
    }

    #[test]
    fn settings_are_checked_against_the_command_lines_ranges() {
        let messages =
            json!([{"role": "user", "content": [video("/a"), {"type": "text", "text": "q"}]}]);
        let ok = |extra: Value| check_json(request(messages.clone(), extra)).unwrap();
        let checked = ok(json!({
            "temperature": 0.7, "top_p": 0.9, "top_k": -1, "repetition_penalty": 1.1,
            "max_tokens": 9, "seed": 5, "stop": "x", "logprobs": true, "top_logprobs": 3,
            "stream": true, "stream_options": {"include_usage": true}, "n": 1
        }));
        let o = &checked.options;
        assert_eq!((o.sampling.temperature, o.sampling.top_p), (0.7, 0.9));
        assert_eq!((o.sampling.top_k, o.sampling.repetition_penalty), (0, 1.1));
        assert_eq!((o.max_new_tokens, o.seed, o.logprobs), (9, 5, Some(3)));
        assert_eq!(
            (checked.seed_asked, checked.stream, checked.include_usage),
            (Some(5), true, true)
        );
        assert_eq!(o.stop, ["x"]);
        assert_eq!(
            ok(json!({"max_tokens": 9, "max_completion_tokens": 7}))
                .options
                .max_new_tokens,
            7
        );
        assert_eq!(ok(json!({"logprobs": true})).options.logprobs, Some(0));
        assert_eq!(ok(json!({"stop": ["a", "b"]})).options.stop, ["a", "b"]);
        assert!(ok(json!({})).options.seed < 1 << 53);
        for (extra, says) in [
            (
                json!({"temperature": 101}),
                "temperature: expected a number from 0 to 100",
            ),
            (
                json!({"top_p": 0}),
                "top_p: expected a number above 0 and at most 1",
            ),
            (
                json!({"top_k": 1001}),
                "top_k: expected -1 or a number from 0 to 1000",
            ),
            (
                json!({"repetition_penalty": 0}),
                "repetition_penalty: expected a number above 0",
            ),
            (
                json!({"max_tokens": 0}),
                "max_tokens: expected a number from 1 to 1048576",
            ),
            (
                json!({"max_completion_tokens": 2000000}),
                "max_completion_tokens: expected",
            ),
            (
                json!({"logprobs": true, "top_logprobs": 21}),
                "top_logprobs: expected a number from 0 to 20",
            ),
            (json!({"top_logprobs": 2}), "needs logprobs: true"),
            (json!({"n": 2}), "n: 2 choices"),
            (json!({"stop": ""}), "stop: expected"),
            (json!({"stop": ["a", "b", "c", "d", "e"]}), "stop: expected"),
            (json!({"stop": [1]}), "stop: expected"),
            (
                json!({"stream_options": {"include_usage": true}}),
                "only allowed with stream",
            ),
            (
                json!({"temperature": "hot"}),
                "not a chat completions request",
            ),
            (json!({"seed": -1}), "not a chat completions request"),
        ] {
            let message = error(request(messages.clone(), extra.clone()));
            assert!(message.contains(says), "{extra}: {message}");
        }
        let mut body = request(messages.clone(), json!({}));
        body["model"] = json!("other");
        let e = check_json(body.clone()).unwrap_err();
        assert_eq!((e.status.as_u16(), e.code), (404, Some("model_not_found")));
        body.as_object_mut().unwrap().remove("model");
        assert!(error(body).contains("model: missing"));
    }
}
