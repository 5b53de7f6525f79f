//! `apollo bench --cache`: what encoding once and asking many saves, side by side in one run.
//! Four questions about one video, each timed to its first token:
//!
//! 1. the first question, the encoded-video cache empty (a miss: decode, preprocess, encode,
//!    store, prefill every position);
//! 2. a question in a later run (read from the cache; every position prefilled, as a new
//!    process would);
//! 3. a follow-up of that question in the same process (`apollo chat`: only the new turn's
//!    block is prefilled);
//! 4. another question in the same process (`apollo ask VIDEO Q1 Q2`: the video's block is
//!    reused).

use super::{inputs, BenchConfig};
use crate::cache::{VideoCache, DEFAULT_MAX};
use crate::checkpoint::Checkpoint;
use crate::device::device_name;
use crate::error::{Error, Result};
use crate::generate::run::GenerateOptions;
use crate::pipeline::{millis, Answer, EncodedVideo, Pipeline, Prepared, Silent};
use crate::prompt::chat::Exchange;
use crate::records::answer::StagesMs;
use crate::records::bench::{AnswerTimingsMs, QuestionTiming, QuestionsReport};
use std::time::{Duration, Instant};

const FOLLOW_UP: &str = "What happens after that?";
const ANOTHER: &str = "Which colours stand out?";

pub fn run(cfg: &BenchConfig, mut log: impl FnMut(&str)) -> Result<QuestionsReport> {
    let files = inputs(cfg, &mut log)?;
    // A cache of the run's own, empty, so that the first question is a miss.
    let dir = cfg.work_dir.join("cache");
    match std::fs::remove_dir_all(&dir) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            return Err(Error::runtime(Some(&dir), format!("cannot empty: {e}")));
        }
        _ => {}
    }
    let cache = VideoCache {
        dir,
        max: DEFAULT_MAX,
    };
    let checkpoint = Checkpoint::open(&files.checkpoint)?;
    let mut pipeline =
        Pipeline::new(checkpoint, cfg.device.clone(), cfg.dtype)?.with_cache(Some(cache));
    let start = Instant::now();
    pipeline.model()?;
    let load_s = start.elapsed().as_secs_f64();
    let options = GenerateOptions::greedy(cfg.new_tokens, pipeline.context_length());
    let mut ask = |pipeline: &mut Pipeline,
                   opened: &mut (Prepared, EncodedVideo, Duration),
                   earlier: &[Exchange],
                   question: &str,
                   case: &str| {
        log(case);
        let (prepared, video, open) = opened;
        let start = Instant::now();
        let prompt = pipeline.prompt(prepared, earlier, question)?;
        let tokenise = start.elapsed();
        let answer = pipeline.answer(video, &prompt, &options, &mut Silent, |_| Ok(()))?;
        let timing = timing(case, &prompt, *open + tokenise, &answer);
        // Only the first question about a video pays for opening it.
        *open = Duration::ZERO;
        Ok::<_, Error>((timing, answer))
    };
    let open = |pipeline: &mut Pipeline| -> Result<(Prepared, EncodedVideo, Duration)> {
        let start = Instant::now();
        let sampling = pipeline.checkpoint().clip_sampling();
        let mut prepared = pipeline.prepare(&files.video, &sampling)?;
        let prepare = start.elapsed();
        let video = pipeline.encode(&mut prepared, &mut Silent)?;
        Ok((prepared, video, prepare))
    };
    let mut first = open(&mut pipeline)?;
    let (miss, _) = ask(
        &mut pipeline,
        &mut first,
        &[],
        &cfg.question,
        "first question, cache miss",
    )?;
    let mut later = open(&mut pipeline)?;
    let (hit, answer) = ask(
        &mut pipeline,
        &mut later,
        &[],
        &cfg.question,
        "a later run, cache hit",
    )?;
    let earlier = [Exchange {
        question: cfg.question.clone(),
        answer: answer.generation.text,
    }];
    let (follow_up, _) = ask(&mut pipeline, &mut later, &earlier, FOLLOW_UP, "follow-up")?;
    let (another, _) = ask(&mut pipeline, &mut later, &[], ANOTHER, "another question")?;
    let (prepared, ..) = &first;
    Ok(QuestionsReport {
        device: device_name(&cfg.device),
        dtype: cfg.dtype.as_str().to_string(),
        model: super::bench_model(cfg, &files),
        video: super::bench_video(&files, prepared.info.duration_s, &prepared.plan),
        load_s,
        questions: vec![miss, hit, follow_up, another],
    })
}

fn timing(
    case: &str,
    prompt: &crate::pipeline::Prompt,
    prepare: Duration,
    answer: &Answer,
) -> QuestionTiming {
    let t = &answer.timings;
    QuestionTiming {
        case: case.to_string(),
        cache: answer.cache,
        prompt_tokens: prompt.positions(),
        reused_tokens: answer.generation.reused,
        time_to_first_token_s: (prepare + t.cache + t.decode + t.preprocess + t.encode + t.prefill)
            .as_secs_f64(),
        timings_ms: AnswerTimingsMs {
            prepare: millis(prepare),
            stages: StagesMs::of(t),
        },
    }
}
