"""Closes and decay: the one sequential part of the model.

Pro-rata closes scale every alive level by the same factor s_j in bar j, and half-life decay by
exp(−λ_j). So a level's notional at bar t is its deposit × exp(logC[t] − logC[c]) with
logC the running sum of log(s_j) − λ_j. Only the per-bar factors need a loop, because s_j
depends on how much is alive, which depends on earlier factors:

    swept_j  = Σ over levels swept in bar j of deposit × exp(logC[j−1] − logC[c])
    closed_j = max(0, −ΔOI_j − swept_j)          (bars with open interest only)
    s_j      = max(min_survival, 1 − closed_j / alive_j)

The loop is O(bars + levels) and compiled with numba; the same kernel serves the full build and
the one-bar live update, which is why both give identical numbers.
"""

from __future__ import annotations

import math

import numba
import numpy as np

# Per-bar statistics columns written by the kernel.
STAT_SWEPT_LONG = 0
STAT_SWEPT_SHORT = 1
STAT_CLOSED = 2
STAT_DECAYED = 3
STAT_ALIVE = 4  # after the bar's sweeps, closes and decay, including the bar's own deposits
N_STATS = 5


@numba.njit(cache=True, nogil=True)
def run_lifecycle(  # pragma: no cover - compiled
    j0,
    j1,
    log_c,
    alive0,
    oi_delta,
    decay_rate,
    deposit_total,
    swept_ptr,
    swept_levels,
    level_created,
    level_deposit,
    level_side,
    min_survival,
    stats,
):
    """Advance bars j0..j1−1 in place; returns the alive total after bar j1−1.

    swept_ptr[j − j0] : swept_ptr[j − j0 + 1] indexes swept_levels for the levels swept in bar j;
    deposit_total[j − j0] is the notional created at the end of bar j.
    log_c[j0 − 1] must hold the factor before j0 (log_c[−1] is read as 0 when j0 == 0).
    """
    alive = alive0
    for j in range(j0, j1):
        prev = log_c[j - 1] if j > 0 else 0.0
        swept_long = 0.0
        swept_short = 0.0
        for k in range(swept_ptr[j - j0], swept_ptr[j - j0 + 1]):
            lv = swept_levels[k]
            v = level_deposit[lv] * math.exp(prev - log_c[level_created[lv]])
            if level_side[lv] > 0:
                swept_long += v
            else:
                swept_short += v
        swept = swept_long + swept_short
        alive = max(alive - swept, 0.0)

        closed = 0.0
        survive = 1.0
        d_oi = oi_delta[j]
        if d_oi == d_oi and d_oi < 0.0 and alive > 0.0:  # d_oi == d_oi: not NaN
            want = -d_oi - swept
            if want > 0.0:
                survive = max(min_survival, 1.0 - want / alive)
                closed = alive * (1.0 - survive)
                alive -= closed

        decayed = 0.0
        lam = decay_rate[j]
        if lam > 0.0:
            keep = math.exp(-lam)
            decayed = alive * (1.0 - keep)
            alive -= decayed

        log_c[j] = prev + math.log(survive) - lam
        alive += deposit_total[j - j0]
        stats[j, 0] = swept_long
        stats[j, 1] = swept_short
        stats[j, 2] = closed
        stats[j, 3] = decayed
        stats[j, 4] = alive
    return alive


def group_by_bar(sweep: np.ndarray, j0: int, j1: int) -> tuple[np.ndarray, np.ndarray]:
    """CSR index of the levels swept in each bar of [j0, j1), level order kept within a bar."""
    ptr = np.zeros(j1 - j0 + 1, np.int64)
    levels = np.empty(int(np.count_nonzero((sweep >= j0) & (sweep < j1))), np.int64)
    _counting_sort(np.ascontiguousarray(sweep, np.int64), j0, j1, ptr, levels)
    return ptr, levels


@numba.njit(cache=True, nogil=True)
def _counting_sort(sweep, j0, j1, ptr, levels):  # pragma: no cover - compiled
    for i in range(sweep.shape[0]):
        s = sweep[i]
        if j0 <= s < j1:
            ptr[s - j0 + 1] += 1
    for b in range(1, ptr.shape[0]):
        ptr[b] += ptr[b - 1]
    fill = ptr[:-1].copy()
    for i in range(sweep.shape[0]):
        s = sweep[i]
        if j0 <= s < j1:
            levels[fill[s - j0]] = i
            fill[s - j0] += 1
