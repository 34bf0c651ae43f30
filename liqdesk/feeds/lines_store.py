"""Price lines and small trader preferences, kept in the app state file (liqdesk.feeds.state).

Lines live in price space per exchange and symbol, so they come back after a restart whatever
the zoom. This module is the small API the UI uses; the state file does the atomic write, the
tolerant load (a corrupt file is moved aside with a warning, a bad entry is skipped).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from liqdesk.feeds.state import LINE_KINDS, SCHEMA, clean_line, load_state, save_state

log = logging.getLogger(__name__)

KINDS = LINE_KINDS


@dataclass
class PriceLine:
    kind: str  # one of KINDS
    price: float
    label: str = ""
    # extra fields kept with the line (the position's side, leverage and size ride on its entry line)
    extra: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {**self.extra, "kind": self.kind, "price": float(self.price)}
        if self.label:
            out["label"] = self.label
        return out

    @staticmethod
    def from_json(raw: Any) -> PriceLine | None:
        """A line from the state file, through the state's one line check (None: unusable)."""
        line = clean_line(raw)
        if line is None:
            return None
        extra = {k: v for k, v in line.items() if k not in ("kind", "price", "label")}
        return PriceLine(str(line["kind"]), float(line["price"]), str(line.get("label", "")), extra)


def load_lines(exchange: str, symbol: str) -> list[PriceLine]:
    state = load_state()
    out = []
    for raw in state.lines_for(exchange, symbol):
        line = PriceLine.from_json(raw)
        if line is None:
            log.warning("price line %r for %s %s skipped", raw, exchange, symbol)
        else:
            out.append(line)
    return out


def save_lines(exchange: str, symbol: str, lines: list[PriceLine]) -> None:
    """Raises OSError when the config folder is not writable (the caller tells the user)."""
    state = load_state()
    state.set_lines(exchange, symbol, [x.to_json() for x in lines if x.kind in KINDS])
    save_state(state)


def load_prefs(section: str) -> dict[str, Any]:
    """A section of the state file ("alerts", "capture"), defaults filled in."""
    return dict(load_state().data[section])


def save_pref(section: str, key: str, value: Any) -> None:
    if section not in SCHEMA or key not in SCHEMA[section]:
        raise KeyError(f"{section}.{key}")
    state = load_state()
    state.set(section, key, value)
    save_state(state)
