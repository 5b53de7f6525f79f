#!/usr/bin/env python3
"""Make a tiny random-weight Apollo checkpoint and reference outputs for the native port.

Writes (run by hand, not in CI; a rerun writes byte-identical files):

  tests/fixtures/tiny-apollo/            a checkpoint in the published Apollo directory layout
      config.json                        ApolloConfig-like top level (llm_cfg, vision_tower_cfg,
                                         mm_connector_cfg nested as dicts, clip_duration, ...)
      llm/                               Qwen2ForCausalLM saved by transformers in two shards
                                         (model-0000{1,2}-of-00002.safetensors + index), untied
                                         lm_head, generation_config.json, tokenizer files built
                                         from tests/fixtures/tokenizer/tokenizer.json
      vision_tower/config.json           hybrid_vision_tower: SigLIP first, then InternVideo2
      vision_tower/siglip-so400m-patch14-384/   SiglipVisionModel (tensor names with the
                                         `vision_model.` prefix), preprocessor_config.json
      vision_tower/internvideo2/         config.json (with `depth`), model.safetensors with the
                                         training-class names, plus unused clip_* tensors
      mm_connector/                      config.json, model.safetensors (proj + perceiver)
  tests/fixtures/tiny-apollo-reference/
      reference.safetensors              f32 (and i64) inputs, intermediates and outputs
      reference.json                     prompt, ids, greedy ids, sampling plan, seeds, versions
      llm-tied/                          the same LLM with tie_word_embeddings=true saved as one
                                         file (no lm_head.weight): a drop-in replacement for llm/
      README.md                          what every tensor is (hand-written, kept on rerun)

All weights are stored in bf16 (as the published checkpoints are); every reference output is
computed in f32 on CPU from the bf16-rounded weights read back from the written files:
  * SigLIP and Qwen2 with transformers' own classes (eager attention),
  * InternVideo2, the token grid and the connector with the small PyTorch functions below,
    written from shared/docs/apollo-modules.md §3-§5 (checked against the training code of
    the public Apollo repository, not copied from it).

Versions used to make the committed files: Python 3.11.7, torch 2.15.0 (PyPI wheel, run on CPU),
transformers 4.57.6 (a 4.x release, so SigLIP keys carry `vision_model.` and Qwen2 configs a
top-level `rope_theta`, as in the published checkpoints), tokenizers 0.22.2, safetensors 0.8.0,
numpy 2.4.6, pillow 13.0.0, opencv-python-headless 5.0.0.93, num2words 0.5.14.

How to run, from the repository root (a virtual environment keeps these off the system):
  python3 -m venv /tmp/apollo-ref-venv
  /tmp/apollo-ref-venv/bin/pip install torch==2.15.0 "transformers==4.57.6" safetensors numpy \
      pillow opencv-python-headless num2words
  . /tmp/apollo-ref-venv/bin/activate && python3 tests/reference/make_model_fixtures.py
(A venv because transformers 4.57 pins tokenizers < 0.23, while make_tokenizer_fixtures.py was
run with tokenizers 0.23.3; both give the same ids for these prompts. The Linux torch wheel on
PyPI pulls in the CUDA runtime packages, about 5 GB; torch refuses to import without them even
on CPU. No GPU is needed.)
"""

import json
import math
import os
import shutil
import sys
from datetime import timedelta

import cv2
import numpy as np
import PIL
import safetensors
import tokenizers
import torch
import torch.nn.functional as F
import transformers
from num2words import num2words
from safetensors.torch import load_file, save_file
from transformers import (
    AutoTokenizer,
    Qwen2Config,
    Qwen2ForCausalLM,
    Qwen2TokenizerFast,
    SiglipImageProcessor,
    SiglipVisionConfig,
    SiglipVisionModel,
)

ROOT = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
CKPT = os.path.join(ROOT, "tests", "fixtures", "tiny-apollo")
REF = os.path.join(ROOT, "tests", "fixtures", "tiny-apollo-reference")
TOKENIZER_JSON = os.path.join(ROOT, "tests", "fixtures", "tokenizer", "tokenizer.json")

SEED = 20241216
SIGLIP_DIR = "siglip-so400m-patch14-384"
INTERNVIDEO2_DIR = "internvideo2"
VIDEO_TOKEN = "<|video_token|>"
PLACEHOLDER_ID = -200
QUESTION = "What happens after the dog jumps? Describe this video in detail."
SYSTEM = "<|im_start|>system\n\nYou are a helpful vision-language assistant."

# ---------------------------------------------------------------------------------------------
# Tiny configuration
# ---------------------------------------------------------------------------------------------
CLIP_DURATION = 2
FRAMES_PER_CLIP = 4
MODEL_MAX_LENGTH = 512
SELECT_LAYER = -2
SELECT_FEATURE = "patch"
ENCODE_BATCH_SIZE = 1  # two clips -> two encoder minibatches
NEW_TOKENS = 16
# Qwen2.5-Instruct's generation_config.json has 1.05; with these random weights 1.05 changes no
# greedy id, so the fixture uses 2.0, which changes the tied model's (see llm-tied).
REPETITION_PENALTY = 2.0

SIGLIP = dict(hidden_size=32, intermediate_size=48, num_hidden_layers=3, num_attention_heads=2,
              image_size=42, patch_size=14, num_channels=3, layer_norm_eps=1e-6,
              hidden_act="gelu_pytorch_tanh", attention_dropout=0.0)
IV2 = dict(d_model=24, num_heads=2, depth=3, img_size=28, patch_size=14, num_frames=4,
           tubelet_size=1, clip_embed_dim=16, clip_teacher_embed_dim=20,
           clip_teacher_final_dim=16, clip_return_layer=1, attn_pool_num_heads=2)
IV2_MLP_RATIO = 48 / 11  # not written to the config: the published one has no mlp_ratio
IV2_MLP_HIDDEN = int(IV2["d_model"] * IV2_MLP_RATIO)  # 104
IV2_EPS = 1e-6
LLM = dict(vocab_size=384, hidden_size=64, intermediate_size=96, num_hidden_layers=2,
           num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=512,
           rope_theta=10000.0, rms_norm_eps=1e-6)
# T, H, W: max over encoders (SigLIP 1 x 3 x 3, InternVideo2 4 x 2 x 2)
GRID = (max(1, IV2["num_frames"] // IV2["tubelet_size"]),
        max(SIGLIP["image_size"] // SIGLIP["patch_size"], IV2["img_size"] // IV2["patch_size"]),
        max(SIGLIP["image_size"] // SIGLIP["patch_size"], IV2["img_size"] // IV2["patch_size"]))
CONNECTOR = dict(vision_hidden_size=SIGLIP["hidden_size"] + IV2["d_model"],
                 text_hidden_size=LLM["hidden_size"], num_output_tokens=8, resampler_depth=2,
                 resampler_n_heads=4, resampler_head_dim=12, num_key_value_heads=2, ff_multi=2)
LN_EPS = 1e-5  # nn.LayerNorm default, inside every WeightedNorm of the connector

# The reference video: 4 s at 30 fps (120 frames) of 30 x 44 RGB, i.e. landscape frames that
# both encoders pad to a 44 x 44 square.
VIDEO_FPS = 30.0
VIDEO_FRAMES = 120
FRAME_H, FRAME_W = 30, 44
SIGLIP_MEAN, SIGLIP_STD = (0.5, 0.5, 0.5), (0.5, 0.5, 0.5)
IV2_MEAN, IV2_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


# ---------------------------------------------------------------------------------------------
# Random weights
# ---------------------------------------------------------------------------------------------
def rand_param(gen, name, shape):
    """Non-trivial init so that every block changes the result and activations stay O(1)."""
    n = lambda: torch.randn(shape, generator=gen, dtype=torch.float32)
    leaf = name.split(".")[-1]
    if leaf == "gamma":  # LayerScale: 0.5 rather than the 1e-5 of training, so blocks matter
        return 0.5 + 0.1 * n()
    if leaf == "wheight":
        return 1.0 + 0.1 * n()
    if "norm" in name and leaf == "weight":
        return 1.0 + 0.1 * n()
    if "norm" in name and leaf == "bias":
        return 0.1 * n()
    if leaf in ("bias", "in_proj_bias", "q_bias"):
        return 0.1 * n()
    if leaf in ("cls_token", "probe", "latents") or name.endswith("embed_tokens.weight"):
        return n()
    if "pos_embed" in leaf or name.endswith("position_embedding.weight"):
        return 0.5 * n()
    if len(shape) >= 2:  # Linear / Conv: unit-variance outputs for unit-variance inputs
        fan_in = int(np.prod(shape[1:]))
        scale = 2.0 if name.endswith("lm_head.weight") else 1.0
        return scale * n() / math.sqrt(fan_in)
    raise ValueError(f"no init rule for {name} {shape}")


def bf16_state(gen, shapes):
    """name -> bf16 tensor, drawn in the given (deterministic) order."""
    return {k: rand_param(gen, k, s).to(torch.bfloat16) for k, s in shapes}


def generator(offset):
    g = torch.Generator()
    g.manual_seed(SEED + offset)
    return g


# ---------------------------------------------------------------------------------------------
# Writing the checkpoint
# ---------------------------------------------------------------------------------------------
def write_json(path, obj):
    with open(path, "w") as f:
        json.dump(obj, f, indent=2, sort_keys=True)
        f.write("\n")


def read_json(path):
    with open(path) as f:
        return json.load(f)


def as_transformers_4_44(path):
    """transformers 4.57 writes `dtype` and `layer_types`; the published configs (4.44) have
    `torch_dtype` and no `layer_types`. Rewrite the file the way 4.44 would have (4.57 reads it)."""
    with open(path) as f:
        cfg = json.load(f)
    if "dtype" in cfg:
        cfg["torch_dtype"] = cfg.pop("dtype")
    cfg.pop("layer_types", None)
    with open(path, "w") as f:
        json.dump(cfg, f, indent=2, sort_keys=True)
        f.write("\n")


def write_siglip(path):
    cfg = SiglipVisionConfig(**SIGLIP)
    model = SiglipVisionModel(cfg)
    shapes = [(k, tuple(v.shape)) for k, v in model.state_dict().items()]
    state = bf16_state(generator(1), shapes)
    model = model.to(torch.bfloat16)
    model.load_state_dict(state, strict=True)
    model.save_pretrained(path, safe_serialization=True)
    as_transformers_4_44(os.path.join(path, "config.json"))
    SiglipImageProcessor(
        do_resize=True, size={"height": SIGLIP["image_size"], "width": SIGLIP["image_size"]},
        resample=PIL.Image.BICUBIC, do_rescale=True, rescale_factor=1 / 255, do_normalize=True,
        image_mean=list(SIGLIP_MEAN), image_std=list(SIGLIP_STD),
    ).save_pretrained(path)
    keys = set(load_file(os.path.join(path, "model.safetensors")).keys())
    assert all(k.startswith("vision_model.") for k in keys), "expected transformers 4.x names"


def internvideo2_shapes():
    d, hid = IV2["d_model"], IV2_MLP_HIDDEN
    t = IV2["num_frames"] // IV2["tubelet_size"]
    g = IV2["img_size"] // IV2["patch_size"]
    p = IV2["patch_size"]
    shapes = [
        ("patch_embed.proj.weight", (d, 3, IV2["tubelet_size"], p, p)),
        ("patch_embed.proj.bias", (d,)),
        ("cls_token", (1, 1, d)),
        ("pos_embed", (1, 1 + t * g * g, d)),
        ("img_pos_embed", (1, 1 + g * g, d)),
        ("clip_pos_embed", (1, 1 + t * g * g, d)),
        ("clip_img_pos_embed", (1, 1 + g * g, d)),
    ]
    for i in range(IV2["depth"]):
        b = f"blocks.{i}."
        shapes += [
            (b + "norm1.weight", (d,)),
            (b + "attn.qkv.weight", (3 * d, d)),
            (b + "attn.q_norm.weight", (d,)),
            (b + "attn.k_norm.weight", (d,)),
            (b + "attn.proj.weight", (d, d)),
            (b + "attn.proj.bias", (d,)),
            (b + "ls1.gamma", (d,)),
            (b + "norm2.weight", (d,)),
            (b + "mlp.fc1.weight", (hid, d)),
            (b + "mlp.fc1.bias", (hid,)),
            (b + "mlp.fc2.weight", (d, hid)),
            (b + "mlp.fc2.bias", (d,)),
            (b + "ls2.gamma", (d,)),
        ]
    # A few of the distillation heads the published file also holds; a loader must skip them.
    ce, te, tf = IV2["clip_embed_dim"], IV2["clip_teacher_embed_dim"], IV2["clip_teacher_final_dim"]
    shapes += [
        ("clip_projector.norm1_q.weight", (d,)),
        ("clip_projector.norm1_q.bias", (d,)),
        ("clip_projector.cross_attn.q.weight", (d, d)),
        ("clip_projector.cross_attn.q_bias", (d,)),
        ("clip_projector.cross_attn.proj.weight", (ce, d)),
        ("clip_projector.cross_attn.proj.bias", (ce,)),
        ("clip_decoder.0.head.weight", (te, d)),
        ("clip_decoder.0.head.bias", (te,)),
        ("clip_decoder.0.norm.weight", (te,)),
        ("clip_decoder.0.norm.bias", (te,)),
        ("final_clip_decoder.head.weight", (tf, ce)),
        ("final_clip_decoder.head.bias", (tf,)),
    ]
    return shapes


def write_internvideo2(path):
    os.makedirs(path, exist_ok=True)
    state = bf16_state(generator(2), internvideo2_shapes())
    save_file(state, os.path.join(path, "model.safetensors"), metadata={"format": "pt"})
    write_json(os.path.join(path, "config.json"), {
        "architectures": ["InternVideo2Model"],
        "auto_map": {"AutoConfig": "config.InternVideo2Config",
                     "AutoModel": "modeling_internvideo2.InternVideo2Model"},
        "attn_pool_num_heads": IV2["attn_pool_num_heads"],
        "clip_embed_dim": IV2["clip_embed_dim"],
        "clip_norm_type": "l2",
        "clip_return_layer": IV2["clip_return_layer"],
        "clip_student_return_interval": 1,
        "clip_teacher_embed_dim": IV2["clip_teacher_embed_dim"],
        "clip_teacher_final_dim": IV2["clip_teacher_final_dim"],
        "d_model": IV2["d_model"],
        "depth": IV2["depth"],
        "img_size": IV2["img_size"],
        "model_type": "internvideo2",
        "num_frames": IV2["num_frames"],
        "num_heads": IV2["num_heads"],
        "patch_size": IV2["patch_size"],
        "qkv_bias": False,
        "sep_image_video_pos_embed": True,
        "torch_dtype": "bfloat16",
        "transformers_version": transformers.__version__,
        "tubelet_size": IV2["tubelet_size"],
        "use_checkpoint": False,
        "checkpoint_num": 0,
        "use_flash_attn": False,
        "use_fused_mlp": False,
        "use_fused_rmsnorm": False,
    })


def connector_shapes():
    c = CONNECTOR
    d, v = c["text_hidden_size"], c["vision_hidden_size"]
    qd = c["resampler_n_heads"] * c["resampler_head_dim"]
    kvd = c["num_key_value_heads"] * c["resampler_head_dim"]
    inter = d * c["ff_multi"]
    wn = lambda p: [(p + ".norm.weight", (d,)), (p + ".norm.bias", (d,)), (p + ".wheight", (d,))]
    shapes = [("proj.0.weight", (d, v)), ("proj.0.bias", (d,)),
              ("resampler.latents", (c["num_output_tokens"], d))]
    for i in range(c["resampler_depth"]):
        b = f"resampler.layers.{i}."
        shapes += wn(b + "input_latents_norm") + wn(b + "input_context_norm")
        shapes += [(b + "self_attn.q_proj.weight", (qd, d)),
                   (b + "self_attn.k_proj.weight", (kvd, d)),
                   (b + "self_attn.v_proj.weight", (kvd, d)),
                   (b + "self_attn.o_proj.weight", (d, qd))]
        shapes += wn(b + "post_attention_layernorm")
        shapes += [(b + "mlp.gate_proj.weight", (inter, d)),
                   (b + "mlp.up_proj.weight", (inter, d)),
                   (b + "mlp.down_proj.weight", (d, inter))]
    shapes += wn("resampler.norm")
    return shapes


def connector_config():
    return {
        "architectures": ["Connector"],
        "attention_dropout": 0.0,
        "ff_multi": CONNECTOR["ff_multi"],
        "hidden_act": "silu",
        "model_type": "mm_connector",
        "num_key_value_heads": CONNECTOR["num_key_value_heads"],
        "num_output_tokens": CONNECTOR["num_output_tokens"],
        "num_patches": 24,
        "projector_type": "mlp1x_gelu",
        "resampler_depth": CONNECTOR["resampler_depth"],
        "resampler_head_dim": CONNECTOR["resampler_head_dim"],
        "resampler_n_heads": CONNECTOR["resampler_n_heads"],
        "resampler_type": "perciver",
        "rms_norm_eps": 1e-06,
        "text_hidden_size": CONNECTOR["text_hidden_size"],
        "token_input_shape": list(GRID),
        "torch_dtype": "bfloat16",
        "transformers_version": transformers.__version__,
        "vision_hidden_size": CONNECTOR["vision_hidden_size"],
    }


def write_connector(path):
    os.makedirs(path, exist_ok=True)
    state = bf16_state(generator(3), connector_shapes())
    save_file(state, os.path.join(path, "model.safetensors"), metadata={"format": "pt"})
    write_json(os.path.join(path, "config.json"), connector_config())


def llm_config(tied):
    cfg = Qwen2Config(**LLM, hidden_act="silu", tie_word_embeddings=tied, use_sliding_window=False,
                      max_window_layers=LLM["num_hidden_layers"], bos_token_id=0, eos_token_id=2,
                      attention_dropout=0.0, use_cache=True, torch_dtype="bfloat16")
    cfg.architectures = ["Qwen2ForCausalLM"]
    cfg.model_max_length = MODEL_MAX_LENGTH
    return cfg


def write_tokenizer(path):
    tok = Qwen2TokenizerFast(tokenizer_file=TOKENIZER_JSON, bos_token=None, eos_token="<|im_end|>",
                             pad_token="<|endoftext|>", unk_token=None, errors="replace",
                             add_prefix_space=False, clean_up_tokenization_spaces=False,
                             model_max_length=MODEL_MAX_LENGTH)
    tok.save_pretrained(path)
    # The fixture tokenizer itself, byte for byte (transformers re-serialises it).
    shutil.copyfile(TOKENIZER_JSON, os.path.join(path, "tokenizer.json"))


def write_llm(path, tied, max_shard_size=None):
    model = Qwen2ForCausalLM(llm_config(tied))
    shapes = [(k, tuple(v.shape)) for k, v in model.state_dict().items()]
    state = bf16_state(generator(4), shapes)  # same draws tied or not: embed_tokens comes first
    if tied:
        state["lm_head.weight"] = state["model.embed_tokens.weight"]
    model = model.to(torch.bfloat16)
    model.load_state_dict(state, strict=True)
    model.generation_config = transformers.GenerationConfig(
        bos_token_id=0, eos_token_id=[2, 0], pad_token_id=0, do_sample=True,
        repetition_penalty=REPETITION_PENALTY, temperature=0.7, top_p=0.8, top_k=20)
    kwargs = {"max_shard_size": max_shard_size} if max_shard_size else {}
    model.save_pretrained(path, safe_serialization=True, **kwargs)
    as_transformers_4_44(os.path.join(path, "config.json"))
    write_tokenizer(path)


def write_checkpoint():
    if os.path.exists(CKPT):
        shutil.rmtree(CKPT)
    os.makedirs(CKPT)
    os.makedirs(REF, exist_ok=True)
    for name in os.listdir(REF):  # everything but the hand-written README.md is regenerated
        if name != "README.md":
            p = os.path.join(REF, name)
            shutil.rmtree(p) if os.path.isdir(p) else os.remove(p)
    vt = os.path.join(CKPT, "vision_tower")
    write_siglip(os.path.join(vt, SIGLIP_DIR))
    write_internvideo2(os.path.join(vt, INTERNVIDEO2_DIR))
    write_json(os.path.join(vt, "config.json"), {
        "configs": {},
        "model_type": "hybrid_vision_tower",
        "num_vision_encoders": 2,
        "token_output_shape": list(GRID),
        "transformers_version": transformers.__version__,
        "vision_towers": [SIGLIP_DIR, INTERNVIDEO2_DIR],
    })
    write_connector(os.path.join(CKPT, "mm_connector"))
    write_llm(os.path.join(CKPT, "llm"), tied=False, max_shard_size="150KB")
    shards = sorted(f for f in os.listdir(os.path.join(CKPT, "llm")) if f.endswith(".safetensors"))
    assert shards == ["model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"], shards
    write_llm(os.path.join(REF, "llm-tied"), tied=True)
    assert "lm_head.weight" not in load_file(os.path.join(REF, "llm-tied", "model.safetensors"))

    llm_cfg = read_json(os.path.join(CKPT, "llm", "config.json"))
    llm_cfg["_name_or_path"] = "llm"
    vt_cfg = read_json(os.path.join(vt, "config.json"))
    vt_cfg["_name_or_path"] = "vision_tower"
    mm_cfg = read_json(os.path.join(CKPT, "mm_connector", "config.json"))
    mm_cfg["_name_or_path"] = "mm_connector"
    write_json(os.path.join(CKPT, "config.json"), {
        "architectures": ["ApolloForCausalLM"],
        "auto_map": {"AutoConfig": "configuration_apollo.ApolloConfig",
                     "AutoModelForCausalLM": "modeling_apollo.ApolloForCausalLM"},
        "clip_duration": CLIP_DURATION,
        "encode_batch_size": ENCODE_BATCH_SIZE,
        "hidden_size": LLM["hidden_size"],
        "image_aspect_ratio": "square",
        "interpolate_mode": "linear",
        "llm_cfg": llm_cfg,
        "mm_connector_cfg": mm_cfg,
        "mm_connector_lr": None,
        "mm_hidden_size": CONNECTOR["vision_hidden_size"],
        "mm_vision_select_feature": SELECT_FEATURE,
        "mm_vision_select_layer": SELECT_LAYER,
        "model_dtype": "torch.bfloat16",
        "model_max_length": MODEL_MAX_LENGTH,
        "model_type": "apollo",
        "num_video_frames": None,
        "resume_path": None,
        "torch_dtype": "bfloat16",
        "transformers_version": transformers.__version__,
        "use_mm_patch_token": False,
        "use_mm_start_end": False,
        "vision_resolution": -1,
        "vision_tower_cfg": vt_cfg,
        "vocab_size": LLM["vocab_size"],
    })


# ---------------------------------------------------------------------------------------------
# Frames, sampling plan, preprocessing
# ---------------------------------------------------------------------------------------------
def sample_plan(total_frames, fps, num_output_tokens, clip_duration, frames_per_clip,
                model_max_length, clip_sampling_ratio=0.65):
    """apollo-reference.md §3 (calculate_sample_indices), restated."""
    duration = total_frames / fps
    ratio = min(1.0, model_max_length * clip_sampling_ratio
                / (duration * num_output_tokens / clip_duration))
    sample_fps = frames_per_clip / clip_duration
    num_clips = math.ceil(duration / clip_duration * ratio)
    frame_step = fps / sample_fps
    partition_len = total_frames // num_clips
    clips = []
    if frame_step > 0.5:
        frame_step = max(1, int(fps / sample_fps))
        clip_len = int(frames_per_clip * frame_step)
        sample_len = min(clip_len, total_frames)
        clip_step = (total_frames - clip_len) // max(1, num_clips - 1) if total_frames > clip_len else 0
        for i in range(num_clips):
            if partition_len > clip_len:
                start = (partition_len - clip_len) // 2
                idx = np.clip(np.arange(start, start + clip_len, frame_step), 0, partition_len - 1)
                idx = idx + i * partition_len
            else:
                idx = np.arange(0, sample_len, frame_step)
                idx = np.concatenate([idx, np.full(frames_per_clip - len(idx), sample_len)]) \
                    if len(idx) < frames_per_clip else idx
                idx = np.clip(idx, 0, sample_len - 1) + i * clip_step
            clips.append([int(x) for x in idx])
    else:
        raise NotImplementedError("not needed for the fixture video")
    stamps = [(c[0] / fps, c[-1] / fps) for c in clips]
    return duration, clips, stamps


def video_prompt(duration, stamps, tokens_per_clip):
    header = (f"You are provided the following series of {num2words(len(stamps))}, {CLIP_DURATION} "
              f"second clips from a {timedelta(seconds=duration)} [H:MM:SS] video.\n")
    # The reference's timestamps are numpy floats, so round() is numpy's (x * 10, round half
    # to even, / 10): 7.45 -> 7.4 where Python's float round gives 7.5.
    r1 = lambda x: float(np.round(np.float64(x), 1))
    lines = [f"{r1(s)}-{r1(e)} seconds: " + VIDEO_TOKEN * tokens_per_clip for s, e in stamps]
    return header + ",\n".join(lines)


def chatml(message):
    return (SYSTEM + "<|im_end|>\n" + "<|im_start|>user\n" + message + "<|im_end|>\n"
            + "<|im_start|>assistant\n")


def make_video():
    """120 smooth random RGB frames (uint8, 30 x 44), deterministic."""
    rng = np.random.default_rng(SEED)
    coarse = rng.integers(0, 256, size=(VIDEO_FRAMES, 4, 6, 3)).astype(np.float32)
    frames = np.stack([cv2.resize(c, (FRAME_W, FRAME_H), interpolation=cv2.INTER_CUBIC) for c in coarse])
    frames = frames + rng.normal(0, 12, size=frames.shape)
    return np.clip(np.rint(frames), 0, 255).astype(np.uint8)


def pad_square(frame, mean):
    h, w, _ = frame.shape
    side = max(h, w)
    out = np.empty((side, side, 3), dtype=np.uint8)
    out[:] = np.array([int(m * 255) for m in mean], dtype=np.uint8)
    top, left = (side - h) // 2, (side - w) // 2
    out[top:top + h, left:left + w] = frame
    return out


def preprocess(frames):
    """Per clip: SigLIP (4, 3, 42, 42) and InternVideo2 (3, 4, 28, 28), apollo-reference.md §4."""
    proc = SiglipImageProcessor.from_pretrained(os.path.join(CKPT, "vision_tower", SIGLIP_DIR))
    sig = proc(images=[pad_square(f, SIGLIP_MEAN) for f in frames], return_tensors="pt")["pixel_values"]
    size = IV2["img_size"]
    iv = []
    for f in frames:
        sq = pad_square(f, IV2_MEAN)
        if sq.shape[0] != size:
            sq = cv2.resize(sq, (size, size), interpolation=cv2.INTER_LINEAR)
        iv.append(sq)
    iv = torch.from_numpy(np.stack(iv).astype(np.float32)).permute(3, 0, 1, 2)  # (3, N, H, W)
    iv = iv / 255
    iv = (iv - torch.tensor(IV2_MEAN, dtype=torch.float32)[:, None, None, None]) \
        / torch.tensor(IV2_STD, dtype=torch.float32)[:, None, None, None]
    n = len(frames) // FRAMES_PER_CLIP
    sig = sig.float().reshape(n, FRAMES_PER_CLIP, 3, SIGLIP["image_size"], SIGLIP["image_size"])
    iv = iv.reshape(3, n, FRAMES_PER_CLIP, size, size).permute(1, 0, 2, 3, 4).contiguous()
    return sig, iv


# ---------------------------------------------------------------------------------------------
# Reference forward passes (f32), written from apollo-modules.md
# ---------------------------------------------------------------------------------------------
def f32(state):
    return {k: v.float() for k, v in state.items()}


def rms_norm(x, weight, eps):
    x32 = x.float()
    x32 = x32 * torch.rsqrt(x32.pow(2).mean(-1, keepdim=True) + eps)
    return weight * x32.to(x.dtype)


def internvideo2_forward(w, video, select_layer):
    """(B, 3, T, H, W) -> (B, 1 + T*h*w, d) after block depth + select_layer, no final norm.
    Also returns the residual stream after the embeddings and after each block that ran."""
    b = video.shape[0]
    d, heads, depth = IV2["d_model"], IV2["num_heads"], IV2["depth"]
    assert video.shape[2] == IV2["num_frames"]
    tub, p = IV2["tubelet_size"], IV2["patch_size"]
    x = F.conv3d(video, w["patch_embed.proj.weight"], w["patch_embed.proj.bias"], stride=(tub, p, p))
    x = x.flatten(2).transpose(1, 2)  # (B, T*h*w, d): frame, then patch row, then column
    x = torch.cat([w["cls_token"].expand(b, -1, -1), x], dim=1) + w["pos_embed"]
    stream = [x]
    last = depth + select_layer if select_layer < 0 else select_layer
    hd = d // heads
    for i in range(depth):
        pre = f"blocks.{i}."
        h = rms_norm(x, w[pre + "norm1.weight"], IV2_EPS)
        qkv = h @ w[pre + "attn.qkv.weight"].T  # (B, N, 3d), no bias
        q, k, v = qkv.split(d, dim=-1)
        q = rms_norm(q, w[pre + "attn.q_norm.weight"], IV2_EPS)  # over all heads at once
        k = rms_norm(k, w[pre + "attn.k_norm.weight"], IV2_EPS)
        n = x.shape[1]
        q, k, v = (t.reshape(b, n, heads, hd).transpose(1, 2) for t in (q, k, v))
        att = torch.softmax((q * hd ** -0.5) @ k.transpose(-2, -1), dim=-1)
        o = (att @ v).transpose(1, 2).reshape(b, n, d)
        o = o @ w[pre + "attn.proj.weight"].T + w[pre + "attn.proj.bias"]
        x = x + o * w[pre + "ls1.gamma"]
        h = rms_norm(x, w[pre + "norm2.weight"], IV2_EPS)
        h = F.gelu(h @ w[pre + "mlp.fc1.weight"].T + w[pre + "mlp.fc1.bias"])  # erf GELU
        h = h @ w[pre + "mlp.fc2.weight"].T + w[pre + "mlp.fc2.bias"]
        x = x + h * w[pre + "ls2.gamma"]
        stream.append(x)
        if i == last:
            break
    return x, torch.stack(stream)


def weighted_norm(x, w, prefix):
    return F.layer_norm(x, (x.shape[-1],), w[prefix + ".norm.weight"], w[prefix + ".norm.bias"],
                        eps=LN_EPS) * w[prefix + ".wheight"]


def connector_forward(w, tokens):
    """(B, N, vision) -> projected (B, N, d) and output (B, num_output_tokens, d)."""
    c = CONNECTOR
    heads, kvh, hd = c["resampler_n_heads"], c["num_key_value_heads"], c["resampler_head_dim"]
    ctx = tokens @ w["proj.0.weight"].T + w["proj.0.bias"]
    b = ctx.shape[0]
    lat = w["resampler.latents"].unsqueeze(0).expand(b, -1, -1)
    nl = lat.shape[1]
    for i in range(c["resampler_depth"]):
        pre = f"resampler.layers.{i}."
        res = lat
        l = weighted_norm(lat, w, pre + "input_latents_norm")
        cn = weighted_norm(ctx, w, pre + "input_context_norm")
        kv = torch.cat([cn, l], dim=1)
        s = kv.shape[1]
        q = (l @ w[pre + "self_attn.q_proj.weight"].T).reshape(b, nl, heads, hd).transpose(1, 2)
        k = (kv @ w[pre + "self_attn.k_proj.weight"].T).reshape(b, s, kvh, hd).transpose(1, 2)
        v = (kv @ w[pre + "self_attn.v_proj.weight"].T).reshape(b, s, kvh, hd).transpose(1, 2)
        k = k.repeat_interleave(heads // kvh, dim=1)  # query head j uses KV head j // (heads/kvh)
        v = v.repeat_interleave(heads // kvh, dim=1)
        att = torch.softmax((q @ k.transpose(-2, -1)) / math.sqrt(hd), dim=-1, dtype=torch.float32)
        o = (att @ v).transpose(1, 2).reshape(b, nl, heads * hd) @ w[pre + "self_attn.o_proj.weight"].T
        lat = res + o
        h = weighted_norm(lat, w, pre + "post_attention_layernorm")
        h = (F.silu(h @ w[pre + "mlp.gate_proj.weight"].T) * (h @ w[pre + "mlp.up_proj.weight"].T)) \
            @ w[pre + "mlp.down_proj.weight"].T
        lat = lat + h
    return ctx, weighted_norm(lat, w, "resampler.norm")


def to_grid(features):
    """(B, T, H, W, C) -> (B, *GRID, C), trilinear with align_corners=False in f32 if needed."""
    if tuple(features.shape[1:4]) == GRID:
        return features
    x = features.permute(0, 4, 1, 2, 3).float()
    x = F.interpolate(x, size=GRID, mode="trilinear", align_corners=False).to(features.dtype)
    return x.permute(0, 2, 3, 4, 1).contiguous()


def tokenizer_mm_token(prompt, encode):
    """apollo-reference.md §6: pieces between placeholders tokenised alone, placeholders -200."""
    parts = prompt.split(VIDEO_TOKEN)
    ids = []
    for i, part in enumerate(parts):
        if part:
            ids.extend(encode(part))
        if i < len(parts) - 1:
            ids.append(PLACEHOLDER_ID)
    return ids


def merge_embeddings(llm, input_ids, video_rows):
    ids = input_ids.clone()
    ids[ids == PLACEHOLDER_ID] = 0
    emb = llm.get_input_embeddings()(ids)
    pos = (input_ids == PLACEHOLDER_ID).nonzero().flatten()
    assert len(pos) == video_rows.shape[0]
    emb[pos] = video_rows
    return emb


@torch.no_grad()
def greedy(llm, embeds, steps, use_cache, penalty=1.0):
    """Argmax decoding from inputs_embeds. With penalty != 1, transformers' repetition penalty
    over the tokens generated so far (with inputs_embeds only, generate's input_ids start empty)."""
    out_ids = []
    embed = llm.get_input_embeddings()
    past = None
    seq = embeds.unsqueeze(0)
    for _ in range(steps):
        if use_cache and past is not None:
            out = llm(input_ids=torch.tensor([[out_ids[-1]]]), past_key_values=past, use_cache=True)
        else:
            out = llm(inputs_embeds=seq, use_cache=use_cache)
        past = out.past_key_values if use_cache else None
        logits = out.logits[0, -1].clone()
        if penalty != 1.0 and out_ids:
            idx = torch.tensor(sorted(set(out_ids)))
            sel = logits[idx]
            logits[idx] = torch.where(sel < 0, sel * penalty, sel / penalty)
        nxt = int(torch.argmax(logits))
        out_ids.append(nxt)
        if not use_cache:
            seq = torch.cat([seq, embed(torch.tensor([[nxt]]))], dim=1)
    return out_ids


@torch.no_grad()
def main():
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    write_checkpoint()

    # --- inputs -------------------------------------------------------------------------------
    video = make_video()
    duration, clips, stamps = sample_plan(VIDEO_FRAMES, VIDEO_FPS, CONNECTOR["num_output_tokens"],
                                          CLIP_DURATION, FRAMES_PER_CLIP, MODEL_MAX_LENGTH)
    frames = video[[i for c in clips for i in c]]
    sig_px, iv_px = preprocess(frames)
    n_clips = len(clips)

    # --- SigLIP (transformers, from the written files) ----------------------------------------
    siglip = SiglipVisionModel.from_pretrained(os.path.join(CKPT, "vision_tower", SIGLIP_DIR),
                                               torch_dtype=torch.float32, attn_implementation="eager").eval()
    out = siglip(pixel_values=sig_px.reshape(-1, 3, SIGLIP["image_size"], SIGLIP["image_size"]),
                 output_hidden_states=True)
    sig_hidden = torch.stack(out.hidden_states)  # (layers + 1, clips*4, 9, 32)
    g = SIGLIP["image_size"] // SIGLIP["patch_size"]
    sig_feat = out.hidden_states[SELECT_LAYER].reshape(n_clips, FRAMES_PER_CLIP, g, g, SIGLIP["hidden_size"])

    # --- InternVideo2 (own reference) ---------------------------------------------------------
    w_iv = f32(load_file(os.path.join(CKPT, "vision_tower", INTERNVIDEO2_DIR, "model.safetensors")))
    iv_out, iv_stream = internvideo2_forward(w_iv, iv_px, SELECT_LAYER)
    gi = IV2["img_size"] // IV2["patch_size"]
    t_iv = IV2["num_frames"] // IV2["tubelet_size"]
    iv_feat = iv_out[:, 1:].reshape(n_clips, t_iv, gi, gi, IV2["d_model"])  # "patch": drop class token

    # --- token grid and connector -------------------------------------------------------------
    sig_grid = to_grid(sig_feat)
    iv_grid = to_grid(iv_feat)
    token_grid = torch.cat([sig_grid, iv_grid], dim=-1).flatten(1, 3)
    w_mm = f32(load_file(os.path.join(CKPT, "mm_connector", "model.safetensors")))
    projected, conn_out = connector_forward(w_mm, token_grid)
    # Minibatches of encode_batch_size clips give the same rows.
    parts = [connector_forward(w_mm, token_grid[i:i + ENCODE_BATCH_SIZE])[1]
             for i in range(0, n_clips, ENCODE_BATCH_SIZE)]
    assert torch.allclose(torch.cat(parts), conn_out, atol=1e-6)
    video_rows = conn_out.reshape(-1, conn_out.shape[-1])

    # --- prompt and ids -----------------------------------------------------------------------
    vp = video_prompt(duration, stamps, CONNECTOR["num_output_tokens"])
    prompt = chatml(vp + "\n\n" + QUESTION)
    llm_dir = os.path.join(CKPT, "llm")
    slow = AutoTokenizer.from_pretrained(llm_dir, use_fast=False)  # as the reference loads it
    fast = AutoTokenizer.from_pretrained(llm_dir, use_fast=True)
    assert type(slow).__name__ == "Qwen2Tokenizer", type(slow)
    ids_slow = tokenizer_mm_token(prompt, lambda s: slow(s).input_ids)
    ids_fast = tokenizer_mm_token(prompt, lambda s: fast(s).input_ids)
    assert ids_slow == ids_fast
    assert ids_slow.count(PLACEHOLDER_ID) == video_rows.shape[0]
    input_ids = torch.tensor(ids_slow, dtype=torch.int64)

    # --- LLM ----------------------------------------------------------------------------------
    llm = Qwen2ForCausalLM.from_pretrained(llm_dir, torch_dtype=torch.float32,
                                           attn_implementation="eager").eval()
    embeds = merge_embeddings(llm, input_ids, video_rows)
    logits = llm(inputs_embeds=embeds.unsqueeze(0)).logits[0]
    ids_cache = greedy(llm, embeds, NEW_TOKENS, use_cache=True)
    ids_nocache = greedy(llm, embeds, NEW_TOKENS, use_cache=False)
    assert ids_cache == ids_nocache, (ids_cache, ids_nocache)
    assert ids_cache[0] == int(torch.argmax(logits[-1]))
    gen = llm.generate(inputs_embeds=embeds.unsqueeze(0), max_new_tokens=NEW_TOKENS, do_sample=False,
                       repetition_penalty=1.0, temperature=None, top_p=None, top_k=None,
                       eos_token_id=None, pad_token_id=0)[0].tolist()
    assert gen == ids_cache, (gen, ids_cache)
    penalty = llm.generation_config.repetition_penalty
    ids_pen = greedy(llm, embeds, NEW_TOKENS, use_cache=True, penalty=penalty)
    gen_pen = llm.generate(inputs_embeds=embeds.unsqueeze(0), max_new_tokens=NEW_TOKENS, do_sample=False,
                           temperature=None, top_p=None, top_k=None, eos_token_id=None,
                           pad_token_id=0)[0].tolist()
    assert gen_pen == ids_pen, (gen_pen, ids_pen)
    eos = llm.generation_config.eos_token_id
    assert not set(ids_cache + ids_pen) & set(eos), "an eos id was generated: change SEED"

    tied = Qwen2ForCausalLM.from_pretrained(os.path.join(REF, "llm-tied"), torch_dtype=torch.float32,
                                            attn_implementation="eager").eval()
    assert torch.equal(tied.lm_head.weight, tied.model.embed_tokens.weight)
    tied_logits = tied(inputs_embeds=embeds.unsqueeze(0)).logits[0]
    tied_ids = greedy(tied, embeds, NEW_TOKENS, use_cache=True)
    assert tied_ids == greedy(tied, embeds, NEW_TOKENS, use_cache=False)
    tied_ids_pen = greedy(tied, embeds, NEW_TOKENS, use_cache=True, penalty=penalty)
    tied_gen_pen = tied.generate(inputs_embeds=embeds.unsqueeze(0), max_new_tokens=NEW_TOKENS,
                                 do_sample=False, temperature=None, top_p=None, top_k=None,
                                 eos_token_id=None, pad_token_id=0)[0].tolist()
    assert tied_gen_pen == tied_ids_pen, (tied_gen_pen, tied_ids_pen)
    assert not set(tied_ids + tied_ids_pen) & set(eos), "an eos id was generated: change SEED"
    assert tied_ids_pen != tied_ids, "the repetition penalty should change the tied greedy ids"
    text = slow.decode(ids_cache, skip_special_tokens=True)
    assert text == fast.decode(ids_cache, skip_special_tokens=True)

    # --- write the reference ------------------------------------------------------------------
    tensors = {
        "video_frames": torch.from_numpy(frames.copy()),
        "siglip_pixel_values": sig_px,
        "internvideo2_pixel_values": iv_px,
        "siglip_hidden_states": sig_hidden,
        "siglip_features": sig_feat,
        "internvideo2_stream": iv_stream,
        "internvideo2_features": iv_feat,
        "internvideo2_features_grid": iv_grid,
        "token_grid": token_grid,
        "connector_projected": projected,
        "connector_output": conn_out,
        "input_ids": input_ids,
        "inputs_embeds": embeds,
        "llm_logits": logits,
        "greedy_ids": torch.tensor(ids_cache, dtype=torch.int64),
        "greedy_ids_repetition_penalty": torch.tensor(ids_pen, dtype=torch.int64),
        "llm_tied_logits": tied_logits,
        "llm_tied_greedy_ids": torch.tensor(tied_ids, dtype=torch.int64),
        "llm_tied_greedy_ids_repetition_penalty": torch.tensor(tied_ids_pen, dtype=torch.int64),
    }
    tensors = {k: v.contiguous() for k, v in tensors.items()}
    save_file(tensors, os.path.join(REF, "reference.safetensors"), metadata={"format": "pt"})
    write_json(os.path.join(REF, "reference.json"), {
        "source": "tests/reference/make_model_fixtures.py",
        "versions": {"python": sys.version.split()[0], "torch": torch.__version__,
                     "transformers": transformers.__version__, "tokenizers": tokenizers.__version__,
                     "safetensors": safetensors.__version__, "numpy": np.__version__,
                     "pillow": PIL.__version__, "opencv": cv2.__version__},
        "seed": SEED,
        "torch_threads": 1,
        "weights_dtype": "bfloat16",
        "reference_dtype": "float32",
        "video": {"fps": VIDEO_FPS, "total_frames": VIDEO_FRAMES, "height": FRAME_H, "width": FRAME_W,
                  "duration_s": duration, "clip_indices": clips,
                  "timestamps": [list(s) for s in stamps]},
        "video_prompt": vp,
        "question": QUESTION,
        "prompt": prompt,
        "input_ids": ids_slow,
        "num_placeholders": ids_slow.count(PLACEHOLDER_ID),
        "greedy_ids": ids_cache,
        "greedy_text": text,
        "greedy_ids_repetition_penalty": ids_pen,
        "repetition_penalty": penalty,
        "llm_tied_greedy_ids": tied_ids,
        "llm_tied_greedy_ids_repetition_penalty": tied_ids_pen,
        "llm_tied_greedy_text": slow.decode(tied_ids, skip_special_tokens=True),
        "generation": "argmax, 16 new tokens, no eos stop (none occurs); the repetition-penalty "
                      "variant is transformers' generate(inputs_embeds=..., do_sample=False) with "
                      "llm/generation_config.json's repetition_penalty, which penalises only the "
                      "generated tokens",
    })
    sizes = {os.path.relpath(os.path.join(r, f), ROOT): os.path.getsize(os.path.join(r, f))
             for base in (CKPT, REF) for r, _, fs in os.walk(base) for f in fs}
    for p in sorted(sizes):
        print(f"{sizes[p]:>9}  {p}")
    print(f"{sum(sizes.values()):>9}  total")


if __name__ == "__main__":
    main()
