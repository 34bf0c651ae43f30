"""Imports go one way: app → ui → feeds → core. core is pure computation (no Qt, no ccxt, no I/O)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PKG = Path(__file__).resolve().parents[1] / "liqdesk"
ORDER = ["core", "feeds", "ui", "app"]  # a layer may import only layers to its left (and itself)
SHARED = {"liqdesk", "liqdesk.errors"}  # importable from every layer
FORBIDDEN = {
    "core": {"PySide6", "pyqtgraph", "ccxt", "qasync", "aiohttp", "sqlite3", "asyncio", "socket", "json", "csv",
             "gzip", "pathlib", "os", "io", "urllib", "requests", "cupy"},
    "feeds": {"PySide6", "pyqtgraph", "qasync"},
    "ui": {"ccxt", "aiohttp", "sqlite3"},  # the window reaches exchanges and the cache through feeds
}  # fmt: skip


def _imports(path: Path) -> list[tuple[int, str]]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            out.append((node.lineno, node.module))
    return out


def _layer_of(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[0] == "liqdesk" and parts[1] in ORDER else None


def violations(root: Path = PKG) -> list[str]:
    found = []
    for layer in ORDER:
        for path in sorted((root / layer).rglob("*.py")):
            for line, mod in _imports(path):
                top = mod.split(".")[0]
                if top in FORBIDDEN.get(layer, set()):
                    found.append(
                        f"{path.relative_to(root.parent)}:{line}: liqdesk.{layer} must not import {mod}"
                    )
                target = _layer_of(mod)
                if target and ORDER.index(target) > ORDER.index(layer):
                    found.append(
                        f"{path.relative_to(root.parent)}:{line}: liqdesk.{layer} imports upward ({mod})"
                    )
                if (
                    mod.startswith("liqdesk")
                    and not target
                    and mod not in SHARED
                    and mod.split(".")[1] not in ORDER
                ):
                    found.append(f"{path.relative_to(root.parent)}:{line}: unknown liqdesk module {mod}")
    return found


def test_layers_import_one_way():
    assert violations() == []


def test_the_checker_catches_a_wrong_import(tmp_path):
    for layer in ORDER:
        (tmp_path / "liqdesk" / layer).mkdir(parents=True)
    (tmp_path / "liqdesk" / "core" / "bad.py").write_text("import PySide6\nfrom liqdesk.ui import chart\n")
    (tmp_path / "liqdesk" / "feeds" / "bad.py").write_text("from liqdesk.app import cli\nimport pyqtgraph\n")
    found = violations(tmp_path / "liqdesk")
    assert len(found) == 4, found


@pytest.mark.parametrize("layer", ["core"])
def test_core_imports_without_qt_or_ccxt(layer):
    import subprocess
    import sys

    code = (
        "import sys, liqdesk.core.engine, liqdesk.core.grid, liqdesk.core.liqmap, liqdesk.core.display;"
        "bad = [m for m in ('PySide6', 'pyqtgraph', 'ccxt', 'aiohttp') if m in sys.modules];"
        "print(bad); sys.exit(1 if bad else 0)"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr
