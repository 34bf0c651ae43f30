"""calibrate and snapshot on several venues: a venue's tape scored on its own map and on the aggregate; the window
drawing the aggregate."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from liqdesk.app.cli import main
from liqdesk.feeds.resources import resource_path
from liqdesk.feeds.sample import load_sample

CANDLES_1M = "binance_um_BTCUSDT_1m_2025-01-27_2025-02-26.csv.gz"
CAPTURE = "binance_forceOrder_capture_2025-01-26_2025-02-06.csv.gz"


@pytest.fixture
def files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    monkeypatch.setenv("LIQDESK_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("LIQDESK_CONFIG_DIR", str(tmp_path / "config"))
    c = load_sample("btcusdt-1m-2025-01").candles.take(slice(0, 2400))
    rows = ["open_time,open,high,low,close,volume"]
    rows += [f"{t},{o * 1.0004!r},{h * 1.0004!r},{lo * 1.0004!r},{cl * 1.0004!r},{v * 0.5!r}"
             for t, o, h, lo, cl, v in zip(c.open_time.tolist(), c.open.tolist(), c.high.tolist(), c.low.tolist(),
                                           c.close.tolist(), c.volume.tolist(), strict=True)]  # fmt: skip
    (tmp_path / "bybit.csv").write_text("\n".join(rows) + "\n")
    return {
        "binanceusdm": str(resource_path("sample", CANDLES_1M)),
        "bybit": str(tmp_path / "bybit.csv"),
        "tape": str(resource_path("sample", CAPTURE)),
    }


def test_calibrate_scores_a_venues_tape_on_its_own_map_and_on_the_aggregate(
    files: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["calibrate", "--venue", f"binanceusdm={files['binanceusdm']}", "--venue", f"bybit={files['bybit']}",
            "--venue-liquidations", f"binanceusdm={files['tape']}", "--start", "2025-01-27T14:00Z",
            "--end", "2025-01-28T12:00Z", "--horizon", "4h", "--boot", "50"]  # fmt: skip
    assert main([*args, "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["venues"] == ["binanceusdm", "bybit"]
    assert out["tape_events"] == {"binanceusdm": 31, "bybit": 0}
    binance = out["results"]["coinglass"]["binanceusdm"]
    own, agg = binance["own"], binance["aggregate"]
    assert own["n_tape_events"] == agg["n_tape_events"] == 31
    assert own["n_snapshots"] == agg["n_snapshots"] > 0
    # the same events and snapshots, another density: the scores differ
    assert own["venues"]["all"]["rows"]["total"] != agg["venues"]["all"]["rows"]["total"]
    assert out["results"]["coinglass"]["bybit"] == {"events": 0, "own": None, "aggregate": None}
    assert main(args) == 0
    text = capsys.readouterr().out
    assert "binanceusdm's tape: its own map vs the aggregate" in text
    assert "binanceusdm map" in text and "aggregate map" in text
    assert "preset coinglass · bybit: no recorded liquidations; not scored" in text


def test_snapshot_draws_the_aggregate(
    files: dict[str, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from liqdesk.app.commands import snapshot

    drawn: list[object] = []
    real = snapshot._show_aggregate

    def spy(window, aggregate):  # type: ignore[no-untyped-def]
        real(window, aggregate)
        drawn.append((window.worker.engine, window.frame, window.windowTitle()))

    out = tmp_path / "agg.png"
    snapshot._show_aggregate = spy  # type: ignore[assignment]
    try:
        rc = main(["snapshot", "--venue", f"binanceusdm={files['binanceusdm']}", "--venue", f"bybit={files['bybit']}",
                   "--start", "2025-01-27T14:00Z", "--end", "2025-01-28T12:00Z", "--size", "800x500",
                   "--out", str(out)])  # fmt: skip
    finally:
        snapshot._show_aggregate = real  # type: ignore[assignment]
    assert rc == 0, capsys.readouterr().err
    assert out.stat().st_size > 10_000
    engine, frame, _ = drawn[0]
    from liqdesk.core.aggregate_engine import AggregateEngine

    assert isinstance(engine, AggregateEngine) and [v.name for v in engine.venues] == ["binanceusdm", "bybit"]
    assert "2 venues" in frame.model_label  # type: ignore[attr-defined]
    assert frame.lmap.total_long > 0  # type: ignore[attr-defined]
