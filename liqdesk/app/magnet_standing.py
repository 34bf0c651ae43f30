"""The measured standing of magnets, as the window and the commands word it.

`measure_standing` runs liqdesk.core.magnet_standing on an engine (0.8 s on the 57,000 5-minute bars of
the default sample, 1.4 s on 30 days of 1-minute bars, on a shared 2-core machine: run it in the
worker, not on the UI thread, and again as bars are added, at most hourly); the other functions turn
its result into the words a magnet label, a magnet alert and a tooltip carry. No Qt here: the window calls these and puts the strings where it shows magnets.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from liqdesk.core.engine import LiquidationEngine
from liqdesk.core.magnet_standing import (
    CHECK_BETTER,
    CHECK_RANDOM,
    CHECK_WORSE,
    UNSCORED,
    MagnetStanding,
    StandingConfig,
    magnet_standing,
)

HOUR_MS = 3_600_000


@dataclass(frozen=True)
class StandingText:
    label: str  # for every magnet label: "hit 3 of last 10" or "unscored"
    alert_note: str  # appended to a magnet alert's text ("" when there is nothing to warn about)
    summary: str  # one sentence for a tooltip or the terminal


def measure_standing(engine: LiquidationEngine, horizon_ms: int = 24 * HOUR_MS) -> MagnetStanding:
    """The standing of the engine's market: its last ten resolved magnets and the model check."""
    return magnet_standing(engine, StandingConfig(horizon_ms=horizon_ms))


def standing_text(standing: MagnetStanding | None) -> StandingText:
    """The words for a standing (None: not measured yet, which reads as unscored)."""
    if standing is None:
        return StandingText(UNSCORED, "", "magnets unscored: not measured yet")
    horizon = _hours(standing.horizon_ms)
    if standing.scored:
        record = (
            f"price reached {standing.hits} of the last {standing.n} magnets within {horizon} of showing them"
        )
    else:
        record = f"magnets unscored: none has had {horizon} of bars after it yet"
    check = standing.check
    note = ""
    if check.verdict == CHECK_RANDOM:
        note = (
            f"model check: magnets ≈ random on this market ({_pp(check.difference.value)} vs a random side)"
        )
        verdict = f"the model check rates magnets ≈ random here ({_difference(standing)})"
    elif check.verdict == CHECK_WORSE:
        note = "model check: magnets worse than random on this market"
        verdict = f"the model check rates magnets worse than random here ({_difference(standing)})"
    elif check.verdict == CHECK_BETTER:
        verdict = f"the model check rates magnets better than random here ({_difference(standing)})"
    else:
        verdict = f"too few bars for the model check ({check.n_snapshots} snapshots)"
    return StandingText(standing.label, note, f"{record}; {verdict}")


def magnet_alert(text: str, standing: MagnetStanding | None) -> str:
    """A magnet alert's text with the model check's warning when it rates magnets ≈ random (or worse)."""
    note = standing_text(standing).alert_note
    return f"{text} — {note}" if note else text


def _difference(standing: MagnetStanding) -> str:
    d = standing.check.difference
    ci = f" [{d.low * 100:+.1f}, {d.high * 100:+.1f}]" if d.has_ci else ""
    return f"cluster touched − random side {_pp(d.value)}{ci}, {standing.check.n_blocks} windows"


def _pp(x: float) -> str:
    return f"{x * 100:+.1f} pp" if math.isfinite(x) else "n/a"


def _hours(ms: int) -> str:
    return f"{ms / HOUR_MS:g} h"
