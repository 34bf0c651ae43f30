"""The calibration scores as tables of text cells, for the terminal (`liqdesk calibrate`) and the
HTML report alike: one place decides what is shown and how a number with its interval reads."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from liqdesk.core.calibration import (
    NULLS,
    PATH_ROWS,
    ROWS,
    CalibrationResult,
    Estimate,
    LiquidationScore,
    RowScore,
    null_label,
)
from liqdesk.core.estimate_vs_actual import ComparisonSummary
from liqdesk.core.timespan import span_text

NO_CI = "[no CI]"
INTERVALS = (
    "intervals: 95 % block bootstrap over independent windows of one horizon (Wilson for precision at N); "
    f"{NO_CI}: events in fewer than two windows"
)


@dataclass(frozen=True)
class Table:
    title: str
    header: list[str]
    rows: list[list[str]]
    notes: list[str] = field(default_factory=list)


# ------------------------------------------------------------------------------------------ numbers


def pct(e: Estimate, digits: int = 1) -> str:
    if not math.isfinite(e.value):
        return "n/a"
    ci = f" [{e.low * 100:.{digits}f}, {e.high * 100:.{digits}f}]" if e.has_ci else f" {NO_CI}"
    return f"{e.value * 100:.{digits}f} %{ci}"


def num(e: Estimate, fmt: str = "+.3f", unit: str = "") -> str:
    if not math.isfinite(e.value):
        return "n/a"
    ci = f" [{e.low:{fmt}}, {e.high:{fmt}}]" if e.has_ci else f" {NO_CI}"
    return f"{e.value:{fmt}}{unit}{ci}"


def plain(x: float, fmt: str = ".2f") -> str:
    return f"{x:{fmt}}" if math.isfinite(x) else "n/a"


def usd(x: float) -> str:
    if not math.isfinite(x):
        return "n/a"
    for div, unit in ((1e9, "B"), (1e6, "M"), (1e3, "k")):
        if abs(x) >= div:
            return f"${x / div:.2f}{unit}"
    return f"${x:,.0f}"


# ------------------------------------------------------------------------------------------- tables


def share_table(score: LiquidationScore, r: CalibrationResult) -> Table:
    qs = r.config.top_shares
    header = ["density", "events", "windows", "liquidated"]
    for q in qs:
        header += [f"top {q * 100:g} % · USD", f"top {q * 100:g} % · count"]
    rows = []
    for name in ROWS:
        row = score.rows[name]
        cells = [name, str(row.n_events), str(row.n_blocks), usd(row.usd)]
        for q in qs:
            cells += [pct(row.top_share(q, "usd").share), pct(row.top_share(q, "count").share)]
        rows.append(cells)
    notes = [
        "share of the liquidated USD (USD) and of the events (count: a guard against wrong sizes) whose price "
        "lies in the densest cells of the snapshot before them; chance = the share of cells",
        "total = all events against the long + short map (fair against the side-blind nulls); long/short/"
        "matched = each side against its own map (favoured: it knows longs liquidate below spot)",
    ]
    return Table("Densest cells", header, rows, notes)


def _view(row: RowScore, weight: str) -> dict[str, Estimate]:
    return (row.by_usd if weight == "usd" else row.by_count).lift


def _null_name(name: str, score: LiquidationScore) -> str:
    centre = name.removesuffix("_fit").removesuffix("_best")
    nf = score.nulls
    if name.endswith("_fit"):
        return f"{null_label(name)}, median k {plain(nf.oos_mult['count'].get(centre, math.nan))}"
    if name.endswith("_best"):
        return f"{null_label(name)}, k {plain(nf.best_mult['total']['count'].get(centre, math.nan))}"
    if name in ("spot_laplace", "mean_laplace"):
        return f"{null_label(name)}, k {plain(nf.fixed_mult)}"
    return null_label(name)


def loglik_table(score: LiquidationScore) -> Table:
    header = ["model − null", "total · per event", "total · per USD", "long · per event", "short · per event"]
    rows = []
    for name in NULLS:
        cells = [_null_name(name, score)]
        for row, weight in (("total", "count"), ("total", "usd"), ("long", "count"), ("short", "count")):
            cells.append(num(_view(score.rows[row], weight)[name]))
        rows.append(cells)
    notes = [
        "mean log-likelihood of the liquidation prices, model − null, in nats (> 0: the map explains them "
        "better than the null); per event (each event once) and per USD (USD-weighted)",
        "Laplace scale b = k · ATR · √(horizon / bar): fixed k = 1/3 (a random-walk rule); fitted = k chosen by "
        "likelihood on the events of the previous horizons before each snapshot (out of sample); best = k chosen "
        "on the scored events themselves (the strongest null of the family, refitted in every bootstrap resample)",
        "recent range = uniform over the last day's high–low range, widened by a quarter of its width on each side",
    ]
    nf = score.nulls
    if nf.n_snapshots:
        notes.append(
            f"out-of-sample fit: the fixed k stood in at {nf.n_snapshots_fixed} of {nf.n_snapshots} scored "
            "snapshots (fewer events before them than the fit needs)"
        )
    return Table("Log-likelihood against the nulls", header, rows, notes)


def path_table(score: LiquidationScore, r: CalibrationResult) -> Table:
    top = f"{r.config.path_top * 100:g} %"
    header = ["density", "snapshots", "windows", "pairs on path", "off path", "cells on path", "ρ · USD",
              "ρ · count", f"top {top} · USD", f"top {top} · count"]  # fmt: skip
    rows = []
    for name in PATH_ROWS:
        p = score.path[name]
        rows.append([
            name, str(p.n_snapshots), str(p.n_blocks), str(p.n_pairs), str(p.n_off_path), plain(p.mean_cells, ".0f"),
            num(p.rho_usd, "+.2f"), num(p.rho_count, "+.2f"), pct(p.share_usd), pct(p.share_count),
        ])  # fmt: skip
    notes = [
        "only the price cells price traversed during each horizon count (its bars' low–high, ± the price "
        "tolerance): does liquidated USD per traversed cell follow the map's density? ρ = Spearman rank "
        f"correlation (chance 0); top {top} = share in the densest {top} of the traversed cells (chance {top})",
        "off path: (snapshot, event) pairs whose price lay outside the traversed cells (e.g. another venue's wick)",
    ]
    return Table("Path-conditional: given where price went", header, rows, notes)


def precision_table(score: LiquidationScore, r: CalibrationResult) -> Table:
    header = ["density", "N", "snapshots", "zones", "hits", "precision", "reached", "precision if reached",
              "chance", "lift"]  # fmt: skip
    rows = []
    width = math.nan
    for name in PATH_ROWS:
        for p in score.precision[name]:
            width = p.zone_width_pct if math.isfinite(p.zone_width_pct) else width
            rows.append([
                name, str(p.n), str(p.n_snapshots), str(p.n_zones), str(p.hits), pct(p.precision),
                f"{p.n_reached}", pct(p.precision_reached), pct(Estimate(p.chance)).replace(f" {NO_CI}", ""),
                plain(p.lift),
            ])  # fmt: skip
    notes = [
        f"zone = a local maximum of the smoothed map, ±{r.config.tolerance_pct:g} % wide (mean width "
        f"{plain(width)} %), separate from denser zones; hit = a liquidation of that side inside it within "
        f"{span_text(r.config.horizon_ms)}; only snapshots with events in their horizon",
        "chance = the same number of zones of the same width placed at random in the range price traversed; "
        "reached = zones price traded into; Wilson 95 % on zones ÷ (snapshots per independent window)",
    ]
    return Table("Precision at N zones", header, rows, notes)


def magnet_table(r: CalibrationResult) -> Table:
    m = r.magnet
    header = ["snapshots", "windows", "mean distance", "cluster touched", "same distance, random side",
              "difference"]  # fmt: skip
    rows = [[str(m.n_snapshots), str(m.n_blocks), f"{plain(m.mean_distance_pct)} %", pct(m.hit),
             pct(m.random_side), num(m.difference.scaled(100.0), "+.1f") + " pp"]]  # fmt: skip
    notes = [
        f"largest cluster within {m.within_pct:g} % of spot (candles only): touched within "
        f"{span_text(r.config.horizon_ms)}, against the same distance on a random side; {m.n_no_cluster} snapshots "
        f"without a cluster in reach, {m.n_censored} without a full horizon",
    ]
    return Table("Magnet test", header, rows, notes)


def venue_tables(score: LiquidationScore, r: CalibrationResult) -> list[Table]:
    return [share_table(score, r), loglik_table(score), path_table(score, r), precision_table(score, r)]


def verdicts(score: LiquidationScore, r: CalibrationResult) -> list[str]:
    return [f"liquidations (total): {score.rows['total'].verdict}", f"magnet: {r.magnet.verdict}"]


def venue_title(key: str, score: LiquidationScore) -> str:
    who = score.venue or "no venue"
    return f"events of {who}" if key != "all" or "+" not in who else f"all events ({who})"


def comparison_table(
    results: dict[str, CalibrationResult], title: str = "Presets side by side", what: str = "preset"
) -> Table:
    """Key scores of several results side by side (presets, or one venue's tape on different maps)."""
    first = next(iter(results.values()))
    q = first.config.top_shares[0]
    header = [what, "events", f"top {q * 100:g} % lift (USD)", "LL − Laplace@spot fitted",
              "LL − Laplace@spot best", "path ρ (USD)", "magnet difference"]  # fmt: skip
    rows = []
    for name, r in results.items():
        row = r.rows["total"]
        rows.append([
            name, str(row.n_events), num(row.top_share(q).lift, ".2f"), num(row.lift["spot_laplace_fit"]),
            num(row.lift["spot_laplace_best"]), num(r.all.path["total"].rho_usd, "+.2f"),
            num(r.magnet.difference.scaled(100.0), "+.1f") + " pp",
        ])  # fmt: skip
    notes = [f"total density; intervals are per {what}, not paired"]
    if not all(r.enough for r in results.values()):
        notes.append(f"too few events to rank the {what}s on liquidations")
    return Table(title, header, rows, notes)


def actual_table(summaries: dict[str, ComparisonSummary]) -> Table:
    """Estimate against the actual map of sampled positions, one row per preset."""
    first = next(iter(summaries.values()), None)
    qs = list(first.top_share) if first is not None else []
    header = ["preset", "snapshots", "windows"]
    header += [f"actual in top {q * 100:g} %" for q in qs]
    header += ["W1 distance", "W1 longs", "W1 shorts", "Jensen–Shannon", "top clusters found"]
    rows = []
    for name, a in summaries.items():
        cells = [name, str(a.n_snapshots), str(a.n_blocks)]
        cells += [pct(a.top_share[q]) for q in qs]
        cells += [num(a.w1_pct, ".2f", " %"), num(a.w1_long_pct, ".2f", " %"), num(a.w1_short_pct, ".2f", " %"),
                  num(a.js, ".2f"), pct(a.cluster_hit)]  # fmt: skip
        rows.append(cells)
    notes = [
        "at each snapshot with sampled positions: each account's newest answer before it, binned on the "
        "snapshot's grid (notional = |size| × liquidation price); the sampled accounts only, not all open interest",
        "actual in top q = share of the actual notional in the estimate's densest q of cells (chance q); W1 = the "
        "earth mover's distance between the two maps scaled to one, in % of spot (how far the actual notional sits "
        "from the estimate's shape; keeps counting when the maps do not overlap); Jensen–Shannon in [0, 1] = how "
        "little they overlap cell by cell",
        "top clusters found = the actual map's 3 largest clusters per side with an estimated cluster of the same "
        "side within 1 % of price, pooled; intervals: 95 % block bootstrap over days",
    ]
    if not rows:
        notes.insert(0, "no preset scored")
    elif first is not None and first.n_snapshots == 0:
        notes.insert(0, "no snapshot has sampled positions within its age limit: nothing to score")
    return Table("Estimate vs actual (sampled Hyperliquid positions)", header, rows, notes)


def render_text(t: Table, indent: str = "  ") -> list[str]:
    """A table as aligned text lines: title, header, rows, notes."""
    cols = len(t.header)
    widths = [max(len(t.header[i]), *(len(r[i]) for r in t.rows)) for i in range(cols)]
    out = [f"{indent}{t.title}"]
    for cells in (t.header, *t.rows):
        out.append(indent + "  " + "  ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)).rstrip())
    out += [f"{indent}  · {n}" for n in t.notes]
    return out
