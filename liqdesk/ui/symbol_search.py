"""Symbol search: type "sol", pick SOL/USDT:USDT on one venue or the coin on every venue that lists it
(aggregated), from each venue's cached market list (feeds.market_list: works offline). Recent markets first,
then watched ones (search_markets ranks them); the aggregated row of a coin comes before its venues' rows."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from PySide6 import QtCore, QtWidgets

from liqdesk.feeds.market_list import MarketKey, MarketLists, search_markets
from liqdesk.feeds.venue_market import venue_title


@dataclass(frozen=True)
class Choice:
    exchange: str  # one venue id, or a comma list (aggregated)
    symbol: str
    text: str


def choices(
    query: str, lists: MarketLists, recent: Sequence[MarketKey] = (), watched: Sequence[MarketKey] = (),
    limit: int = 40,
) -> list[Choice]:  # fmt: skip
    """What the dialog lists for `query`: per coin found, the coin on every venue listing it (when more than
    one does), then each venue's market, in search_markets' order."""
    hits = search_markets(query, lists, recent=recent, watched=watched, limit=limit)
    venues_of: dict[str, list[str]] = {}
    for m in lists.markets():
        if m.active and m.exchange not in venues_of.setdefault(m.base, []):
            venues_of[m.base].append(m.exchange)
    out: list[Choice] = []
    done: set[str] = set()
    for h in hits:
        m = h.market
        venues = venues_of.get(m.base, [])
        if m.base not in done and len(venues) > 1:
            done.add(m.base)
            names = ", ".join(venue_title(v) for v in venues)
            out.append(Choice(",".join(venues), f"{m.base}/USDT:USDT",
                              f"{m.base} · {len(venues)} venues aggregated ({names})"))  # fmt: skip
        tags = " · recent" if h.recent else (" · watched" if h.watched else "")
        out.append(Choice(m.exchange, m.symbol, f"{m.symbol} · {venue_title(m.exchange)}{tags}"))
    return out


class SymbolSearch(QtWidgets.QDialog):
    """The dialog: a query line and the choices; Enter or a double click opens the choice (`open_market`)."""

    def __init__(
        self,
        parent: QtWidgets.QWidget | None,
        lists: MarketLists,
        open_market: Callable[[str, str], object],
        recent: Sequence[MarketKey] = (),
        watched: Sequence[MarketKey] = (),
    ) -> None:
        super().__init__(parent)
        self.setWindowTitle("Open symbol")
        self.lists, self.open_market = lists, open_market
        self.recent, self.watched = list(recent), list(watched)
        self.query = QtWidgets.QLineEdit()
        self.query.setPlaceholderText("symbol or coin, e.g. sol")
        self.results = QtWidgets.QListWidget()
        self.note = QtWidgets.QLabel("")
        self.note.setWordWrap(True)
        layout = QtWidgets.QVBoxLayout(self)
        layout.addWidget(self.query)
        layout.addWidget(self.results)
        layout.addWidget(self.note)
        self.query.textChanged.connect(self.refresh)
        self.query.returnPressed.connect(self.choose)
        self.results.itemActivated.connect(lambda _i: self.choose())
        self.resize(460, 420)
        problems = "; ".join(lists.problems[:3])
        self.note.setText(
            f"{len(lists.markets()):,} markets of {len(lists.lists)} venues (cached)"
            + (f" · {problems}" if problems else "")
        )
        self.refresh("")

    def refresh(self, text: str) -> None:
        self.results.clear()
        for c in choices(text, self.lists, self.recent, self.watched):
            item = QtWidgets.QListWidgetItem(c.text)
            item.setData(QtCore.Qt.ItemDataRole.UserRole, (c.exchange, c.symbol))
            self.results.addItem(item)
        if self.results.count():
            self.results.setCurrentRow(0)

    def choose(self) -> None:
        item = self.results.currentItem()
        if item is None:
            return
        exchange, symbol = item.data(QtCore.Qt.ItemDataRole.UserRole)
        self.accept()
        self.open_market(exchange, symbol)
