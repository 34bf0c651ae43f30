#!/usr/bin/env bash
# GPU check of the engine's device path: one command, under 5 minutes, prints everything it
# measures; exit status 0 = every GPU-vs-CPU equality check passed.
#
#   bash tests/benchmarks/gpu_check.sh [gpu_check.py options, e.g. --repeat 25]
#
# Needs an NVIDIA GPU and a Python >= 3.11 with numpy, numba and CuPy. liqdesk itself is used
# from this checkout (PYTHONPATH); liqdesk.core needs only numpy and numba, so nothing else of
# liqdesk's dependencies (Qt, ccxt) has to be there. The machine has no network: whatever is
# missing is installed with pip from wheels placed in tests/benchmarks/wheels/ (cp311/cp312/...
# manylinux x86_64 wheels matching that Python):
#   numba missing  -> numba-*.whl and llvmlite-*.whl
#   cupy missing   -> cupy-cuda13x-*.whl (CUDA 13 driver; or set CUPY_WHEEL=cupy-cuda12x and
#                     place that wheel) and fastrlock-*.whl
#   numpy missing  -> numpy-*.whl
# The lent H100/H200 image already has numpy, numba and cupy-cuda13x for its python3, so by
# default nothing is installed. PYTHON=/path/to/python overrides the interpreter.
set -uo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
py="${PYTHON:-python3}"
wheels="$here/wheels"
cupy_wheel="${CUPY_WHEEL:-cupy-cuda13x}"

echo "== gpu_check.sh: $(date -u +%Y-%m-%dT%H:%M:%SZ) on $(hostname)"
if command -v nvidia-smi >/dev/null 2>&1; then
  nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv,noheader || true
else
  echo "nvidia-smi not found"
fi
"$py" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)' || {
  echo "needs Python >= 3.11 (got: $("$py" -V 2>&1)); set PYTHON=..."; exit 2; }

need=()
"$py" -c 'import numpy' 2>/dev/null || need+=(numpy)
"$py" -c 'import numba' 2>/dev/null || need+=(numba llvmlite)
case " $* " in *" --emulate "*) ;;  # CPU emulation of the kernels: no CuPy needed
  *) "$py" -c 'import cupy' 2>/dev/null || need+=("$cupy_wheel" fastrlock) ;; esac
if ((${#need[@]})); then
  echo "== installing from $wheels: ${need[*]}"
  if [ ! -d "$wheels" ]; then
    echo "missing packages and no wheels folder $wheels (see the header of this script)"; exit 2
  fi
  "$py" -m pip install --no-index --find-links "$wheels" "${need[@]}" || {
    echo "pip could not install ${need[*]} from $wheels"; exit 2; }
fi

export PYTHONPATH="$root${PYTHONPATH:+:$PYTHONPATH}"
export NUMBA_CACHE_DIR="${NUMBA_CACHE_DIR:-${TMPDIR:-/tmp}/liqdesk-numba-cache}"
cd "$root" || exit 2
# 290 s: the whole check stays under the 5-minute budget even if something hangs
timeout 290 "$py" "$here/gpu_check.py" "$@"
status=$?
[ $status -eq 124 ] && echo "gpu_check.py timed out after 290 s"
exit $status
