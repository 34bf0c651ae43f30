"""`liqdesk calibrate --report out.html`: the scores as one self-contained HTML page for sharing.

Tables (the same cells as the terminal's, liqdesk.app.calibration_tables), the reliability plot and
the path-conditional plot as inline SVG written here (no plotting library, no Qt, no external file).
"""

from __future__ import annotations

from collections.abc import Sequence
from html import escape

import numpy as np
from numpy.typing import NDArray

from liqdesk.app.calibration_tables import (
    INTERVALS,
    Table,
    comparison_table,
    magnet_table,
    venue_tables,
    venue_title,
    verdicts,
)
from liqdesk.core.calibration import CalibrationResult
from liqdesk.core.timespan import span_text, utc_text

COLORS = ["#d9a400", "#2f6fde", "#159a6f", "#d6334a", "#9c3fb8", "#e0761e"]

_CSS = """
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; color: #1d2330; margin: 24px auto;
       max-width: 1200px; padding: 0 16px; }
h1 { font-size: 22px; margin-bottom: 4px; } h2 { font-size: 18px; margin-top: 32px; border-bottom: 1px solid #ccd;
padding-bottom: 4px; } h3 { font-size: 15px; margin: 20px 0 6px; }
table { border-collapse: collapse; margin: 4px 0 6px; font-variant-numeric: tabular-nums; }
th, td { border: 1px solid #d5d9e2; padding: 3px 8px; text-align: left; white-space: nowrap; }
th { background: #eef1f6; font-weight: 600; }
p.note { color: #5b6475; margin: 2px 0; font-size: 12.5px; max-width: 1100px; }
p.meta { color: #39404f; margin: 2px 0; }
.verdict { background: #fff8e1; border: 1px solid #f0d58a; padding: 6px 10px; border-radius: 4px; }
.plots { display: flex; flex-wrap: wrap; gap: 24px; }
figure { margin: 0; } figcaption { color: #5b6475; font-size: 12.5px; max-width: 460px; }
"""

Series = tuple[str, NDArray[np.float64], NDArray[np.float64]]


def svg_plot(
    series: Sequence[Series], title: str, xlabel: str, ylabel: str, w: int = 460, h: int = 320
) -> str:
    """Curves from (0, 0) to (1, 1) in share units, with the y = x chance line, as an SVG element."""
    left, right, top, bottom = 52, 12, 28, 44
    pw, ph = w - left - right, h - top - bottom

    def px(x: float) -> float:
        return left + x * pw

    def py(y: float) -> float:
        return top + (1.0 - y) * ph

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" viewBox="0 0 {w} {h}" '
        f'role="img" aria-label="{escape(title)}">',
        f'<rect x="0" y="0" width="{w}" height="{h}" fill="#ffffff"/>',
        f'<text x="{w / 2:.0f}" y="17" text-anchor="middle" font-size="13" font-weight="600">{escape(title)}</text>',
    ]
    for k in range(5):
        v = k / 4
        parts.append(
            f'<line x1="{px(v):.1f}" y1="{py(0):.1f}" x2="{px(v):.1f}" y2="{py(1):.1f}" stroke="#e4e7ee"/>'
        )
        parts.append(
            f'<line x1="{px(0):.1f}" y1="{py(v):.1f}" x2="{px(1):.1f}" y2="{py(v):.1f}" stroke="#e4e7ee"/>'
        )
        parts.append(
            f'<text x="{px(v):.1f}" y="{py(0) + 15:.1f}" text-anchor="middle" font-size="11">{k * 25}</text>'
        )
        parts.append(
            f'<text x="{px(0) - 6:.1f}" y="{py(v) + 4:.1f}" text-anchor="end" font-size="11">{k * 25}</text>'
        )
    parts += [
        f'<rect x="{left}" y="{top}" width="{pw}" height="{ph}" fill="none" stroke="#9aa3b5"/>',
        f'<line x1="{px(0):.1f}" y1="{py(0):.1f}" x2="{px(1):.1f}" y2="{py(1):.1f}" stroke="#8a8f99" '
        'stroke-dasharray="5 4"/>',
        f'<text x="{px(0.5):.1f}" y="{h - 8}" text-anchor="middle" font-size="12">{escape(xlabel)}</text>',
        f'<text x="14" y="{py(0.5):.1f}" text-anchor="middle" font-size="12" '
        f'transform="rotate(-90 14 {py(0.5):.1f})">{escape(ylabel)}</text>',
    ]
    shown = 0
    for i, (label, xs, ys) in enumerate(series):
        ok = np.isfinite(xs) & np.isfinite(ys)
        if not ok.any():
            continue
        pts = " ".join(f"{px(float(x)):.1f},{py(float(y)):.1f}" for x, y in zip(xs[ok], ys[ok], strict=True))
        color = COLORS[i % len(COLORS)]
        parts.append(f'<polyline points="{pts}" fill="none" stroke="{color}" stroke-width="2"/>')
        ly = top + 14 + 16 * shown
        parts.append(f'<line x1="{px(0.04):.1f}" y1="{ly - 4}" x2="{px(0.11):.1f}" y2="{ly - 4}" stroke="{color}" '
                     'stroke-width="2"/>')  # fmt: skip
        parts.append(f'<text x="{px(0.13):.1f}" y="{ly}" font-size="11">{escape(label)}</text>')
        shown += 1
    ly = top + 14 + 16 * shown
    parts.append(f'<line x1="{px(0.04):.1f}" y1="{ly - 4}" x2="{px(0.11):.1f}" y2="{ly - 4}" stroke="#8a8f99" '
                 'stroke-dasharray="5 4"/>')  # fmt: skip
    parts.append(f'<text x="{px(0.13):.1f}" y="{ly}" font-size="11">chance</text>')
    if shown == 0:
        parts.append(f'<text x="{px(0.5):.1f}" y="{py(0.5):.1f}" text-anchor="middle" font-size="12" '
                     'fill="#5b6475">no real liquidations to plot</text>')  # fmt: skip
    parts.append("</svg>")
    return "\n".join(parts)


def _table_html(t: Table) -> str:
    head = "".join(f"<th>{escape(c)}</th>" for c in t.header)
    body = "".join("<tr>" + "".join(f"<td>{escape(c)}</td>" for c in row) + "</tr>" for row in t.rows)
    notes = "".join(f'<p class="note">{escape(n)}</p>' for n in t.notes)
    return f"<h3>{escape(t.title)}</h3>\n<table><tr>{head}</tr>{body}</table>\n{notes}"


def _plots(results: dict[str, CalibrationResult]) -> str:
    rel: list[Series] = []
    path: list[Series] = []
    for preset, r in results.items():
        for key, score in r.venues.items():
            who = preset if key == "all" else f"{preset} · {key}"
            c = score.reliability["total"]
            if c.n_events:
                rel.append((f"{who} ({c.n_events} events)", c.cell_share, c.usd_share))
            p = score.path["total"]
            if p.n_pairs:
                path.append((f"{who} ({p.n_snapshots} snapshots)", p.curve.cell_share, p.curve.usd_share))
    first = next(iter(results.values()))
    horizon = span_text(first.config.horizon_ms)
    return (
        '<div class="plots"><figure>'
        + svg_plot(
            rel, "Reliability (total map)", "densest cells, % of all cells", "liquidated USD caught, %"
        )
        + "<figcaption>Share of the liquidated USD of the next "
        + escape(horizon)
        + " whose price lies in the densest x % of a snapshot's cells; on the dashed line the map is no better "
        "than chance.</figcaption></figure><figure>"
        + svg_plot(
            path, "Path-conditional (total map)", "densest traversed cells, %", "liquidated USD caught, %"
        )
        + "<figcaption>The same, counting only the cells price traversed during the horizon: given where price "
        "went, did the liquidations fall where the map was dense?</figcaption></figure></div>"
    )


def html_report(
    results: dict[str, CalibrationResult],
    *,
    source: str,
    notes: Sequence[str] = (),
    tape_events: int = 0,
    sections: Sequence[tuple[str, Sequence[Table], Sequence[str]]] = (),
) -> str:
    """The whole report page; sections: more (title, tables, notes) at its end (e.g. the model experiments)."""
    first = next(iter(results.values()))
    cfg = first.config
    meta = [
        f"source: {source}",
        *(f"note: {n}" for n in notes),
        f"snapshots: {first.n_snapshots} every {span_text(cfg.every_ms)} from {utc_text(first.first_ms)} to "
        f"{utc_text(first.last_ms)} UTC; horizon {span_text(cfg.horizon_ms)}, lookback {span_text(cfg.lookback_ms)}",
        f"map: {cfg.n_bins} cells over the lookback range, at least spot ±{cfg.range_pct:g} %; price tolerance "
        f"±{cfg.tolerance_pct:g} %; likelihood floor {cfg.floor * 100:g} % uniform",
        f"real liquidations: {tape_events} in the tape, {first.n_tape_events} inside the scored horizons",
        INTERVALS,
    ]
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        "<title>liqdesk calibrate: does the heatmap tell the truth?</title>",
        f"<style>{_CSS}</style></head><body>",
        "<h1>Does the estimated heatmap predict where real liquidations happen?</h1>",
        *(f'<p class="meta">{escape(m)}</p>' for m in meta),
        _plots(results),
    ]
    if len(results) > 1:
        parts.append(_table_html(comparison_table(results)))
    for preset, r in results.items():
        parts.append(f"<h2>Preset {escape(preset)}</h2>")
        for key, score in r.venues.items():
            parts.append(f"<h3>{escape(venue_title(key, score))}</h3>")
            parts.append('<p class="verdict">' + "<br>".join(escape(v) for v in verdicts(score, r)) + "</p>")
            parts += [_table_html(t) for t in venue_tables(score, r)]
        parts.append(_table_html(magnet_table(r)))
        parts += [f'<p class="note">note: {escape(n)}</p>' for n in r.notes]
    for title, tables, section_notes in sections:
        parts.append(f"<h2>{escape(title)}</h2>")
        parts += [f'<p class="note">{escape(n)}</p>' for n in section_notes]
        parts += [_table_html(t) for t in tables]
    parts.append(
        '<p class="note">The heatmap is a model estimate; these scores test it against real liquidations. '
        "Made by liqdesk calibrate.</p></body></html>"
    )
    return "\n".join(parts) + "\n"
