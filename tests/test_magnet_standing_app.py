"""The magnet standing as the app words it (labels, alerts, the calibrate line) and `calibrate
--experiments` (the model experiments' tables in the terminal, the JSON and the HTML report)."""

from __future__ import annotations

import json
import re

from liqdesk.app import model_experiments
from liqdesk.app.cli import main
from liqdesk.app.magnet_standing import magnet_alert, standing_text
from liqdesk.core.intervals import Estimate
from liqdesk.core.magnet_standing import (
    CHECK_BETTER,
    CHECK_RANDOM,
    MagnetCheck,
    MagnetOutcome,
    MagnetStanding,
)
from liqdesk.core.series import LONG

HOUR = 3_600_000


def _standing(hits: list[bool], verdict: str) -> MagnetStanding:
    outcomes = tuple(
        MagnetOutcome(i * HOUR, LONG, 100.0, -1.0, 1e6, i * HOUR + 60_000 if h else None)
        for i, h in enumerate(hits)
    )
    return MagnetStanding(outcomes, 24 * HOUR, MagnetCheck(verdict, Estimate(0.01, -0.02, 0.04), 300, 40))


def test_the_words_for_labels_and_alerts():
    s = _standing([True, False, True], CHECK_RANDOM)
    text = standing_text(s)
    assert text.label == "hit 2 of last 3"
    assert "≈ random" in text.alert_note and "+1.0 pp" in text.alert_note
    assert "reached 2 of the last 3 magnets within 24 h" in text.summary
    assert magnet_alert("price within 0.30 % of long cluster 96,000", s).endswith(text.alert_note)
    better = _standing([True], CHECK_BETTER)
    assert standing_text(better).alert_note == "" and magnet_alert("x", better) == "x"
    assert "better than random" in standing_text(better).summary
    assert magnet_alert("x", None) == "x"


def test_calibrate_gives_the_magnet_standing_of_the_data_it_scores(capsys):
    code = main(["calibrate", "--sample", "btcusdt-1m-2025-05", "--horizon", "4h", "--boot", "50", "--json"])
    out = json.loads(capsys.readouterr().out)
    assert code == 0
    st = out["magnet_standing"]
    assert re.fullmatch(r"hit \d+ of last \d+", st["label"]) and st["magnets"] <= 10 and st["horizon_h"] == 4
    assert st["check"] in ("better", "worse", "random", "unscored") and st["preset"] == "coinglass"


def test_calibrate_experiments_adds_the_held_out_tables(capsys, tmp_path, monkeypatch):
    full = model_experiments.variants
    monkeypatch.setattr(
        model_experiments, "variants", lambda: [v for v in full() if v.name in ("baseline", "preset high")]
    )
    monkeypatch.setattr(model_experiments, "bundled_candle_sets", lambda: [])
    page = tmp_path / "cal.html"
    code = main(["calibrate", "--sample", "btcusdt-1m-2025-05", "--horizon", "4h", "--boot", "50", "--experiments",
                 "--report", str(page)])  # fmt: skip
    out = capsys.readouterr().out
    assert code == 0
    assert "Which changes become defaults" in out and "held out: Hyperliquid fills · Binance 1 m" in out
    assert "preset high" in out and "split: fit on the Hyperliquid fills before 2025-05-25 23:00 UTC" in out
    html = page.read_text()
    assert "Model experiments on the bundled data" in html and "Δ vs baseline (paired)" in html
