"""Which array module runs the density pipeline: NumPy on the CPU, or CuPy on an NVIDIA GPU.

    auto   CuPy when it imports AND a CUDA device really works (a tiny kernel is compiled and run:
           an installed CuPy with a missing driver or NVRTC only fails at first use); else NumPy,
           with the reason kept for the status bar.
    numpy  always NumPy.
    cupy   CuPy or a ConfigError that says why and what to install.

CuPy is imported lazily, by name, inside `select_backend` only: importing liqdesk.core never
touches it (the layer test forbids a static `import cupy` in core). The environment override
LIQDESK_BACKEND is read by the caller and passed in (`environ=`), because core does no I/O and
does not read the process environment itself (the app passes `os.environ`).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import ModuleType
from typing import Any

import numpy as np

from liqdesk.errors import ConfigError

BACKENDS = ("auto", "numpy", "cupy")
ENV_VAR = "LIQDESK_BACKEND"
INSTALL_HINT = (
    "install the GPU extra matching the NVIDIA driver: pip install 'liqdesk[gpu]' (CUDA 12) "
    "or 'liqdesk[gpu-cuda13]' (CUDA 13)"
)

# Compiled and run by the probe: the pipeline's own kernels go through NVRTC the same way.
_PROBE_SOURCE = r"""
extern "C" __global__ void liqdesk_probe(const double* x, double* y, int n) {
    int i = blockDim.x * blockIdx.x + threadIdx.x;
    if (i < n) y[i] = 2.0 * x[i] + 1.0;
}
"""


@dataclass(frozen=True)
class Backend:
    """The array module the pipeline runs on, and how it was chosen."""

    name: str  # "numpy" | "cupy"
    xp: ModuleType
    device: str  # human-readable, e.g. "NVIDIA H100 80GB HBM3 (CUDA 13.0, CuPy 14.2.0)"
    requested: str  # "auto" | "numpy" | "cupy"
    source: str = "default"  # where the request came from: "argument", "LIQDESK_BACKEND", "default"
    reason: str = ""  # why `auto` did not give CuPy (empty otherwise)

    @property
    def is_gpu(self) -> bool:
        return self.name == "cupy"

    def asnumpy(self, a: Any) -> np.ndarray:
        """A host NumPy array (a copy from the device for CuPy arrays)."""
        return np.asarray(self.xp.asnumpy(a)) if self.is_gpu else np.asarray(a)

    def download(self, a: Any) -> np.ndarray:
        """A C-contiguous host array; from the GPU into page-locked memory (about twice the copy
        rate of pageable memory; CuPy pools the buffers)."""
        if not self.is_gpu:
            return np.ascontiguousarray(a)
        a = self.xp.ascontiguousarray(a)
        if a.size == 0:
            return np.zeros(a.shape, a.dtype)
        mem = self.xp.cuda.alloc_pinned_memory(a.nbytes)
        out = np.frombuffer(mem, a.dtype, a.size).reshape(a.shape)
        self.xp.asnumpy(a, out=out)
        return out

    def synchronize(self) -> None:
        """Wait for queued device work (for honest timings); no-op on NumPy."""
        if self.is_gpu:
            self.xp.cuda.get_current_stream().synchronize()

    def describe(self) -> str:
        """One line for the status bar."""
        text = f"GPU: {self.device}" if self.is_gpu else f"CPU: {self.device}"
        if self.reason:
            text += f" (GPU unavailable: {self.reason})"
        return text


def numpy_backend(requested: str = "numpy", source: str = "default", reason: str = "") -> Backend:
    return Backend("numpy", np, f"NumPy {np.__version__}", requested, source, reason)


def resolve_request(requested: str | None, environ: Mapping[str, str] | None = None) -> tuple[str, str]:
    """(backend name, where it came from): the argument, else LIQDESK_BACKEND, else auto."""
    if requested is not None and requested != "":
        name, source = requested, "argument"
    elif environ is not None and environ.get(ENV_VAR, "").strip():
        name, source = environ[ENV_VAR], ENV_VAR
    else:
        name, source = "auto", "default"
    name = name.strip().lower()
    if name not in BACKENDS:
        where = f" (from {ENV_VAR})" if source == ENV_VAR else ""
        raise ConfigError(f"unknown backend {name!r}{where}; expected one of {', '.join(BACKENDS)}")
    return name, source


def select_backend(
    requested: str | None = None,
    *,
    environ: Mapping[str, str] | None = None,
    importer: Callable[[str], ModuleType] = importlib.import_module,
) -> Backend:
    """Pick the backend. `cupy` that cannot run raises ConfigError; `auto` falls back to NumPy."""
    name, source = resolve_request(requested, environ)
    if name == "numpy":
        return numpy_backend(name, source)
    cp, info = probe_cupy(importer)
    if cp is not None:
        return Backend("cupy", cp, info, name, source)
    if name == "cupy":
        via = f" (from {ENV_VAR})" if source == ENV_VAR else ""
        raise ConfigError(f"the cupy backend was requested{via} but cannot run: {info}; {INSTALL_HINT}")
    return numpy_backend(name, source, reason=info)


def probe_cupy(
    importer: Callable[[str], ModuleType] = importlib.import_module,
) -> tuple[ModuleType | None, str]:
    """(cupy, device description) when CuPy runs a kernel on a CUDA device, else (None, why not)."""
    try:
        cp = importer("cupy")
    except ImportError as exc:
        return None, f"CuPy is not installed ({_first_line(exc)})"
    except Exception as exc:  # a broken install can raise anything at import (missing libraries)
        return None, f"CuPy failed to import: {_describe(exc)}"
    try:
        count = int(cp.cuda.runtime.getDeviceCount())
    except Exception as exc:  # CUDARuntimeError (no driver / no device) and friends
        return None, f"no usable CUDA driver or device: {_describe(exc)}"
    if count < 1:
        return None, "no CUDA device found"
    try:
        x = cp.arange(4, dtype=cp.float64)
        y = cp.empty_like(x)
        kernel = cp.RawKernel(_PROBE_SOURCE, "liqdesk_probe")
        kernel((1,), (32,), (x, y, np.int32(4)))
        got = [float(v) for v in cp.asnumpy(y)]
    except Exception as exc:  # NVRTC missing, driver too old for the wheel's CUDA, out of memory …
        return None, f"CUDA device present but a test kernel failed: {_describe(exc)}"
    if got != [1.0, 3.0, 5.0, 7.0]:
        return None, f"CUDA test kernel gave wrong results {got}"
    return cp, _device_text(cp)


def _device_text(cp: ModuleType) -> str:
    try:
        dev = cp.cuda.Device()
        props = cp.cuda.runtime.getDeviceProperties(dev.id)
        name = props.get("name", b"CUDA device")
        name = name.decode() if isinstance(name, bytes) else str(name)
        mem = props.get("totalGlobalMem", 0) / 2**30
        rt = int(cp.cuda.runtime.runtimeGetVersion())
        return f"{name}, {mem:.0f} GiB (CUDA {rt // 1000}.{rt % 1000 // 10}, CuPy {cp.__version__})"
    except Exception as exc:  # the description is cosmetic: never fail selection over it
        return f"CUDA device (CuPy {getattr(cp, '__version__', '?')}; {_describe(exc)})"


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {_first_line(exc)}"
