"""Model check: does the heatmap predict where real liquidations happen, on this market's own data?

A dock with the scores of `liqdesk.core.calibration` (the same numbers as `liqdesk calibrate`) for
the chart's candles (its timeframe, as drawn) and the market's real liquidation tape (the bundled
sample's, or what a live source recorded), a reliability plot, and presets side by side so the user
can pick the one that scores best and switch the chart to it.

Scoring builds one engine per preset and bootstraps every score: seconds, so it runs on an executor
thread of its own (not the chart's model worker: frames keep coming while it runs). A generation
counter drops results that a newer run superseded; a data key marks results stale when the chart's
data changes under them (another symbol or timeframe, new bars, new liquidations).
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from html import escape

import numpy as np
import pyqtgraph as pg
from PySide6 import QtCore, QtGui, QtWidgets

from liqdesk.core.actual_map import PositionSamples
from liqdesk.core.calibration import (
    HOUR_MS,
    CalibrationConfig,
    CalibrationResult,
    Estimate,
    PathScore,
    PrecisionScore,
    RowScore,
    calibrate,
    compare_presets,
)
from liqdesk.core.engine import LiquidationEngine
from liqdesk.core.estimate_vs_actual import ComparisonSummary
from liqdesk.core.params import ModelParams
from liqdesk.core.series import Candles, Liquidations, OpenInterest
from liqdesk.core.timespan import span_text
from liqdesk.ui import data as data_mod
from liqdesk.ui import format as fmt
from liqdesk.ui import theme
from liqdesk.ui.actual_positions import PositionsHub, applies_to, market_coin
from liqdesk.ui.context import ChartContext, ChartLayer
from liqdesk.ui.jobs import SerialExecutor
from liqdesk.ui.model_check_actual import positions_note, score_actual, section_html
from liqdesk.ui.results import ResultInbox

HORIZONS: dict[str, int] = {"4h": 4 * HOUR_MS, "24h": 24 * HOUR_MS}
DEFAULT_HORIZON = "24h"
DENSITIES: list[tuple[str, str]] = [
    ("total", "total: all events vs long + short map (fair)"),
    ("long", "long: long liquidations vs long map"),
    ("short", "short: short liquidations vs short map"),
    ("matched", "matched: each side vs its own map"),
]
CURVE_COLORS = ["#f0b90b", "#5b9dff", "#2ee6a6", "#ff5c6c", "#d94fd6", "#fb8c3c"]
NO_CI = "[no CI]"
INTERVALS = (
    f"95 % block-bootstrap intervals (Wilson for precision at N); {NO_CI}: events in < 2 independent windows"
)
# Debounce for runs triggered by changing a setting (ticking three presets runs once).
AUTO_RUN_MS = 300

AXIS_LABELS = {"bottom": "densest cells, % of all cells", "left": "liquidated USD caught, %"}
# The reliability plot's data area stays dark in both themes, like the chart's (curves keep their contrast).
PLOT_AREA = theme.PANEL_BACKGROUND


def panel_style(p: dict[str, str]) -> str:
    """The panel's own styles, in the colours of palette `p` (theme.palette())."""
    return f"""
QLabel#dim {{ color: {p["text_dim"]}; }}
QLabel#warning {{ color: {p["warning_text"]}; background: {p["warning_bg"]}; border: 1px solid {p["warning_border"]};
                  border-radius: 3px; padding: 4px 6px; }}
QLabel#stale {{ color: {p["warning_text"]}; }}
QProgressBar {{ background: {p["control"]}; border: 1px solid {p["control_border"]}; border-radius: 3px;
                color: {p["text"]}; text-align: center; max-height: 16px; }}
QProgressBar::chunk {{ background: {p["selection"]}; }}
QPushButton:disabled {{ color: {p["text_dim"]}; }}
QCheckBox:disabled {{ color: {p["text_dim"]}; }}
"""


# ---------------------------------------------------------------------------------- computation


@dataclass(frozen=True, eq=False)
class CheckRequest:
    """Everything one run needs, captured on the UI thread (the series are never mutated in place:
    the window replaces them, so the job may read them while the chart moves on)."""

    generation: int
    candles: Candles
    open_interest: OpenInterest | None
    liquidations: Liquidations
    params: dict[str, ModelParams]
    config: CalibrationConfig
    data_key: tuple[object, ...]
    # the sampled positions of the market's coin, read on the job's thread (None: no positions for this market)
    positions: Callable[[], PositionSamples] | None = None


@dataclass(frozen=True, eq=False)
class CheckOutcome:
    request: CheckRequest
    results: dict[str, CalibrationResult]
    seconds: float
    thread_id: int  # where it was computed (tests check it was not the UI thread)
    actual: dict[str, ComparisonSummary] = field(default_factory=dict)  # estimate vs sampled positions
    positions_note: str = ""  # what the positions were ("" when there were none)


def score(
    req: CheckRequest, is_current: Callable[[int], bool], progress: Callable[[int, str], None]
) -> CheckOutcome | None:
    """The scores of every preset of the request, one preset at a time (for progress; the same scoring and
    snapshots as all at once); None when a newer run superseded this one (checked between presets)."""
    t0 = time.perf_counter()
    results: dict[str, CalibrationResult] = {}
    actual: dict[str, ComparisonSummary] = {}
    positions = req.positions() if req.positions is not None else None
    if positions is not None and positions.n_samples == 0:
        positions = None
    for i, (name, params) in enumerate(req.params.items()):
        if not is_current(req.generation):
            return None
        progress(i, name)
        if positions is None:
            results.update(
                compare_presets(req.candles, req.open_interest, req.liquidations, {name: params}, req.config)
            )
            continue
        # the same scoring as compare_presets, with the engine kept for the comparison with the positions
        engine = LiquidationEngine.build(req.candles, req.open_interest, params)
        results[name] = calibrate(engine, req.liquidations, req.config)
        actual[name] = score_actual(engine, positions, req.config)
    note = positions_note(positions) if positions is not None else ""
    return CheckOutcome(req, results, time.perf_counter() - t0, threading.get_ident(), actual, note)


# ---------------------------------------------------------------------------------- formatting


def _ci(e: Estimate, f: Callable[[float], str]) -> str:
    return f" [{f(e.low)}, {f(e.high)}]" if e.has_ci else f" {NO_CI}"


def pct_text(e: Estimate) -> str:
    if not math.isfinite(e.value):
        return "n/a"
    return f"{e.value * 100:.1f} %" + _ci(e, lambda x: f"{x * 100:.1f}")


def nats_text(e: Estimate) -> str:
    if not math.isfinite(e.value):
        return "n/a"
    return f"{e.value:+.3f}" + _ci(e, lambda x: f"{x:+.3f}")


def rho_text(e: Estimate) -> str:
    if not math.isfinite(e.value):
        return "n/a"
    return f"{e.value:+.2f}" + _ci(e, lambda x: f"{x:+.2f}")


def pp_text(e: Estimate) -> str:
    if not math.isfinite(e.value):
        return "n/a"
    return f"{e.value * 100:+.1f} pp" + _ci(e, lambda x: f"{x * 100:+.1f}")


def short_liq_verdict(row: RowScore) -> str:
    """A few words for the table; the full sentence (core's verdict) is the tooltip and below."""
    if not row.enough:
        return "too few events"
    lift = row.top[0].lift
    if lift.above(1.0):
        return "beats chance"
    if lift.below(1.0):
        return "worse than chance"
    return "≈ chance"


def short_magnet_verdict(r: CalibrationResult) -> str:
    m = r.magnet
    if not m.enough:
        return "too few snapshots"
    if m.difference.above(0.0):
        return "price drawn to cluster"
    if m.difference.below(0.0):
        return "less than random side"
    return "≈ random side"


# Table rows: (key, label, tooltip, text of a result for the chosen density row). A key of None is a
# section heading spanning the row.
Metric = tuple[str | None, str, str, Callable[[CalibrationResult, str], str] | None]


def _top(i: int, what: str) -> Callable[[CalibrationResult, str], str]:
    def text(r: CalibrationResult, row: str) -> str:
        t = r.rows[row].top[i]
        if what == "share":
            return pct_text(t.share)
        return f"{t.lift.value:.2f}×" if math.isfinite(t.lift.value) else "n/a"

    return text


def _path(text: Callable[[PathScore], str]) -> Callable[[CalibrationResult, str], str]:
    def cell(r: CalibrationResult, row: str) -> str:
        return text(r.all.path[row]) if row in r.all.path else "total, long or short only"

    return cell


def _precision(i: int, text: Callable[[PrecisionScore], str]) -> Callable[[CalibrationResult, str], str]:
    def cell(r: CalibrationResult, row: str) -> str:
        return text(r.all.precision[row][i]) if row in r.all.precision else "total, long or short only"

    return cell


def _metrics(config: CalibrationConfig) -> list[Metric]:
    q = [f"{x * 100:g}" for x in config.top_shares]
    rows: list[Metric] = [
        (None, "Real liquidations in the next {h}", "", None),
        ("events", "Events · windows · USD",
         "distinct events scored · independent windows of one horizon holding events · their liquidated USD",
         lambda r, row: f"{r.rows[row].n_events} · {r.rows[row].n_blocks} · {fmt.usd(r.rows[row].usd)}"),
    ]  # fmt: skip
    for i, qq in enumerate(q):
        rows += [
            (f"top{qq}_share", f"Top {qq} % cells: USD share",
             f"share of liquidated USD in the densest {qq} % of cells; chance: {qq} %", _top(i, "share")),
            # The lift is the share ÷ q, its interval the share's ÷ q: no second interval to show.
            (f"top{qq}_lift", f"  lift over chance ({qq} %)", "share ÷ chance; 1× = no better than chance",
             _top(i, "lift")),
        ]  # fmt: skip
    rows += [
        # Log-likelihoods are relative to the uniform null (0 by construction): the model's own
        # value is its lift over uniform, one row, not two.
        ("ll_uniform", "Log-lik lift, nats/event: vs uniform",
         "mean log-likelihood of the event prices, model − null; > 0: the map explains them better",
         lambda r, row: nats_text(r.rows[row].lift["uniform"])),
        ("ll_range", "  vs recent range", "null: uniform over the last day's high–low, widened by a quarter each side",
         lambda r, row: nats_text(r.rows[row].lift["range"])),
        ("ll_spot", "  vs Laplace at spot, fitted",
         "null: a Laplace centred on spot, its scale fitted on the events before each snapshot (out of sample)",
         lambda r, row: nats_text(r.rows[row].lift["spot_laplace_fit"])),
        ("ll_spot_best", "  vs Laplace at spot, best",
         "the same null with the scale that fits the scored events best: the strongest null of its family",
         lambda r, row: nats_text(r.rows[row].lift["spot_laplace_best"])),
        ("ll_mean", "  vs Laplace at lookback mean, fitted",
         "null: a Laplace centred on the lookback mean price, scale fitted out of sample",
         lambda r, row: nats_text(r.rows[row].lift["mean_laplace_fit"])),
        ("ll_mean_best", "  vs Laplace at lookback mean, best", "the same null with the best in-sample scale",
         lambda r, row: nats_text(r.rows[row].lift["mean_laplace_best"])),
        ("verdict_liq", "Verdict", "", lambda r, row: short_liq_verdict(r.rows[row])),
    ]  # fmt: skip
    rows += [
        (None, "Given the path: only the cells price traversed", "", None),
        ("path_rho", "Rank correlation ρ, map vs USD",
         "Spearman ρ between the map's density and liquidated USD per traversed cell, mean over snapshots; "
         "chance: 0", _path(lambda p: rho_text(p.rho_usd))),
        ("path_top", f"Top {config.path_top * 100:g} % of traversed cells: USD share",
         f"share of liquidated USD in the densest {config.path_top * 100:g} % of the cells price traversed; "
         f"chance: {config.path_top * 100:g} %", _path(lambda p: pct_text(p.share_usd))),
    ]  # fmt: skip
    rows.append((None, "Strongest zones hit by a liquidation within {h}", "", None))
    for i, n in enumerate(config.precision_n):
        rows += [
            (f"precision{n}", f"Precision at {n} zones",
             f"share of the map's {n} strongest separate zones (±tolerance wide) hit by a liquidation within the "
             "horizon; Wilson 95 % interval", _precision(i, lambda p: pct_text(p.precision))),
            (f"precision{n}_chance", "  random zones on the path",
             "the same number of zones of the same width placed at random where price went",
             _precision(i, lambda p: pct_text(Estimate(p.chance)).replace(f" {NO_CI}", ""))),
        ]  # fmt: skip
    rows += [
        (None, "Magnet test: largest cluster within {w} % (candles only)", "", None),
        ("magnet_n", "Snapshots · windows",
         "snapshots with a cluster in reach and a full horizon of candles after them",
         lambda r, row: f"{r.magnet.n_snapshots} · {r.magnet.n_blocks}"),
        ("magnet_hit", "Price touched the cluster", "within the horizon", lambda r, row: pct_text(r.magnet.hit)),
        ("magnet_random", "Same distance, random side", "the chance baseline",
         lambda r, row: pct_text(r.magnet.random_side)),
        ("magnet_diff", "Difference", "cluster − random side, percentage points",
         lambda r, row: pp_text(r.magnet.difference)),
        ("verdict_magnet", "Verdict", "", lambda r, row: short_magnet_verdict(r)),
    ]  # fmt: skip
    return rows


def _dim(text: str) -> str:
    return f"<span style='color:{theme.TEXT_DIM}'>{escape(text)}</span>"


def ranking_text(results: dict[str, CalibrationResult]) -> str:
    """What the comparison allows one to say (total density: the fair one). Intervals are per
    preset, not paired, so only intervals clear of each other count as a difference."""
    first = next(iter(results.values()))
    q = first.config.top_shares[0]
    total = {n: r.rows["total"] for n, r in results.items()}
    if not all(r.enough for r in results.values()):
        row = min(total.values(), key=lambda t: t.n_events)
        liq = (
            f"<b>Too few events to rank the presets on liquidations</b>: {row.n_events} events in "
            f"{row.n_blocks} independent {span_text(first.config.block_length_ms)} windows (need ≥ "
            f"{first.config.min_events} in ≥ {first.config.min_blocks}). Do not choose a preset from "
            "these numbers."
        )
    else:
        liq = _rank_line(
            {n: t.top[0].lift for n, t in total.items()}, f"top {q * 100:g} % lift", "on liquidations"
        )
    if all(r.magnet.enough for r in results.values()):
        mag = _rank_line(
            {n: r.magnet.difference for n, r in results.items()}, "difference", "on the magnet test"
        )
    else:
        mag = "Too few snapshots to rank the presets on the magnet test."
    return f"{liq}<br>{mag}<br>{_dim(INTERVALS + ', per preset, not paired.')}"


def _rank_line(est: dict[str, Estimate], what: str, where: str) -> str:
    best = max(est, key=lambda n: est[n].value if math.isfinite(est[n].value) else -math.inf)
    others = [e for n, e in est.items() if n != best]
    if others and all(est[best].has_ci and e.has_ci and est[best].low > e.high for e in others):
        return f"<b>Preset ‘{escape(best)}’ scores best {where}</b>: its {what} interval lies above every other's."
    return f"No preset is clearly better {where}: the intervals overlap (‘{escape(best)}’ has the highest {what})."


def clear_winner(results: dict[str, CalibrationResult]) -> str | None:
    """The preset whose total top-q lift interval lies above all others', if there is one."""
    if len(results) < 2 or not all(r.enough for r in results.values()):
        return None
    est = {n: r.rows["total"].top[0].lift for n, r in results.items()}
    best = max(est, key=lambda n: est[n].value)
    ok = all(est[best].has_ci and e.has_ci and est[best].low > e.high for n, e in est.items() if n != best)
    return best if ok else None


# --------------------------------------------------------------------------------------- the dock


class _ReliabilityPlot(pg.PlotWidget):
    # The scroll area sizes the body from preferred heights: pyqtgraph's default (480 px) would push
    # everything else out of view. The plot still takes whatever height is left over.
    def sizeHint(self) -> QtCore.QSize:
        return QtCore.QSize(400, 220)


class ModelCheckDock(QtWidgets.QDockWidget, ChartLayer):
    """The "Model check" panel. `run()` starts a computation; `computed` fires with its outcome. A chart
    layer: results go stale when the chart's data changes, and the scoring stops when the chart closes."""

    computed = QtCore.Signal(object)  # CheckOutcome, once it is on screen

    def __init__(self, chart: ChartContext, positions: PositionsHub | None = None) -> None:
        super().__init__("Model check", chart.widget)
        self.setObjectName("model_check_dock")
        self.chart = chart
        self.positions = (
            positions  # sampled positions (Hyperliquid): scored against the estimate when present
        )
        self.setStyleSheet(panel_style(theme.palette()))
        self.outcome: CheckOutcome | None = None
        self.generation = 0
        self.running = False
        self._metric_keys: list[str | None] = []
        self.open_action: QtGui.QAction | None = None  # set by whoever puts it in a menu
        # Seconds of work on a thread of its own: the chart's worker keeps drawing meanwhile.
        self._executor = SerialExecutor("liqdesk-model-check")
        self._inbox = ResultInbox(self)
        self._auto = QtCore.QTimer(self)
        self._auto.setSingleShot(True)
        self._auto.setInterval(AUTO_RUN_MS)
        self._auto.timeout.connect(self._auto_run)

        body = QtWidgets.QWidget()
        layout = QtWidgets.QVBoxLayout(body)
        layout.setContentsMargins(8, 6, 8, 8)
        layout.setSpacing(6)

        top = QtWidgets.QHBoxLayout()
        top.addWidget(QtWidgets.QLabel("Horizon"))
        self.horizon_box = QtWidgets.QComboBox()
        for name in HORIZONS:
            self.horizon_box.addItem(name, name)
        self.horizon_box.setCurrentIndex(self.horizon_box.findData(DEFAULT_HORIZON))
        self.horizon_box.setToolTip("Score each snapshot against the real liquidations of the next …")
        self.horizon_box.currentIndexChanged.connect(lambda _i: self._setting_changed())
        top.addWidget(self.horizon_box)
        top.addSpacing(8)
        top.addWidget(QtWidgets.QLabel("Map"))
        self.density_box = QtWidgets.QComboBox()
        for key, text in DENSITIES:
            self.density_box.addItem(text, key)
        self.density_box.setToolTip(
            "total is the fair comparison with the side-blind nulls; long/short/matched favour the "
            "model (it already knows longs liquidate below spot)"
        )
        self.density_box.currentIndexChanged.connect(lambda _i: self._show_outcome())
        top.addWidget(self.density_box, 1)
        self.run_button = QtWidgets.QPushButton("Run")
        self.run_button.setToolTip("Score the map on the chart's data now")
        self.run_button.clicked.connect(self.run)
        top.addWidget(self.run_button)
        layout.addLayout(top)

        # Progress and messages: shown while computing or when something went wrong.
        self.status_row = QtWidgets.QWidget()
        status = QtWidgets.QHBoxLayout(self.status_row)
        status.setContentsMargins(0, 0, 0, 0)
        self.progress = QtWidgets.QProgressBar()
        self.progress.setTextVisible(True)
        self.progress.setFixedWidth(220)
        status.addWidget(self.progress)
        self.status_label = QtWidgets.QLabel("")
        self.status_label.setObjectName("dim")
        self.status_label.setWordWrap(True)
        status.addWidget(self.status_label, 1)
        self.status_row.hide()
        layout.addWidget(self.status_row)

        self.data_label = QtWidgets.QLabel("")
        self.data_label.setObjectName("dim")
        self.data_label.setWordWrap(True)
        layout.addWidget(self.data_label)
        self.warning_label = QtWidgets.QLabel("")
        self.warning_label.setObjectName("warning")
        self.warning_label.setWordWrap(True)
        self.warning_label.hide()
        layout.addWidget(self.warning_label)
        self.stale_label = QtWidgets.QLabel("")
        self.stale_label.setObjectName("stale")
        self.stale_label.setWordWrap(True)
        self.stale_label.hide()
        layout.addWidget(self.stale_label)

        presets = QtWidgets.QHBoxLayout()
        self.compare_box = QtWidgets.QCheckBox("Compare presets")
        self.compare_box.setToolTip("Score several leverage presets on the same data, side by side")
        self.compare_box.toggled.connect(self._on_compare_toggled)
        presets.addWidget(self.compare_box)
        presets.addSpacing(6)
        self.preset_checks: dict[str, QtWidgets.QCheckBox] = {}
        try:
            names = data_mod.preset_names()
        except Exception:  # a broken user preset file: the window already said so
            names = [("coinglass", "Coinglass-like")]
        for name, label in names:
            box = QtWidgets.QCheckBox(name)
            box.setToolTip(label)
            box.setChecked(True)
            box.setEnabled(False)
            box.toggled.connect(lambda _on: self._setting_changed())
            self.preset_checks[name] = box
            presets.addWidget(box)
        presets.addStretch(1)
        # Choosing sits next to comparing: one row, so the plot keeps its height.
        self.use_box = QtWidgets.QComboBox()
        self.use_box.setToolTip("A preset scored below; preselected: the clear winner, if there is one")
        self.use_box.setMinimumContentsLength(9)
        self.use_box.currentIndexChanged.connect(lambda _i: self._refresh_in_use())
        presets.addWidget(self.use_box)
        self.use_button = QtWidgets.QPushButton("Use this preset")
        self.use_button.clicked.connect(self.use_selected_preset)
        presets.addWidget(self.use_button)
        layout.addLayout(presets)

        self.table = QtWidgets.QTableWidget(0, 1)
        self.table.verticalHeader().hide()
        self.table.setEditTriggers(QtWidgets.QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setSelectionMode(QtWidgets.QAbstractItemView.SelectionMode.NoSelection)
        self.table.setFocusPolicy(QtCore.Qt.FocusPolicy.NoFocus)
        self.table.setWordWrap(False)
        self.table.setShowGrid(False)
        self.table.verticalHeader().setDefaultSectionSize(20)
        self.table.horizontalHeader().setDefaultAlignment(QtCore.Qt.AlignmentFlag.AlignLeft)
        self.table.setHorizontalScrollMode(QtWidgets.QAbstractItemView.ScrollMode.ScrollPerPixel)
        self.table.setVerticalScrollBarPolicy(QtCore.Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        # All rows at once (the body scrolls as a whole if the window is short): a table that
        # scrolls on its own hides half the scores.
        self.table.setSizePolicy(QtWidgets.QSizePolicy.Policy.Expanding, QtWidgets.QSizePolicy.Policy.Fixed)
        layout.addWidget(self.table)

        self.verdict_label = QtWidgets.QLabel("")
        self.verdict_label.setWordWrap(True)
        self.verdict_label.setTextFormat(QtCore.Qt.TextFormat.RichText)
        self.verdict_label.setAlignment(QtCore.Qt.AlignmentFlag.AlignTop | QtCore.Qt.AlignmentFlag.AlignLeft)
        layout.addWidget(self.verdict_label)
        self.actual_label = QtWidgets.QLabel("")
        self.actual_label.setWordWrap(True)
        self.actual_label.setTextFormat(QtCore.Qt.TextFormat.RichText)
        self.actual_label.setTextInteractionFlags(QtCore.Qt.TextInteractionFlag.TextSelectableByMouse)
        self.actual_label.hide()
        layout.addWidget(self.actual_label)

        self.plot = _ReliabilityPlot()
        self.plot.setMinimumHeight(190)
        self.plot.setMenuEnabled(False)
        self.plot.setMouseEnabled(x=False, y=False)
        self.plot.hideButtons()
        pi = self.plot.getPlotItem()
        self.plot.setToolTip(
            "Reliability: the share of liquidated USD caught by the densest x % of cells, pooled over "
            "snapshots; chance is the diagonal, a perfect map jumps to 100 % at once"
        )
        for side, text in AXIS_LABELS.items():
            pi.setLabel(side, text)
        pi.getViewBox().setBackgroundColor(PLOT_AREA)
        pi.showGrid(x=True, y=True, alpha=0.12)
        pi.setRange(xRange=(0, 100), yRange=(0, 100), padding=0.02)
        pi.getViewBox().disableAutoRange()  # both axes are shares: always 0–100 %, curves or not
        # Bottom right: below the chance line, where a useful map's curves never go.
        self.legend = pi.addLegend(offset=(-8, -8), labelTextColor=theme.TEXT, labelTextSize="8pt")
        self.legend.setBrush(pg.mkBrush(13, 16, 23, 220))
        self.chance_curve = pi.plot([0, 100], [0, 100], pen=pg.mkPen(theme.TEXT_DIM, width=1,
                                    style=QtCore.Qt.PenStyle.DashLine), name="chance (y = x)")  # fmt: skip
        for x in (10, 25):  # the table's two cell shares
            pi.addItem(pg.InfiniteLine(x, angle=90, pen=pg.mkPen(60, 70, 90, 160, width=1)))
        self.curves: dict[str, pg.PlotDataItem] = {}
        self.plot_note = pg.TextItem("", color=theme.TEXT_DIM, anchor=(0.5, 0.5))
        self.plot_note.setPos(50, 70)
        pi.addItem(self.plot_note)
        layout.addWidget(self.plot, 1)

        scroll = QtWidgets.QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QtWidgets.QFrame.Shape.NoFrame)
        scroll.setHorizontalScrollBarPolicy(QtCore.Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        scroll.setWidget(body)
        self.setWidget(scroll)
        self._reset_table()
        self._describe_data()
        self._refresh_in_use()
        self.visibilityChanged.connect(self._on_visibility)

    # ------------------------------------------------------------------ chart layer

    def engine_built(self) -> None:
        self._on_chart_changed()

    def bar_updated(self, candles: Candles, appended: bool) -> None:
        self._on_chart_changed()

    def chart_closing(self) -> None:
        self.shutdown()  # the job holds no lock; waiting keeps it from outliving the window

    # ------------------------------------------------------------------ requests

    def horizon(self) -> str:
        return str(self.horizon_box.currentData())

    def set_horizon(self, name: str) -> None:
        self.horizon_box.setCurrentIndex(self.horizon_box.findData(name))

    def config(self) -> CalibrationConfig:
        return CalibrationConfig(horizon_ms=HORIZONS[self.horizon()])

    def set_compare(self, on: bool, presets: list[str] | None = None) -> None:
        for name, box in self.preset_checks.items():
            box.blockSignals(True)
            box.setChecked(presets is None or name in presets)
            box.blockSignals(False)
        self.compare_box.setChecked(on)

    def params_to_score(self) -> dict[str, ModelParams]:
        """The chart's own parameters, or (comparing) each ticked preset with the chart's other model
        settings, as `liqdesk calibrate --compare` applies the model options to every preset."""
        current = self.chart.params()
        if not self.compare_box.isChecked():
            return {current.preset: current}
        from liqdesk.feeds.presets import load_presets

        presets = load_presets()
        out: dict[str, ModelParams] = {}
        for name, box in self.preset_checks.items():
            if box.isChecked() and name in presets:
                out[name] = current if name == current.preset else current.with_(tiers=presets[name].tiers,
                                                                                 preset=name)  # fmt: skip
        return out

    def data_key(self) -> tuple[object, ...]:
        m, c = self.chart.market, self.chart.candles
        if m is None or c is None:
            return ()
        last = int(c.open_time[-1]) if len(c) else 0
        return (id(m), m.symbol, c.timeframe, len(c), last, len(m.liquidations))

    def run(self) -> bool:
        """Start scoring the chart's data in the background; False when there is nothing to score."""
        self._auto.stop()
        market, candles = self.chart.market, self.chart.candles
        if market is None or candles is None or not len(candles):
            self._message("no data loaded")
            return False
        try:
            params = self.params_to_score()
        except Exception as exc:
            self._message(f"cannot read the model parameters: {exc}")
            return False
        if not params:
            self._message("tick at least one preset to compare")
            return False
        self.generation += 1
        request = CheckRequest(
            generation=self.generation, candles=candles, open_interest=market.open_interest,
            liquidations=market.liquidations, params=params, config=self.config(), data_key=self.data_key(),
            positions=self._positions_reader(),
        )  # fmt: skip
        generation = request.generation

        def progress(done: int, name: str) -> None:
            self._inbox.post(lambda: self._on_progress(generation, done, name))

        job = self._executor.submit(lambda: score(request, lambda g: g == self.generation, progress),
                                    supersede="score")  # fmt: skip
        self._inbox.deliver(job, self._on_finished,
                            lambda exc: self._on_failed(generation, f"{type(exc).__name__}: {exc}"))  # fmt: skip
        self.running = True
        self.progress.setRange(0, len(params))
        self.progress.setValue(0)
        self.progress.setFormat("computing…")
        self.progress.show()
        self.status_row.show()
        self.status_label.setText(f"scoring {', '.join(params)} on {len(candles):,} {candles.timeframe} bars")
        self._describe_data()
        return True

    def _positions_reader(self) -> Callable[[], PositionSamples] | None:
        """What reads the sampled positions of the chart's market on the job's thread (None: none for it)."""
        hub, market, c = self.positions, self.chart.market, self.chart.candles
        if hub is None or hub.history is None or not applies_to(market) or c is None or not len(c):
            return None
        assert market is not None
        read, coin = hub.history, market_coin(market)
        start, end = int(c.open_time[0]), int(c.close_time[-1]) + 1
        return lambda: read(coin, start, end)

    def _message(self, text: str) -> None:
        self.progress.hide()
        self.status_label.setText(text)
        self.status_row.show()

    def wait_idle(self, msecs: int = 30_000) -> bool:
        return self._executor.wait_idle(msecs / 1000.0)

    def shutdown(self) -> None:
        self.generation += 1  # a running job stops at its next preset and its result is dropped
        self._executor.shutdown(5.0)

    def use_selected_preset(self) -> None:
        name = self.use_box.currentData()
        if not name:
            return
        self.chart.use_preset(str(name))
        self.chart.flash(f"preset {name} (from the model check)")
        self._refresh_in_use()

    # ------------------------------------------------------------------ results

    def _on_progress(self, generation: int, done: int, name: str) -> None:
        if generation != self.generation:
            return
        self.progress.setValue(done)
        self.progress.setFormat(f"computing… {name} ({done + 1}/{self.progress.maximum()})")

    def _on_failed(self, generation: int, message: str) -> None:
        if generation != self.generation:
            return
        self.running = False
        self._message(f"model check failed: {message}")

    def _on_finished(self, outcome: CheckOutcome | None) -> None:
        if outcome is None or outcome.request.generation != self.generation:
            return  # a newer run is on its way
        self.running = False
        self.status_row.hide()
        self.outcome = outcome
        winner = clear_winner(outcome.results)
        self.use_box.blockSignals(True)
        self.use_box.clear()
        for name in outcome.results:
            self.use_box.addItem(name, name)
        pick = winner or self.chart.settings.preset
        self.use_box.setCurrentIndex(max(self.use_box.findData(pick), 0))
        self.use_box.blockSignals(False)
        self._show_outcome()
        self._describe_data()
        self._on_chart_changed()
        self.computed.emit(outcome)

    def density(self) -> str:
        return str(self.density_box.currentData())

    def _reset_table(self) -> None:
        self._fill_table(None)

    def _fill_table(self, outcome: CheckOutcome | None) -> None:
        config = outcome.request.config if outcome else self.config()
        results = outcome.results if outcome else {}
        metrics = _metrics(config)
        row_name = self.density()
        t = self.table
        t.clearSpans()
        t.setColumnCount(1 + max(len(results), 1))
        heads = ["", *(results or ["—"])]
        t.setHorizontalHeaderLabels(heads)
        for j, name in enumerate(results, start=1):
            item = t.horizontalHeaderItem(j)
            if item is not None:
                item.setToolTip(f"preset {name}; its own 95 % block-bootstrap intervals")
        t.setRowCount(len(metrics))
        self._metric_keys = [m[0] for m in metrics]
        head_font = QtGui.QFont(t.font())
        head_font.setBold(True)
        for i, (key, label, tip, text) in enumerate(metrics):
            if key is None:
                heading = label.format(h=span_text(config.horizon_ms), w=f"{config.magnet_within_pct:g}")
                if label.startswith("Real") and row_name != "total":
                    heading += f" · {row_name} map"
                item = QtWidgets.QTableWidgetItem(heading)
                item.setFont(head_font)
                item.setForeground(QtGui.QColor(theme.palette()["heading"]))
                t.setItem(i, 0, item)
                t.setSpan(i, 0, 1, t.columnCount())
                continue
            item = QtWidgets.QTableWidgetItem(label)
            item.setForeground(QtGui.QColor(theme.TEXT_DIM))
            item.setToolTip(tip)
            t.setItem(i, 0, item)
            for j, (_name, r) in enumerate(results.items(), start=1):
                assert text is not None
                cell = QtWidgets.QTableWidgetItem(text(r, row_name))
                if key == "verdict_liq":
                    cell.setToolTip(r.rows[row_name].verdict)
                elif key == "verdict_magnet":
                    cell.setToolTip(r.magnet.verdict)
                t.setItem(i, j, cell)
        header = t.horizontalHeader()
        header.setSectionResizeMode(0, QtWidgets.QHeaderView.ResizeMode.ResizeToContents)
        for j in range(1, t.columnCount()):
            header.setSectionResizeMode(j, QtWidgets.QHeaderView.ResizeMode.ResizeToContents)
        header.setStretchLastSection(True)
        # Fixed to its rows, so every score shows without scrolling the table itself.
        rows_h = sum(t.rowHeight(i) for i in range(t.rowCount()))
        t.setFixedHeight(rows_h + header.sizeHint().height() + 2 * t.frameWidth() + 2)
        self._refresh_in_use()

    def apply_theme(self) -> None:
        """Follow the current theme (after theme.set_theme): panel styles, the plot's frame and
        axes, table headings. The plot's data area stays dark, as the chart's does."""
        p = theme.palette()
        self.setStyleSheet(panel_style(p))
        self.plot.setBackground(p["window"])
        pi = self.plot.getPlotItem()
        for side, text in AXIS_LABELS.items():
            ax = pi.getAxis(side)
            ax.setPen(p["axis"])
            ax.setTextPen(p["axis"])
            pi.setLabel(side, text, color=p["axis"])
        self._show_outcome()

    def _show_outcome(self) -> None:
        o = self.outcome
        self._fill_table(o)
        self._plot(o)
        if o is None:
            self.verdict_label.setText("")
            self.actual_label.hide()
            return
        self._show_actual(o)
        results = o.results
        if len(results) > 1:
            self.verdict_label.setText(ranking_text(results))
        else:
            r = next(iter(results.values()))
            row = self.density()
            self.verdict_label.setText(
                f"<b>Liquidations</b> ({row}): {escape(r.rows[row].verdict)}<br>"
                f"<b>Magnet</b>: {escape(r.magnet.verdict)}"
                f"<br>{_dim(INTERVALS + '.')}"
            )

    def _show_actual(self, o: CheckOutcome) -> None:
        html = section_html(o.actual, o.positions_note, theme.palette()["text_dim"])
        self.actual_label.setText(html)
        self.actual_label.setVisible(bool(html))

    def _plot(self, outcome: CheckOutcome | None) -> None:
        for item in self.curves.values():
            self.plot.getPlotItem().removeItem(item)
            self.legend.removeItem(item)
        self.curves.clear()
        if outcome is None:
            self.plot_note.setText("run the check to see the curve")
            return
        row = self.density()
        empty = True
        for k, (name, r) in enumerate(outcome.results.items()):
            c = r.reliability[row]
            if c.n_events == 0 or not np.all(np.isfinite(c.usd_share)):
                continue
            empty = False
            pen = pg.mkPen(CURVE_COLORS[k % len(CURVE_COLORS)], width=2)
            item = self.plot.plot(c.cell_share * 100.0, c.usd_share * 100.0, pen=pen,
                                  name=f"{name} ({c.n_events} events)")  # fmt: skip
            self.curves[name] = item
        self.plot_note.setText("no real liquidations to plot" if empty else "")

    # ------------------------------------------------------------------ state shown

    def _describe_data(self) -> None:
        m, c = self.chart.market, self.chart.candles
        if m is None or c is None:
            self.data_label.setText("no data loaded")
            return
        liqs = m.liquidations
        parts = [f"{m.symbol} · {c.timeframe} bars as on the chart · {len(liqs):,} real "
                 f"liquidation{'s' if len(liqs) != 1 else ''} in the tape"]  # fmt: skip
        if self.outcome is not None:
            first = next(iter(self.outcome.results.values()))
            cfg = first.config
            parts[-1] += f", {first.n_tape_events:,} inside the scored horizons"
            parts.append(
                f"{first.n_snapshots} snapshots every {span_text(cfg.every_ms)}, lookback "
                f"{span_text(cfg.lookback_ms)} · {self.outcome.seconds:.1f} s"
            )
        self.data_label.setText(" · ".join(parts))
        self.data_label.setToolTip(m.label)
        if not len(liqs):
            actual = self.outcome is not None and bool(self.outcome.actual)
            self.warning_label.setText(
                "This data has no real liquidations, so there is nothing to score the map against: the "
                "liquidation scores and the reliability plot stay empty. The magnet test still runs, from "
                "candles. "
                + ("Below, the map is scored against the sampled positions instead." if actual else
                   "A live market records liquidations as they happen; the bundled btcusdt-1m-2025-01 sample "
                   "has real ones.")
            )  # fmt: skip
            self.warning_label.setToolTip(m.label)
            self.warning_label.show()
        elif self.outcome is not None and next(iter(self.outcome.results.values())).n_tape_events == 0:
            self.warning_label.setText(
                "None of the tape's liquidations falls inside the scored horizons (they are older or "
                "newer than these candles): the liquidation scores stay empty. The magnet test still runs."
            )
            self.warning_label.show()
        else:
            self.warning_label.hide()

    def _refresh_in_use(self) -> None:
        current = self.chart.settings.preset
        t = self.table
        if self.outcome is not None:
            for j, name in enumerate(self.outcome.results, start=1):
                item = t.horizontalHeaderItem(j)
                if item is not None:
                    item.setText(f"{name}  ● in use" if name == current else name)
        chosen = self.use_box.currentData()
        self.use_button.setEnabled(bool(chosen) and chosen != current)
        self.use_button.setToolTip(
            "this preset is on the chart" if chosen == current else "Switch the chart's leverage preset"
        )

    def _on_chart_changed(self) -> None:
        self._refresh_in_use()
        if self.outcome is None:
            self._describe_data()
            return
        if self.outcome.request.data_key != self.data_key():
            self.stale_label.setText("The chart's data changed since this run (symbol, timeframe, new bars "
                                     "or liquidations): Run again to score it.")  # fmt: skip
            self.stale_label.show()
        else:
            self.stale_label.hide()

    # ------------------------------------------------------------------ settings and visibility

    def _on_compare_toggled(self, on: bool) -> None:
        for box in self.preset_checks.values():
            box.setEnabled(on)
        self._setting_changed()

    def _setting_changed(self) -> None:
        if self.isVisible() or self.outcome is not None:
            self._auto.start()
        if self.outcome is None:
            self._fill_table(None)

    def _auto_run(self) -> None:
        if self.isVisible():
            self.run()

    def _on_visibility(self, visible: bool) -> None:
        if visible and self.outcome is None and not self.running:
            self.run()

    # ------------------------------------------------------------------ for tests and scripts

    def cell_text(self, key: str, preset: str) -> str:
        """The table's text for a metric key (e.g. "top10_share") and a preset column."""
        assert self.outcome is not None
        col = list(self.outcome.results).index(preset) + 1
        item = self.table.item(self._metric_keys.index(key), col)
        return item.text() if item is not None else ""

    def column_presets(self) -> list[str]:
        return list(self.outcome.results) if self.outcome is not None else []
