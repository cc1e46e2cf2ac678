#!/usr/bin/env bash
# Runs a command as if this CPU were AVX2-only: CPUID and /proc/cpuinfo lose AVX-512, AVX10, AMX and
# AVX-VNNI (bench/as_avx2_cpu.c, an LD_PRELOAD library built here with cc on first use), so TensorFlow,
# oneDNN, XNNPACK and FaceDetector's 'auto' all choose what they choose on an AVX2 + FMA CPU such as
# AMD Zen 2 / Zen 3. The silicon stays this one (clock, caches, how it runs AVX2).
# Usage: bench/as_avx2_cpu.sh COMMAND [ARG...]
#   e.g. bench/as_avx2_cpu.sh python3 bench/bench_model.py --only
# Needs Linux x86-64 with CPUID faulting ('cpuid_fault' in /proc/cpuinfo) and a C compiler; exits 3
# with one line where either is missing. The library is cached in ${XDG_CACHE_HOME:-~/.cache}/faceboxes.
usage() { sed -n '2,/^[^#]/p' "$0" | sed -e '$d' -e 's/^# \{0,1\}//'; }  # the comments above
case "${1:-}" in -h|--help) usage; exit 0 ;; "") echo "usage: $0 COMMAND [ARG...]" >&2; exit 2 ;; esac
set -euo pipefail
source_file="$(cd "$(dirname "$0")" && pwd)/as_avx2_cpu.c"
if ! grep -qw cpuid_fault /proc/cpuinfo 2>/dev/null; then
  echo "as_avx2_cpu.sh: this CPU or kernel has no CPUID faulting ('cpuid_fault' is not in /proc/cpuinfo): cannot hide AVX-512" >&2
  exit 3
fi
compiler=$(command -v cc || command -v gcc || command -v clang || true)
if [ -z "$compiler" ]; then
  echo "as_avx2_cpu.sh: no C compiler (cc, gcc or clang) to build $source_file" >&2
  exit 3
fi
cache="${XDG_CACHE_HOME:-$HOME/.cache}/faceboxes"
# Named by the source's hash: checkouts of different versions never use each other's build.
library="$cache/as_avx2_cpu-$(cksum < "$source_file" | cut -d' ' -f1).so"
if [ ! -f "$library" ]; then
  mkdir -p "$cache"
  "$compiler" -O2 -Wall -shared -fPIC -o "$library.$$" "$source_file" -ldl
  mv -f "$library.$$" "$library"
fi
export LD_PRELOAD="$library${LD_PRELOAD:+:$LD_PRELOAD}"
# glibc chose its string functions before the library loads; these tunables make it choose as on AVX2.
export GLIBC_TUNABLES="glibc.cpu.hwcaps=-AVX512F,-AVX512VL,-AVX512BW,-AVX512DQ,-AVX512CD${GLIBC_TUNABLES:+:$GLIBC_TUNABLES}"
exec "$@"
