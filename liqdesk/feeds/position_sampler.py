"""The position sampler: asks Hyperliquid for the open positions of known accounts, within a request budget.

Accounts come from the public trades stream (``observe_trade``, fed by a ``LiveFeed`` with the ``trades`` stream)
and from address lists the user imports (``import_addresses``). Which account is asked next follows
``liqdesk.core.sampling_schedule`` (near-price positions every minute, open positions every five, large first).

Requests go through the venue's ccxt exchange as raw info calls (``clearinghouseState``, weight 2, for an account;
``metaAndAssetCtxs``, weight 20, for open interest and marks every ``market_poll_s``) and are paced by a sliding
one-minute window of request weight: the budget (default a third of the venue's 1,200 a minute per IP, so the
app's own requests and other tools on the same address keep room). An HTTP 429 pauses every request for a backoff
that doubles while 429s continue; a network error pauses shorter. An answer that cannot be read costs one status
line and the account waits its interval; nothing else stops the sampler.

Each answer is stored (``PositionsStore.put_sample``; only the positions in the sampled coin), optionally recorded
as a JSON line, and compared with the account's previous answer: a position gone while price crossed its
liquidation price is stored as an inferred liquidation (``liqdesk.core.inferred_liquidations``). The price path
between two answers is what the caller feeds (``observe_candle``, the candle stream's bars and revisions) plus the
marks of the open-interest polls.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import math
import random
import time
from collections import deque
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
from ccxt.base import errors as ccxt_errors

from liqdesk.core.actual_map import PositionSamples
from liqdesk.core.inferred_liquidations import (
    DEFAULT_TOLERANCE_PCT,
    InferredLiquidations,
    PricePath,
    infer_liquidations,
)
from liqdesk.core.sampling_schedule import NEVER, SamplingRule, due_order, near_mask
from liqdesk.core.series import timeframe_ms
from liqdesk.feeds.addresses import Activity, AddressBook
from liqdesk.feeds.history import NETWORK_ERRORS, RATE_LIMIT_ERRORS
from liqdesk.feeds.live import CandleUpdate, FeedEvent, TradeEvent
from liqdesk.feeds.positions_store import PositionsStore
from liqdesk.feeds.venues.base import VenueDataError
from liqdesk.feeds.venues.hyperliquid import (
    DEFAULT_SAMPLER_BUDGET,
    WEIGHT_CLEARINGHOUSE_STATE,
    WEIGHT_META_AND_ASSET_CTXS,
    AccountState,
    Hyperliquid,
    TradeRecord,
)

log = logging.getLogger(__name__)

Level = Literal["info", "warning", "error"]
HOUR_MS = 3_600_000


@dataclass(frozen=True)
class SamplerSettings:
    """Budget and timings; tests shrink the window and the waits."""

    budget: float = DEFAULT_SAMPLER_BUDGET  # request weight per window
    window_s: float = 60.0  # the venue counts weight per minute
    market_poll_s: float = 60.0  # open interest and marks (metaAndAssetCtxs)
    rule: SamplingRule = SamplingRule()
    tolerance_pct: float = DEFAULT_TOLERANCE_PCT  # crossing test of inferred liquidations
    rate_limit_base_s: float = 10.0  # first pause after a 429, doubled while they continue
    backoff_base_s: float = 1.0  # first pause after a network error
    backoff_cap_s: float = 300.0
    idle_s: float = 1.0  # nothing due: look again after this
    flush_s: float = 5.0  # discovered addresses are stored this often
    path_keep_ms: int = 24 * HOUR_MS  # price path kept in memory
    # two answers are compared once the price path reaches the second one (a bar revised or a mark polled at or
    # after it), or this long after it with what there is
    decide_after_ms: int = 120_000

    def __post_init__(self) -> None:
        if self.budget < WEIGHT_CLEARINGHOUSE_STATE:
            raise ValueError(f"the budget must allow one request (weight {WEIGHT_CLEARINGHOUSE_STATE})")
        if self.window_s <= 0 or self.market_poll_s <= 0:
            raise ValueError("window and poll interval must be positive")


class WeightBudget:
    """A sliding window of spent request weight (monotonic seconds)."""

    def __init__(self, limit: float, window_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.limit = limit
        self.window_s = window_s
        self.clock = clock
        self._spent: deque[tuple[float, float]] = deque()

    def used(self) -> float:
        cutoff = self.clock() - self.window_s
        while self._spent and self._spent[0][0] <= cutoff:
            self._spent.popleft()
        return sum(w for _, w in self._spent)

    def wait_s(self, weight: float) -> float:
        """Seconds until ``weight`` more fits in the window (0: now)."""
        excess = self.used() + weight - self.limit
        if excess <= 0:
            return 0.0
        freed = 0.0
        for t, w in self._spent:
            freed += w
            if freed >= excess:
                return max(0.0, t + self.window_s - self.clock()) + 1e-3
        return self.window_s

    def spend(self, weight: float) -> None:
        self._spent.append((self.clock(), weight))


@dataclass
class _Account:
    address: str
    last_seen: int
    traded_usd: float
    last_attempt: int = NEVER  # scheduler clock (ms) of the last request for it, answered or not
    last: PositionSamples | None = None  # its previous answer, the sampled coin only
    position_usd: float = 0.0  # position value in the coin at that answer
    liquidation_px: float = math.nan  # of its position in the coin (one a coin), NaN: none or no price

    def remember(self, answer: PositionSamples) -> None:
        self.last = answer
        self.position_usd = float(answer.position_value.sum())
        liq = answer.liquidation_px[np.isfinite(answer.liquidation_px)]
        self.liquidation_px = float(liq[0]) if len(liq) else math.nan


@dataclass(frozen=True)
class SamplerStatus:
    """What a status line shows. ``coverage`` is NaN while open interest is unknown."""

    accounts_known: int
    sampled_last_hour: int
    coverage: float
    sampled_value_usd: float
    open_interest_usd: float
    budget_used: float  # weight in the current window
    budget: float
    requests: int
    rate_limited: int
    bad_answers: int
    inferred: int
    positions_without_price: int

    def line(self) -> str:
        cov = "n/a (no open interest yet)" if math.isnan(self.coverage) else f"{self.coverage * 100:.2f} %"
        return (
            f"accounts known {self.accounts_known:,}, sampled in the last hour {self.sampled_last_hour:,}, "
            f"coverage {cov} of open interest, budget used {self.budget_used:g}/{self.budget:g} weight a minute, "
            f"{self.requests:,} requests, {self.rate_limited} rate-limited, {self.bad_answers} unreadable "
            f"answers, inferred liquidations {self.inferred}, positions without a liquidation price "
            f"{self.positions_without_price}"
        )


@dataclass
class _Stats:
    requests: int = 0
    rate_limited: int = 0
    bad_answers: int = 0
    inferred: int = 0
    samples: int = 0
    errors: list[str] = field(default_factory=list)


class PositionSampler:
    """Samples the positions of one coin's traders on Hyperliquid into ``store``.

    ``clock``: epoch-ms now for scheduling (the venue's answer time, when given, dates the samples).
    ``on_status(text, level)``: one line per notable thing (rate limits, unreadable answers, inferred events).
    ``record(obj)``: called with ``{"user", "time", "response"}`` for every answer (a recording)."""

    def __init__(
        self,
        venue: Hyperliquid,
        store: PositionsStore,
        symbol: str,
        *,
        settings: SamplerSettings = SamplerSettings(),
        clock: Callable[[], int] | None = None,
        on_status: Callable[[str, Level], None] | None = None,
        record: Callable[[dict[str, Any]], None] | None = None,
    ) -> None:
        self.venue = venue
        self.store = store
        self.symbol = symbol
        self.coin = symbol.split("/")[0]
        self.settings = settings
        self.clock = clock or (lambda: time.time_ns() // 1_000_000)
        self.on_status = on_status
        self.record = record
        self.budget = WeightBudget(settings.budget, settings.window_s)
        self.book = AddressBook()
        self.stats = _Stats()
        self._accounts: dict[str, _Account] = {}
        # open time → (interval, low, high, clock when last revised)
        self._bars: dict[int, tuple[int, float, float, int]] = {}
        self._pending: list[
            tuple[PositionSamples, PositionSamples]
        ] = []  # (previous, new) answers to compare
        self._marks: deque[tuple[int, float]] = deque()
        self._mark: float = math.nan
        self._open_interest_usd: float = math.nan
        self._pause_until = 0.0  # monotonic
        self._strikes = 0
        self._last_market_poll = -math.inf
        self._last_flush = time.monotonic()
        self._loaded = False
        self._newest = 0  # the newest answer's time

    # -- inputs --------------------------------------------------------------------------------------------------
    def observe_event(self, event: FeedEvent) -> None:
        """Feed a LiveFeed event (``on_event`` of a feed with the ``trades`` and ``candles`` streams): trades
        bring addresses, candles the price path. Other events are ignored."""
        if isinstance(event, TradeEvent):
            self.observe_trade(event.record)
        elif isinstance(event, CandleUpdate) and event.symbol == self.symbol:
            self.observe_candle(event.open_time, timeframe_ms(event.timeframe), event.low, event.high)

    def observe_trade(self, trade: TradeRecord) -> None:
        if trade.symbol == self.symbol:
            self.book.observe(trade)

    def observe_candle(self, open_time: int, interval_ms: int, low: float, high: float) -> None:
        """A bar or a revision of the live bar (the widest range seen per bar is kept)."""
        old = self._bars.get(open_time)
        if old is not None:
            low, high = min(low, old[1]), max(high, old[2])
        self._bars[open_time] = (interval_ms, low, high, self.clock())

    def seed_path(self, path: PricePath) -> None:
        """Price history from before the sampler started (stored candles), for answers stored then."""
        for s, e, lo, hi in zip(path.start_ms.tolist(), path.end_ms.tolist(), path.low.tolist(), path.high.tolist(),
                                strict=True):  # fmt: skip
            self.observe_candle(int(s), int(e - s + 1), float(lo), float(hi))

    def import_addresses(self, addresses: Iterable[str]) -> int:
        """Add addresses (already checked) to the store and the schedule. Returns how many were new."""
        now = self.clock()
        seen = {a.lower(): Activity(now, now) for a in addresses}
        new = self.store.add_accounts(seen, imported=True)
        self._merge(seen)
        return new

    # -- state -----------------------------------------------------------------------------------------------------
    def _load(self) -> None:
        """Accounts and each one's newest answer from the store (a restart resumes where it stopped)."""
        latest = self.store.state_at(self.coin, 2**62)
        by_key: dict[str, PositionSamples] = {}
        for k in np.unique(latest.sample_account).tolist():
            m = latest.sample_account == k
            rows = latest.account == k
            by_key[k] = PositionSamples(
                latest.sample_account[m], latest.sample_time[m],
                **{name: getattr(latest, name)[rows] for name in _ROW_FIELDS},
            )  # fmt: skip
        for row in self.store.accounts():
            acc = _Account(row.address, row.last_seen, row.notional)
            prev = by_key.get(row.account)
            if prev is not None:
                acc.remember(prev)
                self._newest = max(self._newest, int(prev.sample_time[0]))
                # scheduled as sampled at its answer time: interval counted from there
                acc.last_attempt = int(prev.sample_time[0])
            self._accounts[row.address] = acc
        self._loaded = True

    def _merge(self, seen: dict[str, Activity]) -> None:
        for a, act in seen.items():
            acc = self._accounts.get(a)
            if acc is None:
                self._accounts[a] = _Account(a, act.last_seen, act.notional)
            else:
                acc.last_seen = max(acc.last_seen, act.last_seen)
                acc.traded_usd += act.notional

    def flush(self) -> int:
        """Store the addresses discovered since the last flush. Returns how many were new."""
        seen = self.book.drain()
        if not seen:
            return 0
        new = self.store.add_accounts(seen)
        self._merge(seen)
        return new

    # -- the loop ----------------------------------------------------------------------------------------------------
    async def run(self) -> None:
        """Sample until cancelled."""
        if not self._loaded:
            self._load()
        s = self.settings
        while True:
            if time.monotonic() - self._last_flush >= s.flush_s:
                self.flush()
                self._last_flush = time.monotonic()
            self.decide()
            if time.monotonic() - self._last_market_poll >= s.market_poll_s:
                await self._request(WEIGHT_META_AND_ASSET_CTXS, self._poll_markets, "open interest")
                continue
            due = self._due()
            if not due:
                await asyncio.sleep(s.idle_s)
                continue
            # one request at a time; the order is recomputed after what the budget lets through now
            fits = max(1, int((s.budget - self.budget.used()) // WEIGHT_CLEARINGHOUSE_STATE))
            for address in due[:fits]:
                await self._request(
                    WEIGHT_CLEARINGHOUSE_STATE, functools.partial(self._sample, address), address
                )

    def _due(self) -> list[str]:
        accs = list(self._accounts.values())
        if not accs:
            return []
        now = self.clock()
        liq = np.array([a.liquidation_px for a in accs], np.float64)
        near = (
            near_mask(liq, self._mark, self.settings.rule.near_pct)
            if math.isfinite(self._mark)
            else np.zeros(len(accs), bool)
        )
        order = due_order(
            now,
            np.array([a.last_attempt for a in accs], np.int64),
            np.array([a.last_seen for a in accs], np.int64),
            np.array([a.position_usd for a in accs], np.float64),
            np.array([a.traded_usd for a in accs], np.float64),
            near,
            self.settings.rule,
        )
        return [accs[i].address for i in order.tolist()]

    async def _request(self, weight: float, call: Callable[[], Awaitable[None]], what: str) -> None:
        """Wait for the budget and any pause, then make one request; every failure is handled here."""
        while True:
            wait = max(self.budget.wait_s(weight), self._pause_until - time.monotonic())
            if wait <= 0:
                break
            await asyncio.sleep(wait)
        self.budget.spend(weight)
        self.stats.requests += 1
        s = self.settings
        try:
            await call()
            self._strikes = 0
        except RATE_LIMIT_ERRORS as exc:
            self.stats.rate_limited += 1
            delay = min(s.backoff_cap_s, s.rate_limit_base_s * 2**self._strikes) * random.uniform(0.75, 1.0)
            self._strikes = min(self._strikes + 1, 16)
            self._pause_until = time.monotonic() + delay
            self._status(f"rate limited by {self.venue.id} ({type(exc).__name__}); pausing every request for "
                         f"{delay:.1f} s", "warning")  # fmt: skip
        except VenueDataError as exc:
            self.stats.bad_answers += 1
            self._status(f"skipped {_short(what)}: {exc}", "warning")
        except ccxt_errors.ExchangeError as exc:  # a real refusal of this request (e.g. HTTP 422)
            self.stats.bad_answers += 1
            self._status(
                f"{self.venue.id} refused the request for {_short(what)}: {str(exc)[:160]}", "warning"
            )
        except NETWORK_ERRORS as exc:
            delay = min(s.backoff_cap_s, s.backoff_base_s * 2**self._strikes) * random.uniform(0.5, 1.0)
            self._strikes = min(self._strikes + 1, 16)
            self._pause_until = time.monotonic() + delay
            self._status(f"{type(exc).__name__} while asking for {_short(what)}: {str(exc)[:160]}; retrying "
                         f"in {delay:.1f} s", "warning")  # fmt: skip

    async def _poll_markets(self) -> None:
        self._last_market_poll = time.monotonic()
        contexts = await self.venue.fetch_market_contexts()
        now = self.clock()
        self.store.put_markets(now, contexts)
        ctx = contexts.get(self.coin)
        if ctx is None:
            self._status(f"{self.venue.id} gave no open interest for {self.coin}", "warning")
            return
        self._mark = ctx.mark_px
        self._open_interest_usd = ctx.open_interest_usd
        self._marks.append((now, ctx.mark_px))

    async def _sample(self, address: str) -> None:
        acc = self._accounts[address]
        try:
            raw, state = await self.venue.fetch_account(address)
        except (VenueDataError, ccxt_errors.ExchangeError):
            acc.last_attempt = self.clock()  # answered, unusably: it waits its interval (not asked in a loop)
            raise
        acc.last_attempt = self.clock()  # a rate limit or a network error leaves it due
        t = state.time if state.time is not None else self.clock()
        if self.record is not None:
            self.record({"user": address, "time": t, "response": raw})
        # Every coin of the answer: it is the account's whole state, so a map of another coin (another tab, the
        # next symbol) reads it too instead of taking this account for holding nothing there.
        self.store.put_sample(address, state, t, {p.coin for p in state.positions})
        self.stats.samples += 1
        new = _one_sample(self.store.account_key(address), t, state, self.coin)
        prev = acc.last
        if prev is not None and t > int(prev.sample_time[0]) and len(prev):
            self._pending.append((prev, new))
            self.decide()
        if prev is None or t >= int(prev.sample_time[0]):
            acc.remember(new)
        self._newest = max(self._newest, t)

    def decide(self, *, final: bool = False) -> int:
        """Compare the pairs of answers whose price path is known (all of them if ``final``: the sampler is
        stopping). Returns how many liquidations were inferred."""
        if not self._pending:
            return 0
        now = self.clock()
        newest_seen = max((b[3] for b in self._bars.values()), default=NEVER)
        newest_mark = self._marks[-1][0] if self._marks else NEVER
        path = self._path()
        waiting: list[tuple[PositionSamples, PositionSamples]] = []
        n = 0
        for prev, new in self._pending:
            t2 = int(new.sample_time[0])
            ready = final or max(newest_seen, newest_mark) >= t2 or now >= t2 + self.settings.decide_after_ms
            if not ready:
                waiting.append((prev, new))
                continue
            found = infer_liquidations(
                prev, new, path, exchange=self.venue.id, symbol=self.symbol,
                tolerance_pct=self.settings.tolerance_pct,
            )  # fmt: skip
            if len(found):
                n += self._inferred(found)
        self._pending = waiting
        return n

    def _inferred(self, found: InferredLiquidations) -> int:
        stored = self.store.put_inferred(found)
        self.stats.inferred += stored
        e = found.events
        for i in range(len(e)):
            side = "long" if e.side[i] > 0 else "short"
            self._status(f"inferred liquidation: a {side} of {e.quantity[i]:g} {self.coin} at {e.price[i]:g} "
                         f"(${e.usd[i]:,.0f}) vanished while price crossed it", "info")  # fmt: skip
        return stored

    def _path(self) -> PricePath:
        now = self.clock()
        keep = now - self.settings.path_keep_ms
        for old in [t for t in self._bars if t < keep]:
            del self._bars[old]
        while self._marks and self._marks[0][0] < keep:
            self._marks.popleft()
        if self._bars:
            start = np.array(list(self._bars), np.int64)
            v = np.array([b[:3] for b in self._bars.values()], np.float64).reshape(-1, 3)
            bars = PricePath(start, start + v[:, 0].astype(np.int64) - 1, v[:, 1], v[:, 2])
        else:
            bars = PricePath.empty()
        if self._marks:
            m = np.array(self._marks, np.float64)
            bars = bars.concat(PricePath.from_marks(m[:, 0].astype(np.int64), m[:, 1]))
        return bars

    def _status(self, text: str, level: Level) -> None:
        log.log({"info": logging.INFO, "warning": logging.WARNING, "error": logging.ERROR}[level], "%s", text)
        if self.on_status is not None:
            self.on_status(text, level)

    # -- status ----------------------------------------------------------------------------------------------------
    def status(self) -> SamplerStatus:
        now = self.clock()
        # the accounts answered in the hour before the newest answer (the venue's clock dates the answers)
        state = self.store.state_at(self.coin, self._newest, HOUR_MS)
        value = float(state.position_value.sum())
        oi = self._open_interest_usd
        return SamplerStatus(
            accounts_known=self.store.count_accounts(),
            sampled_last_hour=self.store.count_sampled_since(now - HOUR_MS),
            coverage=value / (2 * oi) if math.isfinite(oi) and oi > 0 else math.nan,
            sampled_value_usd=value,
            open_interest_usd=oi,
            budget_used=self.budget.used(),
            budget=self.settings.budget,
            requests=self.stats.requests,
            rate_limited=self.stats.rate_limited,
            bad_answers=self.stats.bad_answers,
            inferred=self.stats.inferred,
            positions_without_price=int(np.count_nonzero(~np.isfinite(state.liquidation_px))),
        )


_ROW_FIELDS = ("account", "coin", "time", "size", "entry_px", "leverage", "cross", "liquidation_px",
               "margin_used", "position_value")  # fmt: skip


def _short(what: str) -> str:
    return f"{what[:8]}…{what[-4:]}" if what.startswith("0x") and len(what) == 42 else what


def _one_sample(key: str, t: int, state: AccountState, coin: str) -> PositionSamples:
    ps = [p for p in state.positions if p.coin == coin]
    n = len(ps)
    return PositionSamples(
        np.array([key]), np.array([t], np.int64), np.full(n, key), np.full(n, coin), np.full(n, t, np.int64),
        np.array([p.size for p in ps], np.float64), np.array([p.entry_px for p in ps], np.float64),
        np.array([p.leverage for p in ps], np.float64), np.array([p.margin_type == "cross" for p in ps], bool),
        np.array([np.nan if p.liquidation_px is None else p.liquidation_px for p in ps], np.float64),
        np.array([p.margin_used for p in ps], np.float64), np.array([p.position_value for p in ps], np.float64),
    )  # fmt: skip
