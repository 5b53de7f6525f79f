//! Seeded mutants of real videos (flipped bytes, broken box sizes, truncations, chunks
//! duplicated, deleted or overwritten) through the real binary's `inspect` with a contact
//! sheet (so the sampled frames are decoded) and, for some, `ask` with the tiny checkpoint.
//! Each run must either work or refuse the file as bad input (exit 3, one line naming it,
//! nothing on stdout), and none may panic, hang or die of a signal.

mod common;

use apollo::rng::SeededRng;
use common::guarded::{check_all, run_apollo, Outcome};
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Mutex;

const MUTANTS: usize = 300;
/// One mutant in this many is also asked about.
const ASK_EVERY: usize = 10;

/// Boxes whose size field a mutant may break: the index, its tables and the media data.
const BOXES: [&[u8; 4]; 10] = [
    b"moov", b"trak", b"mdia", b"minf", b"stbl", b"stsd", b"stsz", b"stco", b"elst", b"mdat",
];

fn below(rng: &mut SeededRng, n: usize) -> usize {
    (rng.next_u64() % n.max(1) as u64) as usize
}

/// A mutant of `base` and what was done to it.
fn mutate(base: &[u8], rng: &mut SeededRng) -> (Vec<u8>, &'static str) {
    let mut bytes = base.to_vec();
    let len = bytes.len();
    let span = |rng: &mut SeededRng| {
        let start = below(rng, len);
        (start, start + 1 + below(rng, (len - start).min(4096)))
    };
    let what = match below(rng, 6) {
        0 => {
            for _ in 0..1 + below(rng, 16) {
                let at = below(rng, len);
                bytes[at] ^= 1 + below(rng, 255) as u8;
            }
            "bytes flipped"
        }
        1 => {
            let places: Vec<usize> = (4..len - 4)
                .filter(|&i| BOXES.iter().any(|b| &bytes[i..i + 4] == *b))
                .collect();
            let at = places[below(rng, places.len())] - 4;
            let size = [0, 1, 7, u32::MAX, rng.next_u64() as u32][below(rng, 5)];
            bytes[at..at + 4].copy_from_slice(&size.to_be_bytes());
            "box size broken"
        }
        2 => {
            bytes.truncate(below(rng, len));
            "truncated"
        }
        3 => {
            let (start, end) = span(rng);
            let chunk = bytes[start..end].to_vec();
            let at = below(rng, len);
            bytes.splice(at..at, chunk);
            "chunk duplicated"
        }
        4 => {
            let (start, end) = span(rng);
            bytes.drain(start..end);
            "chunk deleted"
        }
        _ => {
            let (start, end) = span(rng);
            bytes[start..end].copy_from_slice(&rng.bytes(end - start));
            "chunk overwritten"
        }
    };
    (bytes, what)
}

/// What is wrong with a mutant's run, if anything.
fn problem(out: &Outcome, name: &Path) -> Option<String> {
    match out.code {
        Some(3) => out.refusal_problem(name, ""),
        Some(0) if !out.stderr.is_empty() => Some(format!("stderr on success: {out}")),
        _ => out.crash(),
    }
}

#[test]
fn no_mutant_of_a_real_video_panics_hangs_or_dies() {
    let dir = tempfile::tempdir().unwrap();
    // Two layouts: the index at the end (as recorded), and first with an edit list (a
    // stream-copy cut with +faststart).
    let carphone = std::fs::read(common::real_video("carphone_pristine.mp4")).unwrap();
    let cut = dir.path().join("cut.mp4");
    let bikes = common::real_video("bikes.mp4");
    common::ffmpeg(&[
        "-ss",
        "2.3",
        "-i",
        bikes.to_str().unwrap(),
        "-t",
        "2",
        "-c",
        "copy",
        "-movflags",
        "+faststart",
        cut.to_str().unwrap(),
    ]);
    let bases = [carphone, std::fs::read(&cut).unwrap()];

    let tally = Mutex::new(BTreeMap::<String, usize>::new());
    let tiny = common::tiny();
    let problems = check_all(&(0..MUTANTS).collect::<Vec<_>>(), |&n| {
        let mut rng = SeededRng::new(n as u64);
        let (bytes, what) = mutate(&bases[n % bases.len()], &mut rng);
        let name = format!("mutant{n:03}.mp4");
        std::fs::write(dir.path().join(&name), bytes).unwrap();
        let sheet = format!("sheet{n:03}.png");
        let mut runs = vec![vec!["inspect", &name, "--contact-sheet", &sheet]];
        if n % ASK_EVERY == 0 {
            runs.push(vec![
                "ask",
                &name,
                "Why?",
                "--model-dir",
                &tiny,
                "--max-new-tokens",
                "2",
            ]);
        }
        let mut found = None;
        for args in runs {
            let out = run_apollo(dir.path(), &args);
            // The outcome, by its reason without details: "refused: not a video ffmpeg can read".
            let outcome = match out.code {
                Some(0) => "works".to_string(),
                _ => {
                    let reason = out.stderr.split(": ").nth(2).unwrap_or(&out.stderr);
                    format!("refused: {}", reason.split(" (").next().unwrap().trim())
                }
            };
            *tally
                .lock()
                .unwrap()
                .entry(format!("{} {outcome}", args[0]))
                .or_default() += 1;
            found = found.or_else(|| {
                problem(&out, Path::new(&name))
                    .map(|p| format!("{name} ({what}, {}): {p}", args[0]))
            });
        }
        std::fs::remove_file(dir.path().join(&name)).unwrap();
        found
    });
    println!(
        "{MUTANTS} mutants, {} asked about:",
        MUTANTS.div_ceil(ASK_EVERY)
    );
    for (outcome, count) in tally.into_inner().unwrap() {
        println!("{count:5}  {outcome}");
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}
