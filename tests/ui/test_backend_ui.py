"""The compute backend in the product: choice and precedence, the status bar, the CLI's
one-line error for a cupy that cannot run, and the worker's device branch on the emulated CuPy of
tests/core/cuda_emulator (the CUDA kernels compiled for the CPU), in a real window."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from PySide6 import QtWidgets

from liqdesk.app.cli import main
from liqdesk.app.options import choose_backend
from liqdesk.core.backend import select_backend
from liqdesk.core.series import Candles
from liqdesk.errors import ConfigError
from liqdesk.ui import frames
from liqdesk.ui import worker as worker_mod
from tests.core import cuda_emulator
from tests.core.test_device_build import assert_images_match
from tests.ui.conftest import make_window

HAS_CUPY = importlib.util.find_spec("cupy") is not None
no_cupy = pytest.mark.skipif(
    HAS_CUPY, reason="CuPy is installed here: the unavailable-backend path cannot be shown"
)


def _no_cupy(name: str):  # type: ignore[no-untyped-def]
    raise ImportError(f"No module named {name!r}")


@pytest.fixture
def numpy_process_backend() -> Iterator[None]:
    worker_mod.set_backend(None)
    yield
    worker_mod.set_backend(None)


# ------------------------------------------------------------------ choice


def test_precedence_argument_environment_settings_default() -> None:
    env = {"LIQDESK_BACKEND": "numpy"}
    assert choose_backend("numpy", {}, "cupy")[0].source == "argument"
    be, note = choose_backend(None, env, "cupy", importer=_no_cupy)
    assert (be.name, be.source, note) == ("numpy", "LIQDESK_BACKEND", "")
    be, _ = choose_backend(None, {}, "numpy")
    assert (be.name, be.requested, be.source) == ("numpy", "numpy", "settings")
    be, note = choose_backend(None, {}, "auto", importer=_no_cupy)
    assert (be.name, be.requested, note) == ("numpy", "auto", "")
    assert "CuPy is not installed" in be.reason  # auto falls back and keeps the reason


def test_cupy_that_cannot_run_is_an_error_from_cli_or_env_and_a_note_from_settings() -> None:
    with pytest.raises(ConfigError, match=r"^--backend cupy: .*CuPy is not installed.*pip install"):
        choose_backend("cupy", {}, None, importer=_no_cupy)
    with pytest.raises(ConfigError, match=r"^LIQDESK_BACKEND=cupy: "):
        choose_backend(None, {"LIQDESK_BACKEND": "cupy"}, None, importer=_no_cupy)
    be, note = choose_backend(None, {}, "cupy", importer=_no_cupy)
    assert be.name == "numpy" and be.requested == "cupy" and be.source == "settings"
    assert note.startswith("Settings → Model asks for cupy; using NumPy") and "\n" not in note
    assert worker_mod.backend_status(be)[0] == "compute: numpy (cupy unavailable)"


def test_state_file_keeps_the_backend_setting(tmp_path: Path) -> None:
    from liqdesk.feeds.state import load_state, save_state

    path = tmp_path / "state.json"
    st = load_state(path)
    assert st.get("model", "backend") == "auto"
    st.set("model", "backend", "cupy")
    save_state(st, path)
    assert load_state(path).get("model", "backend") == "cupy"
    with pytest.raises(ValueError):
        st.set("model", "backend", "opencl")


# ------------------------------------------------------------------ CLI


@no_cupy
def test_snapshot_with_cupy_requested_fails_in_one_line(tmp_path: Path, capsys, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.delenv("LIQDESK_BACKEND", raising=False)
    out = tmp_path / "s.png"
    assert main(["snapshot", "--out", str(out), "--backend", "cupy"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("liqdesk: error: --backend cupy: the cupy backend was requested but cannot run")
    assert "\n" not in err and not out.exists()
    monkeypatch.setenv("LIQDESK_BACKEND", "cupy")
    assert main(["snapshot", "--out", str(out)]) == 2
    assert capsys.readouterr().err.startswith("liqdesk: error: LIQDESK_BACKEND=cupy: ")


@no_cupy
def test_window_command_with_cupy_requested_fails_in_one_line(tmp_path: Path) -> None:
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "LIQDESK_CONFIG_DIR": str(tmp_path)}
    env.pop("LIQDESK_BACKEND", None)
    r = subprocess.run([sys.executable, "-m", "liqdesk", "--offline", "--backend", "cupy"], capture_output=True,
                       text=True, env=env, timeout=60)  # fmt: skip
    assert r.returncode == 2
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("liqdesk: error: --backend cupy: "), r.stderr


def test_backend_option_in_help() -> None:
    from liqdesk.app.cli import build_parser

    text = build_parser().format_help()
    assert "--backend {auto,numpy,cupy}" in text


# ------------------------------------------------------------------ window


def test_status_bar_shows_numpy(qapp: QtWidgets.QApplication, numpy_process_backend: None) -> None:
    w = make_window(qapp, range_name="12h", persist=False)
    try:
        assert w.worker.backend.name == "numpy" and w.worker.device is None
        assert w.status.backend_label.text() == "compute: numpy"
        assert "numpy" in w.status.backend_label.toolTip()
        assert w.frame.backend == "numpy" and isinstance(w.frame.values, np.ndarray)
    finally:
        w.close()


def test_status_bar_shows_auto_fallback_reason(
    qapp: QtWidgets.QApplication, numpy_process_backend: None
) -> None:
    be, note = choose_backend(None, {}, "auto", importer=_no_cupy)
    worker_mod.set_backend(be, note)
    w = make_window(qapp, range_name="12h", persist=False)
    try:
        assert w.status.backend_label.text() == "compute: numpy"
        assert "GPU not used: CuPy is not installed" in w.status.backend_label.toolTip()
    finally:
        w.close()


# ------------------------------------------------------------------ the device branch, emulated CuPy


@pytest.fixture
def emulated_gpu() -> Iterator[object]:
    if not cuda_emulator.compiler_available():
        pytest.skip("needs g++ for the CUDA emulator")
    be = select_backend("cupy", importer=lambda name: cuda_emulator.fake_cupy())
    worker_mod.set_backend(be)
    yield be
    worker_mod.set_backend(None)


def test_window_on_emulated_cupy_draws_the_numpy_frame(
    qapp: QtWidgets.QApplication, qtbot, emulated_gpu
) -> None:  # type: ignore[no-untyped-def]
    w = make_window(qapp, range_name="12h", persist=False)
    try:
        assert w.status.backend_label.text() == "compute: cupy · Emulated CUDA device, 16 GiB"
        assert w.worker.device is not None
        f = w.frame
        assert f.backend == "cupy" and w.worker.device.backend.is_gpu
        eng = w.worker.engine
        want = frames.compute_frame(eng, f.request)  # the NumPy path on the same request
        np.testing.assert_allclose(f.levels, want.levels, rtol=1e-6)
        assert_images_match(f.image, want.image)
        np.testing.assert_array_equal(f.columns.last_bar, want.columns.last_bar)
        np.testing.assert_allclose(f.lmap.long_by_tier, want.lmap.long_by_tier, rtol=1e-9, atol=1e-3)
        assert f.model_label == want.model_label and len(f.bubbles) == len(want.bubbles)

        # new levels: re-quantised on the device, same codes as the NumPy re-quantise
        lo, hi = want.levels
        levels = (lo, lo + (hi - lo) * 0.5)
        w.frames.requantise(levels)
        qtbot.waitUntil(lambda: w.frame.levels == levels, timeout=10_000)
        assert w.worker.wait_idle(10_000)
        assert_images_match(w.frame.image, frames.requantise(want, levels, f.request.colormap))

        # live bars: appended and revised on the device too; the newest column matches the engine
        c = w.candles
        n = len(c)
        t = int(c.open_time[-1]) + c.interval_ms
        last = float(c.close[-1])

        def row(close: float, high: float, low: float) -> Candles:
            return Candles(open_time=[t], open=[last], high=[high], low=[low], close=[close], volume=[12.0],
                           interval_ms=c.interval_ms)  # fmt: skip

        w.apply_bar(row(last * 1.001, last * 1.002, last * 0.999), is_closed=False, oi_close=None)
        qtbot.waitUntil(lambda: w.frame.request.end_bar == n + 1, timeout=10_000)
        w.apply_bar(row(last * 0.99, last * 1.002, last * 0.985), is_closed=True, oi_close=None)
        qtbot.waitUntil(lambda: w.worker.engine.close[-1] == pytest.approx(last * 0.99), timeout=10_000)
        assert w.worker.wait_idle(10_000)
        qapp.processEvents()
        f = w.frame
        assert f.backend == "cupy" and w.worker.device.n_bars == w.worker.engine.n_bars == n + 1
        ref = frames.compute_frame(w.worker.engine, f.request)
        cpu = frames.requantise(ref, f.levels, f.request.colormap)
        assert_images_match(f.image[:, -1:], cpu[:, -1:])
        assert f.lmap.price_now == pytest.approx(last * 0.99)
    finally:
        w.close()
