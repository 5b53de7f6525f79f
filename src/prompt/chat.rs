//! The chat template the reference uses for Apollo: conversation version "qwen_2", which its
//! conversation table maps to the ChatML template `conv_qwen` (not the "USER:/ASSISTANT:"
//! template of the same file).

use std::ops::Range;

/// The system turn, as `conv_qwen.system + sep + "\n"` writes it (note the blank line).
const SYSTEM: &str =
    "<|im_start|>system\n\nYou are a helpful vision-language assistant.<|im_end|>\n";

/// Generation stops when the answer produces this text.
pub const STOP_STRING: &str = "<|im_end|>";

/// The user message: the video prompt, a blank line, the question.
pub fn user_message(video_prompt: &str, question: &str) -> String {
    format!("{video_prompt}\n\n{question}")
}

/// The whole prompt, ending with the assistant turn opened.
pub fn chat_prompt(message: &str) -> String {
    format!("{SYSTEM}<|im_start|>user\n{message}{STOP_STRING}\n<|im_start|>assistant\n")
}

/// The prompt of one question about one video, and where the user's question lies in it (the
/// tokenizer reads that part as plain text: see [`PromptTokenizer::tokenize_chat`]).
///
/// [`PromptTokenizer::tokenize_chat`]: super::tokens::PromptTokenizer::tokenize_chat
#[derive(Debug, Clone, PartialEq)]
pub struct ChatPrompt {
    pub text: String,
    pub question: Range<usize>,
}

impl ChatPrompt {
    pub fn new(video_prompt: &str, question: &str) -> Self {
        let text = chat_prompt(&user_message(video_prompt, question));
        // The question ends the user message, which the stop string closes.
        let end = text.len() - format!("{STOP_STRING}\n<|im_start|>assistant\n").len();
        Self {
            question: end - question.len()..end,
            text,
        }
    }

    pub fn question(&self) -> &str {
        &self.text[self.question.clone()]
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
        assert_eq!(chat.question(), "What happens?");
        assert!(chat.text[..chat.question.start].ends_with("VIDEO\n\n"));
    }
}
