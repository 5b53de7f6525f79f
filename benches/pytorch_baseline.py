#!/usr/bin/env python3
"""PyTorch baseline for `apollo bench`: the same work, the same weights, the same video.

`apollo bench --work-dir W` writes a random-weight checkpoint (W/checkpoint-<preset>-<layers>/),
a synthetic video and W/plan.json (the video, each clip's frame indices, the prompt and its
ids). This script reads those files and times what the reference implementation does with
them, with the stock PyTorch / Hugging Face pieces:

  decode      decord's get_batch when installed (as the reference), else OpenCV or PyAV
  preprocess  SiglipImageProcessor (Pillow) for SigLIP; cv2.resize INTER_LINEAR for
              InternVideo2 (torch bilinear interpolation without OpenCV)
  SigLIP      transformers' SiglipVisionModel, sdpa attention, hidden_states[select_layer]
  InternVideo2, token grid, connector
              the modules below, written from shared/docs/apollo-modules.md like
              tests/reference/make_model_fixtures.py (checked there against the original
              training classes), with scaled_dot_product_attention
  LLM         transformers' Qwen2ForCausalLM, sdpa attention, inputs_embeds prefill keeping the
              last position's logits (as generate does), then greedy decoding with the cache

and prints one JSON object with the same keys as `apollo bench`. GPU memory is sampled with
nvidia-smi every 20 ms, as apollo samples it.

  python3 benches/pytorch_baseline.py --work-dir W --device cuda --dtype bf16 [--new-tokens 128]

Needs torch, transformers, safetensors, numpy and pillow; decord, opencv-python or av for
decoding. Runs on CPU too (--device cpu --dtype f32), slowly.
"""

import argparse
import json
import math
import os
import subprocess
import threading
import time

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from safetensors.torch import load_file
from transformers import Qwen2ForCausalLM, SiglipVisionModel

try:  # transformers 5: the Pillow processor the reference uses has its own name
    from transformers import SiglipImageProcessorPil as SiglipImageProcessor
except ImportError:
    from transformers import SiglipImageProcessor

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
IV2_EPS = 1e-6
LN_EPS = 1e-5


def read_json(path):
    with open(path) as f:
        return json.load(f)


# --- decoding and preprocessing -------------------------------------------------------------

def read_frames(path, indices):
    """uint8 (len(indices), H, W, 3) RGB frames, and the library that decoded them."""
    wanted = sorted(set(indices))
    try:
        from decord import VideoReader, cpu
        frames = VideoReader(path, ctx=cpu(0)).get_batch(wanted).asnumpy()
        by_index, name = dict(zip(wanted, frames)), "decord"
    except ImportError:
        try:
            import cv2
            by_index = read_frames_opencv(cv2, path, wanted)
            name = "opencv"
        except ImportError:
            import av
            want, by_index = set(wanted), {}
            with av.open(path) as container:
                for n, frame in enumerate(container.decode(video=0)):
                    if n in want:
                        by_index[n] = frame.to_ndarray(format="rgb24")
                    if len(by_index) == len(want):
                        break
            name = "pyav"
    return np.stack([by_index[i] for i in indices]), name


def read_frames_opencv(cv2, path, wanted):
    """OpenCV's frame-accurate seek for each far frame; near ones by reading on (grab), since
    a seek decodes again from the keyframe before its target."""
    cap = cv2.VideoCapture(path)
    by_index, position = {}, 0  # position: the index the next read returns
    for i in wanted:
        if not position <= i <= position + 64:
            cap.set(cv2.CAP_PROP_POS_FRAMES, i)
            position = i
        while position < i:
            if not cap.grab():
                raise RuntimeError(f"{path}: cannot read frame {position}")
            position += 1
        ok, bgr = cap.read()
        if not ok:
            raise RuntimeError(f"{path}: cannot read frame {i}")
        by_index[i] = bgr[:, :, ::-1]
        position += 1
    return by_index


def dtype_kwargs(dtype):
    """transformers 4.56 renamed from_pretrained's torch_dtype to dtype (5.x drops the old)."""
    major, minor = (int(x) for x in __import__("transformers").__version__.split(".")[:2])
    return {"dtype" if (major, minor) >= (4, 56) else "torch_dtype": dtype}


def pad_square(frame, mean):
    h, w, _ = frame.shape
    side = max(h, w)
    out = np.empty((side, side, 3), dtype=np.uint8)
    out[:] = np.array([int(m * 255) for m in mean], dtype=np.uint8)
    top, left = (side - h) // 2, (side - w) // 2
    out[top:top + h, left:left + w] = frame
    return out


def internvideo2_pixels(frames, size):
    """(3, T, size, size) float: pad, bilinear resize, x/255, ImageNet normalisation."""
    padded = [pad_square(f, IMAGENET_MEAN) for f in frames]
    try:
        import cv2
        resized = np.stack([cv2.resize(p, (size, size), interpolation=cv2.INTER_LINEAR)
                            for p in padded])
        x = torch.from_numpy(resized).float()
    except ImportError:
        x = torch.from_numpy(np.stack(padded)).permute(0, 3, 1, 2).float()
        x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False)
        x = x.round().clamp(0, 255).permute(0, 2, 3, 1)
    x = (x / 255.0 - torch.tensor(IMAGENET_MEAN)) / torch.tensor(IMAGENET_STD)
    return x.permute(3, 0, 1, 2)


# --- InternVideo2, token grid, connector ----------------------------------------------------

def rms_norm(x, weight, eps):
    x32 = x.float()
    x32 = x32 * torch.rsqrt(x32.pow(2).mean(-1, keepdim=True) + eps)
    return weight * x32.to(x.dtype)


class InternVideo2(torch.nn.Module):
    """Patch embedding, class token, position embedding and the blocks up to the selected
    one (the reference's loop stops after block depth + select_layer)."""

    def __init__(self, cfg, weights, select_layer):
        super().__init__()
        self.w, self.cfg = weights, cfg
        depth = cfg.get("depth", 40)
        self.blocks = depth + select_layer + 1 if 0 <= depth + select_layer < depth else depth

    def forward(self, video):
        w, c = self.w, self.cfg
        b, d, heads = video.shape[0], c["d_model"], c["num_heads"]
        p, tub = c["patch_size"], c["tubelet_size"]
        x = F.conv3d(video, w["patch_embed.proj.weight"], w["patch_embed.proj.bias"],
                     stride=(tub, p, p))
        x = x.flatten(2).transpose(1, 2)
        x = torch.cat([w["cls_token"].expand(b, -1, -1), x], dim=1) + w["pos_embed"]
        hd = d // heads
        for i in range(self.blocks):
            pre = f"blocks.{i}."
            h = rms_norm(x, w[pre + "norm1.weight"], IV2_EPS)
            q, k, v = (h @ w[pre + "attn.qkv.weight"].T).split(d, dim=-1)
            q = rms_norm(q, w[pre + "attn.q_norm.weight"], IV2_EPS)
            k = rms_norm(k, w[pre + "attn.k_norm.weight"], IV2_EPS)
            n = x.shape[1]
            q, k, v = (t.reshape(b, n, heads, hd).transpose(1, 2) for t in (q, k, v))
            o = F.scaled_dot_product_attention(q, k, v).transpose(1, 2).reshape(b, n, d)
            o = o @ w[pre + "attn.proj.weight"].T + w[pre + "attn.proj.bias"]
            x = x + o * w[pre + "ls1.gamma"]
            h = rms_norm(x, w[pre + "norm2.weight"], IV2_EPS)
            h = F.gelu(h @ w[pre + "mlp.fc1.weight"].T + w[pre + "mlp.fc1.bias"])
            x = x + (h @ w[pre + "mlp.fc2.weight"].T + w[pre + "mlp.fc2.bias"]) * w[pre + "ls2.gamma"]
        return x[:, 1:]  # "patch": the class token dropped


def to_grid(features, grid):
    """(B, T, H, W, C) -> (B, T*H*W, C) on the common grid: trilinear, align_corners=False."""
    if tuple(features.shape[1:4]) != tuple(grid):
        x = features.permute(0, 4, 1, 2, 3).float()
        x = F.interpolate(x, size=tuple(grid), mode="trilinear", align_corners=False)
        features = x.to(features.dtype).permute(0, 2, 3, 4, 1)
    return features.flatten(1, 3)


def weighted_norm(x, w, prefix):
    return F.layer_norm(x, (x.shape[-1],), w[prefix + ".norm.weight"], w[prefix + ".norm.bias"],
                        eps=LN_EPS) * w[prefix + ".wheight"]


def connector(w, cfg, tokens):
    """Projector (Linear, then GELU + Linear per extra depth) and the perceiver resampler."""
    depth = int(cfg["projector_type"].split("x_")[0].removeprefix("mlp"))
    ctx = tokens @ w["proj.0.weight"].T + w["proj.0.bias"]
    for i in range(1, depth):
        ctx = F.gelu(ctx) @ w[f"proj.{2 * i}.weight"].T + w[f"proj.{2 * i}.bias"]
    heads, kvh, hd = cfg["resampler_n_heads"], cfg["num_key_value_heads"], cfg["resampler_head_dim"]
    b = ctx.shape[0]
    lat = w["resampler.latents"].unsqueeze(0).expand(b, -1, -1)
    nl = lat.shape[1]
    for i in range(cfg["resampler_depth"]):
        pre = f"resampler.layers.{i}."
        l = weighted_norm(lat, w, pre + "input_latents_norm")
        kv = torch.cat([weighted_norm(ctx, w, pre + "input_context_norm"), l], dim=1)
        s = kv.shape[1]
        q = (l @ w[pre + "self_attn.q_proj.weight"].T).reshape(b, nl, heads, hd).transpose(1, 2)
        k = (kv @ w[pre + "self_attn.k_proj.weight"].T).reshape(b, s, kvh, hd).transpose(1, 2)
        v = (kv @ w[pre + "self_attn.v_proj.weight"].T).reshape(b, s, kvh, hd).transpose(1, 2)
        k, v = (t.repeat_interleave(heads // kvh, dim=1) for t in (k, v))
        o = F.scaled_dot_product_attention(q, k, v).transpose(1, 2).reshape(b, nl, heads * hd)
        lat = lat + o @ w[pre + "self_attn.o_proj.weight"].T
        h = weighted_norm(lat, w, pre + "post_attention_layernorm")
        h = (F.silu(h @ w[pre + "mlp.gate_proj.weight"].T) * (h @ w[pre + "mlp.up_proj.weight"].T))
        lat = lat + h @ w[pre + "mlp.down_proj.weight"].T
    return weighted_norm(lat, w, "resampler.norm")


# --- measuring ------------------------------------------------------------------------------

class GpuMemory:
    """Peak used GPU memory (MiB) from nvidia-smi every 20 ms, as apollo bench samples it."""

    def __init__(self, index):
        self.peak = 0
        try:
            self.proc = subprocess.Popen(
                ["nvidia-smi", "--query-gpu=memory.used", "--format=csv,noheader,nounits",
                 "-lms", "20", "-i", str(index)], stdout=subprocess.PIPE, text=True)
        except FileNotFoundError:
            self.proc = None
            return
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for line in self.proc.stdout:
            try:
                self.peak = max(self.peak, int(line.strip()))
            except ValueError:
                pass

    def stop(self):
        if self.proc:
            self.proc.terminate()
        return self.peak if self.proc else None


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--work-dir", required=True)
    ap.add_argument("--checkpoint", help="default: the one plan.json names")
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--dtype", default="bf16", choices=["bf16", "f16", "f32"])
    ap.add_argument("--new-tokens", type=int, default=128)
    args = ap.parse_args()

    plan = read_json(os.path.join(args.work_dir, "plan.json"))
    ckpt = args.checkpoint or plan["checkpoint"]
    dev = torch.device(args.device)
    dtype = {"bf16": torch.bfloat16, "f16": torch.float16, "f32": torch.float32}[args.dtype]
    cuda = dev.type == "cuda"
    gpu = GpuMemory(dev.index or 0) if cuda else None
    sync = torch.cuda.synchronize if cuda else (lambda: None)

    top = read_json(os.path.join(ckpt, "config.json"))
    vision = read_json(os.path.join(ckpt, "vision_tower", "config.json"))
    names = vision["vision_towers"]
    sig_dir = os.path.join(ckpt, "vision_tower", next(n for n in names if "siglip" in n))
    iv_dir = os.path.join(ckpt, "vision_tower", next(n for n in names if "internvideo" in n))
    iv_cfg = read_json(os.path.join(iv_dir, "config.json"))
    con_cfg = read_json(os.path.join(ckpt, "mm_connector", "config.json"))
    select = top.get("mm_vision_select_layer", -2)
    batch = top["encode_batch_size"]
    grid = vision["token_output_shape"]

    t0 = time.perf_counter()
    siglip = SiglipVisionModel.from_pretrained(sig_dir, **dtype_kwargs(dtype),
                                               attn_implementation="sdpa").to(dev).eval()
    to_dev = lambda state: {k: v.to(dev, dtype) for k, v in state.items()}
    iv2 = InternVideo2(iv_cfg, to_dev(load_file(os.path.join(iv_dir, "model.safetensors"))), select)
    con_w = to_dev(load_file(os.path.join(ckpt, "mm_connector", "model.safetensors")))
    llm = Qwen2ForCausalLM.from_pretrained(os.path.join(ckpt, "llm"), **dtype_kwargs(dtype),
                                           attn_implementation="sdpa").to(dev).eval()
    sync()
    load_s = time.perf_counter() - t0

    # Decode and preprocess every clip, as the reference does before encoding.
    clips = plan["clip_frame_indices"]
    t0 = time.perf_counter()
    frames, decoder = read_frames(plan["video"], [i for c in clips for i in c])
    decode_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    processor = SiglipImageProcessor.from_pretrained(sig_dir)
    per_clip = len(clips[0])
    sig_px, iv_px = [], []
    for c in range(len(clips)):
        clip = frames[c * per_clip:(c + 1) * per_clip]
        images = [Image.fromarray(pad_square(f, processor.image_mean)) for f in clip]
        sig_px.append(processor(images=images, return_tensors="pt")["pixel_values"])
        iv_px.append(internvideo2_pixels(clip, iv_cfg["img_size"]))
    preprocess_s = time.perf_counter() - t0

    @torch.no_grad()
    def encode(first, last, times):
        s = torch.stack(sig_px[first:last]).to(dev, dtype)
        v = torch.stack(iv_px[first:last]).to(dev, dtype)
        sync()
        t = time.perf_counter()
        n = s.shape[0]
        hs = siglip(pixel_values=s.flatten(0, 1), output_hidden_states=True).hidden_states[select]
        g = int(math.isqrt(hs.shape[1]))
        fs = hs.reshape(n, per_clip, g, g, -1)
        sync()
        times[0] += time.perf_counter() - t
        t = time.perf_counter()
        fi = iv2(v)
        gi = iv_cfg["img_size"] // iv_cfg["patch_size"]
        fi = fi.reshape(n, iv_cfg["num_frames"] // iv_cfg["tubelet_size"], gi, gi, -1)
        sync()
        times[1] += time.perf_counter() - t
        t = time.perf_counter()
        rows = connector(con_w, con_cfg, torch.cat([to_grid(fs, grid), to_grid(fi, grid)], dim=-1))
        sync()
        times[2] += time.perf_counter() - t
        return rows

    encode(0, min(batch, len(clips)), [0.0] * 3)  # warm-up, untimed
    times = [0.0] * 3
    rows = torch.cat([encode(i, min(i + batch, len(clips)), times)
                      for i in range(0, len(clips), batch)]).flatten(0, 1)

    # The prompt: text embeddings with the video rows at the placeholder positions.
    ids = torch.tensor(plan["input_ids"], device=dev)
    slots = ids == plan["video_slot"]
    with torch.no_grad():
        embeds = llm.get_input_embeddings()(ids.masked_fill(slots, 0))
        embeds[slots] = rows.to(embeds.dtype)
        sync()
        t = time.perf_counter()
        try:
            out = llm(inputs_embeds=embeds[None], use_cache=True, logits_to_keep=1)
        except TypeError:
            out = llm(inputs_embeds=embeds[None], use_cache=True, num_logits_to_keep=1)
        nxt = out.logits[0, -1].argmax()
        sync()
        prefill_s = time.perf_counter() - t
        past = out.past_key_values
        t = time.perf_counter()
        for _ in range(args.new_tokens - 1):
            out = llm(input_ids=nxt.view(1, 1), past_key_values=past, use_cache=True)
            past, nxt = out.past_key_values, out.logits[0, -1].argmax()
        sync()
        generate_s = time.perf_counter() - t

    n_frames = len(clips) * per_clip
    encode_s = sum(times)
    report = {
        "implementation": "pytorch",
        "device": str(dev),
        "dtype": args.dtype,
        "versions": {"torch": torch.__version__,
                     "transformers": __import__("transformers").__version__},
        "decoder": decoder,
        "video": {"path": plan["video"], "clips": len(clips), "frames": n_frames},
        "load_s": load_s,
        "decode_preprocess_frames_per_s": n_frames / (decode_s + preprocess_s),
        "siglip_frames_per_s": n_frames / times[0],
        "internvideo2_frames_per_s": n_frames / times[1],
        "connector_clips_per_s": len(clips) / times[2],
        "prompt_tokens": len(plan["input_ids"]),
        "video_tokens": int(slots.sum()),
        "prefill_tokens_per_s": len(plan["input_ids"]) / prefill_s,
        "generated_tokens": args.new_tokens,
        "decode_tokens_per_s": (args.new_tokens - 1) / generate_s if args.new_tokens > 1 else None,
        "time_to_first_token_s": decode_s + preprocess_s + encode_s + prefill_s,
        "answer_timings_ms": {k: round(v * 1e3, 3) for k, v in [
            ("decode", decode_s), ("preprocess", preprocess_s), ("encode", encode_s),
            ("prefill", prefill_s), ("generate", generate_s)]},
        "peak_gpu_memory_mib": gpu.stop() if gpu else None,
        "peak_torch_allocated_mib": torch.cuda.max_memory_allocated() // 2**20 if cuda else None,
    }
    print(json.dumps(report))


if __name__ == "__main__":
    main()
