#!/usr/bin/env python3
"""Sampled-frame decoding, apollo against Python's video decoders, side by side in one run.

Every decoder gets the same frames: those of the video's default Apollo plan, read from
`apollo inspect --json VIDEO` (each clip's frame_indices, deduplicated and sorted), and returns
each one as RGB uint8, opening the file included. Decoders:

  apollo                `apollo bench --decode-only --threads 1` and `--threads N`
  torchcodec-exact      VideoDecoder(seek_mode="exact").get_frames_at(indices)
  torchcodec-approx     VideoDecoder(seek_mode="approximate").get_frames_at(indices)
  pyav                  keyframes read first (demuxing only), then a seek only where the next
                        frame lies past the next keyframe, decoding forward otherwise
  decord                VideoReader(...).get_batch(indices), as Apollo's reference reads
  opencv                VideoCapture, seeking (CAP_PROP_POS_FRAMES) unless the next frame is
                        the following one
  ffmpeg-full           `ffmpeg -threads N -i VIDEO -f null -`: every frame, no conversion

Each prints one JSON line, `{"decoder", "frames", "decode_s", "frames_per_s", "threads"}`
(apollo's adds the pictures decoded against the minimum the frames need). With --repeat R the
decoders alternate R times and a Markdown table of medians (and each decoder's ratio to apollo
at N threads) ends the output. A library that is not installed is reported as missing, by
name, and skipped.

Example (the README's table):
  python3 benches/decode_baseline.py --video /tmp/hour.mp4 --threads 2 --repeat 3
"""

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def plan_indices(apollo, video):
    out = subprocess.run(
        [apollo, "inspect", "--json", video], check=True, capture_output=True, text=True
    ).stdout
    plan = json.loads(out.splitlines()[0])
    return sorted({i for clip in plan["clips"] for i in clip["frame_indices"]}), plan["fps"]


def run_apollo(apollo, video, threads, _indices):
    out = subprocess.run(
        [apollo, "bench", "--decode-only", "--video", video, "--threads", str(threads)],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return json.loads(out)


def torchcodec(mode):
    def run(video, threads, indices):
        from torchcodec.decoders import VideoDecoder

        decoder = VideoDecoder(
            video, seek_mode=mode, num_ffmpeg_threads=threads, dimension_order="NHWC"
        )
        batch = decoder.get_frames_at(indices)
        assert batch.data.shape[0] == len(indices)

    return run


def pyav(video, threads, indices):
    import av

    with av.open(video) as container:
        stream = container.streams.video[0]
        # Keyframes and each frame's timestamp, by demuxing only (no decoding).
        pts, keys = [], []
        for packet in container.demux(stream):
            if packet.pts is not None:
                pts.append(packet.pts)
                if packet.is_keyframe:
                    keys.append(packet.pts)
        pts.sort()
        keys.sort()
        stream.codec_context.thread_count = threads
        stream.codec_context.thread_type = "AUTO"
        container.seek(0, stream=stream)
        frames = iter(())
        position = None  # timestamp of the last frame decoded
        got = 0
        for i in indices:
            target = pts[i]
            key = max((k for k in keys if k <= target), default=keys[0])
            if position is None or key > position or target <= position:
                container.seek(key, stream=stream, backward=True)
                frames = container.decode(stream)
            for frame in frames:
                position = frame.pts
                if frame.pts == target:
                    frame.to_ndarray(format="rgb24")
                    got += 1
                    break
        assert got == len(indices), f"pyav found {got} of {len(indices)} frames"


def decord(video, threads, indices):
    from decord import VideoReader, cpu

    frames = VideoReader(video, ctx=cpu(0), num_threads=threads).get_batch(indices).asnumpy()
    assert frames.shape[0] == len(indices)


def opencv(video, threads, indices):
    import cv2

    cv2.setNumThreads(threads)
    cap = cv2.VideoCapture(video)
    position = 0
    for i in indices:
        if i != position:
            cap.set(cv2.CAP_PROP_POS_FRAMES, i)
        ok, frame = cap.read()
        assert ok, f"opencv could not read frame {i}"
        cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)
        position = i + 1
    cap.release()


def ffmpeg_full(video, threads, _indices):
    subprocess.run(
        ["ffmpeg", "-v", "error", "-threads", str(threads), "-i", video, "-map", "0:v:0",
         "-f", "null", "-"],
        check=True,
    )


BASELINES = {
    "torchcodec-exact": ("torchcodec", torchcodec("exact")),
    "torchcodec-approx": ("torchcodec", torchcodec("approximate")),
    "pyav": ("av", pyav),
    "decord": ("decord", decord),
    "opencv": ("cv2", opencv),
    "ffmpeg-full": (None, ffmpeg_full),
}


def available(module):
    if module is None:
        return shutil.which("ffmpeg") is not None
    try:
        __import__(module)
        return True
    except ImportError:
        return False


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--video", required=True)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeat", type=int, default=1, help="alternating runs; medians reported")
    ap.add_argument("--apollo", default=str(REPO / "target/release/apollo"))
    ap.add_argument(
        "--only", nargs="*", choices=["apollo", *BASELINES], help="these decoders only"
    )
    args = ap.parse_args()

    indices, _fps = plan_indices(args.apollo, args.video)
    runs = []  # (name, threads, function)
    wanted = set(args.only or ["apollo", *BASELINES])
    if "apollo" in wanted:
        for t in sorted({1, args.threads}):
            runs.append((f"apollo-{t}t", t, lambda v, t, i: run_apollo(args.apollo, v, t, i)))
    for name, (module, fn) in BASELINES.items():
        if name not in wanted:
            continue
        if not available(module):
            print(f"{name}: missing (python module {module!r} is not installed)", file=sys.stderr)
            continue
        runs.append((name, args.threads, fn))

    times = {name: [] for name, _, _ in runs}
    for _ in range(args.repeat):
        for name, threads, fn in runs:
            start = time.perf_counter()
            extra = fn(args.video, threads, indices)
            elapsed = time.perf_counter() - start
            record = {"decoder": name, "frames": len(indices), "decode_s": elapsed,
                      "frames_per_s": len(indices) / elapsed, "threads": threads}
            if isinstance(extra, dict):  # apollo times itself, without process start-up
                record.update(extra)
                elapsed = extra["decode_s"]
            times[name].append(elapsed)
            print(json.dumps(record), flush=True)

    if args.repeat > 1 and runs:
        reference = times.get(f"apollo-{args.threads}t")
        ref = statistics.median(reference) if reference else None
        print(f"\n| decoder | threads | seconds (median of {args.repeat}) | frames/s | apollo {args.threads}t faster by |")
        print("|---|---|---|---|---|")
        for name, threads, _ in runs:
            m = statistics.median(times[name])
            ratio = f"{m / ref:.2f}x" if ref else "-"
            print(f"| {name} | {threads} | {m:.2f} | {len(indices) / m:.0f} | {ratio} |")


if __name__ == "__main__":
    main()
