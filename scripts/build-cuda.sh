#!/usr/bin/env bash
# Builds `apollo` with the `cuda` feature on a machine without a GPU or a CUDA install:
# CUDA 13.0 build pieces come from PyPI's NVIDIA wheels (nvcc 13.0.x emits PTX 9.0, which the
# GPU machines' driver 580 accepts), and libcuda.so.1 is a link-time stub (the driver's real
# one is used at run time). Default target: compute capability 9.0 (H100/H200); override with
# CUDA_COMPUTE_CAP. Toolkit cached in .cache/cuda13 (~1.2 GB). Output: target/cuda/release/apollo.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD/.cache/cuda13
cuda=$root/nvidia/cu13
if [ ! -x "$cuda/bin/nvcc" ]; then
  python3 -m pip install --quiet --no-deps --target "$root" \
    nvidia-cuda-nvcc==13.0.88 nvidia-nvvm==13.0.88 nvidia-cuda-crt==13.0.88 \
    nvidia-cuda-runtime==13.0.96 nvidia-cuda-cccl==13.0.85 nvidia-cublas==13.1.0.3 \
    nvidia-curand==10.4.0.35 nvidia-cuda-nvrtc==13.0.88
fi
# The wheels ship only versioned libraries; the linker wants the plain names.
for lib in libcublas libcublasLt libcudart libnvrtc; do
  [ -e "$cuda/lib/$lib.so" ] || ln -s "$lib.so.13" "$cuda/lib/$lib.so"
done
[ -e "$cuda/lib/libcurand.so" ] || ln -s libcurand.so.10 "$cuda/lib/libcurand.so"
# A stub libcuda.so.1 defining every driver entry point cuda.h declares, under both the names
# it declares and the versioned names its macros map them to (cuStreamDestroy ->
# cuStreamDestroy_v2): the library exports the versioned ones.
stubs=$cuda/lib/stubs
if [ ! -e "$stubs/libcuda.so" ] || ! grep -q cuStreamDestroy_v2 "$stubs/cuda_stub.c"; then
  mkdir -p "$stubs"
  {
    grep -ohE '\bcu[A-Z][A-Za-z0-9_]*[[:space:]]*\(' "$cuda/include/cuda.h" |
      sed -E 's/[[:space:]]*\($//'
    grep -ohE '^#define[[:space:]]+cu[A-Za-z0-9_]+[[:space:]]+cu[A-Za-z0-9_]+' "$cuda/include/cuda.h" |
      awk '{print $3}'
  } | sort -u | sed -E 's/.*/int &(void) { return 999; }/' >"$stubs/cuda_stub.c"
  gcc -shared -fPIC -Wl,-soname,libcuda.so.1 -o "$stubs/libcuda.so.1" "$stubs/cuda_stub.c"
  ln -sf libcuda.so.1 "$stubs/libcuda.so"
fi
export CUDA_HOME=$cuda CUDA_PATH=$cuda
export PATH=$cuda/bin:$PATH
export CUDA_COMPUTE_CAP=${CUDA_COMPUTE_CAP:-90}
export LIBRARY_PATH=$cuda/lib:$stubs${LIBRARY_PATH:+:$LIBRARY_PATH}
# A target directory of its own, so CPU and CUDA builds do not evict each other.
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$PWD/target/cuda}
cargo build --release --features cuda "$@"
