"""The command line on several venues: `--exchange binanceusdm,bybit,okx,hyperliquid` against the four fakes at
once (the real ccxt client pointed at each through `--ccxt-options` keyed by exchange id), and the sum property
on files: the aggregated export equals the sum of the single-venue exports on the same grid and time columns."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from liqdesk.app.cli import main
from liqdesk.feeds.sample import load_sample
from tests._venue_fakes import SYMBOLS, VENUES, ThreadedFakes

H = 3_600_000


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("LIQDESK_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("LIQDESK_CONFIG_DIR", str(tmp_path / "config"))
    return tmp_path


def _iso(ms: int) -> str:
    import time

    return time.strftime("%Y-%m-%dT%H:%MZ", time.gmtime(ms / 1000))


def test_export_levels_liquidations_on_four_venues_at_once(
    env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with ThreadedFakes(wall_clock=True) as fakes:
        opts = json.dumps(fakes.ccxt_options())
        end = fakes.now_ms - fakes.now_ms % H  # the live bar's open: every bar before it is closed
        start = end - 48 * H
        # the fake Hyperliquid serves another year's prices than the others: the range spans both
        closes = [float(x) for f in (fakes.bybit, fakes.hyperliquid)
                  for x in f.bars.close[f.closed_count() - 60 : f.closed_count()]]  # fmt: skip
        prices = f"{min(closes) * 0.8:.0f}:{max(closes) * 1.2:.0f}"
        window = ["--timeframe", "1h", "--start", _iso(start), "--end", _iso(end), "--prices", prices,
                  "--bins", "120", "--time-columns", "30"]  # fmt: skip
        agg = env / "agg.npz"
        rc = main(["export", "--exchange", ",".join(VENUES), "--symbol", "BTC/USDT:USDT", "--ccxt-options", opts,
                   *window, "--out", str(agg)])  # fmt: skip
        err = capsys.readouterr().err
        assert rc == 0, err
        assert "of 4 venues" in err and "coverage: hyperliquid" in err
        z = np.load(agg)
        assert list(z["venues"]) == list(VENUES)
        assert z["long"].shape == (30, 120) and z["long_by_venue"].shape == (4, 30, 120)
        assert z["time_ms"][0] == start and z["time_ms"][-1] < end
        meta = json.loads(str(z["params"]))
        assert [v["name"] for v in meta["venues"]] == list(VENUES)
        assert {v["name"]: v["brackets"]["basis"] for v in meta["venues"]} == {
            "binanceusdm": "mark", "bybit": "entry", "okx": "mark", "hyperliquid": "mark"}  # fmt: skip
        assert [v["symbol"] for v in meta["venues"]] == [SYMBOLS[v] for v in VENUES]
        # the sum property against each venue's own export (single venue: --exchange ID, the same JSON)
        total_l = np.zeros_like(z["long"])
        total_s = np.zeros_like(z["short"])
        for i, v in enumerate(VENUES):
            one = env / f"{v}.npz"
            rc = main(["export", "--exchange", v, "--symbol", SYMBOLS[v], "--ccxt-options", opts, *window,
                       "--out", str(one)])  # fmt: skip
            assert rc == 0, capsys.readouterr().err
            s = np.load(one)
            assert "venues" not in s.files  # one venue: the totals only, as before
            # one venue from an exchange is modelled with that venue's own liquidation formula
            assert json.loads(str(s["params"]))["params"]["margin_basis"] == (
                "entry" if v == "bybit" else "mark"
            )
            np.testing.assert_array_equal(s["time_ms"], z["time_ms"])
            np.testing.assert_array_equal(s["price"], z["price"])
            np.testing.assert_array_equal(s["long"], z["long_by_venue"][i])  # its part is its own map
            np.testing.assert_array_equal(s["short"], z["short_by_venue"][i])
            assert s["long"].sum() > 0 and s["short"].sum() > 0, v
            total_l += s["long"]
            total_s += s["short"]
        np.testing.assert_allclose(z["long"], total_l, rtol=1e-6, atol=1.0)
        np.testing.assert_allclose(z["short"], total_s, rtol=1e-6, atol=1.0)
        capsys.readouterr()

        rc = main(["levels", "--exchange", ",".join(VENUES), "--ccxt-options", opts, "--timeframe", "1h",
                   "--at", _iso(end - H), "--json"])  # fmt: skip
        out, err = capsys.readouterr()
        assert rc == 0, err
        r = json.loads(out)
        assert [v["venue"] for v in r["venues"]] == list(VENUES)
        assert all(v["alive_long_usd"] > 0 for v in r["venues"])
        assert r["alive_long_usd"] == pytest.approx(sum(v["alive_long_usd"] for v in r["venues"]))
        clusters = r["clusters_below"] + r["clusters_above"]
        assert clusters and all(set(c["by_venue"]) == set(VENUES) for c in clusters)
        assert all(sum(c["by_venue"].values()) == pytest.approx(c["usd"], rel=1e-6, abs=2) for c in clusters)

        rc = main(["liquidations", "--exchange", ",".join(VENUES), "--symbol", "BTC/USDT:USDT"])
        out = capsys.readouterr().out
        assert rc == 0
        assert "hyperliquid BTC/USDC:USDC: 0 liquidations" in out and "none published" in out
        assert "bybit BTC/USDT:USDT" in out and "every liquidation" in out


# -- the sum property on files ---------------------------------------------------------------------------------
def _write(path: Path, c, scale: float = 1.0, volume: float = 1.0) -> None:  # type: ignore[no-untyped-def]
    rows = ["open_time,open,high,low,close,volume"]
    cols = [c.open_time.tolist()] + [(getattr(c, k) * f).tolist() for k, f in
                                      (("open", scale), ("high", scale), ("low", scale), ("close", scale),
                                       ("volume", volume))]  # fmt: skip
    rows += [",".join(repr(x) for x in r) for r in zip(*cols, strict=True)]
    path.write_text("\n".join(rows) + "\n")


@pytest.fixture(scope="module")
def venue_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """Four venues' files on the sample's real bars: Binance with its open interest, the others moved by a basis,
    with other volumes, starting later, ending earlier, with a gap (wall-clock alignment is what is tested)."""
    d = tmp_path_factory.mktemp("venues")
    s = load_sample("btcusdt-5m")
    c = s.candles.take(slice(-1500, None))
    _write(d / "binance.csv", c)
    oi = s.open_interest
    (d / "oi.csv").write_text("timestamp,sum_open_interest_value\n" + "".join(
        f"{t},{u!r}\n" for t, u in zip(oi.time.tolist(), oi.usd.tolist(), strict=True)))  # fmt: skip
    _write(d / "bybit.csv", c.take(slice(200, None)), 1.0004, 0.6)  # starts later
    _write(d / "okx.csv", c.take(np.r_[0:700, 760:1500]), 0.9997, 0.4)  # a five-hour gap
    _write(d / "hyperliquid.csv", c.take(slice(0, 1300)), 1.0002, 0.2)  # ends earlier
    return {
        "binanceusdm": f"binanceusdm={d / 'binance.csv'},{d / 'oi.csv'}",
        "bybit": f"bybit={d / 'bybit.csv'}",
        "okx": f"okx={d / 'okx.csv'}",
        "hyperliquid": f"hyperliquid={d / 'hyperliquid.csv'}",
    }


SUBSETS = [
    ("binanceusdm", "bybit"),
    ("okx", "hyperliquid"),
    ("binanceusdm", "bybit", "okx", "hyperliquid"),
    ("hyperliquid", "binanceusdm", "okx"),
]


@pytest.mark.parametrize(
    ("subset", "window"),
    [
        (SUBSETS[0], ["--start", "2024-05-13T00:00Z", "--end", "2024-05-15T00:00Z", "--time-columns", "50"]),
        (SUBSETS[1], ["--start", "2024-05-11T10:02Z", "--end", "2024-05-16T19:35Z"]),
        (SUBSETS[2], ["--start", "2024-05-12T00:00Z", "--end", "2024-05-16T20:00Z", "--time-columns", "97"]),
        (SUBSETS[3], ["--start", "2024-05-14T03:00Z", "--end", "2024-05-16T12:00Z", "--time-columns", "13"]),
    ],
)
def test_aggregated_export_is_the_sum_of_the_single_venue_exports(
    subset: tuple[str, ...], window: list[str], venue_files: dict[str, str], tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    common = [*window, "--prices", "55000:76000", "--bins", "90"]
    args = [x for v in subset for x in ("--venue", venue_files[v])]
    assert main(["export", *args, *common, "--out", str(tmp_path / "agg.npz")]) == 0, capsys.readouterr().err
    assert main(["export", *args, *common, "--out", str(tmp_path / "agg.csv")]) == 0
    z = np.load(tmp_path / "agg.npz")
    assert [str(v) for v in z["venues"]] == list(subset)
    singles = {}
    for v in subset:
        for suffix in (".npz", ".csv"):
            assert (
                main(["export", "--venue", venue_files[v], *common, "--out", str(tmp_path / f"{v}{suffix}")])
                == 0
            )
        singles[v] = np.load(tmp_path / f"{v}.npz")
    for i, v in enumerate(subset):
        s = singles[v]
        np.testing.assert_array_equal(s["time_ms"], z["time_ms"])  # the same wall-clock columns
        np.testing.assert_array_equal(s["price"], z["price"])
        np.testing.assert_array_equal(s["long"], z["long_by_venue"][i])  # each venue's part is its own export
        np.testing.assert_array_equal(s["short"], z["short_by_venue"][i])
    for side in ("long", "short"):
        total = sum(singles[v][side].astype(np.float64) for v in subset)
        np.testing.assert_allclose(z[side], total, rtol=1e-6, atol=1.0)  # float32 rounding aside
        assert z[side].sum() > 0
    # the CSV: the same cells, the totals and each venue's columns on each row
    agg = _csv_cells(tmp_path / "agg.csv")
    assert agg["header"] == ["time_ms", "price", "long_usd", "short_usd",
                             *[f"{side}_usd_{v}" for v in subset for side in ("long", "short")]]  # fmt: skip
    want: dict[tuple[int, float], np.ndarray] = {}
    for i, v in enumerate(subset):
        for key, (lo, sh) in _csv_cells(tmp_path / f"{v}.csv")["cells"].items():
            cell = want.setdefault(key, np.zeros(2 + 2 * len(subset)))
            cell[[0, 1]] += (lo, sh)
            cell[[2 + 2 * i, 3 + 2 * i]] = (lo, sh)
    assert set(agg["cells"]) == set(want)
    for key, row in agg["cells"].items():
        np.testing.assert_allclose(row, want[key], atol=0.01 * (len(subset) + 1), rtol=1e-6)


def _csv_cells(path: Path) -> dict:
    """{(time_ms, price): the row's values after them} and the header of an export CSV."""
    lines = path.read_text().splitlines()
    cells = {}
    for line in lines[1:]:
        x = line.split(",")
        cells[(int(x[0]), float(x[1]))] = np.array([float(v) for v in x[2:]])
    return {"header": lines[0].split(","), "cells": cells}
