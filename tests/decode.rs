//! Random access must give exactly the frames a full sequential decode gives, on real videos
//! and on synthetic ones in other containers and codecs.

mod common;

use apollo::video::clips::{plan_clips, ClipSampling};
use apollo::video::decode::{DecodeStats, Video};
use apollo::video::frame::RgbFrame;
use apollo::video::rotate::Rotation;
use apollo::video::segment::{self, Segment};
use std::collections::BTreeMap;
use std::path::Path;

fn random_access(path: &Path, indices: &[u64]) -> BTreeMap<u64, RgbFrame> {
    random_access_with(path, indices, 1).0
}

/// Random access with `threads` threads, and what it decoded.
fn random_access_with(
    path: &Path,
    indices: &[u64],
    threads: usize,
) -> (BTreeMap<u64, RgbFrame>, DecodeStats, u64) {
    let mut out = BTreeMap::new();
    let mut video = Video::open(path).unwrap();
    video.set_threads(threads).unwrap();
    let mut order = Vec::new();
    video
        .frames_at(indices, |i, f| {
            order.push(i);
            out.insert(i, f);
            Ok(())
        })
        .unwrap();
    assert_eq!(order, indices, "{}: frames out of order", path.display());
    (out, video.stats(), video.minimum_decodes(indices))
}

fn sequential(path: &Path, indices: &[u64]) -> BTreeMap<u64, RgbFrame> {
    let mut out = BTreeMap::new();
    Video::open(path)
        .unwrap()
        .decode_all(indices, |i, f| {
            out.insert(i, f);
            Ok(())
        })
        .unwrap();
    out
}

/// The plan's frames plus a spread of others: first, last, and a stride that lands in every
/// group of pictures at varying offsets.
fn probe_indices(path: &Path) -> Vec<u64> {
    let video = Video::open(path).unwrap();
    let info = video.info();
    let p = plan_clips(info.total_frames, info.fps, &ClipSampling::default()).unwrap();
    let mut idx = p.frames_to_decode();
    idx.extend((0..info.total_frames).step_by(7));
    idx.push(info.total_frames - 1);
    idx.sort_unstable();
    idx.dedup();
    idx
}

fn assert_random_access_matches(path: &Path) {
    let idx = probe_indices(path);
    let fast = random_access(path, &idx);
    let slow = sequential(path, &idx);
    assert_eq!(
        fast.len(),
        idx.len(),
        "{}: random access missed frames",
        path.display()
    );
    assert_eq!(
        slow.len(),
        idx.len(),
        "{}: sequential decode missed frames",
        path.display()
    );
    for i in &idx {
        assert!(fast[i] == slow[i], "{}: frame {i} differs", path.display());
    }
}

#[test]
fn real_videos_metadata() {
    let expect = [
        ("bigbuckbunny.mp4", 1280, 720, 25.0, 132),
        ("bikes.mp4", 640, 272, 25.0, 250),
        ("carphone_pristine.mp4", 176, 144, 29.97, 120),
    ];
    for (name, w, h, fps, frames) in expect {
        let v = Video::open(&common::real_video(name)).unwrap();
        let i = v.info();
        assert_eq!(
            (i.width, i.height, i.total_frames),
            (w, h, frames),
            "{name}"
        );
        assert!((i.fps - fps).abs() < 0.01, "{name}: fps {}", i.fps);
        assert_eq!(i.duration_s, frames as f64 / i.fps);
    }
}

#[test]
fn random_access_equals_sequential_decode_on_real_videos() {
    for name in common::REAL_VIDEOS {
        assert_random_access_matches(&common::real_video(name));
    }
}

#[test]
fn random_access_equals_sequential_decode_across_containers() {
    let dir = tempfile::tempdir().unwrap();
    // Short keyframe intervals and B-frames make seeking and reordering matter.
    let cases: [(&str, &[&str]); 6] = [
        ("h264.mp4", &["-c:v", "libx264", "-g", "12", "-bf", "3"]),
        (
            "h264.mov",
            &[
                "-c:v", "libx264", "-g", "8", "-bf", "2", "-pix_fmt", "yuv444p",
            ],
        ),
        (
            "vp9.webm",
            &["-c:v", "libvpx-vp9", "-g", "10", "-deadline", "realtime"],
        ),
        ("vp8.mkv", &["-c:v", "libvpx", "-g", "10"]),
        ("mpeg4.avi", &["-c:v", "mpeg4", "-g", "9", "-bf", "2"]),
        ("anim.gif", &[]),
    ];
    for (name, codec) in cases {
        let path = dir.path().join(name);
        common::synthetic(&path, "96x64", "10", "6", codec);
        assert_random_access_matches(&path);
    }
}

/// A long MP4's packet scan is read by two demuxers from its two halves at once: the index
/// they make must be the one a single demuxer reads, so the same frames, found the same way.
#[test]
fn a_split_packet_scan_indexes_as_one_demuxer_does() {
    let dir = tempfile::tempdir().unwrap();
    let cases: [(&str, &[&str]); 2] = [
        (
            "long.mp4",
            &[
                "-c:v",
                "libx264",
                "-g",
                "23",
                "-bf",
                "3",
                "-x264-params",
                "b-pyramid=normal:scenecut=0",
            ],
        ),
        ("long.mov", &["-c:v", "libx264", "-g", "37", "-bf", "2"]),
    ];
    for (name, codec) in cases {
        let path = dir.path().join(name);
        common::synthetic(&path, "96x64", "10", "45", codec);
        let one = Video::open_with_threads(&path, 1).unwrap();
        let mut two = Video::open_with_threads(&path, 2).unwrap();
        assert_eq!((one.scan_demuxers(), two.scan_demuxers()), (1, 2), "{name}");
        assert_eq!(one.info(), two.info(), "{name}");
        let idx = probe_indices(&path);
        assert_eq!(
            one.minimum_decodes(&idx),
            two.minimum_decodes(&idx),
            "{name}"
        );
        let mut got = BTreeMap::new();
        two.frames_at(&idx, |i, f| {
            got.insert(i, f);
            Ok(())
        })
        .unwrap();
        assert!(got == sequential(&path, &idx), "{name}: frames differ");
        assert_eq!(two.stats().decoded, two.minimum_decodes(&idx), "{name}");
    }
}

/// Where reordering and references are hardest (B-frame pyramids, open GOPs whose leading
/// frames refer to the group before, HEVC, VP9 with hidden alternate references), random
/// access with one decoder and with several gives the full decode's frames, seeks only
/// forward, and decodes exactly the minimum the frames need: no group of pictures twice,
/// nothing after the last wanted frame.
#[test]
fn random_access_is_exact_and_minimal_on_hard_group_structures() {
    let dir = tempfile::tempdir().unwrap();
    let cases: [(&str, &[&str]); 5] = [
        (
            "pyramid.mp4",
            &[
                "-c:v",
                "libx264",
                "-g",
                "12",
                "-bf",
                "3",
                "-x264-params",
                "b-pyramid=normal:scenecut=0",
            ],
        ),
        (
            "open-gop.mkv",
            &[
                "-c:v",
                "libx264",
                "-g",
                "12",
                "-bf",
                "3",
                "-x264-params",
                "open-gop=1:b-pyramid=normal:scenecut=0",
            ],
        ),
        (
            "hevc.mp4",
            &[
                "-c:v",
                "libx265",
                "-x265-params",
                "keyint=12:min-keyint=12:bframes=4:b-pyramid=1:open-gop=1:log-level=error",
            ],
        ),
        (
            "hevc-closed.mkv",
            &[
                "-c:v",
                "libx265",
                "-x265-params",
                "keyint=10:bframes=3:open-gop=0:log-level=error",
            ],
        ),
        (
            "vp9-altref.webm",
            &[
                "-c:v",
                "libvpx-vp9",
                "-g",
                "12",
                "-auto-alt-ref",
                "1",
                "-lag-in-frames",
                "8",
                "-deadline",
                "good",
                "-cpu-used",
                "8",
            ],
        ),
    ];
    for (name, codec) in cases {
        let path = dir.path().join(name);
        common::synthetic(&path, "96x64", "10", "6", codec);
        let idx = probe_indices(&path);
        let slow = sequential(&path, &idx);
        assert_eq!(
            slow.len(),
            idx.len(),
            "{name}: sequential decode missed frames"
        );
        // The default plan alone too: its clips share groups of pictures.
        let info = Video::open(&path).unwrap().info().clone();
        let plan = plan_clips(info.total_frames, info.fps, &ClipSampling::default())
            .unwrap()
            .frames_to_decode();
        for wanted in [&idx, &plan] {
            for threads in [1, 3] {
                let (fast, stats, minimum) = random_access_with(&path, wanted, threads);
                for i in wanted {
                    assert!(
                        fast[i] == slow[i],
                        "{name}, {threads} threads: frame {i} differs"
                    );
                }
                assert_eq!(stats.backward_seeks, 0, "{name}, {threads} threads");
                assert_eq!(
                    stats.decoded, minimum,
                    "{name}, {threads} threads: decoded {} pictures, {minimum} needed",
                    stats.decoded
                );
            }
        }
    }
}

/// Frame `n` of a segment is frame `first + n` of its video, by random access and by the full
/// decode, also where frames are numbered by counting (AVI with B-frames has no timestamps).
#[test]
fn a_segment_s_frames_are_its_video_s_from_its_first_frame_on() {
    let dir = tempfile::tempdir().unwrap();
    let avi = dir.path().join("mpeg4.avi");
    common::synthetic(
        &avi,
        "96x64",
        "10",
        "6",
        &["-c:v", "mpeg4", "-g", "9", "-bf", "2"],
    );
    let cut = Segment {
        start_s: 1.05,
        end_s: Some(4.5),
    };
    for (path, first, total) in [(common::real_video("bikes.mp4"), 27, 86), (avi, 11, 34)] {
        let open = || segment::open(&path, Some(&cut), 1).unwrap();
        let info = open().info().clone();
        assert_eq!(info.segment.as_ref().unwrap().first_frame, first);
        assert_eq!(info.total_frames, total);
        let mut idx: Vec<u64> = (0..total).step_by(5).chain([total - 1]).collect();
        idx.dedup();
        let shifted: Vec<u64> = idx.iter().map(|i| i + first).collect();
        let whole = random_access(&path, &shifted);
        let (mut fast, mut slow) = (BTreeMap::new(), BTreeMap::new());
        let keep = |out: &mut BTreeMap<u64, RgbFrame>, i, f| {
            out.insert(i, f);
            Ok(())
        };
        open()
            .frames_at(&idx, |i, f| keep(&mut fast, i, f))
            .unwrap();
        open()
            .decode_all(&idx, |i, f| keep(&mut slow, i, f))
            .unwrap();
        for i in &idx {
            let want = &whole[&(i + first)];
            assert!(&fast[i] == want && &slow[i] == want, "{path:?}: frame {i}");
        }
        assert_eq!((fast.len(), slow.len()), (idx.len(), idx.len()));
    }
}

/// Frame 3 of `path` as ffmpeg's own command-line tool shows it (auto-rotated), RGB24.
fn ffmpeg_frame(path: &Path, out: &Path) -> Vec<u8> {
    let (p, o) = (path.to_str().unwrap(), out.to_str().unwrap());
    common::ffmpeg(&[
        "-i",
        p,
        "-vf",
        "select=eq(n\\,3)",
        "-frames:v",
        "1",
        "-f",
        "rawvideo",
        "-pix_fmt",
        "rgb24",
        o,
    ]);
    std::fs::read(out).unwrap()
}

#[test]
fn rotation_metadata_turns_the_frames_as_ffmpeg_does() {
    let dir = tempfile::tempdir().unwrap();
    let plain = dir.path().join("plain.mp4");
    let turned = dir.path().join("turned.mp4");
    common::synthetic(&plain, "64x32", "10", "1", &["-c:v", "libx264"]);
    common::ffmpeg(&[
        "-i",
        plain.to_str().unwrap(),
        "-c",
        "copy",
        "-metadata:s:v:0",
        "rotate=90",
        turned.to_str().unwrap(),
    ]);
    let info = Video::open(&turned).unwrap().info().clone();
    assert_eq!((info.width, info.height), (32, 64));
    // Which quarter turn ffmpeg applies to this file decides which one we must apply.
    let raw = dir.path().join("f.rgb");
    let ff_plain = RgbFrame::new(64, 32, ffmpeg_frame(&plain, &raw));
    let ff_turned = ffmpeg_frame(&turned, &raw);
    let turn = [Rotation::Cw90, Rotation::Cw180, Rotation::Cw270]
        .into_iter()
        .find(|r| r.apply(ff_plain.clone()).data == ff_turned)
        .expect("ffmpeg turns the picture by a quarter turn");
    assert_eq!(info.rotation, turn.degrees());
    let ours_plain = random_access(&plain, &[3]).remove(&3).unwrap();
    let ours_turned = random_access(&turned, &[3]).remove(&3).unwrap();
    assert!(turn.apply(ours_plain) == ours_turned);
}

#[test]
fn frames_are_those_ffmpeg_numbers_the_same() {
    // ffmpeg's `select=eq(n,N)` counts frames in presentation order as its decoder outputs
    // them: an independent check of our numbering (and of the RGB conversion).
    let dir = tempfile::tempdir().unwrap();
    let raw = dir.path().join("f.rgb");
    for name in common::REAL_VIDEOS {
        let path = common::real_video(name);
        let picks = [0u64, 37, 101];
        let ours = random_access(&path, &picks);
        for n in picks {
            let (p, o) = (path.to_str().unwrap(), raw.to_str().unwrap());
            let select = format!("select=eq(n\\,{n})");
            common::ffmpeg(&[
                "-i",
                p,
                "-vf",
                &select,
                "-frames:v",
                "1",
                "-f",
                "rawvideo",
                "-pix_fmt",
                "rgb24",
                o,
            ]);
            assert!(
                std::fs::read(&raw).unwrap() == ours[&n].data,
                "{name}: frame {n}"
            );
        }
    }
}

/// Every frame ffmpeg's decoder outputs for `path`, in order, as RGB24 of `frame_bytes` each
/// (`-fps_mode passthrough`: the decoded frames themselves, without the duplicates its
/// constant-rate output would add to fill the container's duration).
fn ffmpeg_all_frames(path: &Path, out: &Path, frame_bytes: usize) -> Vec<Vec<u8>> {
    let (p, o) = (path.to_str().unwrap(), out.to_str().unwrap());
    common::ffmpeg(&[
        "-i",
        p,
        "-fps_mode",
        "passthrough",
        "-f",
        "rawvideo",
        "-pix_fmt",
        "rgb24",
        o,
    ]);
    let raw = std::fs::read(out).unwrap();
    assert_eq!(raw.len() % frame_bytes, 0);
    raw.chunks(frame_bytes).map(<[u8]>::to_vec).collect()
}

#[test]
fn stream_copy_cuts_decode_exactly_the_frames_ffmpeg_shows() {
    // `-ss T -c copy` keeps the packets from the keyframe before T and hides the ones before
    // T with an edit list: they must be decoded (references) but not counted as frames.
    let dir = tempfile::tempdir().unwrap();
    let source = dir.path().join("source.mp4");
    // B-frames (with pyramid references) and a keyframe every 12 frames: cuts fall mid-GOP.
    common::synthetic(
        &source,
        "96x64",
        "10",
        "6",
        &["-c:v", "libx264", "-g", "12", "-bf", "3"],
    );
    for start in ["0", "0.35", "1.25", "2.7", "4.95"] {
        for (ext, faststart) in [("mp4", false), ("mp4", true), ("mov", false), ("mov", true)] {
            let cut = dir.path().join(format!(
                "cut{start}{}.{ext}",
                if faststart { "f" } else { "" }
            ));
            let mut args = vec![
                "-ss",
                start,
                "-i",
                source.to_str().unwrap(),
                "-t",
                "2",
                "-c",
                "copy",
            ];
            if faststart {
                args.extend(["-movflags", "+faststart"]);
            }
            args.push(cut.to_str().unwrap());
            common::ffmpeg(&args);

            let ffmpeg = ffmpeg_all_frames(&cut, &dir.path().join("frames.rgb"), 96 * 64 * 3);
            let video = Video::open(&cut).unwrap();
            let n = video.info().total_frames;
            assert_eq!(n as usize, ffmpeg.len(), "{}: frame count", cut.display());
            let all: Vec<u64> = (0..n).collect();
            let fast = random_access(&cut, &all);
            let slow = sequential(&cut, &all);
            // Each frame alone too: a fresh seek into the middle of a cut group.
            for i in all {
                let alone = random_access(&cut, &[i]);
                for (how, frames) in [
                    ("random access", &fast),
                    ("sequential", &slow),
                    ("alone", &alone),
                ] {
                    assert!(
                        frames.get(&i).is_some_and(|f| f.data == ffmpeg[i as usize]),
                        "{}: frame {i} ({how}) differs from ffmpeg's",
                        cut.display()
                    );
                }
            }
            // Keyframes fall at 0, 1.2, 2.4, ... s: every cut but the first starts mid-GOP.
            let hidden = packet_count(&cut) - n;
            assert_eq!(
                hidden > 0,
                start != "0",
                "{}: {hidden} hidden",
                cut.display()
            );
        }
    }
}

/// Video packets in the file, hidden ones included.
fn packet_count(path: &Path) -> u64 {
    let out = std::process::Command::new("ffprobe")
        .args(["-v", "error", "-select_streams", "v", "-count_packets"])
        .args(["-show_entries", "stream=nb_read_packets", "-of", "csv=p=0"])
        .arg(path)
        .output()
        .unwrap();
    String::from_utf8(out.stdout)
        .unwrap()
        .trim()
        .parse()
        .unwrap()
}

/// `apollo bench --decode-only` as a user runs it: one JSON object for the video's default
/// plan, decoding exactly the minimum, and the scan split on a long MP4 with 2 threads.
#[test]
fn the_decode_bench_reports_a_minimal_decode_as_json() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("long.mp4");
    common::synthetic(
        &path,
        "96x64",
        "10",
        "45",
        &["-c:v", "libx264", "-g", "23", "-bf", "3"],
    );
    let info = Video::open(&path).unwrap().info().clone();
    let plan = plan_clips(info.total_frames, info.fps, &ClipSampling::default()).unwrap();
    for threads in ["1", "2"] {
        let r = common::run(
            common::apollo()
                .args(["bench", "--decode-only", "--threads", threads, "--video"])
                .arg(&path),
        );
        assert_eq!(r.code, 0, "{}", r.stderr);
        let report: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
        assert_eq!(report["frames"], plan.frames_to_decode().len());
        assert_eq!(report["threads"], threads.parse::<u64>().unwrap());
        assert_eq!(report["decoded_frames"], report["minimum_frames"]);
        assert_eq!(report["backward_seeks"], 0);
        assert_eq!(report["scan_demuxers"], if threads == "1" { 1 } else { 2 });
        assert!(report["decode_s"].as_f64().unwrap() > 0.0);
    }
}
