//! The one thread that owns the model: it loads it, then answers the queued requests one at a
//! time, as `apollo chat` answers turns. It keeps the last video it encoded (and so the
//! model's keys and values of the last prompt), so that a follow-up about the same video
//! prefills only its own blocks, exactly as `chat` does; any other video comes from the
//! encoded-video cache or is encoded. A request whose client has gone is skipped if still
//! queued, and stopped after the token being made if running.

use super::errors::ApiError;
use super::request::Conversation;
use super::video_source::VideoFile;
use super::AppState;
use crate::cli::args::Answering;
use crate::cli::progress::Bars;
use crate::error::Result;
use crate::generate::run::{Finish, GenerateOptions};
use crate::pipeline::{EncodedVideo, Prepared, Silent};
use crate::prompt::chat::ChatPrompt;
use crate::records::answer::{clip_spans, AnswerInputs, AnswerRecord, ClipSpan, Settings};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;
use tokio::sync::{mpsc, oneshot};

/// A request waiting for the model.
pub struct Job {
    /// The completion's id, for the log.
    pub id: String,
    pub video: VideoFile,
    pub conversation: Conversation,
    pub options: GenerateOptions,
    pub seed_asked: Option<u64>,
    /// Send the answer's text as it comes.
    pub stream: bool,
    pub events: mpsc::UnboundedSender<Event>,
    /// Set when the client goes away.
    pub cancel: Arc<AtomicBool>,
}

/// What the worker tells a request's handler.
pub enum Event {
    /// The video is ready and the prompt fits: generation starts.
    Started,
    /// A piece of the answer (only for a streaming request).
    Text(String),
    Done(Box<AnswerRecord>),
    Failed(ApiError),
}

/// The video of the last request, encoded.
struct Current {
    key: String,
    prepared: Prepared,
    video: EncodedVideo,
    clips: Vec<ClipSpan>,
}

pub struct Worker {
    session: Answering,
    state: Arc<AppState>,
    current: Option<Current>,
}

impl Worker {
    pub fn new(session: Answering, state: Arc<AppState>) -> Self {
        Self {
            session,
            state,
            current: None,
        }
    }

    /// Loads the model (saying how that went on `loaded`), then answers jobs until the queue
    /// closes.
    pub fn run(mut self, mut jobs: mpsc::Receiver<Job>, loaded: oneshot::Sender<Result<()>>) {
        let load = self
            .session
            .pipeline
            .load(&mut Bars::new(self.state.log.quiet));
        let failed = load.is_err();
        // The server goes down if nobody waits for this.
        let _ = loaded.send(load);
        if failed {
            return;
        }
        self.state.ready.store(true, Ordering::Relaxed);
        while let Some(job) = jobs.blocking_recv() {
            if job.cancel.load(Ordering::Relaxed) {
                self.state.log.line(format!(
                    "{}: the client went away while queued: skipped",
                    job.id
                ));
                continue;
            }
            let start = Instant::now();
            let outcome = self.answer(&job);
            self.state.finished(start.elapsed());
            let ms = start.elapsed().as_millis();
            let event = match outcome {
                Ok(record) if record.finish == Finish::Interrupted => {
                    self.state.log.line(format!(
                        "{}: the client went away: stopped after {} tokens, {ms} ms",
                        job.id, record.tokens.generated
                    ));
                    continue;
                }
                Ok(record) => {
                    self.state.log.line(format!(
                        "{}: 200, {} prompt tokens ({} reused, video {:?}), {} generated ({:?}), {ms} ms",
                        job.id,
                        record.tokens.prompt,
                        record.tokens.reused,
                        record.cache,
                        record.tokens.generated,
                        record.finish,
                    ));
                    Event::Done(Box::new(record))
                }
                Err(e) => {
                    self.state.log.line(format!(
                        "{}: {}: {}",
                        job.id,
                        e.status.as_u16(),
                        e.message
                    ));
                    Event::Failed(e)
                }
            };
            // A client gone by now has nothing to be told.
            let _ = job.events.send(event);
        }
    }

    fn answer(&mut self, job: &Job) -> Result<AnswerRecord, ApiError> {
        let label = &job.video.label;
        let failed = |e: crate::error::Error| ApiError::answering(&e, label);
        self.open(&job.video).map_err(failed)?;
        let current = self.current.as_mut().expect("opened above");
        let pipeline = &mut self.session.pipeline;
        let c = &job.conversation;
        let chat = ChatPrompt::with_system(
            c.system.as_deref(),
            &current.prepared.video_prompt,
            &c.earlier,
            &c.question,
        );
        let prompt = pipeline
            .chat_prompt(&current.prepared, chat)
            .map_err(failed)?;
        if !pipeline.fits(&prompt) {
            return Err(ApiError::bad_request(format!(
                "the conversation needs {} tokens with the video but the model's context holds \
                 {}: shorten it",
                prompt.positions(),
                pipeline.context_length()
            ))
            .code("context_length_exceeded"));
        }
        let _ = job.events.send(Event::Started);
        pipeline.set_interrupt(Arc::clone(&job.cancel));
        let answer = pipeline
            .answer(
                &mut current.video,
                &prompt,
                &job.options,
                &mut Silent,
                |text| {
                    if job.stream && job.events.send(Event::Text(text.to_string())).is_err() {
                        job.cancel.store(true, Ordering::Relaxed);
                    }
                    Ok(())
                },
            )
            .map_err(failed)?;
        let settings = Settings {
            run: &self.session.run,
            clips: &self.session.clips,
            options: &job.options,
            seed_asked: job.seed_asked,
        };
        let inputs = AnswerInputs {
            history: c.earlier.clone(),
            ..AnswerInputs::of_run(&c.question, &settings)
        };
        Ok(AnswerRecord::new(
            Path::new(label),
            inputs,
            &settings,
            current.clips.clone(),
            &prompt,
            answer,
        ))
    }

    /// Makes `video` the current one, unless it is already.
    fn open(&mut self, video: &VideoFile) -> Result<()> {
        if self.current.as_ref().is_some_and(|c| c.key == video.key) {
            return Ok(());
        }
        let pipeline = &mut self.session.pipeline;
        let sampling = &self.session.clips;
        let mut prepared = pipeline.prepare(&video.path, sampling)?;
        // Not even the video's prompt may fit.
        pipeline.question_prompt(&prepared, "", sampling)?;
        let clips = clip_spans(&prepared);
        let encoded = pipeline.encode(&mut prepared, &mut Silent)?;
        self.current = Some(Current {
            key: video.key.clone(),
            prepared,
            video: encoded,
            clips,
        });
        Ok(())
    }
}
