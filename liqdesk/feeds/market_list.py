"""Each venue's perpetual markets for symbol search: fetched with ccxt's ``load_markets``, kept on disk so that
search works offline, searched without Qt.

Only linear perpetual swaps are listed (what liqdesk models): USDT- and USDC-settled contracts, inverse and dated
contracts left out. One JSON file per venue in ``<data dir>/markets/`` (``LIQDESK_DATA_DIR`` overrides), written
atomically; a file that cannot be read is reported, never fatal.

``search_markets("sol", lists, recent=..., watched=...)`` ranks markets: the base equal to the query (or the
symbol / venue id equal to it) first, then bases starting with it, then names containing it; within each, the
recent markets (most recent first), then the watched ones, then USDT before USDC, then venue order.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from liqdesk.errors import DataError
from liqdesk.feeds.atomic import write_json_atomic
from liqdesk.feeds.markets import tick_from_market
from liqdesk.feeds.paths import data_dir
from liqdesk.feeds.venues import VENUES, Venue, create_venue

FORMAT = 1
DAY_MS = 86_400_000
QUOTE_ORDER = ("USDT", "USDC")

MarketKey = tuple[str, str]  # (exchange id, ccxt symbol)


@dataclass(frozen=True, slots=True)
class MarketInfo:
    """One perpetual market: ``symbol`` in ccxt form (SOL/USDT:USDT), ``id`` the venue's own name."""

    exchange: str
    symbol: str
    id: str
    base: str
    quote: str
    settle: str
    contract_size: float
    tick: float | None
    max_leverage: float | None
    active: bool

    @property
    def key(self) -> MarketKey:
        return (self.exchange, self.symbol)


@dataclass(frozen=True)
class MarketList:
    exchange: str
    fetched_at: int  # epoch ms
    markets: tuple[MarketInfo, ...]

    def is_stale(self, now_ms: int, max_age_ms: int = DAY_MS) -> bool:
        return now_ms - self.fetched_at > max_age_ms


def _number(value: Any) -> float | None:
    try:
        f = float(value)
    except (TypeError, ValueError):
        return None
    return f if math.isfinite(f) and f > 0 else None


def markets_from_ccxt(
    exchange_id: str, markets: Mapping[str, Any], precision_mode: int | None = None
) -> list[MarketInfo]:
    """The linear perpetual swaps among ccxt's loaded markets, sorted by symbol."""
    out: list[MarketInfo] = []
    for m in markets.values():
        if not isinstance(m, dict) or not m.get("swap") or not m.get("linear"):
            continue
        symbol, base, quote = m.get("symbol"), m.get("base"), m.get("quote")
        if not all(isinstance(x, str) and x for x in (symbol, base, quote)):
            continue
        leverage = (m.get("limits") or {}).get("leverage") or {}
        out.append(MarketInfo(
            exchange_id, str(symbol), str(m.get("id", symbol)), str(base), str(quote), str(m.get("settle") or quote),
            _number(m.get("contractSize")) or 1.0, tick_from_market(m, precision_mode), _number(leverage.get("max")),
            m.get("active") is not False,
        ))  # fmt: skip
    return sorted(out, key=lambda x: x.symbol)


async def fetch_market_list(
    exchange_id: str,
    ccxt_options: dict[str, Any] | None = None,
    *,
    venue: Venue | None = None,
    now_ms: int | None = None,
) -> MarketList:
    """Load the venue's markets through ccxt (a venue given is used and left open; otherwise one is made and
    closed). ccxt errors propagate."""
    v = venue or create_venue(exchange_id, ccxt_options)
    try:
        markets = await v.exchange.load_markets()
    finally:
        if venue is None:
            await v.close()
    fetched = int(time.time() * 1000) if now_ms is None else now_ms
    mode = getattr(v.exchange, "precisionMode", None)
    return MarketList(exchange_id, fetched, tuple(markets_from_ccxt(exchange_id, markets, mode)))


# -- on disk ---------------------------------------------------------------------------------------------------
def market_list_path(exchange_id: str, folder: Path | None = None) -> Path:
    return (folder or data_dir() / "markets") / f"{exchange_id}.json"


def save_market_list(market_list: MarketList, folder: Path | None = None) -> Path:
    """Write the list atomically (a reader sees the old file or the new one). Returns the path."""
    path = market_list_path(market_list.exchange, folder)
    write_json_atomic(path, {
        "format": FORMAT, "exchange": market_list.exchange, "fetched_at": market_list.fetched_at,
        "markets": [asdict(m) for m in market_list.markets],
    })  # fmt: skip
    return path


def load_market_list(exchange_id: str, folder: Path | None = None) -> MarketList | None:
    """The cached list, None when there is none; DataError naming the file when it cannot be used."""
    path = market_list_path(exchange_id, folder)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise DataError(f"cannot read the market list {path}: {exc.strerror or exc}") from None
    try:
        data = json.loads(text)
        if not isinstance(data, dict) or data.get("format") != FORMAT or data.get("exchange") != exchange_id:
            raise ValueError(f"not a format-{FORMAT} market list of {exchange_id}")
        fetched = data["fetched_at"]
        if not isinstance(fetched, int) or isinstance(fetched, bool):
            raise ValueError("fetched_at is not epoch milliseconds")
        markets = tuple(_market_from_json(m, exchange_id) for m in data["markets"])
    except (ValueError, KeyError, TypeError, RecursionError) as exc:
        raise DataError(
            f"the market list {path} cannot be used ({exc}); it is fetched again when online"
        ) from None
    return MarketList(exchange_id, fetched, markets)


def _market_from_json(m: Any, exchange_id: str) -> MarketInfo:
    if not isinstance(m, dict):
        raise ValueError("a market is not an object")
    for k in ("symbol", "id", "base", "quote", "settle"):
        if not isinstance(m.get(k), str) or not m[k]:
            raise ValueError(f"a market has no {k}")
    if m.get("exchange") != exchange_id or not isinstance(m.get("active"), bool):
        raise ValueError(f"market {m['symbol']} is not of {exchange_id} or has no active flag")
    size = _number(m.get("contract_size"))
    if size is None:
        raise ValueError(f"market {m['symbol']} has no contract size")
    return MarketInfo(
        exchange_id, m["symbol"], m["id"], m["base"], m["quote"], m["settle"], size, _number(m.get("tick")),
        _number(m.get("max_leverage")), m["active"],
    )  # fmt: skip


@dataclass
class MarketLists:
    """The lists at hand (venue id → list) and one line per venue whose list is missing, unreadable or old."""

    lists: dict[str, MarketList] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)

    def markets(self) -> list[MarketInfo]:
        return [m for ml in self.lists.values() for m in ml.markets]


def load_market_lists(exchange_ids: Iterable[str] | None = None, folder: Path | None = None) -> MarketLists:
    """The cached lists of the venues (default: every supported venue), for offline search."""
    out = MarketLists()
    for ex in exchange_ids or VENUES:
        try:
            ml = load_market_list(ex, folder)
        except DataError as exc:
            out.problems.append(str(exc))
            continue
        if ml is None:
            out.problems.append(f"{ex}: no market list yet (fetched on the first connection)")
        else:
            out.lists[ex] = ml
    return out


async def refresh_market_lists(
    exchange_ids: Iterable[str] | None = None,
    ccxt_options: Mapping[str, dict[str, Any]] | None = None,
    *,
    folder: Path | None = None,
    now_ms: int | None = None,
) -> MarketLists:
    """Fetch each venue's markets and store them; a venue that cannot be reached keeps its cached list and is
    reported in ``problems``."""
    out = MarketLists()
    for ex in exchange_ids or VENUES:
        try:
            ml = await fetch_market_list(ex, (ccxt_options or {}).get(ex), now_ms=now_ms)
            save_market_list(ml, folder)
            out.lists[ex] = ml
        except Exception as exc:  # ccxt and the network raise many kinds; one venue must not stop the others
            cached = None
            try:
                cached = load_market_list(ex, folder)
            except DataError as bad:
                out.problems.append(str(bad))
            when = ""
            if cached is not None:
                out.lists[ex] = cached
                when = time.strftime("%Y-%m-%d %H:%M", time.gmtime(cached.fetched_at / 1000))
            kept = f"using the list from {when} UTC" if when else "no list cached"
            out.problems.append(
                f"{ex}: markets not refreshed ({type(exc).__name__}: {str(exc)[:160]}); {kept}"
            )
    return out


# -- search ----------------------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class SearchHit:
    market: MarketInfo
    match: str  # "exact", "prefix" or "contains"
    recent: bool
    watched: bool


def _squash(text: str) -> str:
    return "".join(ch for ch in text.upper() if ch.isalnum())


def _match(query: str, m: MarketInfo) -> int | None:
    """0: the base, pair, symbol or venue id is the query; 1: the base starts with it; 2: a name contains it;
    None: no match. Case, spaces and separators are ignored."""
    q = _squash(query)
    if not q:
        return None
    base = _squash(m.base)
    names = (_squash(m.symbol), _squash(m.id), _squash(m.symbol.split(":")[0]))  # SOLUSDTUSDT, SOLUSDT, ...
    if base == q or q in names:
        return 0
    if base.startswith(q):
        return 1
    if any(q in n for n in (base, *names)):
        return 2
    return None


def search_markets(
    query: str,
    markets: Iterable[MarketInfo] | MarketLists,
    *,
    recent: Sequence[MarketKey] = (),
    watched: Sequence[MarketKey] = (),
    limit: int = 50,
    include_inactive: bool = False,
) -> list[SearchHit]:
    """Markets matching ``query`` (case-insensitive), best first (see the module notes). An empty query lists the
    recent markets, then the watched ones. ``recent`` is most recent first; both hold (exchange, symbol)."""
    pool = markets.markets() if isinstance(markets, MarketLists) else list(markets)
    recent_rank = {k: i for i, k in enumerate(dict.fromkeys(recent))}
    watched_set = set(watched)
    venue_rank = {ex: i for i, ex in enumerate(VENUES)}
    q = query.strip().upper()
    scored: list[tuple[tuple[Any, ...], SearchHit]] = []
    for m in pool:
        if not m.active and not include_inactive:
            continue
        is_recent, is_watched = m.key in recent_rank, m.key in watched_set
        if q:
            tier = _match(q, m)
            if tier is None:
                continue
        elif is_recent or is_watched:
            tier = 0
        else:
            continue
        quote = QUOTE_ORDER.index(m.quote) if m.quote in QUOTE_ORDER else len(QUOTE_ORDER)
        key = (
            tier, recent_rank.get(m.key, len(recent_rank)), not is_watched, quote,
            venue_rank.get(m.exchange, len(venue_rank)), m.exchange, m.symbol,
        )  # fmt: skip
        match = ("exact", "prefix", "contains")[tier] if q else ("recent" if is_recent else "watched")
        scored.append((key, SearchHit(m, match, is_recent, is_watched)))
    scored.sort(key=lambda x: x[0])
    return [hit for _, hit in scored[: max(0, limit)]]
