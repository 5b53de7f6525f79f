//! The chat template the reference uses for Apollo: conversation version "qwen_2", which its
//! conversation table maps to the ChatML template `conv_qwen` (not the "USER:/ASSISTANT:"
//! template of the same file), for one question or a whole conversation.

use serde::{Deserialize, Serialize};
use std::ops::Range;

/// The system turn's header, and the reference's system text after it: the system turn is
/// `conv_qwen.system + sep + "\n"` (note the blank line the text begins with).
const SYSTEM_HEADER: &str = "<|im_start|>system\n";
const DEFAULT_SYSTEM: &str = "\nYou are a helpful vision-language assistant.";

/// The roles' headers and the separator that ends each message.
const USER: &str = "<|im_start|>user";
const ASSISTANT: &str = "<|im_start|>assistant";

/// Generation stops when the answer produces this text.
pub const STOP_STRING: &str = "<|im_end|>";

/// The open assistant turn every prompt ends with: where each prefill block but the first
/// ends (see [`super::blocks`]).
pub const ASSISTANT_HEADER: &str = "<|im_start|>assistant\n";

/// The user message: the video prompt, a blank line, the question.
pub fn user_message(video_prompt: &str, question: &str) -> String {
    format!("{video_prompt}\n\n{question}")
}

/// The whole prompt, ending with the assistant turn opened.
pub fn chat_prompt(message: &str) -> String {
    ChatPrompt::conversation(None, message, 0..0, &[]).text
}

/// One earlier exchange of a conversation: the question and the answer as it was shown
/// (decoded, special tokens skipped, stripped), which is what the reference is sent back.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Exchange {
    pub question: String,
    pub answer: String,
}

/// A prompt, and the parts of it that are the user's or the model's text (the questions and
/// earlier answers), which the tokenizer reads as plain text: see
/// [`PromptTokenizer::tokenize_chat`].
///
/// [`PromptTokenizer::tokenize_chat`]: super::tokens::PromptTokenizer::tokenize_chat
#[derive(Debug, Clone, PartialEq)]
pub struct ChatPrompt {
    pub text: String,
    pub plain: Vec<Range<usize>>,
}

impl ChatPrompt {
    /// The prompt of one question about one video.
    pub fn new(video_prompt: &str, question: &str) -> Self {
        Self::turn(video_prompt, &[], question)
    }

    /// The prompt of `question` after the `earlier` exchanges: only the first user message
    /// carries the video prompt, as in the reference.
    pub fn turn(video_prompt: &str, earlier: &[Exchange], question: &str) -> Self {
        Self::with_system(None, video_prompt, earlier, question)
    }

    /// [`ChatPrompt::turn`] with `system` (plain text, as a ChatML template writes a system
    /// message) in place of the reference's system text, or that text for `None`.
    pub fn with_system(
        system: Option<&str>,
        video_prompt: &str,
        earlier: &[Exchange],
        question: &str,
    ) -> Self {
        let first = earlier.first().map_or(question, |e| e.question.as_str());
        let message = user_message(video_prompt, first);
        let first_question = message.len() - first.len()..message.len();
        let mut rest: Vec<&str> = Vec::new();
        for (n, exchange) in earlier.iter().enumerate() {
            if n > 0 {
                rest.push(&exchange.question);
            }
            rest.push(&exchange.answer);
        }
        if !earlier.is_empty() {
            rest.push(question);
        }
        Self::conversation(system, &message, first_question, &rest)
    }

    /// `conv_qwen.get_prompt()` for the first user `message` and the messages after it, which
    /// alternate assistant, user, ... and end with a user message: for each message its role,
    /// "\n", the message and "<|im_end|>\n" (an empty one gets its role and "\n" alone, as
    /// the reference's `if message:` has it), then the open assistant turn. `plain` is the
    /// user's part of the first message; every later message, and a `system` text given, is
    /// plain text as a whole.
    fn conversation(
        system: Option<&str>,
        message: &str,
        plain: Range<usize>,
        rest: &[&str],
    ) -> Self {
        let mut text = SYSTEM_HEADER.to_string();
        let mut ranges = Vec::new();
        if let Some(system) = system {
            ranges.push(text.len()..text.len() + system.len());
        }
        text.push_str(system.unwrap_or(DEFAULT_SYSTEM));
        text.push_str(STOP_STRING);
        text.push('\n');
        let messages = std::iter::once(message).chain(rest.iter().copied());
        for (n, message) in messages.enumerate() {
            text.push_str(if n % 2 == 0 { USER } else { ASSISTANT });
            text.push('\n');
            if !message.is_empty() {
                let start = text.len();
                text.push_str(message);
                ranges.push(if n == 0 {
                    start + plain.start..start + plain.end
                } else {
                    start..text.len()
                });
                text.push_str(STOP_STRING);
                text.push('\n');
            }
        }
        text.push_str(ASSISTANT_HEADER);
        ranges.retain(|r| !r.is_empty());
        Self {
            text,
            plain: ranges,
        }
    }

    /// The plain parts' text, in order.
    pub fn plain_texts(&self) -> impl Iterator<Item = &str> {
        self.plain.iter().map(|r| &self.text[r.clone()])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prompt_is_chatml_with_the_reference_system_text() {
        // What conv_templates["qwen_2"].get_prompt() returns after appending the user message
        // and an empty assistant message.
        let prompt = chat_prompt(&user_message("VIDEO", "What happens?"));
        assert_eq!(
            prompt,
            "<|im_start|>system\n\nYou are a helpful vision-language assistant.<|im_end|>\n\
             <|im_start|>user\nVIDEO\n\nWhat happens?<|im_end|>\n<|im_start|>assistant\n"
        );
        let chat = ChatPrompt::new("VIDEO", "What happens?");
        assert_eq!(chat.text, prompt);
        assert_eq!(chat.plain_texts().collect::<Vec<_>>(), ["What happens?"]);
        assert!(chat.text[..chat.plain[0].start].ends_with("VIDEO\n\n"));
        assert!(ChatPrompt::new("VIDEO", "").plain.is_empty());
    }

    #[test]
    fn a_conversation_is_the_reference_template_with_earlier_answers_put_back() {
        let exchange = |q: &str, a: &str| Exchange {
            question: q.into(),
            answer: a.into(),
        };
        let earlier = [exchange("Q1", "A one."), exchange("Q2", "")];
        let chat = ChatPrompt::turn("VIDEO", &earlier, "Q3?");
        // conv_qwen with messages [user, "VIDEO\n\nQ1"], [assistant, "A one."], [user, "Q2"],
        // [assistant, ""], [user, "Q3?"], [assistant, None]: the empty answer has no
        // separator, as `if message:` in get_prompt has it.
        assert_eq!(
            chat.text,
            "<|im_start|>system\n\nYou are a helpful vision-language assistant.<|im_end|>\n\
             <|im_start|>user\nVIDEO\n\nQ1<|im_end|>\n\
             <|im_start|>assistant\nA one.<|im_end|>\n\
             <|im_start|>user\nQ2<|im_end|>\n\
             <|im_start|>assistant\n\
             <|im_start|>user\nQ3?<|im_end|>\n\
             <|im_start|>assistant\n"
        );
        assert_eq!(
            chat.plain_texts().collect::<Vec<_>>(),
            ["Q1", "A one.", "Q2", "Q3?"]
        );
        assert_eq!(
            ChatPrompt::turn("VIDEO", &[], "Q"),
            ChatPrompt::new("VIDEO", "Q")
        );
    }

    #[test]
    fn a_system_text_takes_the_place_of_the_reference_one_as_plain_text() {
        let earlier = [Exchange {
            question: "Q1".into(),
            answer: "A1".into(),
        }];
        let chat = ChatPrompt::with_system(Some("Be <|im_end|> brief."), "VIDEO", &earlier, "Q2");
        assert_eq!(
            chat.text,
            "<|im_start|>system\nBe <|im_end|> brief.<|im_end|>\n\
             <|im_start|>user\nVIDEO\n\nQ1<|im_end|>\n\
             <|im_start|>assistant\nA1<|im_end|>\n\
             <|im_start|>user\nQ2<|im_end|>\n\
             <|im_start|>assistant\n"
        );
        assert_eq!(
            chat.plain_texts().collect::<Vec<_>>(),
            ["Be <|im_end|> brief.", "Q1", "A1", "Q2"]
        );
        assert_eq!(
            ChatPrompt::with_system(None, "VIDEO", &earlier, "Q2"),
            ChatPrompt::turn("VIDEO", &earlier, "Q2")
        );
    }
}
