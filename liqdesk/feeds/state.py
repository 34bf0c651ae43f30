"""The app's one state file: window layout, last market, model and colour settings, theme, panes.

Versioned JSON in the config directory (LIQDESK_CONFIG_DIR overrides), written atomically
(temp file + rename), loaded tolerantly: a bad or unknown field falls back to its default with a
warning, a corrupt file is kept aside and defaults are used, and a file written by a newer
version is read as far as it is understood and kept as a backup before it is overwritten.
"""

from __future__ import annotations

import copy
import json
import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from liqdesk.feeds.atomic import write_json_atomic
from liqdesk.feeds.presets import config_dir

log = logging.getLogger(__name__)

STATE_VERSION = 1
STATE_FILE = "state.json"

Check = Callable[[Any], bool]


def _is_str(v: Any) -> bool:
    return isinstance(v, str)


def _is_bool(v: Any) -> bool:
    return isinstance(v, bool)


def _num(lo: float, hi: float) -> Check:
    return lambda v: isinstance(v, int | float) and not isinstance(v, bool) and lo <= v <= hi


def _one_of(*options: str) -> Check:
    return lambda v: v in options


def _opt(check: Check) -> Check:
    return lambda v: v is None or check(v)


def _int_list(v: Any) -> bool:
    return isinstance(v, list) and all(isinstance(x, int) and not isinstance(x, bool) and x >= 0 for x in v)


def _levels(v: Any) -> bool:
    return v is None or (
        isinstance(v, list) and len(v) == 2 and all(isinstance(x, int | float) for x in v) and v[0] < v[1]
    )


def _pane(v: Any) -> bool:
    return isinstance(v, dict) and all(
        isinstance(v.get(k), str) for k in ("exchange", "symbol", "timeframe", "range")
    )


def _panes(v: Any) -> bool:
    return isinstance(v, list) and 1 <= len(v) <= 16 and all(_pane(p) for p in v)


def _line(v: Any) -> bool:
    return (
        isinstance(v, dict)
        and v.get("kind") in ("stop", "target", "entry", "alert", "liquidation")
        and isinstance(v.get("price"), int | float)
        and v["price"] > 0
    )


def _lines(v: Any) -> bool:
    return isinstance(v, dict) and all(isinstance(k, str) and isinstance(x, list) for k, x in v.items())


# field -> (default, check). Nested sections are dicts of the same.
SCHEMA: dict[str, dict[str, tuple[Any, Check]]] = {
    "window": {
        "geometry": ("", _is_str),  # Qt saveGeometry() as base64
        "dock_state": ("", _is_str),
        "splitter": ([], _int_list),
        "current_tab": (0, _num(0, 15)),  # the workspace tab shown (index into panes)
    },
    "market": {
        "exchange": ("binanceusdm", _is_str),
        "symbol": ("BTC/USDT:USDT", _is_str),
        "timeframe": ("5m", _one_of("1m", "5m", "15m", "1h", "4h")),
        "range": ("3d", _one_of("12h", "24h", "3d", "7d", "30d", "90d", "180d", "1y")),
    },
    "model": {
        "preset": ("coinglass", _is_str),
        "taker_floor": (0.2, _num(0.0, 0.499)),
        "half_life_h": (None, _opt(_num(0.1, 1e5))),
        "churn": (0.06, _num(0.0, 10.0)),
        "volume_half_life_h": (24.0, _num(0.1, 1e5)),
        "entry_points": (1, _num(1, 15)),
        "bins": (1000, _num(50, 4000)),  # the heatmap's price bins at most (MainWindow.max_bins)
        # compute backend (core.backend): read once at start; --backend and LIQDESK_BACKEND win over it
        "backend": ("auto", _one_of("auto", "numpy", "cupy")),
    },
    "colors": {
        "colormap": ("liqdesk", _is_str),  # a key of liqdesk.ui.theme.COLORMAPS
        "transform": ("sqrt", _one_of("sqrt", "log", "linear")),
        "levels_locked": (False, _is_bool),
        "levels": (None, _levels),
    },
    "appearance": {
        "theme": ("dark", _one_of("dark", "light")),
        "utc": (False, _is_bool),
    },
    "alerts": {
        "magnet_within_pct": (0.5, _num(0.01, 20.0)),
        "magnet_min_usd": (50e6, _num(0.0, 1e13)),
        "liquidation_min_usd": (1e6, _num(0.0, 1e13)),
        "cross_band_pct": (0.05, _num(0.0, 5.0)),
        "sound": (False, _is_bool),
    },
    "data": {
        "cache_dir": ("", _is_str),  # empty: the default user data directory
        "offline": (False, _is_bool),
    },
    "capture": {
        "folder": ("", _is_str),
        "scale": (1, _num(1, 4)),
    },
}
TOP_LEVEL: dict[str, tuple[Any, Check]] = {
    "panes": (
        [{"exchange": "binanceusdm", "symbol": "BTC/USDT:USDT", "timeframe": "5m", "range": "3d"}],
        _panes,
    ),
    "lines": ({}, _lines),  # "exchange|symbol" -> [{"kind", "price", "label"?}]
}


@dataclass
class AppState:
    data: dict[str, Any]
    warnings: list[str] = field(default_factory=list)
    source_version: int = STATE_VERSION

    def get(self, section: str, key: str) -> Any:
        return self.data[section][key]

    def set(self, section: str, key: str, value: Any) -> None:
        default, check = SCHEMA[section][key]
        if not check(value):
            raise ValueError(f"bad value for {section}.{key}: {value!r}")
        self.data[section][key] = value

    def lines_for(self, exchange: str, symbol: str) -> list[dict[str, Any]]:
        return [dict(x) for x in self.data["lines"].get(f"{exchange}|{symbol}", [])]

    def set_lines(self, exchange: str, symbol: str, lines: list[dict[str, Any]]) -> None:
        bad = [x for x in lines if not _line(x)]
        if bad:
            raise ValueError(f"bad price line {bad[0]!r}")
        self.data["lines"][f"{exchange}|{symbol}"] = [dict(x) for x in lines]


def defaults() -> dict[str, Any]:
    d: dict[str, Any] = {
        s: {k: copy.deepcopy(v[0]) for k, v in fields_.items()} for s, fields_ in SCHEMA.items()
    }
    d.update({k: copy.deepcopy(v[0]) for k, v in TOP_LEVEL.items()})
    return d


def state_path() -> Path:
    return config_dir() / STATE_FILE


def load_state(path: Path | None = None) -> AppState:
    path = path or state_path()
    state = AppState(defaults())
    if not path.exists():
        return state
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(raw, dict):
            raise ValueError("not a JSON object")
    except (OSError, ValueError) as exc:
        aside = _keep_aside(path, "corrupt")
        state.warnings.append(f"{path}: unreadable ({exc}); kept as {aside.name}, using defaults")
        return _logged(state)
    version = raw.get("version")
    if not isinstance(version, int) or version < 1:
        state.warnings.append(f"{path}: no valid version; reading what is understood")
        version = STATE_VERSION
    if version > STATE_VERSION:
        state.warnings.append(
            f"{path}: written by a newer liqdesk (state version {version}); reading what this version understands"
        )
    state.source_version = version
    for section, fields_ in SCHEMA.items():
        given = raw.get(section, {})
        if not isinstance(given, dict):
            state.warnings.append(f"{path}: '{section}' is not an object; using defaults")
            continue
        for key, value in given.items():
            if key not in fields_:
                state.warnings.append(f"{path}: unknown setting {section}.{key} ignored")
            elif fields_[key][1](value):
                state.data[section][key] = value
            else:
                state.warnings.append(f"{path}: bad value for {section}.{key} ({value!r}); using the default")
    for key, (_, check) in TOP_LEVEL.items():
        if key in raw:
            if check(raw[key]):
                state.data[key] = raw[key]
            else:
                state.warnings.append(f"{path}: bad '{key}'; using the default")
    # price lines are checked one by one: a bad line is dropped, the others kept
    for market, lines in list(state.data["lines"].items()):
        good = [x for x in lines if _line(x)]
        if len(good) != len(lines):
            state.warnings.append(f"{path}: {len(lines) - len(good)} bad price line(s) for {market} dropped")
        state.data["lines"][market] = good
    return _logged(state)


def save_state(state: AppState, path: Path | None = None) -> None:
    """Atomic write; a newer version's file is backed up before it is replaced."""
    path = path or state_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    if state.source_version > STATE_VERSION and path.exists():
        backup = path.with_name(f"{path.stem}.v{state.source_version}{path.suffix}")
        if not backup.exists():
            os.replace(path, backup)
        state.source_version = STATE_VERSION
    write_json_atomic(path, {"version": STATE_VERSION, **state.data})


def _keep_aside(path: Path, why: str) -> Path:
    aside = path.with_name(f"{path.name}.{why}-{time.strftime('%Y%m%d-%H%M%S')}")
    try:
        os.replace(path, aside)
    except OSError as exc:  # read-only folder: the next save will overwrite it, say so now
        log.warning("could not keep %s aside as %s: %s", path, aside.name, exc)
    return aside


def _logged(state: AppState) -> AppState:
    for w in state.warnings:
        log.warning("%s", w)
    return state
