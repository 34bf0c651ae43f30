"""Leverage presets and bracket tables: shipped as data in resources/model, user presets in the
config directory (presets.json there adds or overrides entries).

Each venue has its own bracket table and margin rule (`VENUE_BRACKETS`, core.leverage); data from files
or the bundled samples use Binance's. The tables are BTC's; other symbols use their venue's BTC table."""

from __future__ import annotations

import json
import logging
from functools import lru_cache
from pathlib import Path
from typing import Any

from liqdesk.core.leverage import Brackets, Tiers
from liqdesk.core.params import ModelParams, Preset
from liqdesk.errors import ConfigError
from liqdesk.feeds.atomic import write_json_atomic
from liqdesk.feeds.paths import config_dir
from liqdesk.feeds.resources import resource_path

log = logging.getLogger(__name__)

DEFAULT_PRESET = "coinglass"
DEFAULT_BRACKETS = "brackets_binance_btcusdt.json"
# The bracket table of each venue (the venues' BTC tables; see each file's "source").
VENUE_BRACKETS = {
    "binanceusdm": DEFAULT_BRACKETS,
    "bybit": "brackets_bybit_btcusdt.json",
    "okx": "brackets_okx_btcusdt.json",
    "hyperliquid": "brackets_hyperliquid_btc.json",
}


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror or exc}") from None
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{path}:{exc.lineno}: not valid JSON ({exc.msg})") from None
    except RecursionError:
        raise ConfigError(f"{path}: not valid JSON (nested too deeply)") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not a text file (byte {exc.start} is not UTF-8)") from None


def _presets_from(data: Any, where: Path) -> dict[str, Preset]:
    if not isinstance(data, dict):
        raise ConfigError(f"{where}: expected an object of presets")
    out = {}
    for name, spec in data.items():
        try:
            tiers = Tiers.from_mapping(spec["tiers"])
        except (KeyError, TypeError, AttributeError):
            raise ConfigError(
                f"{where}: preset {name!r} needs a 'tiers' object like {{\"25\": 0.5}}"
            ) from None
        except ConfigError as exc:
            raise ConfigError(f"{where}: preset {name!r}: {exc}") from None
        out[str(name)] = Preset(str(name), str(spec.get("label", name)), tiers)
    return out


@lru_cache(maxsize=1)
def _bundled_presets() -> dict[str, Preset]:
    path = resource_path("model", "presets.json")
    return _presets_from(_read_json(path), path)


def load_presets() -> dict[str, Preset]:
    """Bundled presets, then the user's (a broken user file is reported and skipped)."""
    presets = dict(_bundled_presets())
    user = config_dir() / "presets.json"
    if user.exists():
        try:
            presets.update(_presets_from(_read_json(user), user))
        except ConfigError as exc:
            log.warning("ignoring user presets: %s", exc)
    return presets


def save_user_preset(name: str, label: str, tiers: dict[float, float]) -> Path:
    """Add or replace the user preset ``name`` in the user's presets.json (written atomically; the other presets
    in it are kept as they are). A user file that cannot be read is left alone: ConfigError."""
    checked = Tiers.from_mapping(tiers)  # the same checks as a preset read from the file
    path = config_dir() / "presets.json"
    data: Any = _read_json(path) if path.exists() else {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected an object of presets; not changed")
    data[name] = {
        "label": label,
        "tiers": {
            f"{lev:g}": round(float(w), 6) for lev, w in zip(checked.leverage, checked.weight, strict=True)
        },
    }
    try:
        write_json_atomic(path, data)
    except OSError as exc:
        raise ConfigError(f"cannot write {path}: {exc.strerror or exc}") from None
    return path


@lru_cache(maxsize=8)
def load_brackets(name: str = DEFAULT_BRACKETS) -> Brackets:
    path = resource_path("model", name)
    data = _read_json(path)
    try:
        return Brackets.from_rows(
            data["brackets"], basis=data.get("basis", "mark"), close_fee=data.get("close_fee", 0.0)
        )
    except (KeyError, TypeError, AttributeError):
        raise ConfigError(f"{path}: expected a 'brackets' list") from None
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from None


def venue_brackets(exchange: str | None) -> Brackets:
    """The bracket table and margin rule of a venue (Binance's for files, samples and unknown ids)."""
    return load_brackets(VENUE_BRACKETS.get(exchange or "", DEFAULT_BRACKETS))


def params_for(preset: str = DEFAULT_PRESET, *, venue: str | None = None, **overrides: Any) -> ModelParams:
    """The preset's parameters with the venue's brackets (Binance's when no venue is given)."""
    presets = load_presets()
    if preset not in presets:
        raise ConfigError(f"unknown preset {preset!r}; available: {', '.join(sorted(presets))}")
    return ModelParams(
        tiers=presets[preset].tiers, preset=preset, brackets=venue_brackets(venue), **overrides
    )
