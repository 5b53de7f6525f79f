//! `apollo chat` end to end: over piped stdin (one answer per line, the conversation kept,
//! commands, a conversation that outgrows the context) and on a terminal as a person uses it
//! (under tmux: line editing, streaming, Ctrl-C during an answer, /reset, Ctrl-D).

mod common;

use common::{apollo, run, tiny};
use serde_json::Value;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

const GREEDY: [&str; 6] = [
    "--temperature",
    "0",
    "--max-new-tokens",
    "6",
    "--logprobs",
    "2",
];

/// `apollo chat VIDEO --json` with `lines` on stdin: the records and the run.
fn chat_json(video: &Path, lines: &str, extra: &[&str]) -> (Vec<Value>, common::Run) {
    let r = run(apollo()
        .args(["chat", "--json", "--model-dir", &tiny()])
        .arg(video)
        .args(GREEDY)
        .args(extra)
        .write_stdin(lines));
    let records = r
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    (records, r)
}

#[test]
fn piped_lines_are_questions_of_one_conversation() {
    let video = common::real_video("bikes.mp4");
    let (records, r) = chat_json(
        &video,
        "What is this?\n\n  \nAnd then?\n/reset\nWhat is this?\n",
        &[],
    );
    assert_eq!((r.code, r.stderr.as_str()), (0, ""));
    assert_eq!(records.len(), 3);
    let turns: Vec<u64> = records
        .iter()
        .map(|r| r["turn"].as_u64().unwrap())
        .collect();
    assert_eq!(turns, [1, 2, 1]);
    // The first turn is what `ask` answers, and so is the first after /reset.
    let ask = run(apollo()
        .args(["ask", "--json", "--model-dir", &tiny()])
        .arg(&video)
        .arg("What is this?")
        .args(GREEDY));
    let ask: Value = serde_json::from_str(&ask.stdout).unwrap();
    for record in [&records[0], &records[2]] {
        assert_eq!(record["answer"], ask["answer"]);
        assert_eq!(record["logprobs"], ask["logprobs"]);
        assert_eq!(record["tokens"]["prompt"], ask["tokens"]["prompt"]);
        assert!(record["inputs"].get("history").is_none());
    }
    // The second turn holds the first exchange and reuses its whole prompt.
    let history = &records[1]["inputs"]["history"];
    assert_eq!(history[0]["question"], "What is this?");
    assert_eq!(history[0]["answer"], records[0]["answer"]);
    assert_eq!(
        records[1]["tokens"]["reused"],
        records[0]["tokens"]["prompt"]
    );
    assert!(records[1]["tokens"]["prompt"].as_u64() > records[0]["tokens"]["prompt"].as_u64());
    // After /reset, only the video's block is reused.
    let video_block = records[2]["tokens"]["reused"].as_u64().unwrap();
    assert!(video_block >= records[2]["tokens"]["video"].as_u64().unwrap());

    // As text: one answer per question, a blank line apart.
    let text = run(apollo()
        .args(["chat", "--model-dir", &tiny()])
        .arg(&video)
        .args(&GREEDY[..4])
        .write_stdin("What is this?\nAnd then?\n"));
    assert_eq!((text.code, text.stderr.as_str()), (0, ""));
    let answers = [&records[0]["answer"], &records[1]["answer"]].map(|a| a.as_str().unwrap());
    assert_eq!(text.stdout, format!("{}\n\n{}\n", answers[0], answers[1]));
}

#[test]
fn a_conversation_that_outgrows_the_context_says_so_and_reset_recovers() {
    let video = common::real_video("bikes.mp4");
    // The tiny model's context is 512 positions: the video's prompt and this question take
    // ~400, so a second turn does not fit.
    let question = format!("Why{}?", " why".repeat(60));
    let lines = format!("{question}\n{question}\n/reset\n{question}\n");
    let (records, r) = chat_json(&video, &lines, &[]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert_eq!(records.len(), 3);
    let error = records[1]["error"].as_str().unwrap();
    assert!(error.contains("/reset starts it over"), "{error}");
    assert_eq!(records[1]["question"], question.as_str());
    assert_eq!(r.stderr, format!("apollo: {error}\n"));
    assert_eq!(records[2]["turn"], 1);
    assert_eq!(records[2]["answer"], records[0]["answer"]);
}

#[test]
fn commands_switch_videos_and_bad_ones_are_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let video = common::real_video("bikes.mp4");
    let other = common::real_video("carphone_pristine.mp4");
    let missing = dir.path().join("missing.mp4");
    let lines = format!(
        "What is this?\n/video {}\nWhat is this?\n/video {}\nAnd then?\n/frobnicate\n/quit\nNot asked\n",
        other.display(),
        missing.display()
    );
    let (records, r) = chat_json(&video, &lines, &[]);
    assert_eq!(r.code, 3, "the first failure's: {}", r.stderr);
    assert_eq!(records.len(), 3);
    assert_eq!(records[0]["video"], video.display().to_string());
    // Another video starts another conversation; a missing one leaves it as it was.
    for record in &records[1..] {
        assert_eq!(record["video"], other.display().to_string());
    }
    assert_eq!(
        records
            .iter()
            .map(|r| r["turn"].as_u64().unwrap())
            .collect::<Vec<_>>(),
        [1, 1, 2]
    );
    let errors: Vec<&str> = r.stderr.lines().collect();
    assert_eq!(errors.len(), 2, "{}", r.stderr);
    assert!(
        errors[0].starts_with(&format!("apollo: {missing:?}: ")),
        "{}",
        errors[0]
    );
    assert!(
        errors[1].starts_with("apollo: \"/frobnicate\" is no command"),
        "{}",
        errors[1]
    );
}

/// A tmux server of its own, killed when dropped.
struct Tmux {
    socket: String,
}

impl Tmux {
    fn cmd(&self, args: &[&str]) -> String {
        let out = Command::new("tmux")
            .args(["-L", &self.socket])
            .args(args)
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn keys(&self, keys: &[&str]) {
        self.cmd(&[&["send-keys", "-t", "chat"][..], keys].concat());
    }

    /// The screen and its scrollback.
    fn screen(&self) -> String {
        self.cmd(&["capture-pane", "-p", "-t", "chat", "-S", "-500"])
    }

    /// Waits up to 60 s for the screen to satisfy `done`.
    fn wait_for(&self, what: &str, done: impl Fn(&str) -> bool) -> String {
        let start = Instant::now();
        loop {
            let screen = self.screen();
            if done(&screen) {
                return screen;
            }
            assert!(
                start.elapsed() < Duration::from_secs(60),
                "no {what}:\n{screen}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        self.cmd(&["kill-server"]);
    }
}

#[test]
fn on_a_terminal_ctrl_c_stops_an_answer_and_the_session_goes_on() {
    if Command::new("tmux").arg("-V").output().is_err() {
        eprintln!("skipped: tmux is not installed (apt-get install tmux)");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let model = common::endless_checkpoint(dir.path());
    let video = common::real_video("bikes.mp4");
    let tmux = Tmux {
        socket: format!("apollo-test-{}", std::process::id()),
    };
    let command = format!(
        "env APOLLO_NO_CACHE=1 {:?} chat {:?} --model-dir {:?} --max-new-tokens 1000000 --seed 1; \
         echo EXITED $?; sleep 600",
        common::binary(),
        video,
        model
    );
    tmux.cmd(&[
        "new-session",
        "-d",
        "-s",
        "chat",
        "-x",
        "160",
        "-y",
        "40",
        &command,
    ]);
    tmux.wait_for("greeting", |s| s.contains("Ask away; /help for commands."));

    // Typed with a correction, as a person types.
    tmux.keys(&["What is thsi", "BSpace", "BSpace", "is?", "Enter"]);
    let answering = tmux.wait_for("answer streaming", |s| {
        s.split("> What is this?\n")
            .nth(1)
            .is_some_and(|after| after.trim().len() > 40)
    });
    assert!(!answering.contains("(stopped)"));
    tmux.keys(&["C-c"]);
    let stopped = tmux.wait_for("the answer stopped", |s| s.contains("(stopped)"));
    assert!(!stopped.contains("EXITED"), "{stopped}");
    let prompt = tmux.wait_for("a new prompt", |s| s.trim_end().lines().last() == Some(">"));
    assert!(!prompt.contains("EXITED"), "{prompt}");

    // Ctrl-C at the prompt drops the line; the session goes on.
    tmux.keys(&["never asked", "C-c"]);
    // The next line is typed at the next prompt, as a person would, not into the gap between
    // two prompts.
    tmux.wait_for("a prompt after the dropped line", |s| {
        s.contains("> never asked\n") && s.trim_end().lines().last() == Some(">")
    });
    tmux.keys(&["/reset", "Enter"]);
    tmux.wait_for("the reset", |s| s.contains("The conversation starts over."));
    tmux.keys(&["/help", "Enter"]);
    tmux.wait_for("help", |s| {
        s.contains("/video PATH talks about another video")
    });
    // History: the question comes back with the up arrow.
    tmux.keys(&["Up", "Up", "Up"]);
    tmux.wait_for("the question from history", |s| {
        s.trim_end().ends_with("> What is this?")
    });
    tmux.keys(&["C-u", "C-d"]);
    let end = tmux.wait_for("the end", |s| s.contains("EXITED"));
    assert!(end.contains("EXITED 0"), "{end}");
    // The line dropped with Ctrl-C was not asked.
    assert!(end.contains("> never asked\n> /reset\n"), "{end}");
}
