"""File readers: real bundled files (numbers from resources/sample/PROVENANCE.md) and crafted bad files."""

from __future__ import annotations

import csv
import gzip
import json
import warnings
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from liqdesk.core.series import LONG, SHORT, Candles
from liqdesk.errors import DataError
from liqdesk.feeds.files import (
    DataWarning,
    TakerVolume,
    detect_kind,
    merge_taker_volume,
    read_any,
    read_candles,
    read_candles_report,
    read_liquidations,
    read_liquidations_report,
    read_open_interest,
    read_open_interest_report,
    read_taker_volume,
    read_taker_volume_report,
    to_ccxt_symbol,
)
from liqdesk.feeds.resources import resource_path

MIN5 = 300_000
HOUR = 3_600_000


def sample(name: str) -> Path:
    return resource_path("sample", name)


CANDLES_5M = "binance_um_BTCUSDT_5m_2023-11-01_2024-12-30.csv.gz"
CANDLES_1M = "binance_um_BTCUSDT_1m_2025-01-27_2025-02-26.csv.gz"
KLINES_1H = "binance_um_BTCUSDT_1h_klines_2025-05-11_2025-08-10.csv.gz"
METRICS = "binance_um_BTCUSDT_5m_metrics_2024-05-09_2024-05-16.csv.gz"
FORCE = "binance_forceOrder_capture_2025-01-26_2025-02-06.csv.gz"


def ms(iso: str) -> int:
    return int(np.datetime64(iso, "ms").astype(np.int64))


def write(tmp_path: Path, name: str, text: str, *, gz: bool = False) -> Path:
    p = tmp_path / name
    data = text.encode()
    p.write_bytes(gzip.compress(data) if gz else data)
    return p


GOOD = [  # open_time (2024-01-01 00:00 + i*5m), o, h, l, c, v
    (ms("2024-01-01T00:00") + i * MIN5, 100 + i, 101 + i, 99 + i, 100.5 + i, 10 + i) for i in range(20)
]


def csv_text(
    rows: list[tuple[object, ...]], header: str | None = "open_time,open,high,low,close,volume"
) -> str:
    body = "\n".join(",".join(str(x) for x in r) for r in rows)
    return (header + "\n" if header else "") + body + "\n"


# ---------------------------------------------------------------------------------------------
# Real files


def test_real_5m_candles_match_provenance() -> None:
    c, report = read_candles_report(sample(CANDLES_5M))
    assert len(c) == 122_688 and c.interval_ms == MIN5
    assert c.open_time[0] == ms("2023-11-01T00:00") and c.open_time[-1] == ms("2024-12-30T23:55")
    assert report.clean and report.gaps == 0 and report.rows == 122_688
    assert c.quote_volume is None and c.taker_buy_volume is None
    assert (c.open[0], c.high[0], c.low[0], c.close[0], c.volume[0]) == (
        34651.4,
        34684.0,
        34592.0,
        34615.4,
        2006.01,
    )


def test_real_1m_candles() -> None:
    c, report = read_candles_report(sample(CANDLES_1M))
    assert len(c) == 43_199 and c.timeframe == "1m"
    assert c.open_time[0] == ms("2025-01-27T13:02") and c.open_time[-1] == ms("2025-02-26T13:00")
    assert report.clean and report.gaps == 0


def test_real_1h_klines_drop_three_duplicates_with_warning() -> None:
    with pytest.warns(DataWarning, match="3 duplicate rows dropped"):
        c = read_candles(sample(KLINES_1H))
    assert len(c) == 2_208 and c.timeframe == "1h"
    assert c.open_time[0] == ms("2025-05-11T00:00") and c.open_time[-1] == ms("2025-08-10T23:00")
    assert c.quote_volume is not None and c.taker_buy_volume is not None
    assert c.quote_volume[0] == 1169394702.7055 and c.taker_buy_volume[0] == 4775.353
    assert len(np.unique(c.open_time)) == len(c)
    _, report = read_candles_report(sample(KLINES_1H))
    assert report.duplicates == 3 and report.conflicts == 0 and not report.rejected
    assert report.messages()[0].endswith(":723: exact duplicate of line 722, dropped")
    assert str(sample(KLINES_1H)) in report.messages()[0]


def test_real_metrics_open_interest_week_has_no_missing_step() -> None:
    oi, report = read_open_interest_report(sample(METRICS))
    assert len(oi) == 2_005 and report.clean and report.gaps == 0
    assert oi.time[0] == ms("2024-05-09T20:35") and oi.time[-1] == ms("2024-05-16T19:35")
    assert np.all(np.diff(oi.time) == MIN5)
    assert oi.usd[0] == 4348984183.19738
    assert oi.usd.min() > 3e9 and oi.usd.max() < 6e9


def test_real_metrics_taker_volume_is_base_and_lines_up_with_candles() -> None:
    taker, report = read_taker_volume_report(sample(METRICS))
    assert len(taker) == 1_718 and report.skipped == 287 and not report.rejected
    assert taker.time[0] == ms("2024-05-10T20:25")
    candles = read_candles(sample(CANDLES_5M)).between(ms("2024-05-09"), ms("2024-05-17"))
    merged = merge_taker_volume(candles, taker)
    tb = merged.taker_buy_volume
    assert tb is not None and np.isfinite(tb).sum() == 1_718
    # buy + sell at the same open time equals the bar volume: base (BTC) units, no time shift
    idx = np.searchsorted(candles.open_time, taker.time)
    ratio = (taker.buy + taker.sell) / candles.volume[idx]
    assert abs(np.median(ratio) - 1.0) < 1e-3
    assert np.corrcoef(taker.buy + taker.sell, candles.volume[idx])[0, 1] > 0.9999
    assert np.all(tb[np.isfinite(tb)] <= merged.volume[np.isfinite(tb)] * 1.01)


def _capture_rows() -> list[list[str]]:
    with gzip.open(sample(FORCE), "rt") as f:
        return list(csv.reader(f))


def test_real_force_orders_dedupe_and_btc_events() -> None:
    all_liq, report = read_liquidations_report(sample(FORCE))
    assert report.rows == 3_510 and len(all_liq) == 1_837 and report.duplicates == 3_510 - 1_837
    assert not report.rejected
    with pytest.warns(DataWarning, match="1673 duplicate rows dropped"):
        btc = read_liquidations(sample(FORCE), symbol="BTC")
    assert len(btc) == 31
    assert set(btc.symbol.tolist()) == {"BTC/USDT:USDT"} and set(btc.exchange.tolist()) == {"binanceusdm"}
    assert btc.usd.sum() == pytest.approx(510_994.21, abs=0.01)
    assert (btc.side == LONG).sum() == 26 and (btc.side == SHORT).sum() == 5
    assert btc.time[0] == 1737996728214 and btc.time[-1] == ms("2025-01-27T17:09:11.425")
    assert np.all(np.diff(btc.time) >= 0)
    # first event: SELL 0.010 @ limit 99392.55, filled at average 99767.53 -> a long, priced at the fill
    assert btc.side[0] == LONG and btc.price[0] == 99767.53 and btc.quantity[0] == 0.010
    # BTCUSDC is another market, not BTC (the recorder strips only 'USDT')
    assert len(all_liq.take(all_liq.symbol == "BTC/USDC:USDC")) == 6


def test_force_order_limit_price_is_beyond_the_fill() -> None:
    rows = {tuple(r[:11]) for r in _capture_rows() if r[0] == "BTC"}
    for r in rows:
        limit, fill = float(r[5]), float(r[6])
        # the limit price is on the far side of the fill: below for SELL, above for BUY, tens of bp
        bp = (fill - limit) / fill * 1e4 * (1 if r[1] == "SELL" else -1)
        assert 20 < bp < 50


def test_usd_size_column_explains_the_774k_figure() -> None:
    """Deduping on all 12 columns keeps 33 BTC rows (two events twice, their copies' usd_size is 1e-6
    smaller) and sums to ~$774k; the 31 real events are ~$511k."""
    rows = {tuple(r) for r in _capture_rows() if r[0] == "BTC"}
    assert len(rows) == 33
    assert sum(float(r[9]) * float(r[6]) for r in rows) == pytest.approx(774_198, abs=1)
    liq = read_liquidations_report(sample(FORCE), symbol="BTCUSDT")[0]
    assert len(liq) == 31 and liq.usd.sum() == pytest.approx(510_994.21, abs=0.01)


def _ws_message(r: list[str], event_time: int) -> dict[str, object]:
    keys = ("s", "S", "o", "f", "q", "p", "ap", "X", "l", "z", "T")
    o: dict[str, object] = dict(zip(keys, r[:11], strict=True))
    o["s"] = f"{r[0]}USDT" if not r[0].endswith("USDC") else r[0]
    o["T"] = int(r[10])
    return {"e": "forceOrder", "E": event_time, "o": o}


def test_websocket_json_lines_give_the_same_events(tmp_path: Path) -> None:
    rows = [r for r in _capture_rows() if r[0] in ("BTC", "ETH")]
    lines = ['{"result":null,"id":1}']  # subscription reply: skipped, not an error
    for i, r in enumerate(rows):
        msg = _ws_message(r, int(r[10]) + 5)
        # alternate bare messages and the combined-stream wrapper
        lines.append(json.dumps(msg if i % 2 else {"stream": "!forceOrder@arr", "data": msg}))
    lines.append('{"e":"aggTrade","s":"BTCUSDT"}')
    p = write(tmp_path, "capture.jsonl", "\n".join(lines) + "\n")
    liq, report = read_liquidations_report(p, symbol="BTC/USDT:USDT")
    assert report.skipped == 2 and not report.rejected and report.duplicates > 0
    ref = read_liquidations_report(sample(FORCE), symbol="BTC")[0]
    assert len(liq) == 31
    np.testing.assert_array_equal(liq.time, ref.time)
    np.testing.assert_array_equal(liq.side, ref.side)
    np.testing.assert_allclose(liq.usd, ref.usd)
    # a JSON array of the same messages (a saved REST/websocket dump), gzip by magic, odd name
    arr = write(tmp_path, "dump.data", "[" + ",".join(lines) + "]", gz=True)
    assert len(read_liquidations_report(arr, symbol="BTCUSDT")[0]) == 31
    assert detect_kind(p) == "liquidations"


def test_websocket_bad_lines_are_reported(tmp_path: Path) -> None:
    r = ["BTC", "SELL", "LIMIT", "IOC", "0.5", "99000", "99300", "FILLED", "0.5", "0.5", "1737996728214"]
    good = [json.dumps(_ws_message(r[:10] + [str(1737996728214 + i * 1000)], 0)) for i in range(20)]
    bad_side = _ws_message(r, 0)
    bad_side["o"]["S"] = "HOLD"  # type: ignore[index]
    text = "\n".join([*good[:5], "{not json", json.dumps(bad_side), '{"e":"forceOrder","o":{}}', *good[5:]])
    p = write(tmp_path, "ws.jsonl", text)
    liq, report = read_liquidations_report(p)
    assert len(liq) == 20
    msgs = report.messages()
    assert msgs[0].startswith(f"{p}:6: not valid JSON")
    assert msgs[1] == f"{p}:7: side 'HOLD' is not BUY or SELL"
    assert msgs[2] == f"{p}:8: forceOrder message without the order fields"


def test_liquidation_csv_bad_rows_and_garbage(tmp_path: Path) -> None:
    good = "BTC,SELL,LIMIT,IOC,0.010,99392.55,99767.53,FILLED,0.002,0.010,{t},993.9"
    rows = [good.format(t=1737996728214 + i * 1000) for i in range(10)]
    rows.insert(3, "BTC,SELL,LIMIT,IOC,0.010,99392.55,0,FILLED,0.002,0.010,1737996728999,1")
    p = write(tmp_path, "fo.csv", "\n".join(rows))
    liq, report = read_liquidations_report(p)
    assert len(liq) == 10 and report.messages() == [f"{p}:4: average price 0 is not a positive price"]
    garbage = write(tmp_path, "fo_bad.csv", "\n".join(rows[:2] + [r.replace("SELL", "X") for r in rows[2:]]))
    with pytest.raises(DataError, match=r"fo_bad.csv: 9 of 11 rows are unusable.*fo_bad.csv:3: side"):
        read_liquidations(garbage)
    with pytest.raises(DataError, match="unknown liquidation layout"):
        read_liquidations(write(tmp_path, "x.csv", csv_text(GOOD, header=None)))


def test_liquidation_symbol_filter_forms() -> None:
    counts = {
        s: len(read_liquidations_report(sample(FORCE), symbol=s)[0])
        for s in ("BTC", "BTCUSDT", "btc/usdt:usdt")
    }
    assert counts == {"BTC": 31, "BTCUSDT": 31, "btc/usdt:usdt": 31}
    with pytest.warns(DataWarning) as rec:
        assert len(read_liquidations(sample(FORCE), symbol="NOPE")) == 0
    assert any("no liquidations for NOPE/USDT:USDT among 1837 events" in str(w.message) for w in rec)


@pytest.mark.parametrize(
    ("raw", "ccxt"),
    [
        ("BTC", "BTC/USDT:USDT"),
        ("BTCUSDT", "BTC/USDT:USDT"),
        ("btcusdt", "BTC/USDT:USDT"),
        ("BTCUSDC", "BTC/USDC:USDC"),
        ("1000PEPE", "1000PEPE/USDT:USDT"),
        ("BTCUSDT_250328", "BTC/USDT:USDT-250328"),
        ("BTC/USDT", "BTC/USDT:USDT"),
        ("ETH/USDT:USDT", "ETH/USDT:USDT"),
        ("USDC", "USDC/USDT:USDT"),
    ],
)
def test_to_ccxt_symbol(raw: str, ccxt: str) -> None:
    assert to_ccxt_symbol(raw) == ccxt


# ---------------------------------------------------------------------------------------------
# Crafted candle files: validation


def test_malformed_rows_name_file_line_and_reason(tmp_path: Path) -> None:
    rows: list[tuple[object, ...]] = list(GOOD)
    t = GOOD[-1][0]
    bad = [  # (row, expected reason); inserted after the good rows, lines 22..
        ((t + 1 * MIN5, "abc", 101, 99, 100, 1), "open is not a number: 'abc'"),
        ((t + 2 * MIN5, 100, 99.5, 99, 100, 1), "high 99.5 is below max(open, close) 100"),
        ((t + 3 * MIN5, 100, 101, 100.5, 100.2, 1), "low 100.5 is above min(open, close) 100"),
        ((t + 4 * MIN5, 100, 101, 99, 100, -3), "volume -3 is negative or not finite"),
        ((t + 5 * MIN5, 0, 101, 99, 100, 1), "open 0 is not a positive price"),
        ((t + 6 * MIN5, 100, 101, 99, 100), "5 fields, expected 6"),
        (("yesterday", 100, 101, 99, 100, 1), "time is not a time: 'yesterday'"),
        ((t + 8 * MIN5, 100, "inf", 99, 100, 1), "high inf is not a positive price"),
        ((t + 9 * MIN5, 100, 101, 99, 100, ""), "volume is not a number: ''"),
    ]
    rows += [r for r, _ in bad] + [(t + 20 * MIN5 + i * MIN5, 100, 101, 99, 100, 1) for i in range(30)]
    p = write(tmp_path, "bad.csv", csv_text(rows))
    with pytest.warns(DataWarning, match=r"bad.csv: 9 of 59 rows rejected"):
        c = read_candles(p)
    assert len(c) == 50 and c.interval_ms == MIN5
    _, report = read_candles_report(p)
    assert report.messages() == [f"{p}:{22 + i}: {reason}" for i, (_, reason) in enumerate(bad)]
    assert report.gaps == 19  # t+1..t+19: the rejected rows' bars and the hole after them


def test_duplicate_rows_and_conflicting_rows(tmp_path: Path) -> None:
    rows: list[tuple[object, ...]] = list(GOOD)
    rows.insert(5, GOOD[4])  # exact copy of line 6 at line 7
    changed = (GOOD[10][0], 200, 201, 199, 200.5, 7)
    rows.append(changed)  # same time as GOOD[10] (line 13) with other values, at the end: line 23
    p = write(tmp_path, "dups.csv", csv_text(rows))
    with pytest.warns(DataWarning) as rec:
        c = read_candles(p)
    text = str(rec[0].message)
    assert "1 duplicate rows dropped" in text and "1 rows replaced by a later line" in text
    assert len(c) == 20
    # the later line wins for the conflicting time
    i = int(np.searchsorted(c.open_time, GOOD[10][0]))
    assert (c.open[i], c.volume[i]) == (200, 7)
    _, report = read_candles_report(p)
    assert report.messages() == [
        f"{p}:7: exact duplicate of line 6, dropped",
        f"{p}:13: same time as line 23 with different values; the later line 23 was kept",
    ]
    assert report.notes == ["rows were not in time order; sorted"]


def test_unsorted_rows_are_sorted(tmp_path: Path) -> None:
    rows = list(reversed(GOOD))
    c, report = read_candles_report(write(tmp_path, "rev.csv", csv_text(rows)))
    assert np.all(np.diff(c.open_time) == MIN5) and c.open[0] == 100
    assert "sorted" in report.notes[0] and report.clean


def test_mostly_garbage_raises(tmp_path: Path) -> None:
    rows: list[tuple[object, ...]] = list(GOOD[:10]) + [(g[0], "x", "y", "z", "w", "v") for g in GOOD[10:]]
    p = write(tmp_path, "garbage.csv", csv_text(rows))
    with pytest.raises(DataError) as e:
        read_candles(p)
    msg = str(e.value)
    assert f"{p}: 10 of 20 rows are unusable" in msg and f"{p}:12: open is not a number: 'x'" in msg
    # a fifth of the rows bad is still accepted
    ok_rows: list[tuple[object, ...]] = list(GOOD[:16]) + [(g[0], "x", 1, 1, 1, 1) for g in GOOD[16:]]
    assert len(read_candles_report(write(tmp_path, "ok.csv", csv_text(ok_rows)))[0]) == 16


def test_no_valid_rows_raises(tmp_path: Path) -> None:
    p = write(tmp_path, "none.csv", csv_text([(g[0], 1, 0.5, 2, 1, 1) for g in GOOD[:3]]))
    with pytest.raises(
        DataError, match=r"none.csv: no usable candle rows; first problems: .*none.csv:2: high"
    ):
        read_candles(p)
    with pytest.raises(DataError, match="no data rows"):
        read_candles(write(tmp_path, "header_only.csv", "open_time,open,high,low,close,volume\n"))
    with pytest.raises(DataError, match="no data rows"):
        read_candles(write(tmp_path, "empty.csv", ""))


def test_file_errors_name_the_path(tmp_path: Path) -> None:
    missing = tmp_path / "nope.csv"
    with pytest.raises(DataError, match=f"{missing}: file not found"):
        read_candles(missing)
    with pytest.raises(DataError, match="unreadable gzip"):
        read_candles(write(tmp_path, "fake.csv.gz", csv_text(GOOD)))
    truncated = tmp_path / "trunc.csv"
    truncated.write_bytes(gzip.compress(csv_text(GOOD).encode())[:60])
    with pytest.raises(DataError, match=f"{truncated}: unreadable gzip"):
        read_candles(truncated)
    binary = tmp_path / "bin.csv"
    binary.write_bytes(bytes(range(256)))
    with pytest.raises(DataError, match=f"{binary}: not a text data file"):
        read_candles(binary)
    with pytest.raises(DataError, match="not a candle file: no volume column"):
        read_candles(write(tmp_path, "oi.csv", "timestamp,open,high,low,close\n1715286900000,1,1,1,1\n"))
    with pytest.raises(DataError, match="unknown candle layout"):
        read_candles(write(tmp_path, "two.csv", "1715286900000,1\n1715287200000,2\n"))
    with pytest.raises(DataError, match="is a folder"):
        read_candles(tmp_path)
    with pytest.raises(DataError, match="liquidation capture, not candles"):
        read_candles(sample(FORCE))
    with pytest.raises(DataError, match=r"cut.json: not valid JSON \(Expecting"):
        read_candles(write(tmp_path, "cut.json", json.dumps([list(g) for g in GOOD])[:-30]))


def test_zero_volume_halt_bars_are_valid(tmp_path: Path) -> None:
    rows: list[tuple[object, ...]] = [*GOOD, (GOOD[-1][0] + MIN5, 100, 100, 100, 100, 0.0)]
    c, report = read_candles_report(write(tmp_path, "halt.csv", csv_text(rows)))
    assert len(c) == 21 and report.clean and c.volume[-1] == 0


# ---------------------------------------------------------------------------------------------
# Crafted candle files: layouts


def _kline_rows(fmt_time=str) -> list[list[str]]:  # type: ignore[no-untyped-def]
    out = []
    for t, o, h, lo, c, v in GOOD:
        out.append([fmt_time(t), o, h, lo, c, v, t + MIN5 - 1, v * c, 42, v * 0.4, v * c * 0.4, 0])
    return [[str(x) for x in r] for r in out]


def _check_good(c: Candles, *, extra: bool) -> None:
    assert len(c) == 20 and c.interval_ms == MIN5
    assert c.open_time[0] == GOOD[0][0] and c.close[3] == 103.5 and c.volume[-1] == 29
    if extra:
        assert c.quote_volume is not None and c.taker_buy_volume is not None
        assert c.quote_volume[0] == pytest.approx(10 * 100.5) and c.taker_buy_volume[1] == pytest.approx(4.4)
    else:
        assert c.quote_volume is None and c.taker_buy_volume is None


KLINE_HEADER = (
    "open_time,open,high,low,close,volume,close_time,quote_volume,count,taker_buy_volume,"
    "taker_buy_quote_volume,ignore"
)


def test_binance_kline_csv_with_and_without_header(tmp_path: Path) -> None:
    body = "\n".join(",".join(r) for r in _kline_rows())
    _check_good(read_candles(write(tmp_path, "h.csv", KLINE_HEADER + "\n" + body)), extra=True)
    _check_good(read_candles(write(tmp_path, "nh.csv", body)), extra=True)
    _check_good(read_candles(write(tmp_path, "six.csv", csv_text(GOOD, header=None))), extra=False)


def test_time_as_epoch_seconds_microseconds_and_date_strings(tmp_path: Path) -> None:
    def iso(t: int) -> str:
        return str(np.datetime64(t, "ms")).replace("T", " ")[:19]

    variants = {
        "s.csv": lambda t: str(t // 1000),
        "s_float.csv": lambda t: f"{t / 1000:.1f}",
        "us.csv": lambda t: str(t * 1000),
        "iso_space.csv": iso,
        "iso_tz.csv": lambda t: iso(t).replace(" ", "T") + "Z",
        "iso_offset.csv": lambda t: iso(t + HOUR).replace(" ", "T") + "+01:00",
    }
    for name, fmt in variants.items():
        header = KLINE_HEADER.replace("open_time", "timestamp")
        body = "\n".join(",".join(r) for r in _kline_rows(fmt))
        c, report = read_candles_report(write(tmp_path, name, header + "\n" + body))
        _check_good(c, extra=True)
        assert report.clean, name
    # the real 1h file's layout: 'timestamp' as date-time string, close_time as string
    c = read_candles(write(tmp_path, "dt.csv", "timestamp,open,high,low,close,volume\n2025-05-11 00:00:00,1,2,0.5,1.5,3\n"
                           "2025-05-11 01:00:00,1,2,0.5,1.5,3\n"))  # fmt: skip
    assert c.open_time.tolist() == [ms("2025-05-11T00:00"), ms("2025-05-11T01:00")] and c.timeframe == "1h"


def test_header_name_variants_crlf_blank_lines_and_comments(tmp_path: Path) -> None:
    header = "openTime,Open,High,Low,Close,Volume,quoteAssetVolume,takerBuyBaseAssetVolume"
    body = [",".join(str(x) for x in (*g, g[5] * g[4], g[5] * 0.4)) for g in GOOD]
    cells = body[12].split(",")
    body[12] = ",".join([cells[0], "oops", *cells[2:]])
    text = (
        "# exported by hand\r\n"
        + header
        + "\r\n"
        + "\r\n".join(body[:10])
        + "\r\n\r\n"
        + "\r\n".join(body[10:])
    )
    p = write(tmp_path, "crlf.csv", text)
    c, report = read_candles_report(p)
    assert len(c) == 19 and c.quote_volume is not None and c.taker_buy_volume is not None
    # line numbers are physical lines: comment 1, header 2, rows 3..12, blank 13, row 12 -> line 16
    assert report.messages() == [f"{p}:16: open is not a number: 'oops'"]
    tab = write(tmp_path, "tab.tsv", csv_text(GOOD).replace(",", "\t"))
    _check_good(read_candles(tab), extra=False)
    quoted = write(
        tmp_path, "q.csv", '"open_time","open","high","low","close","volume"\n' + csv_text(GOOD, None)
    )
    _check_good(read_candles(quoted), extra=False)


def test_freqtrade_and_binance_rest_json(tmp_path: Path) -> None:
    ft = json.dumps([list(g) for g in GOOD])
    _check_good(read_candles(write(tmp_path, "BTC_USDT_USDT-5m-futures.json", ft)), extra=False)
    _check_good(read_candles(write(tmp_path, "ft.json.gz", ft, gz=True)), extra=False)
    rest = json.dumps([[int(r[0]), *r[1:6], int(r[6]), *r[7:]] for r in _kline_rows()])  # prices as strings
    _check_good(read_candles(write(tmp_path, "klines.json", rest)), extra=True)
    broken = [list(g) for g in GOOD]
    broken[3] = [GOOD[3][0], 1, 2]
    _, report = read_candles_report(write(tmp_path, "b.json", json.dumps(broken)))
    assert report.messages() == [f"{tmp_path / 'b.json'} row 4: 3 fields, expected an array of 6"]
    with pytest.raises(DataError, match="unknown JSON layout"):
        read_candles(write(tmp_path, "o.json", '{"a": 1}'))


def test_gzip_detected_by_magic_bytes(tmp_path: Path) -> None:
    _check_good(read_candles(write(tmp_path, "plain_name.csv", csv_text(GOOD), gz=True)), extra=False)
    _check_good(read_candles(write(tmp_path, "x.csv.gz", csv_text(GOOD), gz=True)), extra=False)


def test_zip_with_one_csv(tmp_path: Path) -> None:
    import zipfile

    p = tmp_path / "BTCUSDT-5m-2024-01.zip"
    with zipfile.ZipFile(p, "w") as z:
        z.writestr("BTCUSDT-5m-2024-01.csv", "\n".join(",".join(r) for r in _kline_rows()))
    _check_good(read_candles(p), extra=True)


def test_interval_inference_and_checks(tmp_path: Path) -> None:
    rows: list[tuple[object, ...]] = [g for i, g in enumerate(GOOD) if i not in (5, 6, 12)]  # gaps
    c, report = read_candles_report(write(tmp_path, "gap.csv", csv_text(rows)))
    assert c.interval_ms == MIN5 and report.gaps == 3 and "3 missing 300s steps" in report.notes[0]
    assert read_candles(write(tmp_path, "g2.csv", csv_text(rows)), interval_ms=60_000).interval_ms == 60_000
    with pytest.raises(DataError, match="bars are 300s apart but the interval asked for is 3600s"):
        read_candles(write(tmp_path, "g3.csv", csv_text(rows)), interval_ms=HOUR)
    one = write(tmp_path, "one.csv", csv_text(GOOD[:1]))
    with pytest.raises(DataError, match="single bar; pass interval_ms"):
        read_candles(one)
    assert len(read_candles(one, interval_ms=MIN5)) == 1


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    n=st.integers(2, 40),
    seed=st.integers(0, 2**32 - 1),
    dup=st.booleans(),
    shuffle=st.booleans(),
    gz=st.booleans(),
)
def test_round_trip_property(tmp_path: Path, n: int, seed: int, dup: bool, shuffle: bool, gz: bool) -> None:
    rng = np.random.default_rng(seed)
    t = ms("2024-03-01") + np.arange(n) * MIN5
    o = np.round(rng.uniform(100, 1e5, n), 2)  # within 1000x of any median: plausible prices
    c = np.round(o * rng.uniform(0.98, 1.02, n), 2)
    h = np.round(np.maximum(o, c) + rng.uniform(0, 5, n), 2)
    lo = np.round(np.minimum(o, c) - rng.uniform(0, 5, n), 2)
    lo = np.maximum(lo, 0.01)
    v = np.round(rng.uniform(0, 1e4, n), 3)
    rows = list(zip(t.tolist(), o.tolist(), h.tolist(), lo.tolist(), c.tolist(), v.tolist(), strict=True))
    if dup:
        rows.append(rows[int(rng.integers(n))])
    if shuffle:
        rows = [rows[i] for i in rng.permutation(len(rows))]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DataWarning)
        got = read_candles(write(tmp_path, f"rt{seed}.csv", csv_text(rows), gz=gz))
    assert got.interval_ms == MIN5
    np.testing.assert_array_equal(got.open_time, t)
    for a, b in ((got.open, o), (got.high, h), (got.low, lo), (got.close, c), (got.volume, v)):
        np.testing.assert_array_equal(a, b)


# ---------------------------------------------------------------------------------------------
# Open interest and taker volume layouts


def test_open_interest_layouts(tmp_path: Path) -> None:
    t0 = ms("2024-05-09T00:05")
    rest = [{"symbol": "BTCUSDT", "sumOpenInterest": "70000.1", "sumOpenInterestValue": f"{4.3e9 + i}",
             "timestamp": t0 + i * MIN5} for i in range(12)]  # fmt: skip
    oi = read_open_interest(write(tmp_path, "oihist.json", json.dumps(rest)))
    assert len(oi) == 12 and oi.usd[3] == 4.3e9 + 3 and oi.time[0] == t0
    # data.binance.vision daily metrics: create_time as a date-time string
    vision = (
        "create_time,symbol,sum_open_interest,sum_open_interest_value,count_toptrader_long_short_ratio\n"
        + "\n".join(f"2024-05-09 00:{5 * i:02d}:00,BTCUSDT,70000,{4.3e9 + i},1.5" for i in range(1, 12))
    )
    oi2, report = read_open_interest_report(write(tmp_path, "BTCUSDT-metrics-2024-05-09.csv", vision))
    assert len(oi2) == 11 and oi2.time[0] == t0 and report.clean and report.gaps == 0
    assert detect_kind(tmp_path / "BTCUSDT-metrics-2024-05-09.csv") == "open_interest"
    with pytest.raises(DataError, match=r"no USD open-interest column .*sum_open_interest is in base units"):
        read_open_interest(write(tmp_path, "base.csv", "timestamp,sum_open_interest\n1715286900000,70000\n"))
    with pytest.raises(DataError, match="need a header"):
        read_open_interest(write(tmp_path, "nh.csv", "1715286900000,4e9\n"))
    bad = "timestamp,sum_open_interest_value\n" + "\n".join(
        f"{t0 + i * MIN5},{4e9 if i != 4 else -1}" for i in range(10)
    )
    oi3, report = read_open_interest_report(write(tmp_path, "neg.csv", bad))
    assert len(oi3) == 9 and report.messages() == [
        f"{tmp_path / 'neg.csv'}:6: open interest -1 USD is not positive"
    ]


def test_merge_taker_volume_units_and_coverage() -> None:
    t = ms("2024-01-01") + np.arange(6) * MIN5
    price = np.array([100.0, 101, 102, 103, 104, 105])
    vol = np.array([10.0, 20, 30, 40, 50, 60])
    candles = Candles(t, price, price + 1, price - 1, price, vol, MIN5)
    base = TakerVolume(t[2:5], vol[2:5] * 0.6, vol[2:5] * 0.4)
    m = merge_taker_volume(candles, base)
    assert m.taker_buy_volume is not None
    np.testing.assert_allclose(m.taker_buy_volume, [np.nan, np.nan, 18, 24, 30, np.nan])
    np.testing.assert_allclose(m.taker_buy_share()[[0, 2]], [0.5, 0.6])
    quote = TakerVolume(t[:3], vol[:3] * 0.6 * price[:3], vol[:3] * 0.4 * price[:3])
    mq = merge_taker_volume(m, quote)  # quote units, fills bars 0-1, keeps 3-4
    assert mq.taker_buy_volume is not None
    np.testing.assert_allclose(mq.taker_buy_volume, [6, 12, 18, 24, 30, np.nan])
    with pytest.raises(DataError, match="not the same market"):
        merge_taker_volume(candles, TakerVolume(t, vol * 7, vol * 7))
    with pytest.warns(DataWarning, match="no bar times in common"):
        assert merge_taker_volume(candles, TakerVolume(t + 1, vol, vol)) is candles


def test_taker_volume_columns_required(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="no taker buy/sell volume columns"):
        read_taker_volume(write(tmp_path, "m.csv", "timestamp,sum_open_interest_value\n1715286900000,4e9\n"))
    text = "timestamp,buyVol,sellVol\n" + "\n".join(
        f"{1715286900000 + i * MIN5},{i},{i + 1}" for i in range(5)
    )
    tv = read_taker_volume(write(tmp_path, "tl.csv", text))
    assert tv.buy.tolist() == [0, 1, 2, 3, 4] and tv.sell[0] == 1


def test_read_any_dispatches(tmp_path: Path) -> None:
    assert isinstance(read_any(write(tmp_path, "c.csv", csv_text(GOOD))), Candles)
    assert len(read_any(sample(METRICS))) == 2_005
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DataWarning)
        assert len(read_any(sample(FORCE))) == 1_837


def test_readers_never_import_qt() -> None:
    import subprocess
    import sys

    code = (
        "import sys, liqdesk.feeds.files, liqdesk.feeds.sample; "
        "bad = [m for m in sys.modules if m.split('.')[0] in ('PySide6', 'pyqtgraph', 'shiboken6')]; "
        "assert not bad, bad"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_report_summary_caps_examples(tmp_path: Path) -> None:
    rows: list[tuple[object, ...]] = [
        *GOOD,
        *((GOOD[-1][0] + (i + 1) * MIN5, 1, 0.5, 1, 1, 1) for i in range(4)),
    ]
    _, report = read_candles_report(write(tmp_path, "s.csv", csv_text(rows)))
    s = report.summary(limit=2)
    assert s.startswith(f"{tmp_path / 's.csv'}: 4 of 24 rows rejected; line 22: high 0.5") and s.endswith(
        "(+2 more)"
    )
    assert len(report.messages()) == 4 and report.messages()[-1].startswith(f"{tmp_path / 's.csv'}:25: high")
    assert "line 25" in report.summary()
