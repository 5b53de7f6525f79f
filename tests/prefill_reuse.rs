//! Reusing the KV cache changes no bit: a second question about a video (its video block
//! taken from the first) and a conversation's next turn (every block but the last taken
//! from the turn before) give exactly the ids and log-probabilities that a fresh prefill of
//! the same prompt gives. The prompts are prefilled in the same blocks either way
//! (`prompt::blocks`), so this is equality, not closeness.

mod common;

use apollo::checkpoint::Checkpoint;
use apollo::generate::run::GenerateOptions;
use apollo::pipeline::{Answer, EncodedVideo, Pipeline, Prepared, Silent};
use apollo::prompt::chat::Exchange;
use apollo::video::clips::ClipSampling;
use candle_core::{DType, Device};
use std::path::Path;

fn pipeline() -> Pipeline {
    let checkpoint = Checkpoint::open(Path::new(&common::tiny())).unwrap();
    Pipeline::new(checkpoint, Device::Cpu, DType::F32).unwrap()
}

/// Greedy, with the top 5 log-probabilities of each token.
fn options(pipeline: &Pipeline) -> GenerateOptions {
    GenerateOptions {
        logprobs: Some(5),
        ..GenerateOptions::greedy(12, pipeline.context_length())
    }
}

fn open(pipeline: &mut Pipeline, video: &Path) -> (Prepared, EncodedVideo, ClipSampling) {
    let sampling = pipeline.checkpoint().clip_sampling();
    let mut prepared = pipeline.prepare(video, &sampling).unwrap();
    let encoded = pipeline.encode(&mut prepared, &mut Silent).unwrap();
    (prepared, encoded, sampling)
}

/// The answer to `question` after `earlier`, about `video` as `pipeline` holds it.
fn answer(
    pipeline: &mut Pipeline,
    (prepared, encoded): (&Prepared, &mut EncodedVideo),
    earlier: &[Exchange],
    question: &str,
) -> Answer {
    let prompt = pipeline.prompt(prepared, earlier, question).unwrap();
    let options = options(pipeline);
    pipeline
        .answer(encoded, &prompt, &options, &mut Silent, |_| Ok(()))
        .unwrap()
}

/// A token's id and log-probability as its exact bits.
type TokenBits = (u32, u64);

/// Each generated token, with its top 5 alternatives.
fn bits(answer: &Answer) -> Vec<(TokenBits, Vec<TokenBits>)> {
    answer
        .generation
        .logprobs
        .as_ref()
        .unwrap()
        .iter()
        .map(|t| {
            let top = t.top_logprobs.iter().map(|a| (a.id, a.logprob.to_bits()));
            ((t.id, t.logprob.to_bits()), top.collect())
        })
        .collect()
}

#[test]
fn a_second_question_and_a_next_turn_equal_a_fresh_prefill_bit_for_bit() {
    let video = common::real_video("bikes.mp4");
    let mut kept = pipeline();
    let (prepared, mut encoded, _) = open(&mut kept, &video);
    let first = answer(&mut kept, (&prepared, &mut encoded), &[], "What is this?");
    assert_eq!(first.generation.reused, 0);
    let first_prompt = kept.prompt(&prepared, &[], "What is this?").unwrap();

    // The next turn: every block of the first prompt comes from the cache.
    let earlier = [Exchange {
        question: "What is this?".into(),
        answer: first.generation.text.clone(),
    }];
    let turn = answer(&mut kept, (&prepared, &mut encoded), &earlier, "And then?");
    assert_eq!(turn.generation.reused, first_prompt.positions());
    // Another question: the video's block comes from the cache.
    let second = answer(&mut kept, (&prepared, &mut encoded), &[], "Who rides?");
    assert_eq!(second.generation.reused, first_prompt.ends[0]);

    // The same prompts, each prefilled from nothing by a fresh pipeline.
    for (earlier, question, reused) in [
        (&[][..], "Who rides?", &second),
        (&earlier[..], "And then?", &turn),
    ] {
        let mut fresh = pipeline();
        let (prepared, mut encoded, _) = open(&mut fresh, &video);
        let alone = answer(&mut fresh, (&prepared, &mut encoded), earlier, question);
        assert_eq!(alone.generation.reused, 0);
        assert_eq!(bits(&alone), bits(reused), "{question}");
        assert_eq!(alone.generation.text, reused.generation.text);
    }
}
