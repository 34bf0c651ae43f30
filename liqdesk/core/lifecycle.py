"""Closes and decay: the one sequential part of the model.

Pro-rata closes scale every alive level by the same factor s_j in bar j, and half-life decay by
exp(−λ_j). So a level's notional at bar t is its deposit × exp(L[t] − L[c]) with L, the log
factor, the running sum of log(s_j) − λ_j. Only the per-bar factors need a loop, because s_j
depends on how much is alive, which depends on earlier factors:

    swept_j  = Σ over levels swept in bar j of deposit × exp(L[j−1] − L[c])
    closed_j = max(0, −ΔOI_j − swept_j)          (bars with open interest only)
    s_j      = max(min_survival, 1 − closed_j / alive_j)

`bar_step` is that rule for one bar. `run_lifecycle` walks bars with it in O(bars + levels)
(compiled): the CPU engine's full build and its one-bar live update both run it, which is why they
give identical numbers. The device path solves the same recurrence by a parallel fixed-point
iteration (cuda_kernels.py) and calls `bar_step` for its one-bar updates.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from liqdesk.core import hostmem
from liqdesk.core.jit import compiled

# Per-bar statistics columns written by the kernel.
STAT_SWEPT_LONG = 0
STAT_SWEPT_SHORT = 1
STAT_CLOSED = 2
STAT_DECAYED = 3
STAT_ALIVE = 4  # after the bar's sweeps, closes and decay, including the bar's own deposits
N_STATS = 5


@dataclass(frozen=True)
class Lifecycle:
    """The lifecycle of a full build."""

    log_factor: Any  # per bar, on the array module of the build (NumPy or CuPy)
    stats: np.ndarray  # (bars, N_STATS) on the host; NaN where the device did not compute them
    alive: float  # notional alive after the last bar
    rounds: int = 0  # device fixed-point rounds (0: the serial kernel, or nothing could close)
    first_bar: int = -1  # device: first bar where a close can happen (-1: none)
    change: float = 0.0  # device: max |ΔL| of the last round tested
    fallback: bool = False  # device: did not settle; finished by run_lifecycle on the host


@compiled
def bar_step(
    prev_log_factor: float,
    alive: float,
    swept_long: float,
    swept_short: float,
    oi_delta: float,
    decay_rate: float,
    deposit_total: float,
    min_survival: float,
) -> tuple[float, float, float, float]:  # pragma: no cover - compiled
    """One bar: (log factor after the bar, alive after it, closed, decayed).

    alive: the notional alive before the bar; swept_*: what the bar's sweeps took (at L[j−1]);
    deposit_total: what the bar opens (alive from its end on).
    """
    swept = swept_long + swept_short
    alive = max(alive - swept, 0.0)
    closed = 0.0
    survive = 1.0
    if oi_delta == oi_delta and oi_delta < 0.0 and alive > 0.0:  # oi_delta == oi_delta: not NaN
        want = -oi_delta - swept
        if want > 0.0:
            survive = max(min_survival, 1.0 - want / alive)
            closed = alive * (1.0 - survive)
            alive -= closed
    decayed = 0.0
    if decay_rate > 0.0:
        keep = math.exp(-decay_rate)
        decayed = alive * (1.0 - keep)
        alive -= decayed
    log_factor = prev_log_factor + math.log(survive) - decay_rate
    return log_factor, alive + deposit_total, closed, decayed


@compiled
def run_lifecycle(
    j0: int,
    j1: int,
    log_factor: np.ndarray,
    alive0: float,
    oi_delta: np.ndarray,
    decay_rate: np.ndarray,
    deposit_total: np.ndarray,
    swept_ptr: np.ndarray,
    swept_levels: np.ndarray,
    level_created: np.ndarray,
    level_deposit: np.ndarray,
    level_side: np.ndarray,
    min_survival: float,
    stats: np.ndarray,
) -> float:  # pragma: no cover - compiled
    """Advance bars j0..j1−1 in place; returns the alive total after bar j1−1.

    swept_ptr[j − j0] : swept_ptr[j − j0 + 1] indexes swept_levels for the levels swept in bar j;
    deposit_total[j − j0] is the notional created at the end of bar j.
    log_factor[j0 − 1] must hold the factor before j0 (read as 0 when j0 == 0).
    """
    alive = alive0
    for j in range(j0, j1):
        prev = log_factor[j - 1] if j > 0 else 0.0
        swept_long = 0.0
        swept_short = 0.0
        for k in range(swept_ptr[j - j0], swept_ptr[j - j0 + 1]):
            lv = swept_levels[k]
            v = level_deposit[lv] * math.exp(prev - log_factor[level_created[lv]])
            if level_side[lv] > 0:
                swept_long += v
            else:
                swept_short += v
        lf, alive, closed, decayed = bar_step(
            prev, alive, swept_long, swept_short, oi_delta[j], decay_rate[j], deposit_total[j - j0],
            min_survival,
        )  # fmt: skip
        log_factor[j] = lf
        stats[j, STAT_SWEPT_LONG] = swept_long
        stats[j, STAT_SWEPT_SHORT] = swept_short
        stats[j, STAT_CLOSED] = closed
        stats[j, STAT_DECAYED] = decayed
        stats[j, STAT_ALIVE] = alive
    return alive


def group_by_bar(sweep: np.ndarray, j0: int, j1: int) -> tuple[np.ndarray, np.ndarray]:
    """CSR index of the levels swept in each bar of [j0, j1), level order kept within a bar."""
    sweep = np.ascontiguousarray(sweep, np.int64)
    ptr = np.zeros(j1 - j0 + 1, np.int64)
    levels = hostmem.empty(_count_by_bar(sweep, j0, j1, ptr), np.int64)
    _fill_by_bar(sweep, j0, j1, ptr, levels)
    return ptr, levels


@compiled
def _count_by_bar(sweep: np.ndarray, j0: int, j1: int, ptr: np.ndarray) -> int:  # pragma: no cover - compiled
    """ptr[b] = where bar j0 + b's levels start (the count of levels swept in earlier bars); returns the total."""
    for i in range(sweep.shape[0]):
        s = sweep[i]
        if j0 <= s < j1:
            ptr[s - j0 + 1] += 1
    for b in range(1, ptr.shape[0]):
        ptr[b] += ptr[b - 1]
    return int(ptr[ptr.shape[0] - 1])


@compiled
def _fill_by_bar(
    sweep: np.ndarray, j0: int, j1: int, ptr: np.ndarray, levels: np.ndarray
) -> None:  # pragma: no cover - compiled
    """Each level into its bar's run, in level order; ptr[b] serves as bar b's cursor (ending at bar b + 1's
    start) and is shifted back after."""
    for i in range(sweep.shape[0]):
        s = sweep[i]
        if j0 <= s < j1:
            levels[ptr[s - j0]] = i
            ptr[s - j0] += 1
    for b in range(ptr.shape[0] - 1, 0, -1):
        ptr[b] = ptr[b - 1]
    ptr[0] = 0
