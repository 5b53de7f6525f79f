#!/usr/bin/env python3
"""The table at the end of scripts/gpu-check.sh: exactness checks, then apollo against PyTorch
stage by stage (ratio > 1: apollo is faster, or uses less memory), and the issue's targets.
Reads the JSON files in DIR, prints the table and writes DIR/summary.json.

  python3 scripts/gpu_check_summary.py DIR
"""

import json
import os
import sys

# (key, label, higher is better)
SPEED = [
    ("decode_preprocess_frames_per_s", "decode + preprocess, frames/s", True),
    ("siglip_frames_per_s", "SigLIP, frames/s", True),
    ("internvideo2_frames_per_s", "InternVideo2, frames/s", True),
    ("connector_clips_per_s", "connector, clips/s", True),
    ("prefill_tokens_per_s", "prefill, tokens/s", True),
    ("decode_tokens_per_s", "decode, tokens/s", True),
    ("time_to_first_token_s", "time to first token, s", False),
    ("load_s", "load, s", False),
    ("peak_gpu_memory_mib", "peak GPU memory, MiB", False),
]
# 3B in bf16 reads about 6.2 GB of weights per generated token; the H200 moves 4.8 TB/s.
BANDWIDTH_BOUND_TOK_S = 4.8e12 / 6.2e9


def load(path):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def ratio(apollo, pytorch, higher_better):
    if not apollo or not pytorch:
        return None
    return apollo / pytorch if higher_better else pytorch / apollo


def main():
    out = sys.argv[1]
    summary = {"machine": load(os.path.join(out, "machine.json")), "compare": {}, "speed": {}}
    print("exactness (tested against cpu f32)")
    for name in sorted(os.listdir(out)):
        if not (name.startswith("compare-") and name.endswith(".json")):
            continue
        c = load(os.path.join(out, name))
        key = name[len("compare-"):-len(".json")]
        if c is None:
            print(f"  {key:6} no report (the run failed)")
            summary["compare"][key] = None
            continue
        stages = {s: d["relative_error"] for s, d in c["stages"].items()}
        g = c["greedy"]
        summary["compare"][key] = {"pass": c["pass"], "tolerance": c["tolerance"],
                                   "relative_errors": stages,
                                   "greedy_agreeing_prefix": g["agreeing_prefix"],
                                   "greedy_tokens": len(g["reference_ids"]),
                                   "unexplained_disagreements": g["unexplained_disagreements"]}
        worst = ", ".join(f"{s} {e:.2e}" for s, e in stages.items())
        print(f"  {key:6} {c['tested']['device']} {c['tested']['dtype']}: "
              f"{'PASS' if c['pass'] else 'FAIL'} (bound {c['tolerance']}) {worst}; "
              f"greedy ids agree for {g['agreeing_prefix']}/{len(g['reference_ids'])}, "
              f"forced disagreements {len(g['forced_disagreements'])} "
              f"({g['unexplained_disagreements']} unexplained)")

    apollo = load(os.path.join(out, "bench-apollo.json"))
    pytorch = load(os.path.join(out, "bench-pytorch.json"))
    if apollo:
        v = apollo["video"]
        print(f"\nspeed: {apollo['device']} {apollo['dtype']}, preset {apollo['model']['preset']} "
              f"layers {apollo['model']['layers']}, {v['duration_s']:.0f} s video, "
              f"{v['clips']} clips, {apollo['prompt_tokens']} prompt positions")
        print(f"  {'stage':32} {'apollo':>12} {'pytorch':>12} {'ratio':>8}")
        for key, label, higher in SPEED:
            a = apollo.get(key)
            p = pytorch.get(key) if pytorch else None
            r = ratio(a, p, higher)
            summary["speed"][key] = {"apollo": a, "pytorch": p, "ratio": r}
            fmt = lambda x: "-" if x is None else f"{x:.3g}" if x < 100 else f"{x:.0f}"
            print(f"  {label:32} {fmt(a):>12} {fmt(p):>12} {fmt(r) + 'x' if r else '-':>8}")
        if pytorch:
            print(f"  (pytorch: torch {pytorch['versions']['torch']}, transformers "
                  f"{pytorch['versions']['transformers']}, decoder {pytorch['decoder']})")
        if apollo["device"].startswith("cuda") and apollo["model"]["preset"] == "3b" \
                and apollo["model"]["layers"] == "published":
            decode = apollo["decode_tokens_per_s"]
            summary["decode_vs_bandwidth_bound"] = decode / BANDWIDTH_BOUND_TOK_S
            print(f"  decode speed / bandwidth bound ({BANDWIDTH_BOUND_TOK_S:.0f} tok/s): "
                  f"{decode / BANDWIDTH_BOUND_TOK_S:.2f}")
    with open(os.path.join(out, "summary.json"), "w") as f:
        json.dump(summary, f, indent=1)


if __name__ == "__main__":
    main()
