"""Several venues of one coin as one market for the window (the aggregate): one `MarketData` whose candles are
the chart venue's (the bars the chart draws) and whose tape is every venue's (the exchange column names the
venue), with each venue's own data beside it (`parts`) for its engine.

A venue's live bars replace its part's candles (`add_bar`), so a rebuild (another preset) starts from what has
streamed; the chart venue's bars are the window's own. Which venues are summed is `enabled` (the window's venue
toggles), kept here so that a rebuild sums the same ones.
"""

from __future__ import annotations

from dataclasses import dataclass

from liqdesk.core.aggregate import TAPE_COMPLETE, TAPE_NONE, TAPE_SAMPLE, VenueInput
from liqdesk.core.params import ModelParams
from liqdesk.core.resample import can_resample, resample_candles
from liqdesk.core.series import TIMEFRAME_MS, Candles, OpenInterest
from liqdesk.feeds.market_data import MarketData
from liqdesk.feeds.presets import venue_brackets

# Readable venue names (plain ASCII: every UI font has the glyphs).
VENUE_TITLES = {"binanceusdm": "Binance", "bybit": "Bybit", "okx": "OKX", "hyperliquid": "Hyperliquid"}


def venue_title(name: str) -> str:
    return VENUE_TITLES.get(name, name)


def coin_of(symbol: str) -> str:
    """BTC of BTC/USDT:USDT (and of "BTC · 4 venues")."""
    return symbol.split("/")[0].split(" ")[0].strip()


def aggregate_name(coin: str, venues: int) -> str:
    """The market's name in the window: "BTC · 4 venues"."""
    return f"{coin} · {venues} venues"


@dataclass(eq=False)
class VenuePart:
    """One venue's data in the set."""

    name: str  # exchange id
    symbol: str  # the venue's own symbol (BTC/USDC:USDC on Hyperliquid)
    candles: Candles
    open_interest: OpenInterest | None
    tape: str  # TAPE_* of core.aggregate: what the venue's liquidation tape is
    label: str = ""
    notes: tuple[str, ...] = ()

    def tape_text(self) -> str:
        return {
            TAPE_COMPLETE: "tape: every liquidation (batched by the venue)",
            TAPE_SAMPLE: "tape: a sample (at most one per second)",
            TAPE_NONE: "no public liquidation stream: tape empty",
        }.get(self.tape, "tape: from the cache")


@dataclass(eq=False)
class VenueSetMarket(MarketData):
    """The aggregate as one market (see the module)."""

    parts: tuple[VenuePart, ...] = ()
    chart_venue: str = ""
    enabled: tuple[str, ...] = ()  # the venues summed (empty: all)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(p.name for p in self.parts)

    def part(self, name: str) -> VenuePart:
        return next(p for p in self.parts if p.name == name)

    def summed(self) -> tuple[str, ...]:
        return self.enabled or self.names

    def add_bar(self, venue: str, row: Candles) -> None:
        """A venue's live bar (one row): its next bar or a revision of its last one (an older bar is ignored)."""
        p = self.part(venue)
        c = p.candles
        t = int(row.open_time[0])
        if len(c) and t < int(c.open_time[-1]):
            return
        if len(c) and t == int(c.open_time[-1]):
            c = c.take(slice(0, len(c) - 1))
        p.candles = c.concat(row) if len(c) else row

    def venue_inputs(self, timeframe: str, params: ModelParams, chart_candles: Candles) -> list[VenueInput]:
        """What each venue's engine is built from at `timeframe`: its bars (the chart's for the chart venue),
        its open interest, the command's parameters with its own brackets, its tape."""
        out = []
        target = TIMEFRAME_MS[timeframe]
        for p in self.parts:
            c = chart_candles if p.name == self.chart_venue else p.candles
            if c.interval_ms != target:
                if not can_resample(c.interval_ms, target):
                    raise ValueError(f"{p.name}: {timeframe} cannot be made from its bars")
                c = resample_candles(c, target)
            liqs = self.liquidations.take(self.liquidations.exchange == p.name)
            out.append(VenueInput(p.name, p.symbol, c, p.open_interest, params.with_(brackets=venue_brackets(p.name)),
                                  liqs, p.label, p.tape))  # fmt: skip
        return out


__all__ = ["VenuePart", "VenueSetMarket", "aggregate_name", "coin_of", "venue_title"]
