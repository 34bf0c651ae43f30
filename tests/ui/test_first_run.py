"""The first chart comes quickly: the kernel warm-up compiles exactly the kernels (and argument types) the chart
and live bars use, and a tab builds its engine once (the saved model settings are known before the first build)."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

from PySide6 import QtWidgets

from liqdesk.ui.data import SampleSource
from liqdesk.ui.session import wait_until_drawn
from liqdesk.ui.window import MainWindow
from liqdesk.ui.worker import ModelWorker
from liqdesk.ui.workspace import Workspace

ROOT = Path(__file__).resolve().parents[2]

CHECK = textwrap.dedent("""
    import numpy as np
    from liqdesk.app.warmup import run_kernels
    import importlib, pkgutil
    import liqdesk.core
    from numba.core.registry import CPUDispatcher
    # every numba kernel of the model, found by type (so a renamed or new kernel is checked too)
    mods = [importlib.import_module(f"liqdesk.core.{m.name}") for m in pkgutil.iter_modules(liqdesk.core.__path__)]
    kernels = list({id(v): v for m in mods for v in vars(m).values() if isinstance(v, CPUDispatcher)}.values())
    assert len(kernels) >= 3, kernels
    run_kernels()
    before = {k.py_func.__name__: set(k.signatures) for k in kernels}
    from liqdesk.core.engine import LiquidationEngine
    from liqdesk.core.series import Candles
    from liqdesk.feeds.sample import load_sample
    from liqdesk.ui import data, frames
    from liqdesk.core.grid import PriceBins
    s = load_sample()
    c = s.candles.take(slice(-3000, None))
    engine = LiquidationEngine.build(c, s.open_interest, data.params_for("coinglass"))
    n = engine.n_bars
    bins = PriceBins(float(c.low.min()) * 0.9, float(c.high.max()) * 1.1, 300)
    frames.compute_frame(engine, frames.FrameRequest(1, n - 800, n, 400, bins, (n - 800, n), (bins.lo, bins.hi), n - 1))
    last = c.take(slice(-1, None))
    bar = Candles([int(last.open_time[0]) + c.interval_ms], last.close, last.high, last.low, last.close, [3.0],
                  c.interval_ms, quote_volume=[np.nan], taker_buy_volume=[1.5])
    engine.append_bar(bar, None)
    engine.revise_last_bar(bar, 7.5e9)
    new = {k.py_func.__name__: set(k.signatures) - before[k.py_func.__name__] for k in kernels}
    print({k: len(v) for k, v in new.items() if v} or "none")
""")


def test_the_kernel_warmup_compiles_what_the_chart_and_live_bars_use() -> None:
    # a fresh process: the signatures compiled (or loaded from numba's cache) before and after real use
    out = subprocess.run([sys.executable, "-c", CHECK], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "none", out.stdout


def test_a_tab_builds_its_engine_once(qapp: QtWidgets.QApplication, tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """The state file's model settings used to reach the window after its first build: every start built the
    engine twice."""
    monkeypatch.setenv("LIQDESK_CONFIG_DIR", str(tmp_path))
    builds: list[int] = []
    real = ModelWorker.build

    def counted(self: ModelWorker, *a: Any, **k: Any) -> None:
        builds.append(1)
        real(self, *a, **k)

    monkeypatch.setattr(ModelWorker, "build", counted)
    ws = Workspace(lambda spec, settings: (MainWindow(SampleSource(), settings), None))
    ws.show()
    assert wait_until_drawn(ws.current, 30.0)
    assert len(builds) == 1
    assert ws.current.model_overrides == {k: ws.state.get("model", k) for k in
                                          ("taker_floor", "half_life_h", "churn", "volume_half_life_h", "entry_points")}  # fmt: skip
    ws.close()
