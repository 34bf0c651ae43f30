"""Where the bundled resources live: next to the package in a checkout or wheel, or inside a
PyInstaller bundle (sys._MEIPASS). The packaging build uses the same lookup."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from liqdesk.errors import DataError


def resources_dir() -> Path:
    override = os.environ.get("LIQDESK_RESOURCES")
    candidates = [Path(override)] if override else []
    bundle = getattr(sys, "_MEIPASS", None)
    if bundle:
        candidates.append(Path(bundle) / "resources")
    here = Path(__file__).resolve()
    candidates += [here.parents[1] / "resources", here.parents[2] / "resources"]
    for c in candidates:
        if (c / "model").is_dir():
            return c
    raise DataError(
        "cannot find liqdesk's resources folder (looked in: " + ", ".join(map(str, candidates)) + ")"
    )


def resource_path(*parts: str) -> Path:
    p = resources_dir().joinpath(*parts)
    if not p.exists():
        raise DataError(f"missing bundled resource {p}")
    return p
