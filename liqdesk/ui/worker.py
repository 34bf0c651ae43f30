"""The model worker: builds the engine and computes frames off the UI thread.

Every job runs on one `SerialExecutor` (liqdesk.ui.jobs): engine mutations (build, live bars) and the reads
that render frames or answer queries run one at a time, in submission order, and never overlap. Frame and
re-quantise requests supersede the one of their kind still queued, so dragging the levels or panning never
queues up work. Results carry generation numbers and the window drops any that are stale by the time they
arrive; tools ask the engine through `query` (by way of the chart context), never through the engine itself.

Compute backend: chosen once per process (`set_backend`, by the app and `liqdesk snapshot`; NumPy
when nothing was chosen). With CuPy the worker keeps a second LiquidationEngine on the GPU
(`device`) beside the CPU engine, built from the same data and updated with it; heatmap frames,
re-quantisations and live one-bar patches come from the device, while the CPU engine serves the
crosshair readout, sweep bubbles, model label, lines and export. With NumPy there is no device
engine and every path is the CPU one.
"""

from __future__ import annotations

import ctypes
import dataclasses
import logging
import sys
import threading
import traceback
import weakref
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from contextlib import contextmanager
from typing import Any, TypeVar

import numpy as np
from PySide6 import QtCore

from liqdesk.core.backend import Backend, numpy_backend
from liqdesk.core.engine import LiquidationEngine
from liqdesk.core.heatmap import HeatmapView, patch_newest_column, quantise_image
from liqdesk.core.liqmap import find_magnets, liquidation_map
from liqdesk.core.params import ModelParams
from liqdesk.core.series import Candles, OpenInterest
from liqdesk.ui import frames, theme
from liqdesk.ui.jobs import SerialExecutor

log = logging.getLogger(__name__)


# Arrays above this size get their own memory mapping, returned to the system when freed.
LARGE_ALLOCATION = 4 << 20


def limit_heap_retention() -> None:
    """Make glibc give large freed arrays back at once (Linux; a no-op elsewhere).

    By default glibc raises its mmap threshold (up to 32 MB) each time a large block is freed, so
    the next frames' 5–25 MB grids come from the heap and stay in the process after use: ~50–90
    MB of resident memory kept for nothing after a minute of panning. A fixed threshold stops
    that; arrays below it (the per-block temporaries) are still recycled by the heap.
    """
    global _heap_limited
    if _heap_limited or not sys.platform.startswith("linux"):
        return
    _heap_limited = True
    try:
        libc = ctypes.CDLL(None)
        libc.mallopt(-3, LARGE_ALLOCATION)  # M_MMAP_THRESHOLD
    except (OSError, AttributeError):  # not glibc (musl has no mallopt): nothing to tune
        pass


_heap_limited = False

# ---------------------------------------------------------------------------------------- backend

_backend: Backend | None = None
_backend_note = ""  # why the backend is not the one asked for (shown in the window), or ""


def set_backend(backend: Backend | None, note: str = "") -> None:
    """The process's compute backend (None: back to the NumPy default). Windows made afterwards
    use it; `note` is a message for the user (a requested backend that could not run)."""
    global _backend, _backend_note
    _backend, _backend_note = backend, note


def current_backend() -> Backend:
    """The process's backend: what `set_backend` chose, else NumPy (no CuPy probe)."""
    global _backend
    if _backend is None:
        _backend = numpy_backend("numpy")
    return _backend


def backend_note() -> str:
    return _backend_note


def backend_status(backend: Backend) -> tuple[str, str]:
    """(status-bar text, tooltip) for the active backend."""
    if backend.is_gpu:
        text = f"compute: cupy · {backend.device.split(' (')[0]}"
    elif backend.requested == "cupy":
        text = "compute: numpy (cupy unavailable)"
    else:
        text = "compute: numpy"
    where = {"argument": "--backend", "LIQDESK_BACKEND": "LIQDESK_BACKEND", "settings": "Settings → Model",
             "default": "default"}.get(backend.source, backend.source)  # fmt: skip
    tip = [
        f"Heatmap compute backend: {backend.name} — {backend.device}",
        f"requested: {backend.requested} ({where})",
    ]
    if backend.reason:
        tip.append(f"GPU not used: {backend.reason}")
    if not backend.is_gpu:
        tip.append("The CPU engine (NumPy/numba) renders the heatmap.")
    else:
        tip.append(
            "Heatmap grid, levels and uint8 image and the map vectors on the GPU; crosshair readout, bubbles, lines and export on the CPU engine."
        )
    return text, "\n".join(tip)


T = TypeVar("T")


class EngineChanged(Exception):
    """A query's engine was replaced (another data set, a rebuild) or lost before the query ran."""


class ModelWorker(QtCore.QObject):
    """Owns the LiquidationEngine; the UI talks to it only through requests, queries and signals."""

    engine_built = QtCore.Signal(int, object)  # data generation, LiquidationEngine
    frame_ready = QtCore.Signal(int, object)  # data generation, frames.Frame
    image_ready = QtCore.Signal(int, int, object, object)  # data gen, frame gen, uint8 image, levels
    bar_applied = QtCore.Signal(int, int)  # data generation, engine bar count
    # A live bar could not be applied: the engine of that data generation is dropped (it may be half
    # updated) and the window builds a new one from its bars.
    engine_lost = QtCore.Signal(int)
    failed = QtCore.Signal(str)

    def __init__(self, parent: QtCore.QObject | None = None, backend: Backend | None = None) -> None:
        super().__init__(parent)
        limit_heap_retention()
        self.backend = backend or current_backend()
        self.device: LiquidationEngine | None = None  # the engine on the GPU when the backend is CuPy
        self.executor = SerialExecutor("liqdesk-model-worker")
        self._logged: set[str] = set()  # errors already logged (the same error on every frame: logged once)
        self._lock = threading.Lock()
        self._bars_queued = 0  # live bar jobs submitted, not started (under _lock: two threads change it)
        self.engine: LiquidationEngine | None = None
        self._engine_generation = -1
        self._last_frame_ref: weakref.ref[frames.Frame] | None = None

    @property
    def _last_frame(self) -> frames.Frame | None:
        """The newest frame made here, for re-quantising and live patches, while anyone still
        holds it: the window holds the frame it shows, and a frame in flight is held by its signal.
        Not kept here itself: while panning, a frame the window has already replaced would stay
        alive beside the shown one and the one being computed (~25 MB each at full screen)."""
        return None if self._last_frame_ref is None else self._last_frame_ref()

    @_last_frame.setter
    def _last_frame(self, frame: frames.Frame | None) -> None:
        self._last_frame_ref = None if frame is None else weakref.ref(frame)

    # ------------------------------------------------------------------ requests (UI thread)

    def build(
        self, generation: int, candles: Candles, open_interest: OpenInterest | None, params: ModelParams
    ) -> Future[LiquidationEngine]:
        def job() -> LiquidationEngine:
            engine = LiquidationEngine.build(candles, open_interest, params)
            self.device = None  # the old one's device memory goes back to CuPy's pool
            if self.backend.is_gpu:
                self.device = self._build_device(candles, open_interest, params)
            self.engine, self._engine_generation, self._last_frame = engine, generation, None
            self.engine_built.emit(generation, engine)
            return engine

        return self._submit(job)

    def build_with(self, generation: int, make: Callable[[Any], Any]) -> Future[Any]:
        """An engine made by `make(previous engine or None)` on the worker thread (several venues' engines read
        as one: core.aggregate_engine), CPU only; it may reuse what the previous one built."""

        def job() -> Any:
            engine = make(self.engine)
            self.device = None
            self.engine, self._engine_generation, self._last_frame = engine, generation, None
            self.engine_built.emit(generation, engine)
            return engine

        return self._submit(job)

    def request_frame(self, generation: int, request: frames.FrameRequest) -> Future[None]:
        return self._submit(lambda: self._run_frame(generation, request), supersede="frame")

    def request_requantise(
        self, generation: int, frame_generation: int, levels: tuple[float, float], cmap: str
    ) -> Future[None]:
        return self._submit(
            lambda: self._run_requantise(generation, frame_generation, levels, cmap), supersede="requantise"
        )

    def apply_bar(
        self, generation: int, row: Candles, oi_close: float | None, revise: bool, venue: str | None = None
    ) -> Future[None]:
        """A live bar (a one-row Candles): revise the last one or append; then patch the newest
        heatmap column. `venue`: a bar of that venue of a venue set (not the chart's bars), applied to its
        engine; the newest column sums it in."""
        with self._lock:
            self._bars_queued += 1

        def job() -> None:
            with self._lock:
                self._bars_queued -= 1
                newer = self._bars_queued > 0
            if self.engine is None or generation != self._engine_generation:
                return
            try:
                if venue is not None:
                    self.engine.apply_venue_bar(venue, row, oi_close)  # type: ignore[attr-defined]
                elif revise:
                    self.engine.revise_last_bar(row, oi_close)
                else:
                    self.engine.append_bar(row, oi_close)
            except Exception:
                self.engine, self._engine_generation, self._last_frame = None, -1, None
                self.device = None
                self.engine_lost.emit(generation)
                raise
            if self.device is not None and venue is None:
                self._device_bar(row, oi_close, revise)
            frame = self._last_frame
            try:
                # A revision with newer bars queued behind it: the next job patches this column anyway (a
                # revision leaves the bar count as it is, so the frame stays patchable); under a burst of
                # updates the chart then shows the newest one sooner instead of every step.
                heat = self._heat_engine(frame)
                if frame is not None and heat is not None and not (revise and newer):
                    patched = patch_frame(self.engine, heat, frame)
                    if patched is not None:
                        _colour(patched, patched.image, patched.request.colormap)
                        frame.values = None  # superseded by the patched frame
                        self._last_frame = patched
                        self.frame_ready.emit(generation, patched)
            finally:
                # after the patched frame: the window counts a bar as done once its frame can be on screen
                self.bar_applied.emit(generation, self.engine.n_bars)

        return self._submit(job)

    def adopt(self, generation: int, make: Callable[[], LiquidationEngine]) -> Future[LiquidationEngine]:
        """An engine made by `make` on the worker thread (a replay's, at its instant) becomes the one shown as
        data generation `generation`, as a build would. The CPU engine only: a device copy is dropped."""

        def job() -> LiquidationEngine:
            engine = make()
            self.device = None
            self.engine, self._engine_generation, self._last_frame = engine, generation, None
            self.engine_built.emit(generation, engine)
            return engine

        return self._submit(job)

    def step_engine(
        self, generation: int, move: Callable[[], LiquidationEngine], bars: int = 1
    ) -> Future[None]:
        """A replay's step forward by `bars` bars: `move()` on the worker thread appends one bar to the engine
        (or returns a rebuilt one), `bars` times; each appended bar patches the newest heatmap column as a live
        bar does, and only the last patched frame is sent (one frame per step, however many bars), then
        `bar_applied`."""

        def job() -> None:
            if self.engine is None or generation != self._engine_generation:
                return
            patched: frames.Frame | None = None
            try:
                for i in range(bars):
                    before = self.engine.n_bars
                    engine = move()
                    if engine is not self.engine:
                        self.engine, self._last_frame = engine, None
                    frame = self._last_frame
                    if frame is not None and frame.backend == "numpy" and engine.n_bars == before + 1:
                        patched = patch_frame(engine, engine, frame, full=i == bars - 1)
                        if patched is not None:
                            frame.values = None
                            self._last_frame = patched
            except Exception:
                self.engine, self._engine_generation, self._last_frame = None, -1, None
                self.engine_lost.emit(generation)
                raise
            try:
                if patched is not None and patched is self._last_frame:
                    _colour(patched, patched.image, patched.request.colormap)
                    self.frame_ready.emit(generation, patched)
            finally:
                self.bar_applied.emit(generation, self.engine.n_bars)

        return self._submit(job)

    def query(
        self, fn: Callable[[LiquidationEngine], T], generation: int, *, supersede: str | None = None
    ) -> Future[T]:
        """`fn(engine)` on the worker thread, after every job submitted before it and before any submitted
        later: it reads the engine as those left it, never mid-update. The future fails with EngineChanged
        when the engine of `generation` is no longer there when it runs (not reported as an error)."""

        def job() -> T:
            engine = self.engine
            if engine is None or self._engine_generation != generation:
                raise EngineChanged(f"no engine of data generation {generation}")
            return fn(engine)

        return self._submit(job, supersede=supersede)

    def run_in_order(self, fn: Callable[[], T]) -> Future[T]:
        """Run `fn` on the worker thread in order with every other job. It must not block for long (frames
        wait behind it); an exception it raises is logged and reported through `failed`."""
        return self._submit(fn)

    @property
    def engine_generation(self) -> int:
        """The data generation of `engine` (-1 before the first build); read it inside a job."""
        return self._engine_generation

    def wait_idle(self, msecs: int = 30_000) -> bool:
        return self.executor.wait_idle(max(msecs, 0) / 1000.0)

    def shutdown(self) -> None:
        self.executor.shutdown(5.0)

    @contextmanager
    def force_sync(self) -> Iterator[None]:
        """Jobs submitted in the block run at once on the calling thread (tests)."""
        with self.executor.force_sync():
            yield

    # ------------------------------------------------------------------ jobs (worker thread)

    def _submit(self, fn: Callable[[], T], supersede: str | None = None) -> Future[T]:
        future = self.executor.submit(fn, supersede=supersede)
        future.add_done_callback(self._report)
        return future

    def _report(self, future: Future[Any]) -> None:
        """A job's exception must reach the user, not vanish (logged once per distinct message)."""
        if future.cancelled():
            return
        exc = future.exception()
        if exc is None or isinstance(exc, EngineChanged):
            return
        message = f"{type(exc).__name__}: {exc}"
        if message not in self._logged:
            if len(self._logged) > 100:
                self._logged.clear()
            self._logged.add(message)
            log.error("model worker failed: %s\n%s", exc, "".join(traceback.format_exception(exc)))
        self.failed.emit(message)

    def _heat_engine(self, frame: frames.Frame | None) -> LiquidationEngine | None:
        """The engine that painted `frame` (whose array module holds its values), if still there."""
        if frame is None:
            return None
        return self.device if frame.backend != "numpy" else self.engine

    def _build_device(
        self, candles: Candles, open_interest: OpenInterest | None, params: ModelParams
    ) -> LiquidationEngine | None:
        try:
            return LiquidationEngine.build(candles, open_interest, params, backend=self.backend)
        except Exception as exc:  # out of device memory, a driver error: the CPU frames still work
            log.error("device build failed: %s\n%s", exc, traceback.format_exc())
            self.failed.emit(f"GPU build failed, heatmap from the CPU engine: {type(exc).__name__}: {exc}")
            return None

    def _device_bar(self, row: Candles, oi_close: float | None, revise: bool) -> None:
        assert self.device is not None
        try:
            if revise:
                self.device.revise_last_bar(row, oi_close)
            else:
                self.device.append_bar(row, oi_close)
        except Exception as exc:  # keep the CPU engine going; frames come from it until a rebuild
            log.error("device bar update failed: %s\n%s", exc, traceback.format_exc())
            self.failed.emit(f"GPU update failed, heatmap from the CPU engine: {type(exc).__name__}: {exc}")
            self.device = None

    def _run_frame(self, generation: int, request: frames.FrameRequest) -> None:
        if self.engine is None or generation != self._engine_generation:
            return
        superseded = self._last_frame
        if superseded is not None:
            # Only the newest frame is ever re-quantised (a request for an older one is dropped)
            # or patched: the shown frame's values go now, not after this one (~15 MB at the peak).
            superseded.values = None
        frame = frames.compute_frame(self.engine, request, heat=self.device)
        _colour(frame, frame.image, request.colormap)
        self._last_frame = frame
        self.frame_ready.emit(generation, frame)

    def _run_requantise(
        self, generation: int, frame_generation: int, levels: tuple[float, float], cmap: str
    ) -> None:
        frame = self._last_frame
        if (
            frame is None
            or generation != self._engine_generation
            or frame.request.generation != frame_generation
        ):
            return
        heat = self._heat_engine(frame)
        if heat is None or frame.values is None or frame.request.two_tone != (cmap == frames.TWO_TONE):
            return  # superseded, or a switch to or from two-tone: a new frame is on its way
        # where the values live (on the GPU for a device frame); only the uint8 image comes back
        image = quantise_image(frame.values, levels, frame.request.two_tone, heat.backend)
        _colour(frame, image, cmap)
        frame.image, frame.levels = image, levels
        frame.request = dataclasses.replace(frame.request, levels=levels, colormap=cmap)
        self.image_ready.emit(generation, frame_generation, image, levels)


def _colour(frame: frames.Frame, image: np.ndarray, cmap: str) -> None:
    """Colour the image here, off the UI thread (the chart only wraps the pixels in a QImage)."""
    lut = theme.lut(cmap)
    frame.coloured = (image, lut, frames.colour(image, lut))


def patch_frame(
    engine: LiquidationEngine, heat: LiquidationEngine, frame: frames.Frame, *, full: bool = True
) -> frames.Frame | None:
    """The frame after a live bar: heatmap.patch_newest_column on the engine that painted it
    (`heat`, which must already hold the bar), the map at the newest bar when the frame followed
    it, bubbles and the model label from the CPU engine. None when nothing shown changed. `full` False: the
    heatmap column only, the rest kept (a bar a replay steps over; the frame of its last bar is full)."""
    req = frame.request
    view = HeatmapView(
        time_ms=frame.columns.time_ms, first_bar=frame.columns.first_bar, last_bar=frame.columns.last_bar,
        end_bar=req.end_bar, bins=req.bins, transform=req.transform, two_tone=req.two_tone, levels=frame.levels,
        values=frame.values, image=frame.image,
    )  # fmt: skip
    changed = engine.changed_from(frame.state_mark) if frame.state_mark else None
    patched = patch_newest_column(heat, view, changed)
    if patched is None:
        return None
    n = patched.end_bar
    follow_map = req.map_bar >= req.end_bar - 1
    new_req = dataclasses.replace(
        req,
        end_bar=n,
        columns=len(patched.last_bar),
        map_bar=n - 1 if follow_map else req.map_bar,
        visible_bars=(req.visible_bars[0], n if req.visible_bars[1] >= req.end_bar else req.visible_bars[1]),
    )
    # the map moves with the newest bar when it followed it; a late bar of a summed venue can change it too
    new_map = full and (follow_map or (changed is not None and new_req.map_bar >= changed))
    lmap = liquidation_map(heat, req.bins, new_req.map_bar) if new_map else frame.lmap
    sweeps = frames.live_sweeps(engine, frame, n)
    return frames.Frame(
        request=new_req,
        columns=frames.Columns(patched.time_ms, patched.first_bar, patched.last_bar),
        values=patched.values,
        image=patched.image,
        levels=frame.levels,
        lmap=lmap,
        magnets=find_magnets(lmap, per_side=3) if new_map else frame.magnets,
        bubbles=frames.top_bubbles(sweeps, req.max_bubbles) if full else frame.bubbles,
        model_label=engine.model_label(new_req.visible_bars[0], new_req.visible_bars[1])
        if full
        else frame.model_label,
        backend=frame.backend,
        sweeps=sweeps,
        sweeps_to=n,
        state_mark=engine.state_mark(),
    )
