"""Bundled real market data (resources/sample, provenance in resources/sample/PROVENANCE.md).

The samples let the app start offline and give tests real numbers. Loading one reads the bundled
gzip CSVs with the same readers as user files (about 0.15 s for the default); results are cached
per process and their arrays are read-only, because every caller shares them.
"""

from __future__ import annotations

import dataclasses
import functools

import numpy as np

from liqdesk.core.series import Candles, Liquidations, OpenInterest
from liqdesk.core.timespan import utc_text
from liqdesk.errors import DataError
from liqdesk.feeds.files import (
    merge_taker_volume,
    read_candles_report,
    read_liquidations_report,
    read_open_interest_report,
    read_taker_volume_report,
)
from liqdesk.feeds.fills import read_fills_report
from liqdesk.feeds.market_data import MarketData
from liqdesk.feeds.resources import resource_path
from liqdesk.feeds.validate import ReadReport

SYMBOL = "BTC/USDT:USDT"
EXCHANGE = "binanceusdm"

CANDLES_5M = "binance_um_BTCUSDT_5m_2023-11-01_2024-12-30.csv.gz"
METRICS_5M = "binance_um_BTCUSDT_5m_metrics_2024-05-09_2024-05-16.csv.gz"
CANDLES_1M = "binance_um_BTCUSDT_1m_2025-01-27_2025-02-26.csv.gz"
FORCE_ORDERS = "binance_forceOrder_capture_2025-01-26_2025-02-06.csv.gz"
KLINES_1H = "binance_um_BTCUSDT_1h_klines_2025-05-11_2025-08-10.csv.gz"
CANDLES_1M_2025_05 = "binance_um_BTCUSDT_1m_2025-05-25_2025-05-27.csv.gz"
HYPERLIQUID_FILLS = "hyperliquid_BTC_liquidation_fills_2025-05-25_2025-05-26.csv.gz"
CANDLES_5M_2025_10 = "binance_um_BTCUSDT_5m_2025-09-26_2025-10-12.freqtrade.json.gz"

DEFAULT_SAMPLE = "btcusdt-5m"

_DESCRIPTIONS: dict[str, str] = {
    "btcusdt-5m": (
        "Binance USDⓈ-M BTCUSDT 5m candles 2023-11-01 → 2024-05-16 19:35 (close of the last bar), with the only real open-interest "
        "week (2024-05-09 20:35 → 05-16 19:35, 5-minute steps) and taker buy volume from 2024-05-10 20:25"
    ),
    "btcusdt-1m-2025-01": (
        "Binance USDⓈ-M BTCUSDT 1m candles 2025-01-27 13:02 → 02-26 13:00 and the 31 real BTCUSDT "
        "liquidations recorded 2025-01-27 16:52–17:09 (DeepSeek sell-off); no open interest"
    ),
    "btcusdt-1h-2025": (
        "Binance USDⓈ-M BTCUSDT 1h klines 2025-05-11 → 2025-08-10 with quote and taker buy volume; "
        "no open interest"
    ),
    "btcusdt-1m-2025-05": (
        "Binance USDⓈ-M BTCUSDT 1m candles 2025-05-25 10:33 → 05-27 07:00 and 464 real Hyperliquid BTC "
        "liquidation fills 2025-05-25 15:21 → 05-26 06:56 (another venue; side inferred from the price "
        "path, 4 ambiguous fills left out); no open interest"
    ),
    "btcusdt-5m-2025-10-10": (
        "Binance USDⓈ-M BTCUSDT 5m candles 2025-09-26 → 2025-10-12 23:55 (open of the last bar): the crash of "
        "2025-10-10 (high 122,497, low 101,516.5), the largest liquidation day on record, with two weeks of "
        "history before it; no open interest or taker volume (volume model)"
    ),
}


def list_samples() -> list[str]:
    """Sample names, default first."""
    return list(_DESCRIPTIONS)


def sample_description(name: str) -> str:
    _check_name(name)
    return _DESCRIPTIONS[name]


def load_sample(name: str = DEFAULT_SAMPLE) -> MarketData:
    """A bundled sample by name (see list_samples): a MarketData of its own (the arrays, read-only, are
    read once per process and shared)."""
    _check_name(name)
    return dataclasses.replace(_load(name))


def sample_name(market: MarketData) -> str | None:
    """Which loaded sample `market` is (its bars are that sample's own arrays), None for other data."""
    return next((n for n, t in _loaded.items() if market.candles.open_time is t), None)


_loaded: dict[str, object] = {}  # sample name → its bars' open times (the array every bundle of it shares)


def _check_name(name: str) -> None:
    if name not in _DESCRIPTIONS:
        raise DataError(f"unknown sample {name!r}; available: {', '.join(_DESCRIPTIONS)}")


@functools.cache
def _load(name: str) -> MarketData:
    if name == "btcusdt-5m":
        data = _btcusdt_5m()
    elif name == "btcusdt-1m-2025-01":
        data = _btcusdt_1m_2025_01()
    elif name == "btcusdt-1m-2025-05":
        data = _btcusdt_1m_2025_05()
    elif name == "btcusdt-5m-2025-10-10":
        data = _btcusdt_5m_2025_10_10()
    else:
        data = _btcusdt_1h_2025()
    for part in (data.candles, data.open_interest, data.liquidations):
        _freeze(part)
    _loaded[name] = data.candles.open_time
    return data


def _path(file: str) -> str:
    return str(resource_path("sample", file))


def _label(candles: Candles) -> str:
    first, last = int(candles.open_time[0]), int(candles.open_time[-1])
    return (f"Bundled sample: Binance BTCUSDT {candles.timeframe}, {utc_text(first, minutes=False)} → "
            f"{utc_text(last, minutes=False)} (real data)")  # fmt: skip


def _sample(
    label: str,
    candles: Candles,
    notes: tuple[str, ...],
    open_interest: OpenInterest | None = None,
    liquidations: Liquidations | None = None,
) -> MarketData:
    return MarketData(candles=candles, open_interest=open_interest,
                      liquidations=liquidations if liquidations is not None else Liquidations.empty(),
                      symbol=SYMBOL, exchange=EXCHANGE, label=label, offline=True, source_kind="sample",
                      notes=notes)  # fmt: skip


def _notes(*reports: ReadReport) -> tuple[str, ...]:
    return tuple(r.summary() for r in reports if not r.clean or r.notes)


def _btcusdt_5m() -> MarketData:
    candles, rc = read_candles_report(_path(CANDLES_5M))
    oi, ro = read_open_interest_report(_path(METRICS_5M))
    taker, rt = read_taker_volume_report(_path(METRICS_5M))
    # History up to the end of the open-interest week: the last bar is the one that closes at the
    # last OI snapshot, so every bar of the week has open interest at its close (OI model).
    limit = int(oi.time[-1])
    candles = candles.take(slice(0, int(np.searchsorted(candles.close_time, limit, side="right"))))
    # The metrics file's taker buy/sell volume is in BTC (base): buy + sell equals these bars'
    # volume at the same open time (median ratio 0.99999, correlation 1.0 over 1,718 bars);
    # merge_taker_volume checks that again (units="auto") and raises if it ever stops holding.
    candles = merge_taker_volume(candles, taker)
    return _sample(_label(candles), candles, _notes(rc, ro, rt), open_interest=oi)


def _btcusdt_1m_2025_01() -> MarketData:
    candles, rc = read_candles_report(_path(CANDLES_1M))
    liq, rl = read_liquidations_report(_path(FORCE_ORDERS), exchange=EXCHANGE, symbol=SYMBOL)
    return _sample(_label(candles), candles, _notes(rc, rl), liquidations=liq)


def _btcusdt_1m_2025_05() -> MarketData:
    candles, rc = read_candles_report(_path(CANDLES_1M_2025_05))
    # The fills file's side column is wrong at the source: the side comes from these candles' path.
    liq, rl, _ = read_fills_report(_path(HYPERLIQUID_FILLS), candles)
    label = _label(candles).replace("(real data)", "+ Hyperliquid liquidation fills (real data)")
    return _sample(label, candles, _notes(rc, rl), liquidations=liq)


def _btcusdt_5m_2025_10_10() -> MarketData:
    candles, rc = read_candles_report(_path(CANDLES_5M_2025_10))
    label = _label(candles).replace("(real data)", "(real data; no open interest: volume model)")
    return _sample(label, candles, _notes(rc))


def _btcusdt_1h_2025() -> MarketData:
    candles, rc = read_candles_report(_path(KLINES_1H))
    return _sample(_label(candles), candles, _notes(rc))


def _freeze(obj: Candles | OpenInterest | Liquidations | None) -> None:
    if obj is None:
        return
    for f in dataclasses.fields(obj):
        v = getattr(obj, f.name)
        if isinstance(v, np.ndarray):
            v.flags.writeable = False
