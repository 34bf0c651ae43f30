"""Run the device path's CUDA kernels on the CPU: a stand-in `cupy` module for tests without a GPU.

The CUDA source of liqdesk.core.cuda_kernels is compiled as C++ with g++ (CUDA built-ins
defined for one thread at a time) and every launch runs its grid serially. `fake_cupy()` is NumPy
plus the few CuPy-only names the device path uses (RawModule, asnumpy, cuda.Event, pinned memory),
so an engine on it takes its CuPy code path, kernel launches included. Launches are checked as CuPy
would pass them: arrays C-contiguous with the parameter's dtype, scalars as NumPy scalars of the
parameter's exact type (a Python int or a wrong-width scalar is a silent bug on a real GPU).

What it cannot check: real parallel races, atomics ordering, NVRTC-only syntax, device limits.
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import re
import shutil
import subprocess
import tempfile
import time
import types
from pathlib import Path
from typing import Any

import numpy as np

from liqdesk.core import cuda_kernels

_CXX = os.environ.get("LIQDESK_EMU_CXX", "g++").split()
_PRELUDE = r"""
#include <math.h>
#include <string.h>
struct dim3e { unsigned x, y, z; };
static dim3e blockDim, blockIdx, threadIdx;
#define __global__
#define __device__
#define __forceinline__ inline
static inline long long __double_as_longlong(double d) { long long r; memcpy(&r, &d, 8); return r; }
static inline double __longlong_as_double(long long v) { double r; memcpy(&r, &v, 8); return r; }
static inline double atomicAdd(double* a, double v) { double o = *a; *a = o + v; return o; }
static inline int atomicAdd(int* a, int v) { int o = *a; *a = o + v; return o; }
static inline unsigned long long atomicMax(unsigned long long* a, unsigned long long v) {
    unsigned long long o = *a; if (v > o) *a = v; return o;
}
"""

_C_TYPES: dict[str, tuple[Any, Any]] = {  # C type → (ctypes type, NumPy dtype)
    "double*": (ctypes.c_void_p, np.float64),
    "float*": (ctypes.c_void_p, np.float32),
    "long long*": (ctypes.c_void_p, np.int64),
    "unsigned long long*": (ctypes.c_void_p, np.uint64),
    "int*": (ctypes.c_void_p, np.int32),
    "signed char*": (ctypes.c_void_p, np.int8),
    "double": (ctypes.c_double, np.float64),
    "long long": (ctypes.c_longlong, np.int64),
    "int": (ctypes.c_int, np.int32),
}


def _signatures(src: str) -> dict[str, list[tuple[str, str]]]:
    out = {}
    for m in re.finditer(r"__global__\s+void\s+(\w+)\s*\(([^)]*)\)", src):
        params = []
        for p in m.group(2).split(","):
            p = " ".join(p.replace("const ", "").split())
            ctype, name = p.rsplit(" ", 1)
            if name.startswith("*"):
                ctype, name = ctype + "*", name[1:]
            params.append((ctype.replace(" *", "*"), name))
        out[m.group(1)] = params
    return out


def compiler_available() -> bool:
    return shutil.which("g++") is not None


def _build(src: str, sigs: dict[str, list[tuple[str, str]]]) -> ctypes.CDLL:
    wrappers = []
    for name, params in sigs.items():
        decl = ", ".join(f"{t} {n}" for t, n in params)
        names = ", ".join(n for _, n in params)
        wrappers.append(
            f'extern "C" void run_{name}(unsigned g_, unsigned b_{", " if decl else ""}{decl}) {{\n'
            f"  blockDim.x = b_;\n  for (unsigned emu_g = 0; emu_g < g_; ++emu_g) for (unsigned emu_t = 0; emu_t < b_; ++emu_t) {{\n"
            f"    blockIdx.x = emu_g; threadIdx.x = emu_t; {name}({names});\n  }}\n}}"
        )
    code = _PRELUDE + src + "\n" + "\n".join(wrappers)
    tag = hashlib.sha1(code.encode()).hexdigest()[:12]
    out_dir = Path(tempfile.gettempdir()) / "liqdesk_cuda_emulator"
    out_dir.mkdir(exist_ok=True)
    lib = out_dir / f"kernels_{tag}.so"
    if not lib.exists():
        cpp = out_dir / f"kernels_{tag}.cpp"
        cpp.write_text(code)
        # -ffp-contract=off: no fused multiply-add, like NVRTC with --fmad=false
        subprocess.run(
            [*_CXX, "-O1", "-ffp-contract=off", "-shared", "-fPIC", "-o", str(lib), str(cpp)],
            check=True, capture_output=True, text=True,
        )  # fmt: skip
    return ctypes.CDLL(str(lib))


class _Function:
    def __init__(self, lib: ctypes.CDLL, name: str, params: list[tuple[str, str]], log: list[str]) -> None:
        self.fn = getattr(lib, f"run_{name}")
        self.fn.restype = None
        self.fn.argtypes = [ctypes.c_uint, ctypes.c_uint] + [_C_TYPES[t][0] for t, _ in params]
        self.name, self.params, self.log = name, params, log

    def __call__(self, grid: tuple[int, ...], block: tuple[int, ...], args: tuple) -> None:
        if len(args) != len(self.params):
            raise TypeError(f"{self.name}: {len(args)} arguments for {len(self.params)} parameters")
        c_args = []
        for a, (ctype, pname) in zip(args, self.params, strict=True):
            want = np.dtype(_C_TYPES[ctype][1])
            if ctype.endswith("*"):
                if not isinstance(a, np.ndarray):
                    raise TypeError(f"{self.name}({pname}): expected an array, got {type(a).__name__}")
                if a.dtype != want or not a.flags.c_contiguous:
                    raise TypeError(f"{self.name}({pname}): needs C-contiguous {want}, got {a.dtype}")
                c_args.append(a.ctypes.data)
            else:
                if not isinstance(a, np.generic) or a.dtype != want:
                    raise TypeError(
                        f"{self.name}({pname}): needs a numpy {want} scalar, got {type(a).__name__}"
                    )
                c_args.append(a.item())
        self.log.append(self.name)
        self.fn(int(grid[0]), int(block[0]), *c_args)


class _RawModule:
    def __init__(self, code: str, options: tuple = (), **_: Any) -> None:
        if "--fmad=false" not in options:
            raise AssertionError("kernels must be compiled with --fmad=false")
        self.sigs = _signatures(code)
        self.lib = _build(code, self.sigs)
        self.log: list[str] = []

    def get_function(self, name: str) -> _Function:
        return _Function(self.lib, name, self.sigs[name], self.log)


class _Event:
    t = 0.0

    def record(self) -> None:
        self.t = time.perf_counter()

    def synchronize(self) -> None:
        pass


def _asnumpy(
    a: Any, stream: Any = None, order: str = "C", out: np.ndarray | None = None, *, blocking: bool = True
) -> np.ndarray:
    if out is not None:
        out[...] = a
        return out
    return np.array(a)


def _strict_searchsorted(a: Any, v: Any, side: str = "left", sorter: Any = None) -> Any:
    # cupy.searchsorted raises NotImplementedError for a Python scalar `v` (indexing a CuPy array
    # gives a 0-d array, which NumPy gives as a NumPy scalar: that one is fine)
    if not isinstance(a, np.ndarray) or not isinstance(v, np.ndarray | np.generic):
        raise NotImplementedError("Only int or ndarray are supported for v (CuPy)")
    return np.searchsorted(a, v, side, sorter)


def fake_cupy() -> types.ModuleType:
    """NumPy plus RawModule / asnumpy / cuda.* — enough for the engine's CuPy path."""
    mod = types.ModuleType("fake_cupy")
    for name in dir(np):
        if not name.startswith("__"):
            setattr(mod, name, getattr(np, name))
    mod.searchsorted = _strict_searchsorted
    mod.RawModule = _RawModule
    mod.RawKernel = lambda code, name, **kw: _RawModule(code, ("--fmad=false",)).get_function(name)
    mod.asnumpy = _asnumpy
    mod.__version__ = "emulated"
    runtime = types.SimpleNamespace(
        getDeviceCount=lambda: 1,
        getDeviceProperties=lambda i: {"name": b"Emulated CUDA device", "totalGlobalMem": 2**34},
        runtimeGetVersion=lambda: 13000,
    )
    cuda = types.SimpleNamespace(
        runtime=runtime,
        Device=lambda i=0: types.SimpleNamespace(id=i),
        Event=_Event,
        get_elapsed_time=lambda a, b: (b.t - a.t) * 1000.0,
        alloc_pinned_memory=lambda nbytes: bytearray(nbytes),
        get_current_stream=lambda: types.SimpleNamespace(synchronize=lambda: None),
    )
    mod.cuda = cuda
    return mod


def cuda_source() -> str:
    return cuda_kernels._CUDA_SOURCE
