//! The full prompt of the tiny reference run (tests/fixtures/tiny-apollo-reference/
//! reference.json, made with the reference's own prompt code and Hugging Face tokenizers):
//! sampling plan, video prompt, chat template and token ids must all be identical.

use apollo::prompt::chat::{chat_prompt, user_message};
use apollo::prompt::tokens::{reference_ids, PromptTokenizer};
use apollo::prompt::video::video_prompt;
use apollo::video::clips::{plan_clips, ClipSampling};
use serde_json::Value;
use std::path::Path;

#[test]
fn prompt_and_ids_equal_the_reference_run() {
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let reference: Value = serde_json::from_str(
        &std::fs::read_to_string(fixtures.join("tiny-apollo-reference/reference.json")).unwrap(),
    )
    .unwrap();
    let video = &reference["video"];
    let cfg = ClipSampling {
        tokens_per_clip: 8, // the tiny checkpoint's tokens per clip
        model_max_length: 512,
        ..ClipSampling::default()
    };
    let total = video["total_frames"].as_u64().unwrap();
    let fps = video["fps"].as_f64().unwrap();
    let p = plan_clips(total, fps, &cfg).unwrap();
    let indices: Vec<Vec<u64>> = p.clips.iter().map(|c| c.frame_indices.clone()).collect();
    assert_eq!(
        serde_json::to_value(indices).unwrap(),
        video["clip_indices"]
    );

    let vp = video_prompt(
        &p,
        total as f64 / fps,
        cfg.clip_duration,
        cfg.tokens_per_clip,
    );
    assert_eq!(vp, reference["video_prompt"].as_str().unwrap());
    let question = reference["question"].as_str().unwrap();
    let prompt = chat_prompt(&user_message(&vp, question));
    assert_eq!(prompt, reference["prompt"].as_str().unwrap());

    let tokenizer =
        PromptTokenizer::from_file(&fixtures.join("tiny-apollo/llm/tokenizer.json")).unwrap();
    let ids = reference_ids(&tokenizer.tokenize(&prompt).unwrap());
    let want: Vec<i64> = serde_json::from_value(reference["input_ids"].clone()).unwrap();
    assert_eq!(ids, want);
}

/// Conversations of two and three turns (tests/fixtures/tokenizer/conversations.json, made by
/// tests/reference/make_conversation_fixtures.py with the reference's conversation template and
/// transformers' tokenizer): the prompt text and every id are the reference's, and the prompt is
/// cut into one block for the video and one per turn.
#[test]
fn conversation_prompts_and_ids_equal_the_reference_template() {
    use apollo::prompt::blocks::block_ends;
    use apollo::prompt::chat::{ChatPrompt, Exchange, ASSISTANT_HEADER};
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/tokenizer");
    let doc: Value = serde_json::from_str(
        &std::fs::read_to_string(fixtures.join("conversations.json")).unwrap(),
    )
    .unwrap();
    let tokenizer = PromptTokenizer::from_file(&fixtures.join("tokenizer.json")).unwrap();
    let header = tokenizer.encode(ASSISTANT_HEADER).unwrap();
    let cases = doc["cases"].as_array().unwrap();
    assert_eq!(cases.len(), 3);
    for case in cases {
        let earlier: Vec<Exchange> = serde_json::from_value(case["exchanges"].clone()).unwrap();
        let prompt = ChatPrompt::turn(
            case["video_prompt"].as_str().unwrap(),
            &earlier,
            case["question"].as_str().unwrap(),
        );
        assert_eq!(prompt.text, case["prompt"].as_str().unwrap());
        let chunks = tokenizer.tokenize_chat(&prompt).unwrap();
        let want: Vec<i64> = serde_json::from_value(case["ids"].clone()).unwrap();
        assert_eq!(reference_ids(&chunks), want, "{:?}", prompt.text);
        let ends = block_ends(&chunks, &header).unwrap();
        assert_eq!(ends.len(), earlier.len() + 2, "{ends:?}");
        assert_eq!(*ends.last().unwrap(), want.len());
    }
}
