"""`liqdesk snapshot --at T`: the chart as it stood at T. Property: on the full data it is identical, in
pixels and in the frame's arrays (heatmap values and codes, colour levels, map, magnets, sweep bubbles,
view range, price axis, real liquidations drawn), to a snapshot of the same data cut at T."""

from __future__ import annotations

import gzip
import os
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PySide6 import QtGui

from liqdesk.app.cli import main
from liqdesk.app.commands import snapshot
from liqdesk.feeds.resources import resource_path
from liqdesk.feeds.sample import CANDLES_1M, FORCE_ORDERS, load_sample
from liqdesk.feeds.timeparse import parse_time

SIZE = "900x560"
SAVE = snapshot._save  # the real one (each capture patches it anew)


def capture(monkeypatch: pytest.MonkeyPatch, where: Path, *args: str) -> dict[str, Any]:
    """Run `liqdesk snapshot` in `where` (relative file names: the status bar names the same file)
    and keep what the window drew."""
    seen: dict[str, Any] = {}

    def spy(window: Any, out: Path, width: int, height: int, inputs: list[str]) -> Any:
        f = window.frame
        ch = window.chart
        liq_x, liq_y = ch.real_liqs.getData()
        seen.update(
            bars=len(window.candles), image=f.image.copy(), values=np.asarray(f.values).copy(),
            levels=np.array(f.levels), bins=np.array([f.request.bins.lo, f.request.bins.hi, f.request.bins.n]),
            columns=np.c_[f.columns.first_bar, f.columns.last_bar], map_long=f.lmap.long_by_tier,
            map_short=f.lmap.short_by_tier, map_bar=f.lmap.bar,
            magnets=np.array([(m.side, m.price, m.usd) for m in f.magnets]),
            bubbles=np.c_[f.bubbles.x, f.bubbles.price, f.bubbles.usd], x_range=np.array(ch.visible_bars()),
            y_range=np.array(ch.visible_prices()), liq=np.c_[np.asarray(liq_x, float), np.asarray(liq_y, float)],
            model=f.model_label, plot_px=np.array(ch.plot_size_px()),
        )  # fmt: skip
        return SAVE(window, out, width, height, inputs)

    monkeypatch.setattr(snapshot, "_save", spy)
    monkeypatch.chdir(where)
    out = where / "shot.png"
    assert main(["snapshot", "--out", str(out), "--size", SIZE, "--utc", *args]) == 0
    image = QtGui.QImage(str(out)).convertToFormat(QtGui.QImage.Format.Format_ARGB32)
    seen["pixels"] = np.frombuffer(image.constBits(), np.uint8, image.sizeInBytes()).copy()
    return seen


def assert_same_chart(a: dict[str, Any], b: dict[str, Any]) -> None:
    assert a.keys() == b.keys()
    for k in a:
        if isinstance(a[k], np.ndarray):
            np.testing.assert_array_equal(a[k], b[k], err_msg=k)
        else:
            assert a[k] == b[k], k


def write_lines(path: Path, lines: list[str]) -> None:
    path.write_text("".join(lines))


def candle_lines(keep: Any = None) -> list[str]:
    """The crash-day sample as a CSV, rows with keep(open_time) only."""
    c = load_sample("btcusdt-5m-2025-10-10").candles
    rows = ["open_time,open,high,low,close,volume\n"]
    for i in range(len(c)):
        t = int(c.open_time[i])
        if keep is None or keep(t):
            rows.append(
                ",".join([str(t), *(repr(float(a[i])) for a in (c.open, c.high, c.low, c.close, c.volume))])
                + "\n"
            )
    return rows


def test_at_t_on_the_full_data_equals_the_data_cut_at_t(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Mid-crash, halfway through a bar: that bar had not closed yet, so it is not shown either."""
    at = "2025-10-10T21:17:30Z"
    bar_open = parse_time("2025-10-10T21:15Z")  # the bar open at T (closes 21:20)
    full, cut = tmp_path / "full", tmp_path / "cut"
    full.mkdir()
    cut.mkdir()
    write_lines(full / "day.csv", candle_lines())
    write_lines(cut / "day.csv", candle_lines(lambda t: t < bar_open))
    view = ["--start", "2025-10-10T03:00Z"]
    a = capture(monkeypatch, full, "--candles", "day.csv", "--at", at, *view)
    b = capture(monkeypatch, cut, "--candles", "day.csv", *view)
    assert_same_chart(a, b)
    # and it is not the picture of the full data: the crash after T is nowhere in it
    whole = capture(monkeypatch, full, "--candles", "day.csv", *view, "--end", "2025-10-11T00:00Z")
    assert whole["bars"] > a["bars"] and not np.array_equal(whole["y_range"], a["y_range"])


def test_at_t_cuts_the_real_liquidations_too(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The 2025-01-27 capture (31 BTC liquidations 16:52–17:09), replayed at 17:00 on 1-minute bars."""
    at = parse_time("2025-01-27T17:00Z")
    full, cut = tmp_path / "full", tmp_path / "cut"
    full.mkdir()
    cut.mkdir()
    with gzip.open(resource_path("sample", CANDLES_1M), "rt") as f:
        candles = f.readlines()
    with gzip.open(resource_path("sample", FORCE_ORDERS), "rt") as f:
        liqs = f.readlines()
    write_lines(full / "c.csv", candles)
    write_lines(full / "l.csv", liqs)
    head = [candles[0]] if not candles[0][0].isdigit() else []
    write_lines(
        cut / "c.csv", head + [r for r in candles[len(head) :] if int(r.split(",")[0]) + 60_000 <= at]
    )
    write_lines(cut / "l.csv", [r for r in liqs if int(r.split(",")[10]) < at])
    files = ["--candles", "c.csv", "--liquidations", "l.csv", "--range", "3h"]
    a = capture(monkeypatch, full, *files, "--at", "2025-01-27T17:00Z")
    b = capture(monkeypatch, cut, *files)
    assert_same_chart(a, b)
    assert 0 < len(a["liq"]) < 31  # some of the burst, not what came after


def test_with_open_interest_at_every_close_at_t_equals_the_view_ending_at_t(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The open-interest week: every 5-minute close has its snapshot, so the open interest known at each
    close is the model's own and --at draws what --end does (which leaves the later snapshots in)."""
    t = "2024-05-14T12:00Z"
    a = capture(monkeypatch, tmp_path, "--sample", "btcusdt-5m", "--at", t, "--range", "24h")
    b = capture(monkeypatch, tmp_path, "--sample", "btcusdt-5m", "--end", t, "--range", "24h")
    assert_same_chart(a, b)
    assert a["model"] == "OI model"


def test_at_with_end_or_before_the_data_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = str(tmp_path / "x.png")
    sample = ["--sample", "btcusdt-5m-2025-10-10"]
    assert main(["snapshot", "--out", out, *sample, "--at", "2025-10-10T21:00Z", "--end", "2025-10-11"]) == 2
    assert "give --at or --end, not both" in capsys.readouterr().err
    assert (
        main(["snapshot", "--out", out, *sample, "--at", "2025-09-26T00:04Z", "--start", "2025-09-26"]) == 2
    )
    err = capsys.readouterr().err.strip()
    assert (
        err.startswith("liqdesk: error: --at 2025-09-26T00:04:00.000Z: fewer than two bars")
        and "\n" not in err
    )
    assert not os.path.exists(out)
