//! Frame extraction benchmark: time to decode and preprocess the frames of Apollo's default
//! plan, against decoding every frame, on synthetic H.264 videos of 10 minutes to 3 hours.
//!
//! Run: `cargo bench --bench extract` (add names to pick videos, e.g. `-- 640x360-1h`).
//! The videos are made once with the ffmpeg command-line tool (testsrc2, libx264 veryfast,
//! keyframe interval 250, B-frames) and cached in .cache/bench-videos/ (about 1.2 GB;
//! the first run spends ~15 minutes encoding on 2 cores). The full decode of the 3-hour
//! video is skipped unless APOLLO_BENCH_FULL=1. Columns: open (index the packets), decode
//! (open + decode the plan's frames), +prep (open + decode + preprocess for both encoders;
//! medians of three runs), full decode (open + decode every frame, converting none), and
//! the speedup of +prep over the full decode.

use apollo::video::clips::{plan_clips, ClipSampling};
use apollo::video::decode::Video;
use apollo::video::extract::for_each_clip;
use apollo::video::preprocess::Preprocessor;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

struct Case {
    name: &'static str,
    size: &'static str,
    seconds: u32,
    /// The full decode is the slow baseline; skip it where it only costs time.
    full_decode: bool,
}

const CASES: [Case; 4] = [
    Case {
        name: "640x360-10min",
        size: "640x360",
        seconds: 600,
        full_decode: true,
    },
    Case {
        name: "640x360-1h",
        size: "640x360",
        seconds: 3600,
        full_decode: true,
    },
    Case {
        name: "640x360-3h",
        size: "640x360",
        seconds: 10800,
        full_decode: false,
    },
    Case {
        name: "1280x720-10min",
        size: "1280x720",
        seconds: 600,
        full_decode: true,
    },
];

fn cache_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(".cache/bench-videos")
}

/// Encodes the case's video unless it is cached; written under a temporary name first.
fn ensure_video(case: &Case) -> PathBuf {
    let path = cache_dir().join(format!("{}.mp4", case.name));
    if path.is_file() {
        return path;
    }
    std::fs::create_dir_all(cache_dir()).unwrap();
    let part = cache_dir().join(format!("{}.part.mp4", case.name));
    eprintln!("encoding {} (one time)...", path.display());
    let status = Command::new("ffmpeg")
        .args([
            "-y",
            "-hide_banner",
            "-loglevel",
            "error",
            "-f",
            "lavfi",
            "-i",
        ])
        .arg(format!("testsrc2=size={}:rate=30", case.size))
        .args(["-t", &case.seconds.to_string()])
        .args([
            "-c:v", "libx264", "-preset", "veryfast", "-g", "250", "-pix_fmt", "yuv420p",
        ])
        .arg(&part)
        .status()
        .expect("the ffmpeg command-line tool makes the benchmark videos");
    assert!(status.success(), "ffmpeg failed for {}", case.name);
    std::fs::rename(&part, &path).unwrap();
    path
}

fn seconds_since(t: Instant) -> f64 {
    t.elapsed().as_secs_f64()
}

/// The median of three runs (the machine may be busy with other work).
fn median(mut run: impl FnMut() -> f64) -> f64 {
    let mut t = [run(), run(), run()];
    t.sort_by(f64::total_cmp);
    t[1]
}

fn main() {
    let picked: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let full_3h = std::env::var_os("APOLLO_BENCH_FULL").is_some();
    let cfg = ClipSampling::default();
    let pre = Preprocessor::default();
    println!(
        "{:<16} {:>6} {:>8} {:>9} {:>9} {:>11} {:>10} {:>8}",
        "video", "clips", "open s", "decode s", "+prep s", "full dec s", "full fps", "speedup"
    );
    for case in CASES
        .iter()
        .filter(|c| picked.is_empty() || picked.iter().any(|p| p == c.name))
    {
        let path = ensure_video(case);
        let t = Instant::now();
        let mut video = Video::open(&path).unwrap();
        let open_s = seconds_since(t);
        let info = video.info().clone();
        let p = plan_clips(info.total_frames, info.fps, &cfg).unwrap();
        let wanted = p.frames_to_decode();

        // Decode only: the plan's frames, no preprocessing.
        let decode_s = median(|| {
            let t = Instant::now();
            let mut n = 0;
            video
                .frames_at(&wanted, |_, _| {
                    n += 1;
                    Ok(())
                })
                .unwrap();
            assert_eq!(n, wanted.len());
            open_s + seconds_since(t)
        });

        // What the pipeline does: decode, regroup into clips, preprocess for both encoders.
        let extract_s = median(|| {
            let t = Instant::now();
            let mut clips = 0;
            for_each_clip(&mut video, &p, |_, frames| {
                std::hint::black_box(pre.preprocess_clip(frames));
                clips += 1;
                Ok(())
            })
            .unwrap();
            assert_eq!(clips, p.clips.len());
            open_s + seconds_since(t)
        });

        let (full, fps, speedup) = if case.full_decode || full_3h {
            let t = Instant::now();
            video.decode_all(&wanted, |_, _| Ok(())).unwrap();
            let full_s = open_s + seconds_since(t);
            let fps = info.total_frames as f64 / full_s;
            (
                format!("{full_s:.2}"),
                format!("{fps:.0}"),
                format!("{:.1}x", full_s / extract_s),
            )
        } else {
            ("-".into(), "-".into(), "-".into())
        };
        println!(
            "{:<16} {:>6} {:>8.2} {:>9.2} {:>9.2} {:>11} {:>10} {:>8}",
            case.name,
            p.clips.len(),
            open_s,
            decode_s,
            extract_s,
            full,
            fps,
            speedup
        );
    }
}
