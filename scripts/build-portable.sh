#!/usr/bin/env bash
# Builds a self-contained `apollo`: ffmpeg 5.1 from Debian's source package, configured with
# only what apollo reads (native decoders of the common video codecs, their demuxers, the file
# protocol, swscale) and linked in statically, so the binary needs nothing beyond glibc,
# libstdc++/libgcc and, with --cuda, the NVIDIA driver and CUDA runtime libraries.
#
#   scripts/build-portable.sh            -> dist/apollo       (CPU)
#   scripts/build-portable.sh --cuda     -> dist/apollo-cuda  (and dist/apollo-cuda.xz)
#
# The ffmpeg in it has no encoders (it stays LGPL and small): `apollo bench` then needs its
# synthetic video's 100-second segment from a normal build (which it lengthens by stream copy)
# or `--video FILE`. AV1 is left out: ffmpeg 5.1 decodes it only through external libraries
# (dav1d, libaom).
# Built pieces are kept in .cache/portable (ffmpeg) and target/portable[-cuda] (cargo).
set -euo pipefail
cd "$(dirname "$0")/.."
cuda=false
for arg in "$@"; do
  case "$arg" in
    --cuda) cuda=true ;;
    *) echo "usage: scripts/build-portable.sh [--cuda]" >&2; exit 2 ;;
  esac
done

version=5.1.9
debian_version=7:5.1.9-0+deb12u1
root=$PWD/.cache/portable
src=$root/ffmpeg-$version

# What apollo reads. --disable-autodetect: no system library (xlib, vaapi, ...) is picked up
# but zlib (PNG images, compressed mp4 and matroska headers), which is linked statically too,
# so the archives need nothing but libc, libm and pthreads. The mp4 muxer lets `apollo bench`
# lengthen its synthetic video by stream copy (src/bench/video.rs).
decoders=h264,hevc,vp8,vp9,mpeg4,h263,flv,mpeg1video,mpeg2video,mjpeg,prores,gif,ffv1,png,rawvideo
demuxers=mov,matroska,avi,mpegts,mpegps,flv,gif,image2,yuv4mpegpipe
parsers=h264,hevc,vp8,vp9,mpeg4video,mpegvideo,mjpeg,h263,gif,png
configuration=(--enable-static --disable-shared --enable-pic
  --disable-programs --disable-doc --disable-debug --disable-autodetect --disable-network
  --disable-everything --enable-zlib --enable-decoder="$decoders" --enable-demuxer="$demuxers"
  --enable-parser="$parsers" --enable-muxer=mp4 --enable-protocol=file
  --enable-swscale --enable-swresample)
# One folder per configuration: FFMPEG_DIR changes with it, so cargo relinks apollo.
prefix=$root/ffmpeg-$(echo "$version ${configuration[*]}" | sha256sum | cut -c1-12)

need_packages() {
  local missing=() p
  for p in "$@"; do
    [ "$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null)" = "install ok installed" ] || missing+=("$p")
  done
  [ "${#missing[@]}" -eq 0 ] && return
  local sudo=""
  [ "$(id -u)" -eq 0 ] || sudo=sudo
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}"
}

# Debian's source package of the ffmpeg the normal build links (bookworm's security suite).
fetch_source() {
  [ -f "$src/configure" ] && return
  need_packages dpkg-dev nasm xz-utils
  # (grep -c, not -q: an early exit would fail the pipeline under pipefail)
  if [ "$(apt-cache showsrc ffmpeg 2>/dev/null | grep -c "^Version: $debian_version\$")" = 0 ]; then
    local sudo=""
    [ "$(id -u)" -eq 0 ] || sudo=sudo
    $sudo tee /etc/apt/sources.list.d/apollo-deb-src.sources >/dev/null <<'SOURCES'
Types: deb-src
URIs: http://deb.debian.org/debian
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb-src
URIs: http://deb.debian.org/debian-security
Suites: bookworm-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SOURCES
    $sudo apt-get update -qq
  fi
  mkdir -p "$root/download"
  (cd "$root/download" && apt-get source -qq --download-only "ffmpeg=$debian_version")
  rm -rf "$src.partial" && mkdir -p "$src.partial"
  tar -xJf "$root/download/ffmpeg_$version.orig.tar.xz" -C "$src.partial" --strip-components=1
  mv "$src.partial" "$src"
}

build_ffmpeg() {
  [ -f "$prefix/lib/libavcodec.a" ] && return
  need_packages nasm pkg-config zlib1g-dev
  rm -rf "$root/build" "$prefix" && mkdir -p "$root/build"
  (cd "$root/build" && "$src/configure" --prefix="$prefix" "${configuration[@]}" \
    >"$root/configure.log" 2>&1) || { tail -20 "$root/configure.log" >&2; exit 1; }
  make -C "$root/build" -j"$(nproc)" >"$root/make.log" 2>&1 || { tail -30 "$root/make.log" >&2; exit 1; }
  make -C "$root/build" install >>"$root/make.log" 2>&1
}

# ffmpeg-sys-next asks for each library by name (-lavcodec ...) in an order where a static
# archive would miss symbols of one named before it; a linker script of that name standing
# for the whole group resolves them in any order.
write_link_scripts() {
  local lib group=""
  for lib in avdevice avfilter avformat avcodec swresample swscale avutil; do
    group+=" $prefix/lib/lib$lib.a"
  done
  group+=" $(dpkg -L zlib1g-dev | grep '/libz\.a$')"
  for lib in avdevice avfilter avformat avcodec swresample swscale avutil; do
    echo "GROUP ($group -lm -lpthread )" >"$prefix/lib/lib$lib.so"
  done
}

fetch_source
build_ffmpeg
write_link_scripts

# ffmpeg-sys-next links the archives in FFMPEG_DIR (and makes its bindings from its headers);
# a target directory of its own keeps the normal build's ffmpeg-sys untouched.
export FFMPEG_DIR=$prefix
mkdir -p dist
if $cuda; then
  CARGO_TARGET_DIR=$PWD/target/portable-cuda bash scripts/build-cuda.sh
  out=dist/apollo-cuda
  cp target/portable-cuda/release/apollo "$out"
else
  CARGO_TARGET_DIR=$PWD/target/portable cargo build --release
  out=dist/apollo
  cp target/portable/release/apollo "$out"
fi
strip "$out"
if ldd "$out" | grep -E 'libav|libsw|libx26|libva|libdrm|libz\.' >&2; then
  echo "build-portable: $out still links the libraries above" >&2
  exit 1
fi
if $cuda; then
  xz -T0 -6 -k -f "$out"
fi
ls -l "$out"*
