"""The model check's "estimate vs actual" section: each preset's map against the map of sampled Hyperliquid
positions (liqdesk.core.estimate_vs_actual), computed on the model check's thread beside the tape scores.

Instants: the calibration's clock-aligned snapshots that have sampled positions within their age limit (an
account's answer counts for `every_ms` after it), plus the newest answer's time, so a sampler that has run for
minutes is scored at once. Each instant's actual map is each account's newest answer before it, on the instant's
grid; only the sampled accounts are in it, never all of open interest.
"""

from __future__ import annotations

import math
from html import escape

import numpy as np

from liqdesk.core.actual_map import PositionSamples
from liqdesk.core.calibration_config import CalibrationConfig
from liqdesk.core.density_snapshots import Snapshots, density_snapshots, snapshot_times
from liqdesk.core.engine import LiquidationEngine
from liqdesk.core.estimate_vs_actual import ComparisonConfig, ComparisonSummary, compare_snapshots, summarise
from liqdesk.core.intervals import Estimate

TITLE = "Estimate vs actual (sampled Hyperliquid positions)"


def actual_instants(
    engine: LiquidationEngine, positions: PositionSamples, config: CalibrationConfig
) -> np.ndarray:
    """The snapshot instants with sampled positions in reach, and the newest answer's time."""
    if engine.n_bars == 0 or positions.n_samples == 0:
        return np.zeros(0, np.int64)
    first, newest = int(positions.sample_time.min()), int(positions.sample_time.max())
    end = int(engine.open_time[-1]) + engine.interval_ms
    times = snapshot_times(engine.open_time, engine.interval_ms, config, first, end)
    now = min(newest, end - 1)
    close0 = int(engine.open_time[0]) + engine.interval_ms
    extra = np.array([now], np.int64) if now >= max(first, close0) else np.zeros(0, np.int64)
    return np.unique(np.concatenate([times, extra]))


def score_actual(
    engine: LiquidationEngine, positions: PositionSamples, config: CalibrationConfig
) -> ComparisonSummary:
    """The engine's map against the sampled positions at every instant of `actual_instants`."""
    times = actual_instants(engine, positions, config)
    snaps: Snapshots = density_snapshots(engine, times, config)
    rows = compare_snapshots(snaps, positions, config.every_ms)
    return summarise(rows, ComparisonConfig(n_boot=config.n_boot, seed=config.seed))


def _pct(e: Estimate) -> str:
    if not math.isfinite(e.value):
        return "n/a"
    ci = f" [{e.low * 100:.0f}, {e.high * 100:.0f}]" if e.has_ci else ""
    return f"{e.value * 100:.1f} %{ci}"


def _num(e: Estimate, unit: str = "") -> str:
    if not math.isfinite(e.value):
        return "n/a"
    ci = f" [{e.low:.2f}, {e.high:.2f}]" if e.has_ci else ""
    return f"{e.value:.2f}{unit}{ci}"


def section_html(summaries: dict[str, ComparisonSummary], note: str, dim: str) -> str:
    """The section as rich text: one row per preset, then what the numbers mean."""
    if not summaries:
        return ""
    first = next(iter(summaries.values()))
    qs = list(first.top_share)
    head = ["preset", "instants", *(f"in top {q * 100:g} %" for q in qs), "W1", "J–S", "clusters found"]
    cells = "".join(f"<th align='left'>{escape(h)}&nbsp;&nbsp;</th>" for h in head)
    rows = [f"<tr>{cells}</tr>"]
    for name, a in summaries.items():
        values = [name, str(a.n_snapshots), *(_pct(a.top_share[q]) for q in qs), _num(a.w1_pct, " %"),
                  _num(a.js), _pct(a.cluster_hit)]  # fmt: skip
        rows.append("<tr>" + "".join(f"<td>{escape(v)}&nbsp;&nbsp;</td>" for v in values) + "</tr>")
    empty = first.n_snapshots == 0
    lines = [
        f"<b>{escape(TITLE)}</b>",
        f"<table cellspacing='0'>{''.join(rows)}</table>",
        f"<span style='color:{dim}'>"
        + escape(
            ("No instant has sampled positions in reach yet: nothing scored. " if empty else "")
            + note
            + " In top q: the share of the positions' notional at liquidation in the estimate's densest q of "
            "cells (chance: q). W1: how far the actual notional sits from the estimate's shape, in % of spot. "
            "J–S (Jensen–Shannon): 0 same cells, 1 no overlap. Clusters found: the actual map's 3 largest per "
            "side with an estimated one within 1 %. Sampled accounts only, not all open interest; 95 % "
            "block-bootstrap intervals over days."
        )
        + "</span>",
    ]
    return "<br>".join(lines)


def positions_note(positions: PositionSamples) -> str:
    accounts = len(set(positions.sample_account.tolist()))
    return (
        f"{positions.n_samples:,} answers of {accounts:,} accounts, {len(positions):,} positions in the coin."
    )
