//! The chat template the reference uses for Apollo: conversation version "qwen_2", which its
//! conversation table maps to the ChatML template `conv_qwen` (not the "USER:/ASSISTANT:"
//! template of the same file).

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
    }
}
