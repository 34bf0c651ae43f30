"""The compiled hot loops of the model, per array module: numba on the CPU, CUDA on a GPU.

Everything else in the engine is array code that runs on either module unchanged. Three loops
need compiled code, each with one implementation per device:

    create_levels   every bar's levels, written once              levels (numba) / the array form on CuPy
    sweep_bars      the first bar that reaches each level        sweeps (numba) / cuda_kernels
    lifecycle       the log factor of every bar (closes, decay)  lifecycle (numba) / cuda_kernels
    lifecycle_bar   the same for one live bar                    lifecycle (numba) / cuda_kernels
    paint           the heatmap grid, both sides, transformed    paint (numba) / cuda_kernels
"""

from __future__ import annotations

from typing import Any, Protocol

import numpy as np

from liqdesk.core import display
from liqdesk.core.backend import Backend
from liqdesk.core.cuda_kernels import CudaKernels
from liqdesk.core.levels import NewLevels, create_levels_compiled
from liqdesk.core.lifecycle import N_STATS, Lifecycle, group_by_bar, run_lifecycle
from liqdesk.core.paint import paint_side, release_scratch
from liqdesk.core.series import LONG, SHORT
from liqdesk.core.sweeps import sweep_bars


class Kernels(Protocol):
    @property
    def xp(self) -> Any: ...

    @property
    def name(self) -> str: ...

    def create_levels(
        self, entry: Any, entry_weight: Any, long_usd: Any, short_usd: Any, factors: np.ndarray,
        tier_weight: np.ndarray, first_bar: int,
    ) -> NewLevels: ...  # fmt: skip

    def sweep_bars(self, low: Any, high: Any, created: Any, price: Any, side: Any) -> Any: ...

    def lifecycle(
        self, created: Any, deposit: Any, side: Any, sweep: Any, oi_delta: Any, decay: Any,
        deposit_total: Any, min_survival: float,
    ) -> Lifecycle: ...  # fmt: skip

    def lifecycle_bar(
        self, j: int, log_factor: Any, alive: float, oi_delta: np.ndarray, decay: np.ndarray,
        deposit_total: np.ndarray, swept: Any, created: Any, deposit: Any, side: Any, min_survival: float,
        stats: np.ndarray,
    ) -> float: ...  # fmt: skip

    def paint(
        self, levels: dict[str, Any], log_factor: Any, last: Any, lo: float, width: float, nbins: int,
        transform: str,
    ) -> tuple[Any, Any]: ...  # fmt: skip


class CpuKernels:
    """numba kernels on NumPy arrays."""

    xp = np
    name = "numpy"

    def create_levels(
        self, entry: Any, entry_weight: Any, long_usd: Any, short_usd: Any, factors: np.ndarray,
        tier_weight: np.ndarray, first_bar: int,
    ) -> NewLevels:  # fmt: skip
        return create_levels_compiled(
            entry, entry_weight, long_usd, short_usd, factors, tier_weight, first_bar
        )

    def sweep_bars(self, low: Any, high: Any, created: Any, price: Any, side: Any) -> Any:
        return sweep_bars(low, high, created, price, side)

    def lifecycle(
        self, created: Any, deposit: Any, side: Any, sweep: Any, oi_delta: Any, decay: Any,
        deposit_total: Any, min_survival: float,
    ) -> Lifecycle:  # fmt: skip
        n = len(oi_delta)
        log_factor = np.zeros(n)
        stats = np.zeros((n, N_STATS))
        ptr, swept = group_by_bar(sweep, 0, n)
        alive = run_lifecycle(
            0, n, log_factor, 0.0, oi_delta, decay, deposit_total, ptr, swept, created, deposit, side,
            min_survival, stats,
        )  # fmt: skip
        return Lifecycle(log_factor, stats, float(alive))

    def lifecycle_bar(
        self, j: int, log_factor: Any, alive: float, oi_delta: np.ndarray, decay: np.ndarray,
        deposit_total: np.ndarray, swept: Any, created: Any, deposit: Any, side: Any, min_survival: float,
        stats: np.ndarray,
    ) -> float:  # fmt: skip
        ptr = np.array([0, len(swept)], np.int64)  # one bar: the levels it swept, in level order
        return float(
            run_lifecycle(
                j, j + 1, log_factor, alive, oi_delta, decay, deposit_total, ptr, swept, created, deposit,
                side, min_survival, stats,
            )
        )  # fmt: skip

    def paint(
        self, levels: dict[str, Any], log_factor: Any, last: Any, lo: float, width: float, nbins: int,
        transform: str,
    ) -> tuple[Any, Any]:  # fmt: skip
        # Each side painted straight into the image's (P, T) layout and transformed in place: the
        # only grid-sized arrays made. The painter's scratch (8 bytes a level) is freed after each
        # picture: a few MB kept for the process's life would save well under a millisecond.
        args = (levels, log_factor, last, lo, width, nbins)
        tl = display.transform(paint_side(*args, LONG, transposed=True), transform, inplace=True)
        ts = paint_side(*args, SHORT, transposed=True)
        release_scratch()
        return tl, display.transform(ts, transform, inplace=True)


_CPU = CpuKernels()
_CUDA: dict[int, CudaKernels] = {}


def kernels_for(backend: Backend) -> Kernels:
    """The kernels of a backend; one CUDA set per CuPy module (compiled module, pinned buffers)."""
    if not backend.is_gpu:
        return _CPU
    xp = backend.xp
    k = _CUDA.get(id(xp))
    if k is None or k.xp is not xp:
        k = _CUDA[id(xp)] = CudaKernels(xp)
    return k
