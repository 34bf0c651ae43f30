"""The magnet screener dock: one row per watched market, where its liquidation clusters sit against price.

Rows come from a `core.market_watch.MarketWatch` (the engines of `liqdesk screen`), kept on a thread of its own
(`liqdesk-screener`), never on the UI thread: every market's engine stays warm, each live bar patches it at
once and its row is recomputed at most once a second (the watch's budget). The markets watched:

- every chart tab's market, fed by a chart layer on the tab: the bars it loads (a market, a timeframe) load
  the market again, each live bar goes to the watch; a tab in replay does not feed it (the screener is live);
- offline, the bundled samples (one row each), so the screener works without a network;
- a market picked in the search box (the venues' market lists, `feeds.market_list`) opens in a tab, which
  then feeds its row.

A row of a live market whose data is older than two bars says STALE with its age (a tab closed, a feed
down); sample and file rows say what they are. Column headers sort (`core.screener.rank`: a second click
turns the order); a double-click opens the market in a tab (or shows its tab).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from PySide6 import QtCore, QtGui, QtWidgets

from liqdesk.core.market_watch import MarketWatch, WatchBudget
from liqdesk.core.params import ModelParams
from liqdesk.core.screener import COLUMNS, DEFAULT_SORT, Cluster, ScreenRow, rank
from liqdesk.core.series import Candles
from liqdesk.core.timespan import utc_text
from liqdesk.feeds.market_data import MarketData
from liqdesk.feeds.market_list import MarketLists
from liqdesk.ui import format as fmt
from liqdesk.ui.context import ChartContext, ChartLayer
from liqdesk.ui.jobs import SerialExecutor
from liqdesk.ui.results import ResultInbox

log = logging.getLogger(__name__)

REFRESH_MS = 1_000
# (header, sort column of core.screener.COLUMNS, tooltip)
HEADERS: list[tuple[str, str, str]] = [
    ("market", "market", "market (double-click: open it in a tab)"),
    ("price", "price", "last price (close of the newest bar)"),
    ("long ↓ price", "long_price", "nearest long cluster below price (≥ 3 % of the visible liquidity)"),
    ("dist", "long_dist", "its distance from price"),
    ("notional", "long_usd", "its estimated notional"),
    ("share", "long_share", "its share of the market's visible liquidity"),
    ("short ↑ price", "short_price", "nearest short cluster above price"),
    ("dist", "short_dist", "its distance from price"),
    ("notional", "short_usd", "its estimated notional"),
    ("share", "short_share", "its share of the visible liquidity"),
    ("largest ±5 %", "largest_price", "the largest cluster within ±5 % of price, either side"),
    ("dist", "largest_dist", "its distance from price"),
    ("notional", "largest_usd", "its estimated notional"),
    ("share", "largest_share", "its share of the visible liquidity"),
    ("model", "model", "the model in use (OI model, volume model)"),
    ("updated", "age", "how old the market's data is; STALE: older than two bars"),
]
STALE_COLOUR = "#ef5350"


@dataclass
class WatchedMarket:
    """What the UI knows of a watched market (the watch itself lives on the screener's thread)."""

    name: str
    symbol: str  # what a tab opens (the window's symbol)
    live: bool  # data that should keep coming (staleness applies); samples and files do not
    source: str  # "tab", "sample"
    shown_in: set[int] = field(default_factory=set)  # id() of the tabs showing it


class _TabFeed(ChartLayer):
    """A chart tab's bars to the screener (not while the tab replays)."""

    def __init__(self, dock: ScreenerDock, context: ChartContext, replaying: Callable[[], bool]) -> None:
        self.dock, self.context, self.replaying = dock, context, replaying
        self.name: str | None = None

    def bars_loaded(self, candles: Candles) -> None:
        if self.replaying():
            return
        m = self.context.market
        if m is None or len(candles) < 2:
            return
        self.name = self.dock.watch_market(m, candles, self.context.symbol, id(self))

    def bar_updated(self, candles: Candles, appended: bool) -> None:
        if self.replaying() or self.name is None:
            return
        self.dock.market_bar(self.name, candles.take(slice(len(candles) - 1, None)))

    def chart_closing(self) -> None:
        if self.name is not None:
            self.dock.tab_closed(self.name, id(self))


def market_name(market: MarketData, symbol: str) -> str:
    """A row's name: the venue and symbol, or what the sample / file is."""
    if market.source_kind == "sample":
        from liqdesk.feeds.sample import sample_name

        return f"sample {sample_name(market) or market.symbol}"
    if market.source_kind == "file":
        return f"file {market.symbol}"
    return f"{market.exchange} {market.symbol}"


class ScreenerDock(QtWidgets.QDockWidget):
    """The screener's table, its search box and the watch's thread (see the module)."""

    rows_shown = QtCore.Signal()  # the table was refilled (tests wait on it)

    def __init__(
        self,
        params: ModelParams,
        open_market: Callable[[str], bool],
        parent: QtWidgets.QWidget | None = None,
        *,
        clock: Callable[[], int] | None = None,
    ) -> None:
        super().__init__("Magnet screener", parent)
        self.setObjectName("ScreenerDock")
        self.open_market = open_market  # the window's symbol → True when shown in a tab
        self.clock = clock or (lambda: time.time_ns() // 1_000_000)
        self.executor = SerialExecutor("liqdesk-screener")
        self._watch = MarketWatch(params, WatchBudget())  # on the executor's thread only
        self._inbox = ResultInbox(self)
        self.markets: dict[str, WatchedMarket] = {}
        self.rows: list[ScreenRow] = []
        self.stale: dict[str, bool] = {}
        self.sort_column = DEFAULT_SORT
        self.descending: bool | None = None  # None: the column's natural order
        self.row_ms: list[float] = []  # worker time of each refresh (the budget's cost)
        self._samples_loaded = False
        self._lists: MarketLists | None = None
        self._sized = False
        self.toggle_action: QtGui.QAction | None = None

        body = QtWidgets.QWidget()
        layout = QtWidgets.QVBoxLayout(body)
        layout.setContentsMargins(4, 4, 4, 4)
        top = QtWidgets.QHBoxLayout()
        self.search = QtWidgets.QLineEdit()
        self.search.setPlaceholderText("add a market: search the venues' lists (e.g. sol, ETHUSDT)…")
        self.search.setClearButtonEnabled(True)
        self.search.returnPressed.connect(self._search_entered)
        self._completer_model = QtCore.QStringListModel(self)
        completer = QtWidgets.QCompleter(self._completer_model, self)
        completer.setCaseSensitivity(QtCore.Qt.CaseSensitivity.CaseInsensitive)
        completer.setFilterMode(QtCore.Qt.MatchFlag.MatchContains)
        completer.activated.connect(self._open_hit)
        self.search.setCompleter(completer)
        self.search.textEdited.connect(self._search_edited)
        self.summary = QtWidgets.QLabel("")
        top.addWidget(self.search, 1)
        top.addWidget(self.summary)
        layout.addLayout(top)
        self.table = QtWidgets.QTableWidget(0, len(HEADERS))
        self.table.setHorizontalHeaderLabels([h for h, _, _ in HEADERS])
        for i, (_, _, tip) in enumerate(HEADERS):
            item = self.table.horizontalHeaderItem(i)
            if item is not None:
                item.setToolTip(tip)
        self.table.setEditTriggers(QtWidgets.QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setSelectionBehavior(QtWidgets.QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.verticalHeader().setVisible(False)
        self.table.verticalHeader().setDefaultSectionSize(22)
        self.table.horizontalHeader().setSectionsClickable(True)
        self.table.horizontalHeader().setSortIndicatorShown(True)
        self.table.horizontalHeader().sectionClicked.connect(self._header_clicked)
        self.table.cellDoubleClicked.connect(lambda r, _c: self.open_row(r))
        layout.addWidget(self.table, 1)
        note = QtWidgets.QLabel(
            "Clusters are model estimates (open interest, volume, leverage), not exchange data; "
            "share = of the market's liquidity inside its 3-day price range."
        )
        note.setObjectName("dim")
        note.setWordWrap(True)
        layout.addWidget(note)
        self.setWidget(body)
        self._timer = QtCore.QTimer(self)
        self._timer.setInterval(REFRESH_MS)
        self._timer.timeout.connect(self.refresh)
        self.visibilityChanged.connect(self._on_visible)

    # ------------------------------------------------------------------ markets

    def add_tab(self, context: ChartContext, replaying: Callable[[], bool]) -> None:
        """Watch a chart tab's market (its bars and live updates)."""
        feed = _TabFeed(self, context, replaying)
        context.add_layer(feed)
        if context.market is not None and context.candles is not None and not replaying():
            feed.bars_loaded(context.candles)

    def watch_market(self, market: MarketData, candles: Candles, symbol: str, tab: int) -> str:
        name = market_name(market, symbol)
        w = self.markets.get(name)
        if w is None:
            w = self.markets[name] = WatchedMarket(name, symbol, live=not market.offline, source="tab")
        w.live, w.symbol = not market.offline, symbol  # the tab's name for it opens that tab
        w.shown_in.add(tab)
        oi, now = market.open_interest, self.clock()
        updated = now if not market.offline else int(candles.close_time[-1])
        ex, sym = market.exchange, market.symbol
        self.executor.submit(
            lambda: self._watch.load(name, ex, sym, candles, oi, now_ms=updated, updated_ms=updated)
        )
        self._soon()
        return name

    def market_bar(self, name: str, row: Candles) -> None:
        """A live bar of a watched market: its engine is patched now (on the screener's thread)."""
        w = self.markets.get(name)
        now = self.clock() if w is None or w.live else int(row.close_time[0])

        def job() -> None:
            if name in self._watch.markets:
                self._watch.on_bar(name, row, None, now_ms=now)

        self.executor.submit(job)

    def tab_closed(self, name: str, tab: int) -> None:
        w = self.markets.get(name)
        if w is not None:
            w.shown_in.discard(tab)

    def add_samples(self) -> None:
        """Every bundled sample as a row (loaded on the screener's thread)."""
        from liqdesk.feeds.sample import list_samples
        from liqdesk.ui.data import SampleSource

        if self._samples_loaded:
            return
        self._samples_loaded = True
        for n in list_samples():
            name = f"sample {n}"
            if name in self.markets:
                continue
            self.markets[name] = WatchedMarket(
                name, SampleSource.display_name(n), live=False, source="sample"
            )

            def job(n: str = n, name: str = name) -> None:
                from liqdesk.feeds.sample import load_sample

                s = load_sample(n)
                t = int(s.candles.close_time[-1])
                self._watch.load(name, s.exchange, s.symbol, s.candles, s.open_interest, now_ms=t)

            self.executor.submit(job)
        self._soon()

    # ------------------------------------------------------------------ rows

    def _on_visible(self, visible: bool) -> None:
        if visible:
            self._timer.start()
            self.refresh()
        else:
            self._timer.stop()

    def _soon(self) -> None:
        if self.isVisible():
            QtCore.QTimer.singleShot(0, self.refresh)

    def refresh(self) -> None:
        """The rows as the watch has them now (recomputed there only for markets that changed)."""
        now = self.clock()
        live = {n for n, w in self.markets.items() if w.live}

        def job() -> tuple[list[ScreenRow], dict[str, bool], float]:
            t0 = time.perf_counter()
            rows = self._watch.rows(now)
            stale = {r.market: r.market in live and self._watch.stale(r, now) for r in rows}
            return rows, stale, (time.perf_counter() - t0) * 1000.0

        self._inbox.deliver(self.executor.submit(job, supersede="rows"), self._show_rows)

    def _show_rows(self, result: tuple[list[ScreenRow], dict[str, bool], float]) -> None:
        rows, stale, ms = result
        self.rows, self.stale = rows, stale
        self.row_ms.append(ms)
        del self.row_ms[:-200]
        self._fill()

    def sorted_rows(self) -> list[ScreenRow]:
        return rank(self.rows, self.sort_column, self.descending)

    def sort_by(self, column: str, descending: bool | None = None) -> None:
        if column not in COLUMNS:
            raise ValueError(f"unknown column {column!r}")
        self.sort_column, self.descending = column, descending
        self._fill()

    def _header_clicked(self, index: int) -> None:
        column = HEADERS[index][1]
        natural = COLUMNS[column][1]
        if column == self.sort_column:
            current = natural if self.descending is None else self.descending
            self.sort_by(column, not current)
        else:
            self.sort_by(column)

    def _fill(self) -> None:
        rows = self.sorted_rows()
        now = self.clock()
        t = self.table
        t.setRowCount(len(rows))
        for i, r in enumerate(rows):
            w = self.markets.get(r.market)
            cells = [r.market, "—" if r.error else fmt.price(r.price)]
            for c in (r.nearest_long, r.nearest_short, r.largest):
                cells += _cluster_cells(c, with_side=c is r.largest)
            cells += [r.model or "—", self._age_text(r, w, now)]
            stale = self.stale.get(r.market, False)
            for j, text in enumerate(cells):
                item = t.item(i, j)
                if item is None:
                    item = QtWidgets.QTableWidgetItem()
                    t.setItem(i, j, item)
                item.setText(text)
                item.setData(QtCore.Qt.ItemDataRole.UserRole, r.market)
                item.setForeground(QtGui.QBrush(QtGui.QColor(STALE_COLOUR)) if stale and j in (0, len(cells) - 1)
                                   else QtGui.QBrush())  # fmt: skip
                if r.error and j == len(cells) - 1:
                    item.setToolTip(r.error)
        col = next(i for i, h in enumerate(HEADERS) if h[1] == self.sort_column)
        natural = COLUMNS[self.sort_column][1]
        desc = natural if self.descending is None else self.descending
        order = QtCore.Qt.SortOrder.DescendingOrder if desc else QtCore.Qt.SortOrder.AscendingOrder
        t.horizontalHeader().setSortIndicator(col, order)
        if rows and not self._sized:
            t.resizeColumnsToContents()
            self._sized = True
        n_stale = sum(self.stale.values())
        self.summary.setText(f"{len(rows)} markets" + (f" · {n_stale} stale" if n_stale else ""))
        self.rows_shown.emit()

    def _age_text(self, r: ScreenRow, w: WatchedMarket | None, now: int) -> str:
        if r.error:
            return f"error: {r.error}"
        if w is not None and not w.live:
            return f"offline · to {utc_text(r.updated_ms)} UTC"
        age = _age(r.age_ms(now))
        if self.stale.get(r.market):
            why = "" if w is None or w.shown_in else " (tab closed)"
            return f"STALE {age}{why}"
        return f"{age} ago"

    def open_row(self, index: int) -> bool:
        """Open (or show) the market of the table's row `index` in a tab."""
        item = self.table.item(index, 0)
        if item is None:
            return False
        w = self.markets.get(str(item.data(QtCore.Qt.ItemDataRole.UserRole)))
        return w is not None and self.open_market(w.symbol)

    # ------------------------------------------------------------------ search

    def _search_edited(self, text: str) -> None:
        from liqdesk.feeds.market_list import load_market_lists, search_markets

        if len(text.strip()) < 2:
            return
        if self._lists is None:
            self._lists = load_market_lists()
            if self._lists.problems:
                self.search.setToolTip("\n".join(self._lists.problems))
        hits = search_markets(text, self._lists, limit=30)
        self._completer_model.setStringList([f"{h.market.symbol} · {h.market.exchange}" for h in hits])

    def _search_entered(self) -> None:
        text = self.search.text().strip()
        if " · " in text:
            self._open_hit(text)

    def _open_hit(self, text: str) -> None:
        symbol = text.split(" · ")[0]
        if self.open_market(symbol):
            self.search.clear()

    def close_watch(self) -> None:
        self._timer.stop()
        self.executor.shutdown(2.0)


def _cluster_cells(c: Cluster | None, with_side: bool = False) -> list[str]:
    if c is None:
        return ["—", "", "", ""]
    side = f"{c.side_name} " if with_side else ""
    return [f"{side}{fmt.price(c.price)}", f"{c.distance_pct:+.2f} %", fmt.usd(c.usd), f"{c.share:.0%}"]


def _age(ms: int) -> str:
    s = ms / 1000.0
    for unit, div in (("d", 86400), ("h", 3600), ("m", 60)):
        if s >= div:
            return f"{s / div:.0f}{unit}"
    return f"{s:.0f}s"


def install_screener(
    main: QtWidgets.QMainWindow,
    menu: QtWidgets.QMenu,
    params: ModelParams,
    open_market: Callable[[str], bool],
    offline: Callable[[], bool],
) -> ScreenerDock:
    """The dock at the bottom of `main` (hidden until asked for), its toggle in `menu` (Ctrl+Shift+K), the
    bundled samples watched when it opens while no tab is live (`offline()`), the watch's thread stopped when `main` closes."""
    from liqdesk.ui.actions import add_action

    dock = ScreenerDock(params, open_market, main)
    main.addDockWidget(QtCore.Qt.DockWidgetArea.BottomDockWidgetArea, dock)
    dock.hide()

    def toggle() -> None:
        if dock.isVisible():
            dock.hide()
            return
        if offline():
            dock.add_samples()
        dock.show()
        dock.raise_()

    dock.toggle_action = add_action(main, menu, "Magnet screener", toggle, "Ctrl+Shift+K",
                                    "Watched markets: nearest and largest liquidation clusters, sortable")  # fmt: skip

    class Closer(QtCore.QObject):
        def eventFilter(self, obj: QtCore.QObject, ev: QtCore.QEvent) -> bool:  # noqa: N802
            if ev.type() == QtCore.QEvent.Type.Close:
                dock.close_watch()
            return False

    closer = Closer(main)
    main.installEventFilter(closer)
    return dock
