"""Engines of the watched markets kept warm for the screener, within a stated budget.

Per market: its recent bars and one LiquidationEngine on them, and its screener row.

The budget (`WatchBudget`; spans in time, so markets of any bar interval share it):
- every bar or revision patches that market's engine at once (`append_bar` / `revise_last_bar`:
  well under a millisecond for a few days of bars), so no update is ever lost;
- a market's row (its map at the newest bar and the clusters) is recomputed at most once per
  `row_every_ms`, when asked for and only if the market changed: a burst of revisions costs one row;
- a market's engine is rebuilt on its newest `history_ms` of bars at most every `rebuild_every_ms`,
  once it holds `trim_slack_ms` more than that: memory stays bounded in a session of any length.
  The rebuild forgets levels opened before the kept history (the same cut a fresh start makes);
- a row is stale once its market's data is older than `stale_after_ms` (default two bars, at
  least two minutes): the row says so, with its age.

No clock and no I/O: callers pass the time (`now_ms`) and the bars.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np

from liqdesk.core.engine import LiquidationEngine
from liqdesk.core.grid import PriceBins
from liqdesk.core.liqmap import auto_bins, liquidation_map
from liqdesk.core.openings import open_interest_at_close
from liqdesk.core.params import ModelParams
from liqdesk.core.screener import MIN_SHARE, WITHIN_PCT, ScreenRow, screen_row
from liqdesk.core.series import Candles, OpenInterest

BIN_PCT = 0.1  # map bin width in % of price: clusters of the same width in every market


_DAY_MS = 86_400_000


@dataclass(frozen=True)
class WatchBudget:
    view_ms: int = 3 * _DAY_MS  # the map's price range: the newest bars of this span (plus a margin)
    history_ms: int = 6 * _DAY_MS  # kept per market: the view and as much again of warm-up
    row_every_ms: int = 1_000
    rebuild_every_ms: int = 3_600_000
    trim_slack_ms: int = _DAY_MS
    stale_after_ms: int | None = None  # None: two bar intervals, at least two minutes
    within_pct: float = WITHIN_PCT
    min_share: float = MIN_SHARE

    def bars(self, span_ms: int, interval_ms: int) -> int:
        return max(int(span_ms // interval_ms), 2)

    def stale_after(self, interval_ms: int) -> int:
        return self.stale_after_ms if self.stale_after_ms is not None else max(2 * interval_ms, 120_000)


@dataclass
class _Market:
    exchange: str
    symbol: str
    candles: Candles
    oi_close: np.ndarray  # per bar, NaN = unknown
    engine: LiquidationEngine
    updated_ms: int
    built_ms: int
    row: ScreenRow | None = None
    row_ms: int = -(10**18)
    dirty: bool = True


@dataclass
class MarketWatch:
    params: ModelParams
    budget: WatchBudget = field(default_factory=WatchBudget)
    markets: dict[str, _Market] = field(default_factory=dict)
    rebuilds: int = 0
    rows_computed: int = 0

    def load(
        self,
        market: str,
        exchange: str,
        symbol: str,
        candles: Candles,
        open_interest: OpenInterest | None,
        *,
        now_ms: int,
        updated_ms: int | None = None,
    ) -> None:
        """A market's history (its newest `history_ms` are kept); replaces what was there.
        updated_ms: when the data is from (default now_ms)."""
        if len(candles) < 2:
            raise ValueError(f"{market}: fewer than two bars")
        oi = open_interest_at_close(candles, open_interest, self.params.oi_max_gap_bars)
        keep = slice(
            max(len(candles) - self.budget.bars(self.budget.history_ms, candles.interval_ms), 0), None
        )
        kept, oi_kept = candles.take(keep), oi[keep]
        engine = LiquidationEngine.build(kept, params=self.params, oi_close=oi_kept)
        self.markets[market] = _Market(
            exchange, symbol, kept, oi_kept, engine, now_ms if updated_ms is None else updated_ms, now_ms
        )

    def on_bar(self, market: str, row: Candles, oi_close: float | None, *, now_ms: int) -> None:
        """A live bar of `market` (a one-row Candles): a revision of the newest bar (same open time)
        or the next one. Patches the engine now; the row follows within `row_every_ms`."""
        m = self.markets[market]
        oi = np.nan if oi_close is None else float(oi_close)
        t = int(row.open_time[0])
        last = int(m.candles.open_time[-1])
        if t == last:
            m.engine.revise_last_bar(row, oi_close)
            m.candles = m.candles.take(slice(0, -1)).concat(row)
            m.oi_close[-1] = oi
        elif t > last:
            m.engine.append_bar(row, oi_close)
            m.candles = m.candles.concat(row)
            m.oi_close = np.r_[m.oi_close, oi]
        else:
            return  # older than the newest bar: the engine has it already
        m.updated_ms = now_ms
        m.dirty = True
        b, interval = self.budget, m.candles.interval_ms
        over = len(m.candles) - b.bars(b.history_ms, interval)
        if over >= b.trim_slack_ms // interval and now_ms - m.built_ms >= b.rebuild_every_ms:
            self._trim(m, now_ms)

    def _trim(self, m: _Market, now_ms: int) -> None:
        keep = slice(len(m.candles) - self.budget.bars(self.budget.history_ms, m.candles.interval_ms), None)
        m.candles, m.oi_close = m.candles.take(keep), m.oi_close[keep].copy()
        m.engine = LiquidationEngine.build(m.candles, params=self.params, oi_close=m.oi_close)
        m.built_ms = now_ms
        self.rebuilds += 1

    def bins(self, market: str) -> PriceBins:
        """The map's price range: the newest `view_ms` of bars, their range plus a margin, bins of BIN_PCT %."""
        c = self.markets[market].candles
        v = slice(max(len(c) - self.budget.bars(self.budget.view_ms, c.interval_ms), 0), None)
        rough = auto_bins(c.low[v], c.high[v], 1)
        width = float(c.close[-1]) * BIN_PCT / 100.0
        n = int(np.clip(np.ceil((rough.hi - rough.lo) / width), 50, 2_000))
        return PriceBins(rough.lo, rough.hi, n)

    def rows(self, now_ms: int) -> list[ScreenRow]:
        """Every market's row; a changed market's row is recomputed unless it was within `row_every_ms`."""
        out = []
        for name, m in self.markets.items():
            if m.row is None or (m.dirty and now_ms - m.row_ms >= self.budget.row_every_ms):
                lmap = liquidation_map(m.engine, self.bins(name))
                m.row = screen_row(
                    lmap, market=name, exchange=m.exchange, symbol=m.symbol, model=m.engine.model_label(),
                    updated_ms=m.updated_ms, within_pct=self.budget.within_pct, min_share=self.budget.min_share,
                )  # fmt: skip
                m.row_ms, m.dirty = now_ms, False
                self.rows_computed += 1
            elif m.row.updated_ms != m.updated_ms:
                m.row = _with_update(m.row, m.updated_ms)
            out.append(m.row)
        return out

    def stale(self, row: ScreenRow, now_ms: int) -> bool:
        m = self.markets.get(row.market)
        interval = m.candles.interval_ms if m is not None else 300_000
        return row.age_ms(now_ms) > self.budget.stale_after(interval)

    def engine_bytes(self) -> int:
        """Memory the engines' arrays hold (what keeping the markets warm costs)."""
        return sum(m.engine.nbytes() for m in self.markets.values())


def _with_update(row: ScreenRow, updated_ms: int) -> ScreenRow:
    return replace(row, updated_ms=updated_ms)
