//! Every numeric setting is checked before any work: a value outside its range, or one the
//! model cannot run, is a usage error (exit 2) that states what is allowed. The video named
//! does not exist, so an error about it would mean the check came too late.

mod common;

use common::{apollo, run, tiny};

const MISSING_VIDEO: &str = "/nonexistent/video.mp4";

/// `apollo <args>`: exit 2, nothing on stdout, and `expected` in the message.
fn refused(args: &[&str], expected: &str) {
    let r = run(apollo().args(args));
    assert_eq!(r.code, 2, "{args:?}: {}", r.stderr);
    assert_eq!(r.stdout, "", "{args:?}");
    assert!(r.stderr.contains(expected), "{args:?}: {}", r.stderr);
    assert!(!r.stderr.contains(MISSING_VIDEO), "{args:?}: {}", r.stderr);
}

#[test]
fn out_of_range_values_are_refused_with_the_range() {
    let cases: [(&str, &str, &str); 14] = [
        ("--clip-duration", "1e300", "from 0.1 to 3600"),
        ("--clip-duration", "0", "from 0.1 to 3600"),
        ("--frames-per-clip", "4294967296", "from 1 to 256"),
        ("--frames-per-clip", "0", "from 1 to 256"),
        ("--model-max-length", "0", "from 1 to 1048576"),
        ("--clip-sampling-ratio", "1.5", "above 0 and at most 1"),
        ("--clip-sampling-ratio", "nan", "above 0 and at most 1"),
        ("--temperature", "-1", "from 0 to 100"),
        ("--temperature", "inf", "from 0 to 100"),
        ("--top-p", "0", "above 0 and at most 1"),
        ("--repetition-penalty", "0", "above 0 and at most 100"),
        ("--max-new-tokens", "0", "from 1 to 1048576"),
        ("--logprobs", "1000000", "from 0 to 20"),
        ("--top-k", "-1", "invalid value"),
    ];
    for (flag, value, expected) in cases {
        let flag_value = format!("{flag}={value}");
        refused(
            &["ask", "--json", MISSING_VIDEO, "q", &flag_value],
            expected,
        );
    }
    for (flag, expected) in [
        ("--clip-duration=1e300", "from 0.1 to 3600"),
        ("--tokens-per-clip=0", "from 1 to 65536"),
    ] {
        refused(&["inspect", MISSING_VIDEO, flag], expected);
    }
    refused(
        &["caption", MISSING_VIDEO, "--frames-per-clip=999"],
        "from 1 to 256",
    );
    for (flag, expected) in [
        ("--layers=0", "from 1 to 64"),
        ("--video-seconds=0", "from 1 to 86400"),
        ("--video-size=641x360", "even sides"),
        ("--video-size=100000x100", "from 16 to 7680"),
        ("--video-fps=1000", "from 1 to 240"),
        ("--new-tokens=0", "from 1 to 65536"),
    ] {
        refused(&["bench", flag], expected);
    }
}

#[test]
fn settings_the_model_cannot_run_are_refused_before_decoding() {
    let tiny = tiny();
    let ask = |flag: &str, expected: &str| {
        refused(
            &["ask", MISSING_VIDEO, "q", "--model-dir", &tiny, flag],
            expected,
        );
        refused(
            &["caption", MISSING_VIDEO, "--model-dir", &tiny, flag],
            expected,
        );
    };
    // The tiny model's InternVideo2 takes 4 frames, its grid 2.
    ask(
        "--frames-per-clip=1",
        "--frames-per-clip 1: this model's encoders take clips of 4, 8, 12, 16, ... frames",
    );
    ask("--frames-per-clip=6", "take clips of 4, 8");
    ask(
        "--model-max-length=513",
        "more than the model's context: expected a number from 1 to 512",
    );
    ask(
        "--top-k=385",
        "more than the model's vocabulary: expected a number from 0 to 384",
    );
}
