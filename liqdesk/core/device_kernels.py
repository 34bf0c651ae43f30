"""The device kernels of the density pipeline, each with a CPU twin.

The pipeline (device_build.py) is written once against an array module. Where whole-array code
would cost a kernel launch per small step (binary lifting is ~17 steps × 6 ops per side; the
openings and level creation ~40 elementwise ops; the grid a few dozen ops and several host
syncs), or where a floating-point sum must run in a fixed order, it calls one of these instead:

    bar_levels        openings + entry points + the bar's levels (dense bar × side × tier × point)
    table_level       one level of the min/max sparse tables of bar lows/highs
    sweep_search      binary lifting over those tables: the sweep bar of every level
    linrec_*          x_j = g_j · x_{j−1} + h_j as a chunked scan (local pass, serial carry, apply)
    round_swept       lifecycle round, per bar: swept notional (levels sorted by sweep bar), g, h
    round_close       lifecycle round, per chunk: alive → close factor → log factor (local sums)
    cumsum_carry      lifecycle round: the log factor entering each chunk (serial over chunks)
    round_apply       lifecycle round: final log factor, max change (for the convergence test)
    paint_*           the heatmap: scatter ± weights and counts per level (atomics), a chunked
                      prefix sum down each (side, price-bin) column, column scale, count-zeroing
                      and value transform, written transposed as (P, T) float32

CPU twins: `NumpyKernels` runs the same arithmetic in the same order with NumPy (or, for the
sweep search and the grid, the engine's numba kernels that the CUDA code reproduces step by
step). It is what the NumPy backend runs, so the tests here check the twins against the engine;
tests/benchmarks/gpu_check.py checks each CUDA kernel against its twin on a GPU.

CUDA code is compiled by NVRTC (CuPy RawModule) on first use, with --fmad=false so that a*b + c
rounds like NumPy; only exp/log (≤ 1–2 ulp apart) and atomic sums in the grid differ in the last
bits. The lifecycle's sums run in a fixed order (no atomics): its iteration is a deterministic map.
"""

from __future__ import annotations

import math
from typing import Any

import numba
import numpy as np

from liqdesk.core import display
from liqdesk.core.sweeps import NEVER, block_table, sweep_bars

_THREADS = 256
TRANSFORM_CODES = {"linear": 0, "sqrt": 1, "log": 2}


def chunk_size(n: int) -> int:
    """Chunk length of the serial-per-chunk scans: ~sqrt(n/8) balances the parallel chunk pass
    (a log and a division per step) against the serial carry pass (one multiply-add per chunk)."""
    return max(32, int(math.isqrt(max(n, 1) // 8)) + 1)


def _chunks(a: np.ndarray, b: int, fill: float) -> np.ndarray:
    n = a.shape[0]
    nch = -(-n // b)
    out = np.full(nch * b, fill)
    out[:n] = a
    return out.reshape(nch, b)


# ============================================================================================ twins


class NumpyKernels:
    """CPU twins: same arithmetic, same order of operations as the CUDA kernels."""

    xp = np
    name = "numpy"

    # ---------------------------------------------------------------- sweeps

    def sweep_bars(self, low: Any, high: Any, created: Any, price: Any, side: Any) -> Any:
        # The engine's own CPU path (monotonic stack). The CUDA path is binary lifting over sparse
        # tables; both give the first bar after creation that reaches the price.
        return sweep_bars(low, high, created, price, side)

    def sweep_bars_lifting(self, low: Any, high: Any, created: Any, price: Any, side: Any) -> Any:
        """Binary-lifting twin of the CUDA path (NumPy tables + the numba search)."""
        tables = (block_table(low, minimum=True), block_table(high, minimum=False))
        return sweep_bars(low, high, created, price, side, tables=tables)

    # ---------------------------------------------------------------- linear recurrence

    @staticmethod
    def linrec_local(g: np.ndarray, h: np.ndarray, b: int) -> tuple[np.ndarray, ...]:
        """Each chunk from x = 0: x (nch, b), running product of g, and both at the chunk end."""
        gg, hh = _chunks(g, b, 1.0), _chunks(h, b, 0.0)
        nch = gg.shape[0]
        x, p = np.empty((nch, b)), np.empty((nch, b))
        xv, pv = np.zeros(nch), np.ones(nch)
        for r in range(b):
            xv = gg[:, r] * xv + hh[:, r]
            pv = pv * gg[:, r]
            x[:, r] = xv
            p[:, r] = pv
        return x, p, xv, pv

    @staticmethod
    def linrec_carry(x_end: np.ndarray, p_end: np.ndarray, x0: float) -> np.ndarray:
        x_in = np.empty(len(x_end))
        c = x0
        for k in range(len(x_end)):  # serial over chunks, as in the kernel
            x_in[k] = c
            c = p_end[k] * c + x_end[k]
        return x_in

    def linrec(self, g: Any, h: Any, x0: Any, chunk: int | None = None) -> Any:
        """x_j = g_j * x_{j-1} + h_j with x_{-1} = x0 (a scalar or 1-element array)."""
        n = int(g.shape[0])
        if n == 0:
            return np.zeros(0)
        b = chunk or chunk_size(n)
        x, p, xv, pv = self.linrec_local(np.asarray(g, np.float64), np.asarray(h, np.float64), b)
        x_in = self.linrec_carry(xv, pv, _scalar(x0))
        return (x + p * x_in[:, None]).reshape(-1)[:n]

    # ---------------------------------------------------------------- lifecycle round

    def round_swept(
        self, ptr: Any, created: Any, deposit: Any, log_c: Any, q: Any, dep_total: Any, t0: int
    ) -> tuple:
        """Per bar t0 + r: swept notional (CSR rows, summed in row order), g = exp(q), h = D − g·swept."""
        nt = int(ptr.shape[0]) - 1
        row = np.repeat(np.arange(nt), np.diff(ptr))
        t = t0 + row
        prev = np.where(t > 0, log_c[np.maximum(t - 1, 0)], 0.0)
        v = deposit * np.exp(prev - log_c[created])
        swept = np.bincount(row, weights=v, minlength=nt)  # sequential per bin, like the kernel
        g = np.exp(q)
        return swept, g, dep_total - g * swept

    @staticmethod
    def close_rule(
        ap: np.ndarray, swept: np.ndarray, d: np.ndarray, lam: np.ndarray, ms: float
    ) -> np.ndarray:
        """lifecycle.run_lifecycle's close: log(survive) − decay, from alive-before-sweeps minus swept."""
        ap = np.maximum(ap, 0.0)
        want = -d - swept
        closing = (d == d) & (d < 0.0) & (ap > 0.0) & (want > 0.0)
        with np.errstate(divide="ignore", invalid="ignore"):
            r = 1.0 - want / np.where(ap > 0.0, ap, 1.0)
            s = np.where(closing, np.where(r >= ms, r, ms), 1.0)  # max(ms, r); a NaN r → ms
        return np.log(s) - lam

    def lifecycle_round(self, st: LifecycleState) -> Any:
        """One fixed-point round (see device_build.lifecycle_xp); updates st.log_c[t0:] and st.q."""
        swept, g, h = self.round_swept(st.ptr, st.c_sel, st.d_sel, st.log_c, st.q, st.dep_span, st.t0)
        b = st.chunk
        x, p, xv, pv = self.linrec_local(g, h, b)
        x_in = self.linrec_carry(xv, pv, _scalar(st.alive0))
        sw, dd, lam = _chunks(swept, b, 0.0), _chunks(st.d_span, b, np.nan), _chunks(st.lam, b, 0.0)
        nch = x.shape[0]
        q = np.empty((nch, b))
        lloc = np.empty((nch, b))
        prev = x_in.copy()
        acc = np.zeros(nch)
        for r in range(b):  # per chunk, serial over its bars: alive → close → local sum of q
            a = x[:, r] + p[:, r] * x_in
            qr = self.close_rule(prev - sw[:, r], sw[:, r], dd[:, r], lam[:, r], st.min_survival)
            acc = acc + qr
            q[:, r] = qr
            lloc[:, r] = acc
            prev = a
        off = np.cumsum(np.concatenate([[_scalar(st.base)], acc]))[:-1]  # serial, like cumsum_carry
        n = st.q.shape[0]
        new = (off[:, None] + lloc).reshape(-1)[:n]
        old = st.log_c[st.t0 :]
        stat = np.array([np.abs(new - old).max(), np.abs(new).max()])
        st.log_c[st.t0 :] = new
        st.q = q.reshape(-1)[:n]
        return stat

    def read_stat(self, handle: Any) -> tuple[float, float]:
        return float(handle[0]), float(handle[1])

    # ---------------------------------------------------------------- openings and levels

    def bar_levels(
        self, rows: Any, params: Any, interval_ms: int, prev_oi: float, starts_series: bool
    ) -> dict:
        from liqdesk.core.device_build import dense_levels_xp  # the xp code is the twin

        return dense_levels_xp(rows, params, interval_ms, np, prev_oi=prev_oi, starts_series=starts_series)

    # ---------------------------------------------------------------- grid

    def paint(
        self, lv: dict, log_c: Any, last: Any, lo: float, width: float, nbins: int, transform: str
    ) -> tuple[Any, Any]:
        """The CUDA painter's steps (numba): (P, T) float32 per side, value transform applied."""
        t = int(last.shape[0])
        display.transform(np.zeros(1), transform)  # validates the name
        tl = np.empty((nbins, t), np.float32)
        ts = np.empty((nbins, t), np.float32)
        _paint_twin(
            lv["created"], lv["sweep"], lv["price"], lv["deposit"], lv["side"], np.ascontiguousarray(log_c),
            np.ascontiguousarray(last, np.int64), lo, width, nbins, max(1, math.isqrt(t)),
            TRANSFORM_CODES[transform], tl, ts,
        )  # fmt: skip
        return tl, ts


@numba.njit(cache=True, nogil=True)
def _paint_twin(
    created, sweep, price, dep, side, log_c, last, lo, width, nbins, cb, transform, out_long, out_short
):  # pragma: no cover - compiled
    """paint_scatter → paint_local → paint_carry → paint_finish, serially, in the kernels' order
    (grid._paint_levels' model: ± weights at first/end column, count-zeroed prefix sums)."""
    t = last.shape[0]
    val = np.zeros((2, t + 1, nbins), np.float64)
    cnt = np.zeros((2, t + 1, nbins), np.int64)
    ref = log_c[last[0]]
    for i in range(created.shape[0]):
        c = created[i]
        if c > last[t - 1] or sweep[i] <= last[0]:
            continue
        fb = np.floor((price[i] - lo) / width)
        if not (fb >= 0.0) or fb >= nbins:
            continue
        b = int(fb)
        a0 = np.searchsorted(last, c)
        a1 = np.searchsorted(last, sweep[i])
        if a0 >= a1:
            continue
        w = dep[i] * np.exp(min(ref - log_c[c], 700.0))
        s = 0 if side[i] > 0 else 1
        val[s, a0, b] += w
        val[s, a1, b] -= w
        cnt[s, a0, b] += 1
        cnt[s, a1, b] -= 1
    nch = (t + cb - 1) // cb
    scale = np.exp(log_c[last] - ref)
    for s in range(2):
        out = out_long if s == 0 else out_short
        for b in range(nbins):
            carry_v = 0.0
            carry_n = 0
            for ch in range(nch):
                run = 0.0
                run_n = 0
                for k in range(ch * cb, min(t, ch * cb + cb)):
                    run = run + val[s, k, b]
                    run_n += cnt[s, k, b]
                    tot = carry_v + run
                    v = np.float32(tot * scale[k]) if (carry_n + run_n > 0 and tot > 0.0) else np.float32(0.0)
                    if not (v > 0.0):
                        v = np.float32(0.0)
                    if transform == 1:
                        v = np.sqrt(v)
                    elif transform == 2:
                        v = np.log1p(v / np.float32(1000.0))
                    out[b, k] = v
                carry_v = carry_v + run
                carry_n += run_n


def _scalar(x: Any) -> float:
    return float(np.asarray(x).reshape(-1)[0])


class LifecycleState:
    """Arrays of one lifecycle solve (device or host), shared by the round kernels."""

    def __init__(self, **kw: Any) -> None:
        self.t0: int = kw["t0"]
        self.ptr, self.c_sel, self.d_sel = kw["ptr"], kw["c_sel"], kw["d_sel"]
        self.log_c, self.q = kw["log_c"], kw["q"]
        self.dep_span, self.d_span, self.lam = kw["dep_span"], kw["d_span"], kw["lam"]
        self.alive0, self.base = kw["alive0"], kw["base"]
        self.min_survival: float = kw["min_survival"]
        self.chunk: int = kw["chunk"]
        self.scratch: dict[str, Any] = {}


# ============================================================================================ CUDA

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

/* ---------------------------------------------------------------- openings + levels, per bar
   rows: (9, n) low, high, close, entry, quote_usd, taker_share, sweep_low, sweep_high, oi_close.
   factors: (2, K) long/short liquidation factors; weight: (K,). Outputs dense (n, 2, K, S). */
__global__ void bar_levels(const double* rows, long long n, double prev_oi, int starts_series,
                           double churn, double taker_floor, double hl_decay, int has_hl,
                           double vol_decay, const double* factors, const double* weight, int K, int S,
                           double* oi_delta, double* decay, double* price, double* dep,
                           double* dep_total) {
    long long j = (long long)blockDim.x * blockIdx.x + threadIdx.x;
    if (j >= n) return;
    const double* low = rows;
    const double* high = rows + n;
    const double* entry = rows + 3 * n;
    const double* quote = rows + 4 * n;
    const double* share = rows + 5 * n;
    const double* oi = rows + 8 * n;
    double d = j == 0 ? oi[0] - prev_oi : oi[j] - oi[j - 1];
    bool has_oi = isfinite(d);
    double opened = has_oi ? max0(d) : churn * quote[j];
    if (!isfinite(opened)) opened = 0.0;
    bool model_none = starts_series && j == 0;
    if (model_none) opened = 0.0;
    double r = taker_floor + (1.0 - 2.0 * taker_floor) * share[j];
    double lam = has_hl ? hl_decay : 0.0;
    if (!has_oi && !model_none) lam = vol_decay;  /* MODEL_VOLUME */
    oi_delta[j] = d;
    decay[j] = lam;
    double side_dep[2];
    side_dep[0] = 2.0 * opened * r;
    side_dep[1] = 2.0 * opened * (1.0 - r);
    /* entry points (openings.entry_points) */
    double ep[16], w[16];
    if (S == 1) {
        ep[0] = entry[j];
        w[0] = 1.0;
    } else {
        double lo = low[j], hi = high[j], e = entry[j];
        double half = max_nan(max_nan(e - lo, hi - e), 1e-12);
        double denom = half * (1.0 + 1.0 / S);
        double w_sum = 0.0;
        for (int s = 0; s < S; ++s) {
            double frac = ((double)s + 0.5) / S;
            ep[s] = lo + (hi - lo) * frac;
            double v = 1.0 - fabs(ep[s] - e) / denom;
            w[s] = max0(v);
            w_sum = w_sum + w[s];
        }
        for (int s = 0; s < S; ++s) w[s] = w_sum > 0.0 ? w[s] / w_sum : 1.0 / S;
    }
    long long base = j * 2LL * K * S;
    double total = 0.0;
    for (int sd = 0; sd < 2; ++sd)
        for (int k = 0; k < K; ++k)
            for (int s = 0; s < S; ++s) {
                long long i = base + ((long long)sd * K + k) * S + s;
                double v = side_dep[sd] * weight[k] * w[s];
                price[i] = ep[s] * factors[sd * K + k];
                dep[i] = v;
                if (v > 0.0) total = total + v;
            }
    dep_total[j] = total;
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
   none. The steps of sweeps._first_crossing_numba. */
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
                            const double* log_c, const double* q, const double* dep_total,
                            long long t0, long long nt, double* swept, double* g, double* h) {
    long long r = (long long)blockDim.x * blockIdx.x + threadIdx.x;
    if (r >= nt) return;
    long long t = t0 + r;
    double prev = t > 0 ? log_c[t - 1] : 0.0;
    double acc = 0.0;
    for (long long i = ptr[r]; i < ptr[r + 1]; ++i) {
        double v = dep[i] * exp(prev - log_c[created[i]]);
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
__global__ void round_apply(const double* lloc, const double* off, double* log_c_span,
                            long long nt, long long b, unsigned long long* stat) {
    long long i = (long long)blockDim.x * blockIdx.x + threadIdx.x;
    if (i >= nt) return;
    double v = off[i / b] + lloc[i];
    double change = fabs(v - log_c_span[i]);
    log_c_span[i] = v;
    if (change != change) change = __longlong_as_double(0x7ff0000000000000LL);  /* NaN → inf */
    atomicMax(stat, (unsigned long long)__double_as_longlong(change));
    atomicMax(stat + 1, (unsigned long long)__double_as_longlong(fabs(v)));
}

/* ---------------------------------------------------------------- grid (grid._paint_levels) */
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
                              const double* log_c, const long long* last, long long t, double lo,
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
    double ref = log_c[last[0]];
    double e = ref - log_c[c];
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

_NAMES = (
    "bar_levels", "table_level", "sweep_search", "linrec_local", "linrec_carry", "linrec_apply",
    "round_swept", "round_close", "cumsum_carry", "round_apply", "paint_scatter", "paint_local",
    "paint_carry", "paint_finish",
)  # fmt: skip


class CupyKernels:
    """CUDA kernels (RawModule, compiled on first use). Takes the cupy module; never imports it."""

    name = "cupy"

    def __init__(self, cp: Any) -> None:
        self.xp = cp
        self._module: Any = None
        self._pinned: list[np.ndarray] = []

    def _k(self, name: str) -> Any:
        if self._module is None:
            # --fmad=false: a*b + c rounds twice, like NumPy, so the twins compare (nearly) exactly.
            self._module = self.xp.RawModule(code=_CUDA_SOURCE, options=("--fmad=false",))
        return self._module.get_function(name)

    def compile_all(self) -> None:
        for n in _NAMES:
            self._k(n)

    @staticmethod
    def _grid(n: int) -> tuple[int]:
        return (max(1, -(-n // _THREADS)),)

    def _launch(self, name: str, n: int, args: tuple) -> None:
        self._k(name)(self._grid(n), (_THREADS,), args)

    # ---------------------------------------------------------------- openings and levels

    def bar_levels(
        self, rows: Any, params: Any, interval_ms: int, prev_oi: float, starts_series: bool
    ) -> dict:
        from liqdesk.core.device_build import level_constants

        cp = self.xp
        n = int(rows.shape[1])
        k, s, factors, weight, hl, vol = level_constants(params, interval_ms)
        per = 2 * k * s
        out = {
            "oi_delta": cp.empty(n), "decay": cp.empty(n), "price": cp.empty((n, per)),
            "dep": cp.empty((n, per)), "deposit_total": cp.empty(n),
        }  # fmt: skip
        if n:
            self._launch(
                "bar_levels", n,
                (cp.ascontiguousarray(rows, cp.float64), np.int64(n), np.float64(prev_oi), np.int32(starts_series),
                 np.float64(params.churn), np.float64(params.taker_floor), np.float64(hl if hl is not None else 0.0),
                 np.int32(hl is not None), np.float64(vol), cp.asarray(factors), cp.asarray(weight), np.int32(k),
                 np.int32(s), out["oi_delta"], out["decay"], out["price"], out["dep"], out["deposit_total"]),
            )  # fmt: skip
        return out

    # ---------------------------------------------------------------- sweeps

    def tables(self, low: Any, high: Any) -> tuple[Any, Any, int]:
        cp = self.xp
        n = int(low.shape[0])
        depth = max(1, int(np.ceil(np.log2(max(n, 1) + 1))))  # sweeps._levels
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

    def sweep_bars(self, low: Any, high: Any, created: Any, price: Any, side: Any) -> Any:
        cp = self.xp
        m = int(created.shape[0])
        out = cp.full(m, NEVER, cp.int64)
        if m == 0:
            return out
        lo_t, hi_t, depth = self.tables(low, high)
        self._launch(
            "sweep_search", m,
            (lo_t, hi_t, np.int32(depth), np.int64(low.shape[0]), cp.ascontiguousarray(created, cp.int64),
             cp.ascontiguousarray(price, cp.float64), cp.ascontiguousarray(side, cp.int8), np.int64(m), out),
        )  # fmt: skip
        return out

    def sweep_bars_lifting(self, low: Any, high: Any, created: Any, price: Any, side: Any) -> Any:
        return self.sweep_bars(low, high, created, price, side)

    # ---------------------------------------------------------------- linear recurrence

    def linrec(self, g: Any, h: Any, x0: Any, chunk: int | None = None) -> Any:
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

    # ---------------------------------------------------------------- lifecycle round

    def lifecycle_round(self, st: LifecycleState) -> Any:
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
            w["span"] = st.log_c[st.t0 :]
        self._launch(
            "round_swept", nt,
            (st.ptr, st.c_sel, st.d_sel, st.log_c, st.q, st.dep_span, np.int64(st.t0), np.int64(nt),
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

    # ---------------------------------------------------------------- grid

    def paint(
        self, lv: dict, log_c: Any, last: Any, lo: float, width: float, nbins: int, transform: str
    ) -> tuple[Any, Any]:
        cp = self.xp
        t = int(last.shape[0])
        m = int(lv["created"].shape[0])
        val = cp.zeros((2, t + 1, nbins), cp.float64)
        cnt = cp.zeros((2, t + 1, nbins), cp.int32)
        last = cp.ascontiguousarray(last, cp.int64)
        if m:
            self._launch(
                "paint_scatter", m,
                (lv["created"], lv["sweep"], lv["price"], lv["deposit"], lv["side"], np.int64(m), log_c, last,
                 np.int64(t), np.float64(lo), np.float64(width), np.int64(nbins), val, cnt),
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
        scale = cp.exp(log_c[last] - log_c[last[0]])
        tl = cp.empty((nbins, t), cp.float32)
        ts = cp.empty((nbins, t), cp.float32)
        self._launch(
            "paint_finish", 2 * t * nbins,
            (val, cnt, in_v, in_c, scale, np.int64(t), np.int64(nbins), np.int64(cb), np.int64(nch),
             np.int32(TRANSFORM_CODES[transform]), tl, ts),
        )  # fmt: skip
        return tl, ts


_CUPY_KERNELS: dict[int, CupyKernels] = {}


def kernels_for(xp: Any) -> NumpyKernels | CupyKernels:
    """The kernel set for an array module; one CuPy set per process (compiled module, pinned buffers)."""
    if xp is np:
        return NumpyKernels()
    k = _CUPY_KERNELS.get(id(xp))
    if k is None or k.xp is not xp:
        k = _CUPY_KERNELS[id(xp)] = CupyKernels(xp)
    return k
