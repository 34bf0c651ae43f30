"""The frame pipeline's Qt side: asks the worker for the frames the view needs and puts them on the chart.

The decisions (which frame, whether to show a result, when to retry) are `FrameScheduler`'s, in Qt-free
code (liqdesk.ui.frame_policy); this class reads the chart's geometry for it, sends its requests to the model
worker and applies what comes back: the frame (heatmap, map, bubbles, model label), a re-quantised image, a
model error (once, with how it will be retried).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from PySide6 import QtCore

from liqdesk.core.engine import LiquidationEngine
from liqdesk.core.params import ModelParams
from liqdesk.core.series import Candles, OpenInterest
from liqdesk.ui.chart import ChartWidget
from liqdesk.ui.context import ChartContext
from liqdesk.ui.frame_policy import FrameScheduler, FrameStyle, ViewGeometry
from liqdesk.ui.frames import TWO_TONE, Frame
from liqdesk.ui.statusbar import ChartStatusBar
from liqdesk.ui.view_settings import ViewSettings
from liqdesk.ui.worker import ModelWorker


class FramePresenter(QtCore.QObject):
    def __init__(
        self,
        chart: ChartWidget,
        worker: ModelWorker,
        context: ChartContext,
        status: ChartStatusBar,
        settings: ViewSettings,
        on_applied: Callable[[Frame], None],
    ) -> None:
        super().__init__(chart)
        self.chart, self.worker, self.context, self.status = chart, worker, context, status
        self.settings = settings
        self.on_applied = on_applied  # after a frame is on screen (readout, layers, listeners)
        self.scheduler = FrameScheduler()
        worker.engine_built.connect(self._on_engine_built)
        worker.frame_ready.connect(self._on_frame)
        worker.image_ready.connect(self._on_image)
        worker.failed.connect(self._on_failed)
        worker.engine_lost.connect(self._on_engine_lost)
        worker.bar_applied.connect(self._on_bar_applied)
        chart.view_changed.connect(self.request_frame)

    @property
    def frame(self) -> Frame | None:
        return self.scheduler.frame

    # ------------------------------------------------------------------ geometry

    def view(self) -> ViewGeometry:
        return ViewGeometry(self.chart.visible_bars(), self.chart.visible_prices(), self.chart.plot_size_px(),
                            self.chart.bar_count())  # fmt: skip

    def style(self) -> FrameStyle:
        s = self.settings
        return FrameStyle(s.transform, s.levels if s.lock_levels else None, s.colormap, s.bin_px, s.max_bins)

    def covers_view(self) -> bool:
        """The frame on screen shows the view as it is now (no new frame needed)."""
        return self.scheduler.covers(self.view(), self.settings.bin_px)

    # ------------------------------------------------------------------ requests

    def rebuild(self, candles: Candles, open_interest: OpenInterest | None, params: ModelParams) -> None:
        """A new engine for the bars shown; every result for the data before is stale from now on."""
        generation = self.scheduler.new_data()
        self.context.new_model(generation)
        self.status.set_model("building model…")
        if self.chart.shown_frame() is None:  # nothing drawn yet: say what is coming instead of an empty plot
            self.chart.show_notice("building the liquidation model…")
        self.worker.build(generation, candles, open_interest, params)

    def rebuild_with(self, make: Callable[[object], object]) -> None:
        """A new engine made on the worker by `make(previous engine)` (several venues read as one)."""
        generation = self.scheduler.new_data()
        self.context.new_model(generation)
        self.status.set_model("building model…")
        if self.chart.shown_frame() is None:
            self.chart.show_notice("building the liquidation model…")
        self.worker.build_with(generation, make)

    def adopt(self, make: Callable[[], LiquidationEngine]) -> None:
        """An engine made on the worker (a replay's) for the bars shown; results for the data before are stale."""
        generation = self.scheduler.new_data()
        self.context.new_model(generation)
        self.status.set_model("building model…")
        self.worker.adopt(generation, make)

    def send_step(self, move: Callable[[], LiquidationEngine], bars: int = 1) -> None:
        """A replay's step forward by `bars` bars through the worker (patched like live bars, one frame)."""
        self.scheduler.bar_sent()
        self.worker.step_engine(self.scheduler.data_generation, move, bars)

    def forget_data(self) -> None:
        """No data to show: results for what was shown before are dropped."""
        self.context.new_model(self.scheduler.new_data())

    def request_frame(self, force: bool = False) -> None:
        req = self.scheduler.request(self.view(), self.style(), force)
        if req is not None:
            self.worker.request_frame(self.scheduler.data_generation, req)

    def send_bar(self, row: Candles, oi_close: float | None, revise: bool, venue: str | None = None) -> bool:
        """A live bar to the engine (`venue`: another venue's of a venue set); False when the engine was lost
        (the caller rebuilds it instead)."""
        if self.scheduler.bar_sent():
            return False
        self.worker.apply_bar(self.scheduler.data_generation, row, oi_close, revise, venue)
        if self.scheduler.model_error:
            self.request_frame(force=True)  # the retry of a failed frame
        return True

    def requantise(self, levels: tuple[float, float]) -> None:
        frame = self.frame
        if frame is None:
            return
        if frame.request.two_tone != (self.settings.colormap == TWO_TONE):
            self.request_frame(force=True)  # the colour mode is changing: the new frame has the levels
            return
        self.worker.request_requantise(
            self.scheduler.data_generation, frame.request.generation, levels, self.settings.colormap
        )

    def close(self) -> None:
        self.scheduler.close()
        self.context.model_lost()

    # ------------------------------------------------------------------ results

    def _on_engine_built(self, generation: int, _engine: object) -> None:
        if self.scheduler.engine_built(generation):
            self.context.model_built()
            self.request_frame(force=True)

    def _on_engine_lost(self, generation: int) -> None:
        self.scheduler.lost(generation)
        if generation == self.scheduler.data_generation:
            self.context.model_lost()

    def _on_bar_applied(self, generation: int, _n_bars: int) -> None:
        if self.scheduler.bar_applied(generation):
            self.request_frame()  # the patched frame (sent before this signal) is in; anything else to draw?

    def _on_frame(self, generation: int, frame: Frame) -> None:
        had_error = bool(self.scheduler.model_error)
        if not self.scheduler.accept(generation, frame):
            return  # another data set's, or older than the one shown
        if had_error:
            self.status.clear_model_error()  # recovered
        s = self.settings
        if s.lock_levels and s.levels is None:
            s.levels = frame.levels
        same_mode = frame.request.two_tone == (s.colormap == TWO_TONE)
        cmap = s.colormap if same_mode else frame.request.colormap
        if cmap != self.chart.colormap:
            self.chart.set_colormap(cmap)
        self.chart.apply_frame(frame)
        locked = s.levels if s.lock_levels else None
        if locked is not None and locked != frame.levels:
            # requested before the user set the levels (a colour bar drag while it was computed)
            self.requantise(locked)
        self.status.set_model(frame.model_label)
        self.chart.show_notice(None if frame.image.size else "no data in this range")
        self.context.frame_shown(frame)
        self.on_applied(frame)
        # The view may have moved while this frame was computed.
        if not self.covers_view():
            QtCore.QTimer.singleShot(0, self.request_frame)

    def _on_image(
        self, generation: int, frame_generation: int, image: np.ndarray, levels: tuple[float, float]
    ) -> None:
        frame = self.frame
        if (generation != self.scheduler.data_generation or frame is None
                or frame.request.generation != frame_generation):  # fmt: skip
            return
        self.chart.apply_image(image, levels)

    def _on_failed(self, message: str) -> None:
        """Shown once (the worker logs it once), kept in the status bar until a frame comes through; the next
        live bar retries, so the heatmap never silently stops."""
        if not self.scheduler.failed(message):
            return
        market = self.context.market
        retry = "retrying with the next bar" if market is not None and not market.offline else (
            "change the view to retry")  # fmt: skip
        self.status.show_model_error(message, retry)
