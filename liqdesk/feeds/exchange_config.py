"""ccxt options per exchange: the config file in the user's config directory merged with ``--ccxt-options``.

The file is ``<config dir>/config.json`` (``LIQDESK_CONFIG_DIR`` overrides the directory; otherwise
``$XDG_CONFIG_HOME/liqdesk``, ``~/Library/Application Support/liqdesk`` or ``%APPDATA%\\liqdesk``)::

    {"exchanges": {"binanceusdm": {"urls": {...}, "options": {...}, "aiohttp_proxy": "http://..."}}}

A ``"*"`` entry applies to every exchange. The command line's JSON is either options for the one exchange
(``{"options": ...}``), or options per exchange: like the file, ``{"exchanges": {ID: {...}}}``, or keyed by
exchange id at the top, ``{"binanceusdm": {...}, "bybit": {...}}`` (what a list of exchanges needs; told apart
from the one-exchange form by its keys being exchange ids or ``"*"``, see ``keyed_by_exchange``). Command line
wins; dicts merge deeply.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from liqdesk.errors import ConfigError
from liqdesk.feeds.paths import config_dir

CONFIG_FILE = "config.json"


def deep_merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """A new dict: ``override`` merged into ``base``, recursing into dicts; other values replace."""
    out = copy.deepcopy(base)
    for k, v in override.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = deep_merge(out[k], v)
        else:
            out[k] = copy.deepcopy(v)
    return out


def parse_options_json(text: str | None, *, where: str = "--ccxt-options") -> dict[str, Any]:
    """Parse a JSON object; ConfigError naming ``where`` if it is not one."""
    if text is None or not str(text).strip():
        return {}
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(
            f"{where} is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"
        ) from None
    except RecursionError:
        raise ConfigError(f"{where} is not valid JSON: nested too deeply") from None
    if not isinstance(value, dict):
        raise ConfigError(
            f'{where} must be a JSON object like {{"options": {{...}}}}, got {type(value).__name__}'
        )
    return value


def load_config_file(path: Path | None = None) -> dict[str, Any]:
    """The whole config file as a dict ({} when there is none)."""
    p = path or config_dir() / CONFIG_FILE
    if not p.exists():
        return {}
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read config file {p}: {exc.strerror or exc}") from None
    data = parse_options_json(text, where=f"config file {p}")
    exchanges = data.get("exchanges", {})
    if not isinstance(exchanges, dict) or not all(isinstance(v, dict) for v in exchanges.values()):
        raise ConfigError(f'config file {p}: "exchanges" must map exchange ids to objects of ccxt options')
    return data


def _for_exchange(data: dict[str, Any], exchange_id: str, where: str) -> dict[str, Any]:
    exchanges = data.get("exchanges")
    if exchanges is None:
        return data
    if not isinstance(exchanges, dict):
        raise ConfigError(f'{where}: "exchanges" must be an object')
    merged: dict[str, Any] = {}
    for key in ("*", exchange_id):
        entry = exchanges.get(key, {})
        if not isinstance(entry, dict):
            raise ConfigError(f"{where}: exchanges.{key} must be an object of ccxt options")
        merged = deep_merge(merged, entry)
    return merged


def keyed_by_exchange(data: dict[str, Any], exchange_ids: Iterable[str]) -> bool:
    """Whether ``data`` gives options per exchange at its top level: every key is one of ``exchange_ids`` or
    ``"*"`` and every value an object."""
    ids = {*exchange_ids, "*"}
    return bool(data) and all(k in ids and isinstance(v, dict) for k, v in data.items())


def ccxt_options_for(
    exchange_id: str,
    cli_json: str | dict[str, Any] | None = None,
    *,
    config_path: Path | None = None,
    exchange_ids: Iterable[str] = (),
) -> dict[str, Any]:
    """The ccxt constructor options for ``exchange_id``: config file, then the command line on top.
    ``exchange_ids``: the supported exchanges, whose ids may key the command line's JSON at its top level."""
    file_data = load_config_file(config_path)
    file_opts = _for_exchange(
        file_data, exchange_id, f"config file {config_path or config_dir() / CONFIG_FILE}"
    )
    cli = cli_json if isinstance(cli_json, dict) else parse_options_json(cli_json)
    if "exchanges" not in cli and keyed_by_exchange(cli, {exchange_id, *exchange_ids}):
        cli = {"exchanges": cli}
    cli_opts = _for_exchange(cli, exchange_id, "--ccxt-options")
    return deep_merge(file_opts, cli_opts)
