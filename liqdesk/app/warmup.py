"""Compile the model's numba kernels in the background while the window starts.

On the first run after installation numba compiles the engine's kernels (the sweep search, the lifecycle loop,
the grid painter) on their first call, seconds of work that used to sit between the window and its first
heatmap. ``start()`` runs the same calls on a tiny data set of the same types in a thread at process start, so
the compilation overlaps the Qt, pyqtgraph and ccxt imports, the sample loading and the window's construction.
Every kernel is ``cache=True``: numba writes the compiled code next to the package (or in the user cache when
that is read-only, or in ``NUMBA_CACHE_DIR``), and on later runs this thread only loads it from there.

Compilation drops the GIL while LLVM optimises, so the UI thread keeps going meanwhile; a real build that comes
before the thread has finished waits for numba's compiler lock and uses what it compiled.
"""

from __future__ import annotations

import logging
from concurrent.futures import Future

from liqdesk.ui.jobs import SerialExecutor

log = logging.getLogger(__name__)

_executor = SerialExecutor("liqdesk-kernel-warmup")
_started: Future[None] | None = None


def start() -> Future[None]:
    """Start the warm-up on a thread of its own (once per process); its future."""
    global _started
    if _started is None:
        _started = _executor.submit(_warm_up)
    return _started


def join(timeout_s: float = 30.0) -> None:
    """Wait for the warm-up to finish (at exit: a thread still inside the compiler when the interpreter shuts
    down can take the process down with it)."""
    _executor.wait_idle(timeout_s)


def _warm_up() -> None:
    try:
        run_kernels()
    except Exception:  # the real build reports real problems; this one only saves time
        log.debug("kernel warm-up failed", exc_info=True)


def run_kernels(n: int = 64) -> None:
    """A full engine build, a live bar appended and revised, and one frame, on ``n`` synthetic bars with the
    dtypes of real data: every kernel the first chart and the live updates call, compiled or loaded."""
    import numpy as np

    from liqdesk.core.engine import LiquidationEngine
    from liqdesk.core.grid import PriceBins
    from liqdesk.core.params import ModelParams
    from liqdesk.core.series import Candles, OpenInterest
    from liqdesk.ui.frames import FrameRequest, compute_frame

    step = 300_000
    t = np.arange(n + 1, dtype=np.int64) * step + 1_700_000_000_000
    rng = np.random.default_rng(1)
    close = 60_000.0 * np.exp(np.cumsum(rng.normal(0.0, 0.004, n + 1)))
    open_ = np.r_[close[0], close[:-1]]
    high, low = np.maximum(open_, close) * 1.002, np.minimum(open_, close) * 0.998
    volume = np.full(n + 1, 100.0)

    def bars(sl: slice) -> Candles:
        return Candles(t[sl], open_[sl], high[sl], low[sl], close[sl], volume[sl], step,
                       quote_volume=volume[sl] * close[sl], taker_buy_volume=volume[sl] * 0.5)  # fmt: skip

    oi = OpenInterest(t[:n] + step, 5e9 * (1.0 + 0.01 * np.sin(np.arange(n))))
    engine = LiquidationEngine.build(bars(slice(0, n)), oi, ModelParams())
    engine.append_bar(bars(slice(n, n + 1)), 5e9)
    engine.revise_last_bar(bars(slice(n, n + 1)), None)
    bins = PriceBins(float(low.min()) * 0.8, float(high.max()) * 1.2, 64)
    n_bars = engine.n_bars
    compute_frame(engine, FrameRequest(generation=0, start_bar=0, end_bar=n_bars, columns=n_bars, bins=bins,
                                       visible_bars=(0, n_bars), visible_prices=(bins.lo, bins.hi),
                                       map_bar=n_bars - 1))  # fmt: skip
