#!/usr/bin/env bash
# Build the one-folder bundle dist/liqdesk/ from packaging/liqdesk.spec, then smoke-test the built
# program: --version, and a headless snapshot from the bundled sample (cold numba cache, then warm,
# which measures the first-run JIT cost). Prints the bundle's size and what takes the room.
#
#     packaging/build.sh [extra PyInstaller options, e.g. --clean]
#
# PYTHON picks the interpreter (default .venv/bin/python); PyInstaller is pip-installed into it if
# missing. Not part of CI (.ci/run): tests/test_packaging.py checks the pieces that are quick.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
t0=$SECONDS

if ! "$PY" -c "import PyInstaller" 2>/dev/null; then
    echo "build.sh: installing PyInstaller into $("$PY" -c 'import sys; print(sys.prefix)')"
    "$PY" -m pip install -q "pyinstaller>=6.10"
fi
echo "build.sh: PyInstaller $("$PY" -m PyInstaller --version)"

"$PY" -m PyInstaller --noconfirm --log-level WARN --distpath dist --workpath build/pyinstaller "$@" \
    packaging/liqdesk.spec
build_s=$((SECONDS - t0))

bundle=dist/liqdesk
exe=$PWD/$bundle/liqdesk
[[ -x $exe ]] || { echo "build.sh: $exe was not built" >&2; exit 1; }

# Smoke test from a scratch folder with scratch user folders: nothing from this checkout or the
# developer's environment (LIQDESK_RESOURCES, a warm numba cache) may stand in for the bundle's own.
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
run() {
    (cd "$scratch" && env -u LIQDESK_RESOURCES -u NUMBA_CACHE_DIR QT_QPA_PLATFORM=offscreen \
        LIQDESK_CONFIG_DIR="$scratch/config" LIQDESK_DATA_DIR="$scratch/data" XDG_CACHE_HOME="$scratch/cache" \
        "$exe" "$@")
}
timed() {  # seconds taken by `run "$@"`, on stdout; the program's own output goes to stderr
    local start end
    start=$(date +%s.%N)
    run "$@" >&2
    end=$(date +%s.%N)
    "$PY" -c "print(f'{$end - $start:.2f}')"
}

want="liqdesk $("$PY" -c "import runpy; print(runpy.run_path('liqdesk/__init__.py')['__version__'])")"
got=$(run --version)
echo "build.sh: --version printed: $got"
[[ $got == "$want" ]] || { echo "build.sh: expected '$want'" >&2; exit 1; }

png=$scratch/snapshot.png
cold=$(timed snapshot --out "$png")
"$PY" - "$png" <<'EOF'
import struct, sys
data = open(sys.argv[1], "rb").read()
assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
w, h = struct.unpack(">II", data[16:24])
assert (w, h) == (1600, 900), f"unexpected size {w}x{h}"
# A blank 1600x900 window compresses to a few KB; a drawn chart is well over 50 KB.
assert len(data) > 50_000, f"only {len(data)} bytes: the chart was not drawn"
print(f"build.sh: snapshot OK: {w}x{h}, {len(data) // 1024} KB")
EOF
warm=$(timed snapshot --out "$png")
# A pyqtgraph colour map read from its bundled data files.
run snapshot --colormap viridis --out "$scratch/viridis.png" >/dev/null 2>&1 ||
    { echo "build.sh: snapshot --colormap viridis failed" >&2; exit 1; }
echo "build.sh: snapshot took ${cold} s with an empty numba cache, ${warm} s with a warm one"
echo "build.sh: numba cache written to: $(cd "$scratch/cache" && find . -name '*.nbi' | head -1 | cut -d/ -f2-4)"

echo "build.sh: largest parts of the bundle:"
du -sh "$bundle"/_internal/* "$bundle/liqdesk" | sort -rh | head -6 | sed 's/^/    /'
echo "build.sh: bundle $(du -sh "$bundle" | cut -f1) in $bundle; build ${build_s} s, total $((SECONDS - t0)) s"
