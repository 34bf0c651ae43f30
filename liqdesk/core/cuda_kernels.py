"""The device path's compiled kernels (CUDA, compiled by NVRTC through CuPy on first use).

Only the hot loops that whole-array code cannot do well run here; everything else in the device
path is the same array code as the CPU engine, run on CuPy. Each kernel has one reference on the
CPU, and the tests (tests/core/test_device_build.py, with the kernels compiled for the CPU by
tests/core/cuda_emulator.py) and tests/benchmarks/gpu_check.py hold it to that reference:

    table_level, sweep_search   the sweep bar of every level: binary lifting over sparse tables of
                                bar lows / highs (reference: sweeps.sweep_bars)
    linrec_*, round_*,          the lifecycle's log factor, by the causal fixed-point iteration
    cumsum_carry                below (reference: lifecycle.run_lifecycle)
    paint_*                     the heatmap: ± weights per level at its first / end column (atomics),
                                a chunked prefix sum down each (side, price bin) column, column
                                scale, count-zeroing and value transform, written as (P, T) float32
                                (reference: heatmap.column_at, a column at a time)

CUDA code is compiled with --fmad=false so that a*b + c rounds like NumPy; exp/log (≤ 1–2 ulp)
and the painter's atomic sums differ from the CPU in the last bits only.

The lifecycle on the device
---------------------------
The close/decay recurrence (lifecycle.py) is serial: the close factor of bar j needs the alive
notional before j, which depends on every earlier factor, and the notional swept in bar j is
Σ deposit · exp(L[j−1] − L[created]) over the levels swept then. One GPU thread walking 105k bars
and 1.7M levels takes tens of milliseconds, so the device solves the same equations as a
fixed-point iteration over the bar range, each round of which is parallel:

    given L (log factors):  swept_j = Σ_{levels swept in j} deposit · exp(L[j−1] − L[created])
                                      (one thread per bar; levels sorted by sweep bar once)
                            alive_j = g_j · (alive_{j−1} − swept_j) + deposits_j,  g_j = e^(L_j − L_{j−1})
                                      (linear recurrence: chunked scan, serial carry over chunks)
                            q_j     = log(survive_j) − decay_j from alive_{j−1}, swept_j, ΔOI_j
                                      (lifecycle.bar_step's close rule)
                            L'      = L_{t0−1} + cumsum(q)  (chunked scan)

The map is causal (L'[j] depends only on L[< j]), so iterating it reaches the serial solution after
at most (bars + 1) rounds from any start; in practice max |ΔL| ≤ 1e-12·max(1, |L|) after ~15
rounds for a week of open interest, ~60 for a whole year. Only bars from the first one where a
close can happen (open interest known and falling) take part: before it L is the plain cumulative
decay, and a volume-model series needs no round at all. Sums run in a fixed order (no atomics), so
the rounds are a deterministic map. The convergence test of round r is read after round r + 1 is
queued, so the GPU never waits for the host. If `max_rounds` pass without settling (never seen),
the recurrence is finished exactly on the host by lifecycle.run_lifecycle (`Lifecycle.fallback`).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from liqdesk.core.arrays import count_upto
from liqdesk.core.display import TRANSFORM_CODES
from liqdesk.core.levels import NewLevels, create_levels
from liqdesk.core.lifecycle import N_STATS, Lifecycle, bar_step, group_by_bar, run_lifecycle
from liqdesk.core.sweeps import NEVER

_THREADS = 256
LIFECYCLE_TOL = 1e-12  # stop when max |ΔL| ≤ tol · max(1, max |L|) between two rounds
MAX_ROUNDS = 400


def chunk_size(n: int) -> int:
    """Chunk length of the serial-per-chunk scans: ~sqrt(n/8) balances the parallel chunk pass
    (a log and a division per step) against the serial carry pass (one multiply-add per chunk)."""
    return max(32, int(math.isqrt(max(n, 1) // 8)) + 1)


class LifecycleState:
    """Device arrays of one lifecycle solve, shared by the round kernels."""

    def __init__(self, **kw: Any) -> None:
        self.t0: int = kw["t0"]
        self.ptr, self.c_sel, self.d_sel = kw["ptr"], kw["c_sel"], kw["d_sel"]
        self.log_factor, self.q = kw["log_factor"], kw["q"]
        self.dep_span, self.d_span, self.lam = kw["dep_span"], kw["d_span"], kw["lam"]
        self.alive0, self.base = kw["alive0"], kw["base"]
        self.min_survival: float = kw["min_survival"]
        self.chunk: int = kw["chunk"]
        self.scratch: dict[str, Any] = {}


_CUDA_SOURCE = r"""
#define NEVER 2147483647LL

extern "C" {

__device__ __forceinline__ double min_nan(double a, double b) {
    if (a != a || b != b) return a + b;  /* NaN propagates, like numpy.minimum */
    return a < b ? a : b;
}
__device__ __forceinline__ double max_nan(double a, double b) {
    if (a != a || b != b) return a + b;
    return a > b ? a : b;
}
__device__ __forceinline__ double max0(double a) {  /* numpy.maximum(a, 0.0) */
    return (a > 0.0 || a != a) ? a : 0.0;
}

/* ---------------------------------------------------------------- sweeps */
__global__ void table_level(const double* lo_prev, const double* hi_prev, double* lo_out,
                            double* hi_out, long long n, long long half) {
    long long i = (long long)blockDim.x * blockIdx.x + threadIdx.x;
    if (i >= n) return;
    if (i + half < n) {
        lo_out[i] = min_nan(lo_prev[i], lo_prev[i + half]);
        hi_out[i] = max_nan(hi_prev[i], hi_prev[i + half]);
    } else {
        lo_out[i] = lo_prev[i];
        hi_out[i] = hi_prev[i];
    }
}

/* First bar j >= created + 1 with low[j] <= price (long) or high[j] >= price (short); NEVER if
   none. Binary lifting: from the largest block down, jump over every block of 2^s bars whose
   minimum low (maximum high) cannot reach the price. */
__global__ void sweep_search(const double* lo_t, const double* hi_t, int depth, long long n,
                             const long long* created, const double* price,
                             const signed char* side, long long m, long long* out) {
    long long i = (long long)blockDim.x * blockIdx.x + threadIdx.x;
    if (i >= m) return;
    const bool is_long = side[i] > 0;
    const double* t = is_long ? lo_t : hi_t;
    const double thr = price[i];
    long long pos = created[i] + 1;
    for (int s = depth - 1; s >= 0; --s) {
        long long step = 1LL << s;
        if (pos + step <= n) {
            double b = t[(long long)s * n + pos];
            bool clean = is_long ? (b > thr) : (b < thr);
            if (clean) pos += step;
        }
    }
    out[i] = pos >= n ? NEVER : pos;
}

/* ---------------------------------------------------------------- linear recurrence */
__global__ void linrec_local(const double* g, const double* h, long long n, long long b,
                             double* x, double* p, double* x_end, double* p_end) {
    long long k = (long long)blockDim.x * blockIdx.x + threadIdx.x;
    long long j0 = k * b;
    if (j0 >= n) return;
    long long j1 = j0 + b < n ? j0 + b : n;
    double xv = 0.0, pv = 1.0;
    for (long long j = j0; j < j1; ++j) {
        xv = g[j] * xv + h[j];
        pv = pv * g[j];
        x[j] = xv;
        p[j] = pv;
    }
    x_end[k] = xv;
    p_end[k] = pv;
}

__global__ void linrec_carry(const double* x_end, const double* p_end, long long nch,
                             const double* x0, double* x_in) {
    if (blockIdx.x != 0 || threadIdx.x != 0) return;
    double c = x0[0];
    for (long long k = 0; k < nch; ++k) {
        x_in[k] = c;
        c = p_end[k] * c + x_end[k];
    }
}

__global__ void linrec_apply(double* x, const double* p, const double* x_in, long long n, long long b) {
    long long i = (long long)blockDim.x * blockIdx.x + threadIdx.x;
    if (i >= n) return;
    x[i] = x[i] + p[i] * x_in[i / b];
}

/* ---------------------------------------------------------------- lifecycle round */
__global__ void round_swept(const long long* ptr, const long long* created, const double* dep,
                            const double* log_factor, const double* q, const double* dep_total,
                            long long t0, long long nt, double* swept, double* g, double* h) {
    long long r = (long long)blockDim.x * blockIdx.x + threadIdx.x;
    if (r >= nt) return;
    long long t = t0 + r;
    double prev = t > 0 ? log_factor[t - 1] : 0.0;
    double acc = 0.0;
    for (long long i = ptr[r]; i < ptr[r + 1]; ++i) {
        double v = dep[i] * exp(prev - log_factor[created[i]]);
        acc = acc + v;
    }
    double gv = exp(q[r]);
    swept[r] = acc;
    g[r] = gv;
    h[r] = dep_total[r] - gv * acc;
}

/* Per chunk: alive after each bar (local scan + carry), the close rule, local sums of q. */
__global__ void round_close(const double* x, const double* p, const double* x_in,
                            const double* swept, const double* oi_delta, const double* decay,
                            double min_survival, long long nt, long long b, double* q,
                            double* lloc, double* q_end) {
    long long k = (long long)blockDim.x * blockIdx.x + threadIdx.x;
    long long j0 = k * b;
    if (j0 >= nt) return;
    long long j1 = j0 + b < nt ? j0 + b : nt;
    double carry = x_in[k];
    double prev = carry;
    double acc = 0.0;
    for (long long j = j0; j < j1; ++j) {
        double a = x[j] + p[j] * carry;
        double sw = swept[j];
        double ap = max0(prev - sw);
        double d = oi_delta[j];
        double want = -d - sw;
        double s = 1.0;
        if (d == d && d < 0.0 && ap > 0.0 && want > 0.0) {
            double rr = 1.0 - want / ap;
            s = rr >= min_survival ? rr : min_survival;
        }
        double qv = log(s) - decay[j];
        acc = acc + qv;
        q[j] = qv;
        lloc[j] = acc;
        prev = a;
    }
    q_end[k] = acc;
}

/* Serial over chunks: log factor entering each chunk; resets the round's statistics. */
__global__ void cumsum_carry(const double* q_end, long long nch, const double* base, double* off,
                             unsigned long long* stat) {
    if (blockIdx.x != 0 || threadIdx.x != 0) return;
    double c = base[0];
    for (long long k = 0; k < nch; ++k) {
        off[k] = c;
        c = c + q_end[k];
    }
    stat[0] = 0ULL;
    stat[1] = 0ULL;
}

/* Final log factor of the round, max |change| and max |L| (non-negative doubles order like their
   bit patterns, so an integer atomicMax works). */
__global__ void round_apply(const double* lloc, const double* off, double* log_factor_span,
                            long long nt, long long b, unsigned long long* stat) {
    long long i = (long long)blockDim.x * blockIdx.x + threadIdx.x;
    if (i >= nt) return;
    double v = off[i / b] + lloc[i];
    double change = fabs(v - log_factor_span[i]);
    log_factor_span[i] = v;
    if (change != change) change = __longlong_as_double(0x7ff0000000000000LL);  /* NaN → inf */
    atomicMax(stat, (unsigned long long)__double_as_longlong(change));
    atomicMax(stat + 1, (unsigned long long)__double_as_longlong(fabs(v)));
}

/* ---------------------------------------------------------------- grid (the steps of paint._paint_levels) */
__device__ __forceinline__ long long lower_bound(const long long* a, long long n, long long v) {
    long long lo = 0, hi = n;
    while (lo < hi) {
        long long mid = (lo + hi) >> 1;
        if (a[mid] < v) lo = mid + 1; else hi = mid;
    }
    return lo;
}

/* val/cnt: (2, t + 1, nbins). Each level adds its weight at its first column and removes it at
   the column where it is swept. */
__global__ void paint_scatter(const long long* created, const long long* sweep, const double* price,
                              const double* dep, const signed char* side, long long m,
                              const double* log_factor, const long long* last, long long t, double lo,
                              double width, long long nbins, double* val, int* cnt) {
    long long i = (long long)blockDim.x * blockIdx.x + threadIdx.x;
    if (i >= m) return;
    long long c = created[i];
    if (c > last[t - 1] || sweep[i] <= last[0]) return;
    double fb = floor((price[i] - lo) / width);
    if (!(fb >= 0.0) || fb >= (double)nbins) return;
    long long b = (long long)fb;
    long long a0 = lower_bound(last, t, c);
    long long a1 = lower_bound(last, t, sweep[i]);
    if (a0 >= a1) return;
    double ref = log_factor[last[0]];
    double e = ref - log_factor[c];
    double w = dep[i] * exp(e < 700.0 ? e : 700.0);
    long long s = side[i] > 0 ? 0 : 1;
    long long plane = s * (t + 1) * nbins;
    atomicAdd(val + plane + a0 * nbins + b, w);
    atomicAdd(val + plane + a1 * nbins + b, -w);
    atomicAdd(cnt + plane + a0 * nbins + b, 1);
    atomicAdd(cnt + plane + a1 * nbins + b, -1);
}

/* Prefix sums down the time axis, chunk-local: thread (side, chunk, bin). */
__global__ void paint_local(double* val, int* cnt, long long t, long long nbins, long long cb,
                            long long nch, double* end_v, long long* end_c) {
    long long idx = (long long)blockDim.x * blockIdx.x + threadIdx.x;
    if (idx >= 2 * nch * nbins) return;
    long long b = idx % nbins;
    long long ch = (idx / nbins) % nch;
    long long s = idx / (nbins * nch);
    long long k0 = ch * cb, k1 = k0 + cb < t ? k0 + cb : t;
    long long plane = s * (t + 1) * nbins;
    double run = 0.0;
    long long run_n = 0;
    for (long long k = k0; k < k1; ++k) {
        long long at = plane + k * nbins + b;
        run = run + val[at];
        run_n += cnt[at];
        val[at] = run;
        cnt[at] = (int)run_n;
    }
    end_v[idx] = run;
    end_c[idx] = run_n;
}

/* Serial over chunks per (side, bin): what enters each chunk. */
__global__ void paint_carry(const double* end_v, const long long* end_c, long long nbins, long long nch,
                            double* in_v, long long* in_c) {
    long long idx = (long long)blockDim.x * blockIdx.x + threadIdx.x;
    if (idx >= 2 * nbins) return;
    long long b = idx % nbins, s = idx / nbins;
    double run = 0.0;
    long long run_n = 0;
    for (long long ch = 0; ch < nch; ++ch) {
        long long at = (s * nch + ch) * nbins + b;
        in_v[at] = run;
        in_c[at] = run_n;
        run = run + end_v[at];
        run_n += end_c[at];
    }
}

/* Cell value = (carry + local) × column scale where the count is positive and the sum > 0, else 0;
   then the value transform (display.transform) in float32, written to out[s][b][k] (P, T). */
__global__ void paint_finish(const double* val, const int* cnt, const double* in_v, const long long* in_c,
                             const double* scale, long long t, long long nbins, long long cb,
                             long long nch, int transform, float* out_long, float* out_short) {
    long long idx = (long long)blockDim.x * blockIdx.x + threadIdx.x;
    if (idx >= 2 * t * nbins) return;
    long long b = idx % nbins;
    long long k = (idx / nbins) % t;
    long long s = idx / (nbins * t);
    long long ch = k / cb;
    long long at = s * (t + 1) * nbins + k * nbins + b;
    long long cin = (s * nch + ch) * nbins + b;
    double run = in_v[cin] + val[at];
    long long run_n = in_c[cin] + (long long)cnt[at];
    float v = (run_n > 0 && run > 0.0) ? (float)(run * scale[k]) : 0.0f;
    if (!(v > 0.0f)) v = 0.0f;
    if (transform == 1) v = sqrtf(v);
    else if (transform == 2) v = log1pf(v / 1000.0f);
    float* out = s == 0 ? out_long : out_short;
    out[b * t + k] = v;
}

}  /* extern "C" */
"""


class CudaKernels:
    """The kernels and their launches. Takes the cupy module; never imports it."""

    name = "cupy"

    def __init__(self, cp: Any) -> None:
        self.xp = cp
        self._module: Any = None
        self._pinned: list[np.ndarray] = []

    def _k(self, name: str) -> Any:
        if self._module is None:
            # --fmad=false: a*b + c rounds twice, like NumPy, so the results compare (nearly) exactly.
            self._module = self.xp.RawModule(code=_CUDA_SOURCE, options=("--fmad=false",))
        return self._module.get_function(name)

    @staticmethod
    def _grid(n: int) -> tuple[int]:
        return (max(1, -(-n // _THREADS)),)

    def _launch(self, name: str, n: int, args: tuple[Any, ...]) -> None:
        self._k(name)(self._grid(n), (_THREADS,), args)

    # ---------------------------------------------------------------- sweeps

    def tables(self, low: Any, high: Any) -> tuple[Any, Any, int]:
        """Sparse tables t[s, i] = min low (max high) over bars i .. i + 2^s − 1 (clipped at the end)."""
        cp = self.xp
        n = int(low.shape[0])
        depth = max(1, int(np.ceil(np.log2(max(n, 1) + 1))))
        lo_t = cp.empty((depth, n), cp.float64)
        hi_t = cp.empty((depth, n), cp.float64)
        lo_t[0] = low
        hi_t[0] = high
        for s in range(1, depth):
            self._launch(
                "table_level",
                n,
                (lo_t[s - 1], hi_t[s - 1], lo_t[s], hi_t[s], np.int64(n), np.int64(1 << (s - 1))),
            )
        return lo_t, hi_t, depth

    def create_levels(
        self, entry: Any, entry_weight: Any, long_usd: Any, short_usd: Any, factors: np.ndarray,
        tier_weight: np.ndarray, first_bar: int,
    ) -> NewLevels:  # fmt: skip
        """levels.create_levels as array code on the device (no kernel of its own: it is elementwise)."""
        return create_levels(
            entry, entry_weight, long_usd, short_usd, factors, tier_weight, first_bar, self.xp
        )

    def sweep_bars(self, low: Any, high: Any, created: Any, price: Any, side: Any) -> Any:
        """sweeps.sweep_bars on the device."""
        cp = self.xp
        m = int(created.shape[0])
        out = cp.full(m, NEVER, cp.int64)
        if m == 0:
            return out
        lo_t, hi_t, depth = self.tables(
            cp.ascontiguousarray(low, cp.float64), cp.ascontiguousarray(high, cp.float64)
        )
        self._launch(
            "sweep_search", m,
            (lo_t, hi_t, np.int32(depth), np.int64(low.shape[0]), cp.ascontiguousarray(created, cp.int64),
             cp.ascontiguousarray(price, cp.float64), cp.ascontiguousarray(side, cp.int8), np.int64(m), out),
        )  # fmt: skip
        return out

    # ---------------------------------------------------------------- linear recurrence

    def linrec(self, g: Any, h: Any, x0: Any, chunk: int | None = None) -> Any:
        """x_j = g_j · x_{j−1} + h_j with x_{−1} = x0, as a chunked scan."""
        cp = self.xp
        n = int(g.shape[0])
        if n == 0:
            return cp.zeros(0)
        b = chunk or chunk_size(n)
        nch = -(-n // b)
        g = cp.ascontiguousarray(g, cp.float64)
        h = cp.ascontiguousarray(h, cp.float64)
        x0 = cp.asarray(x0, cp.float64).reshape(1)
        x, p = cp.empty(n), cp.empty(n)
        x_end, p_end, x_in = cp.empty(nch), cp.empty(nch), cp.empty(nch)
        self._launch("linrec_local", nch, (g, h, np.int64(n), np.int64(b), x, p, x_end, p_end))
        self._k("linrec_carry")((1,), (1,), (x_end, p_end, np.int64(nch), x0, x_in))
        self._launch("linrec_apply", n, (x, p, x_in, np.int64(n), np.int64(b)))
        return x

    # ---------------------------------------------------------------- lifecycle

    def lifecycle(
        self,
        created: Any,
        deposit: Any,
        side: Any,
        sweep: Any,
        oi_delta: Any,
        decay: Any,
        deposit_total: Any,
        min_survival: float,
        *,
        tol: float = LIFECYCLE_TOL,
        max_rounds: int = MAX_ROUNDS,
    ) -> Lifecycle:
        """The log factor of every bar (lifecycle.run_lifecycle's), by the fixed-point iteration.
        Per-bar statistics are not computed here (NaN), except by the host fallback."""
        xp = self.xp
        n = int(oi_delta.shape[0])
        nan_stats = np.full((n, N_STATS), np.nan)
        log_factor = self.linrec(xp.ones(n), -decay, 0.0)  # no closes: L = −cumsum(decay)
        closable = (oi_delta == oi_delta) & (oi_delta < 0.0)
        if n == 0 or not bool(closable.any()):
            return Lifecycle(
                log_factor, nan_stats, self._alive_after(n - 1, created, deposit, sweep, log_factor)
            )
        t0 = int(xp.argmax(closable))  # ≥ 1: bar 0 never has an open-interest change
        # alive notional at the end of bar t0 − 1, straight from the levels (L is exact before t0)
        alive0 = self._alive_after(t0 - 1, created, deposit, sweep, log_factor)
        # levels swept in [t0, n), sorted by sweep bar (ties in level order) → CSR rows per bar
        sel = xp.nonzero((sweep >= t0) & (sweep < n))[0]
        sel = sel[xp.argsort(sweep[sel] * (int(sweep.shape[0]) + 1) + sel)]  # unique keys: order is total
        ptr = xp.ascontiguousarray(xp.searchsorted(sweep[sel], xp.arange(t0, n + 1), "left"), xp.int64)
        st = LifecycleState(
            t0=t0, ptr=ptr, c_sel=xp.ascontiguousarray(created[sel]), d_sel=xp.ascontiguousarray(deposit[sel]),
            log_factor=log_factor, q=xp.ascontiguousarray(-decay[t0:]), dep_span=deposit_total[t0:],
            d_span=oi_delta[t0:], lam=decay[t0:], alive0=alive0, base=log_factor[t0 - 1 : t0].copy(),
            min_survival=min_survival, chunk=chunk_size(n - t0),
        )  # fmt: skip
        # The statistics of round r are read after round r + 1 is queued (the device never waits on
        # the host); stopping one round late only moves L closer to the fixed point.
        pending = None
        change = 0.0
        for r in range(1, max_rounds + 1):
            handle = self.lifecycle_round(st)
            if pending is not None:
                change, scale = self.read_stat(pending)
                if change <= tol * max(1.0, scale):
                    alive = self._alive_after(n - 1, created, deposit, sweep, st.log_factor)
                    return Lifecycle(st.log_factor, nan_stats, alive, rounds=r, first_bar=t0, change=change)
            pending = handle
        # not settled (never seen): finish exactly with the CPU engine's serial kernel
        host = _lifecycle_on_host(
            xp, created, deposit, side, sweep, oi_delta, decay, deposit_total, min_survival
        )
        return Lifecycle(
            xp.asarray(host.log_factor), host.stats, host.alive, rounds=max_rounds, first_bar=t0, change=change,
            fallback=True,
        )  # fmt: skip

    def _alive_after(self, bar: int, created: Any, deposit: Any, sweep: Any, log_factor: Any) -> float:
        if bar < 0:
            return 0.0
        xp = self.xp
        upto = count_upto(xp, created, bar, "right")
        c = created[:upto]
        v = xp.where(sweep[:upto] > bar, deposit[:upto] * xp.exp(log_factor[bar] - log_factor[c]), 0.0)
        return float(v.sum())

    def lifecycle_round(self, st: LifecycleState) -> Any:
        """One fixed-point round: updates st.log_factor[t0:] and st.q; returns a handle for read_stat."""
        cp = self.xp
        nt = int(st.q.shape[0])
        b = st.chunk
        nch = -(-nt // b)
        w = st.scratch
        if not w:  # allocated once per solve
            for name in ("swept", "g", "h", "x", "p", "q", "lloc"):
                w[name] = cp.empty(nt)
            for name in ("x_end", "p_end", "x_in", "q_end", "off"):
                w[name] = cp.empty(nch)
            w["stat"] = cp.zeros(2, cp.uint64)
            w["alive0"] = cp.asarray(st.alive0, cp.float64).reshape(1)
            w["base"] = cp.ascontiguousarray(cp.asarray(st.base, cp.float64).reshape(1))
            w["span"] = st.log_factor[st.t0 :]
        self._launch(
            "round_swept", nt,
            (st.ptr, st.c_sel, st.d_sel, st.log_factor, st.q, st.dep_span, np.int64(st.t0), np.int64(nt),
             w["swept"], w["g"], w["h"]),
        )  # fmt: skip
        self._launch(
            "linrec_local",
            nch,
            (w["g"], w["h"], np.int64(nt), np.int64(b), w["x"], w["p"], w["x_end"], w["p_end"]),
        )
        self._k("linrec_carry")((1,), (1,), (w["x_end"], w["p_end"], np.int64(nch), w["alive0"], w["x_in"]))
        self._launch(
            "round_close", nch,
            (w["x"], w["p"], w["x_in"], w["swept"], st.d_span, st.lam, np.float64(st.min_survival), np.int64(nt),
             np.int64(b), w["q"], w["lloc"], w["q_end"]),
        )  # fmt: skip
        self._k("cumsum_carry")((1,), (1,), (w["q_end"], np.int64(nch), w["base"], w["off"], w["stat"]))
        self._launch(
            "round_apply", nt, (w["lloc"], w["off"], w["span"], np.int64(nt), np.int64(b), w["stat"])
        )
        st.q, w["q"] = w["q"], st.q  # the new q; the old buffer is rewritten next round
        # Copy the two statistics to pinned host memory without waiting: the caller reads them
        # after queueing the next round, so the GPU never idles on the convergence test.
        host = self._pinned_buffer()
        try:
            cp.asnumpy(w["stat"], out=host, blocking=False)
        except TypeError:  # CuPy < 13: no non-blocking copies
            host[:] = cp.asnumpy(w["stat"])
        event = cp.cuda.Event()
        event.record()
        return host, event

    def _pinned_buffer(self) -> np.ndarray:
        cp = self.xp
        if len(self._pinned) < 2:
            mem = cp.cuda.alloc_pinned_memory(16)
            self._pinned.append(np.frombuffer(mem, np.uint64, 2))
        buf = self._pinned.pop(0)
        self._pinned.append(buf)  # two buffers alternate: one in flight, one being read
        return buf

    def read_stat(self, handle: Any) -> tuple[float, float]:
        host, event = handle
        event.synchronize()
        v = host.copy().view(np.float64)
        return float(v[0]), float(v[1])

    def lifecycle_bar(
        self,
        j: int,
        log_factor: Any,
        alive: float,
        oi_delta: np.ndarray,
        decay: np.ndarray,
        deposit_total: np.ndarray,
        swept: Any,
        created: Any,
        deposit: Any,
        side: Any,
        min_survival: float,
        stats: np.ndarray,
    ) -> float:
        """Bar j after its sweeps: the swept sums on the device, lifecycle.bar_step on the host.
        Writes log_factor[j] and stats[j]; returns the alive notional after the bar."""
        xp = self.xp
        prev = float(self.xp.asnumpy(log_factor[j - 1 : j])[0]) if j else 0.0
        swept_long = swept_short = 0.0
        if int(swept.shape[0]):
            v = deposit[swept] * xp.exp(prev - log_factor[created[swept]])
            s = side[swept]
            sums = xp.stack([xp.where(s > 0, v, 0.0).sum(), xp.where(s < 0, v, 0.0).sum()])
            swept_long, swept_short = (float(x) for x in xp.asnumpy(sums))
        lf, alive, closed, decayed = bar_step(
            prev, alive, swept_long, swept_short, float(oi_delta[j]), float(decay[j]), float(deposit_total[0]),
            min_survival,
        )  # fmt: skip
        log_factor[j] = lf
        stats[j] = (swept_long, swept_short, closed, decayed, alive)
        return float(alive)

    # ---------------------------------------------------------------- grid

    def paint(
        self, levels: dict[str, Any], log_factor: Any, last: Any, lo: float, width: float, nbins: int,
        transform: str,
    ) -> tuple[Any, Any]:  # fmt: skip
        """Both sides' (P, T) float32 grids with the value transform applied."""
        cp = self.xp
        t = int(last.shape[0])
        m = int(levels["created"].shape[0])
        val = cp.zeros((2, t + 1, nbins), cp.float64)
        cnt = cp.zeros((2, t + 1, nbins), cp.int32)
        last = cp.ascontiguousarray(cp.asarray(last), cp.int64)
        if m:
            self._launch(
                "paint_scatter", m,
                (levels["created"], levels["sweep"], levels["price"], levels["deposit"], levels["side"], np.int64(m),
                 log_factor, last, np.int64(t), np.float64(lo), np.float64(width), np.int64(nbins), val, cnt),
            )  # fmt: skip
        cb = max(1, math.isqrt(t))  # columns per chunk of the time-axis prefix sum
        nch = -(-t // cb)
        end_v, end_c = cp.empty(2 * nch * nbins), cp.empty(2 * nch * nbins, cp.int64)
        in_v, in_c = cp.empty(2 * nch * nbins), cp.empty(2 * nch * nbins, cp.int64)
        self._launch(
            "paint_local",
            2 * nch * nbins,
            (val, cnt, np.int64(t), np.int64(nbins), np.int64(cb), np.int64(nch), end_v, end_c),
        )
        self._launch("paint_carry", 2 * nbins, (end_v, end_c, np.int64(nbins), np.int64(nch), in_v, in_c))
        scale = cp.exp(log_factor[last] - log_factor[last[0]])
        tl = cp.empty((nbins, t), cp.float32)
        ts = cp.empty((nbins, t), cp.float32)
        self._launch(
            "paint_finish", 2 * t * nbins,
            (val, cnt, in_v, in_c, scale, np.int64(t), np.int64(nbins), np.int64(cb), np.int64(nch),
             np.int32(TRANSFORM_CODES[transform]), tl, ts),
        )  # fmt: skip
        return tl, ts


def _host(xp: Any, a: Any) -> np.ndarray:
    return np.ascontiguousarray(xp.asnumpy(a))


def _lifecycle_on_host(
    xp: Any, created: Any, deposit: Any, side: Any, sweep: Any, oi_delta: Any, decay: Any, deposit_total: Any,
    min_survival: float,
) -> Lifecycle:  # fmt: skip
    n = int(oi_delta.shape[0])
    sw = _host(xp, sweep)
    ptr, levels = group_by_bar(sw, 0, n)
    log_factor = np.zeros(n)
    stats = np.zeros((n, N_STATS))
    alive = run_lifecycle(
        0, n, log_factor, 0.0, _host(xp, oi_delta), _host(xp, decay), _host(xp, deposit_total), ptr, levels,
        _host(xp, created), _host(xp, deposit), _host(xp, side), min_survival, stats,
    )  # fmt: skip
    return Lifecycle(log_factor, stats, float(alive))
