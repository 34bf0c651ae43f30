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
import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeGuard

from liqdesk.feeds.atomic import write_json_atomic
from liqdesk.feeds.presets import config_dir

log = logging.getLogger(__name__)

STATE_VERSION = 1
STATE_FILE = "state.json"

Check = Callable[[Any], bool]


TIMEFRAMES = ("1m", "5m", "15m", "1h", "4h")
RANGES = ("12h", "24h", "3d", "7d", "30d", "90d", "180d", "1y")
LINE_KINDS = ("stop", "target", "entry", "alert", "liquidation")
MAX_PRICE = 1e12  # a line above this is no market's price (and 1e308 overflowed the tick snapping)
MAX_TEXT = 4096
MAX_FILE_BYTES = 16 << 20
MAX_LINES_PER_MARKET = 500


def _is_str(v: Any) -> TypeGuard[str]:
    """Text the app can use anywhere (paths included): bounded, no NUL (os calls raise ValueError on it)."""
    return isinstance(v, str) and len(v) <= MAX_TEXT and "\x00" not in v


def _is_bool(v: Any) -> bool:
    return isinstance(v, bool)


def _is_number(v: Any) -> TypeGuard[int | float]:
    """A finite JSON number (JSON gives NaN, Infinity and 1e999 = inf to Python as floats)."""
    if isinstance(v, bool):
        return False
    if isinstance(v, int):
        return abs(v) < 2**63  # JSON ints are unbounded; math.isfinite(10**400) raises
    return isinstance(v, float) and math.isfinite(v)


def _num(lo: float, hi: float) -> Check:
    return lambda v: _is_number(v) and lo <= v <= hi


def _int(lo: int, hi: int) -> Check:
    return lambda v: isinstance(v, int) and not isinstance(v, bool) and lo <= v <= hi


def _one_of(*options: str) -> Check:
    return lambda v: isinstance(v, str) and v in options


def _opt(check: Check) -> Check:
    return lambda v: v is None or check(v)


def _int_list(v: Any) -> bool:
    return isinstance(v, list) and len(v) <= 16 and all(_int(0, 100_000)(x) for x in v)


def _levels(v: Any) -> bool:
    return v is None or (
        isinstance(v, list) and len(v) == 2 and all(_num(-1e15, 1e15)(x) for x in v) and v[0] < v[1]
    )


def _pane(v: Any) -> bool:
    return (
        isinstance(v, dict)
        and all(_is_str(v.get(k)) and 0 < len(v[k]) <= 64 for k in ("exchange", "symbol"))
        and v.get("timeframe") in TIMEFRAMES
        and v.get("range") in RANGES
    )


def _clean_pane(v: Any) -> dict[str, str] | None:
    """A tab from the state file with each bad field replaced by its default (None: not a tab at all)."""
    if not isinstance(v, dict):
        return None
    default = TOP_LEVEL["panes"][0][0]
    out = {k: v.get(k) for k in ("exchange", "symbol", "timeframe", "range")}
    for k in ("exchange", "symbol"):
        text = out[k]
        if not (_is_str(text) and 0 < len(text) <= 64):
            out[k] = default[k]
    out["timeframe"] = out["timeframe"] if out["timeframe"] in TIMEFRAMES else default["timeframe"]
    out["range"] = out["range"] if out["range"] in RANGES else default["range"]
    return out  # type: ignore[return-value]


def _panes(v: Any) -> bool:
    return isinstance(v, list) and 1 <= len(v) <= 16 and all(_pane(p) for p in v)


# What rides on a line besides kind, price and label: the position on its entry line.
_POSITION_FIELDS: dict[str, Check] = {
    "side": _one_of("long", "short"),
    "leverage": lambda v: _is_number(v) and 1 < v <= 1000,
    "size_usd": lambda v: _is_number(v) and 0 < v <= MAX_PRICE,
}


def clean_line(raw: Any) -> dict[str, Any] | None:
    """The one check of a price line read from the state file or about to be written to it: the line as
    the app may use it, or None when it cannot be used at all (no kind, no finite price in (0, MAX_PRICE]).
    A bad label or position field is dropped (a bad position leaves a plain line); other fields are kept
    when they are plain finite values (a newer version's additions)."""
    if not isinstance(raw, dict) or raw.get("kind") not in LINE_KINDS:
        return None
    price = raw.get("price")
    if not (_is_number(price) and 0 < price <= MAX_PRICE):
        return None
    out: dict[str, Any] = {"kind": raw["kind"], "price": price}
    label = raw.get("label")
    if _is_str(label) and label and len(label) <= 200:
        out["label"] = label
    position = {k: raw[k] for k in _POSITION_FIELDS if k in raw}
    if (
        position
        and len(position) == len(_POSITION_FIELDS)
        and all(check(position[k]) for k, check in _POSITION_FIELDS.items())
    ):
        out.update(position)
    for k, x in raw.items():
        if k in out or k in _POSITION_FIELDS or k == "label" or not (_is_str(k) and len(k) <= 64):
            continue
        if _is_bool(x) or _is_number(x) or (_is_str(x) and len(x) <= 200):
            out[k] = x
    return out


def _lines(v: Any) -> bool:
    return isinstance(v, dict) and all(
        _is_str(k) and len(k) <= 200 and isinstance(x, list) for k, x in v.items()
    )


# field -> (default, check). Nested sections are dicts of the same.
SCHEMA: dict[str, dict[str, tuple[Any, Check]]] = {
    "window": {
        "geometry": ("", _is_str),  # Qt saveGeometry() as base64
        "dock_state": ("", _is_str),
        "splitter": ([], _int_list),
        "current_tab": (0, _int(0, 15)),  # the workspace tab shown (index into panes)
    },
    "market": {
        "exchange": ("binanceusdm", _is_str),
        "symbol": ("BTC/USDT:USDT", _is_str),
        "timeframe": ("5m", _one_of(*TIMEFRAMES)),
        "range": ("3d", _one_of(*RANGES)),
    },
    "model": {
        "preset": ("coinglass", _is_str),
        "taker_floor": (0.2, _num(0.0, 0.499)),
        "half_life_h": (None, _opt(_num(0.1, 1e5))),
        "churn": (0.06, _num(0.0, 10.0)),
        "volume_half_life_h": (24.0, _num(0.1, 1e5)),
        "entry_points": (1, _int(1, 15)),
        "bins": (1000, _int(50, 4000)),  # the heatmap's price bins at most (MainWindow.max_bins)
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
        "actual_heat": (False, _is_bool),  # sampled positions as the heatmap's newest columns
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
        clean = [clean_line(x) for x in lines]
        bad = [x for x, c in zip(lines, clean, strict=True) if c is None]
        if bad:
            raise ValueError(f"bad price line {bad[0]!r}")
        self.data["lines"][f"{exchange}|{symbol}"] = clean[:MAX_LINES_PER_MARKET]


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
        with path.open("rb") as f:
            data = f.read(MAX_FILE_BYTES + 1)
        if len(data) > MAX_FILE_BYTES:
            raise ValueError(f"larger than {MAX_FILE_BYTES >> 20} MB")
        raw = json.loads(data.decode("utf-8"))
        if not isinstance(raw, dict):
            raise ValueError("not a JSON object")
    except (OSError, ValueError, RecursionError) as exc:  # RecursionError: JSON nested too deep
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
    panes = raw.get("panes")
    if isinstance(panes, list) and panes and not _panes(panes):  # repair tabs field by field
        fixed = [c for c in map(_clean_pane, panes[:16]) if c is not None]
        state.warnings.append(f"{path}: bad tab settings replaced by defaults")
        raw = {**raw, "panes": fixed} if fixed else {k: v for k, v in raw.items() if k != "panes"}
    for key, (_, check) in TOP_LEVEL.items():
        if key in raw:
            if check(raw[key]):
                state.data[key] = copy.deepcopy(raw[key])
            else:
                state.warnings.append(f"{path}: bad '{key}'; using the default")
    # price lines are checked one by one: a bad line is dropped, the others kept
    for market, lines in list(state.data["lines"].items()):
        good = [c for c in map(clean_line, lines) if c is not None][:MAX_LINES_PER_MARKET]
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


_said: set[str] = (
    set()
)  # warnings logged already: the file is read again by every save (lines, prefs, layout)


def _logged(state: AppState) -> AppState:
    for w in state.warnings:
        if w not in _said:
            _said.add(w)
            log.warning("%s", w)
    return state
