#!/usr/bin/env bash
# apollo bench and benches/pytorch_baseline.py alternating on the same files, ROUNDS rounds,
# then a table of the medians per stage and their ratio (README, Speed).
#
#   benches/cpu-compare.sh DTYPE [ROUNDS] [WORK_DIR] [-- MORE APOLLO BENCH FLAGS]
#   benches/cpu-compare.sh f32 3 /tmp/apollo-cmp -- --layers 1 --video-seconds 20
#
# APOLLO (default target/release/apollo) and PYTHON (default python3) choose the programs;
# BEFORE=BINARY adds another apollo (an earlier build) to each round and a column for it;
# NEW_TOKENS (default 128) is given to both.
set -euo pipefail
dtype=${1:?usage: benches/cpu-compare.sh DTYPE [ROUNDS] [WORK_DIR] [-- FLAGS]}
rounds=${2:-3}
work=${3:-/tmp/apollo-cmp}
shift $(($# < 3 ? $# : 3))
[[ ${1:-} == -- ]] && shift
apollo=${APOLLO:-target/release/apollo}
python=${PYTHON:-python3}
tokens=${NEW_TOKENS:-128}
runs=$work/runs-$dtype
mkdir -p "$runs"
rm -f "$runs"/*.json
bench() {
    "$1" bench --device cpu --dtype "$dtype" --work-dir "$work" --new-tokens "$tokens" "${@:2}"
}
for r in $(seq "$rounds"); do
    if [[ -n ${BEFORE:-} ]]; then bench "$BEFORE" "$@" > "$runs/before-$r.json"; fi
    bench "$apollo" "$@" > "$runs/apollo-$r.json"
    "$python" benches/pytorch_baseline.py --work-dir "$work" --device cpu --dtype "$dtype" \
        --new-tokens "$tokens" > "$runs/pytorch-$r.json"
done
"$python" - "$runs" <<'PY'
import glob, json, statistics, sys
runs = sys.argv[1]
load = lambda who: [json.load(open(p)) for p in sorted(glob.glob(f"{runs}/{who}-*.json"))]
a, p, b = load("apollo"), load("pytorch"), load("before")
rows = [("decode + preprocess, frames/s", "decode_preprocess_frames_per_s", True),
        ("SigLIP, frames/s", "siglip_frames_per_s", True),
        ("InternVideo2, frames/s", "internvideo2_frames_per_s", True),
        ("connector, clips/s", "connector_clips_per_s", True),
        ("prefill, tokens/s", "prefill_tokens_per_s", True),
        ("decode, tokens/s", "decode_tokens_per_s", True),
        ("time to first token, s", "time_to_first_token_s", False),
        ("peak host memory, MiB", "peak_host_memory_mib", None)]
med = lambda rs, key: statistics.median(r[key] for r in rs if r.get(key) is not None)
print(f"{len(a)} rounds, medians; PyTorch {p[0]['versions']}, decoder {p[0]['decoder']}")
head = "| stage |" + (" before | ratio |" if b else "") + " apollo | PyTorch | ratio |"
print(head)
print("|" + "---|" * (head.count("|") - 1))
ratio = lambda x, y, higher: "" if higher is None else f"{(x / y if higher else y / x):.2f}x"
for name, key, higher in rows:
    if key not in a[0] or key not in p[0] and higher is not None:
        continue
    x = med(a, key)
    y = med(p, key) if key in p[0] and p[0][key] is not None else None
    cells = []
    if b:
        z = med(b, key)
        cells += [f"{z:.3g}", ratio(z, y, higher) if y else ""]
    cells += [f"{x:.3g}", f"{y:.3g}" if y else "-", ratio(x, y, higher) if y else ""]
    print(f"| {name} | " + " | ".join(cells) + " |")
PY
