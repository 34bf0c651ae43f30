"""Imports go one way: app → ui → feeds → core. core is pure computation (no Qt, no ccxt, no I/O).

Two checks: this file's AST walk (every import statement, by layer, including stdlib I/O modules in
core), and the import contracts in pyproject.toml that the test command runs with import-linter
(layers, forbidden libraries, no cycles). The last test here holds those contracts to catching
what they are meant to catch, on a small package that breaks each one.
"""

from __future__ import annotations

import ast
import json
import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]
PKG = ROOT / "liqdesk"
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


def test_core_imports_without_qt_or_ccxt():
    code = (
        "import sys, liqdesk.core.engine, liqdesk.core.grid, liqdesk.core.liqmap, liqdesk.core.display,"
        " liqdesk.core.heatmap, liqdesk.core.kernels;"
        "bad = [m for m in ('PySide6', 'pyqtgraph', 'ccxt', 'aiohttp', 'sqlite3', 'cupy') if m in sys.modules];"
        "print(bad); sys.exit(1 if bad else 0)"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr


# A package that breaks every contract once: an upward import (feeds → ui), Qt in feeds, sqlite3 in
# core, ccxt in ui, a cycle in core through an import inside a function, a cycle in ui through an
# import under TYPE_CHECKING, a cycle in feeds and one in app.
_BROKEN = {
    "core/a.py": "import sqlite3\nfrom fakedesk.core import b\n",
    "core/b.py": "def f():\n    from fakedesk.core import a\n",
    "feeds/x.py": "import PySide6\nfrom fakedesk.ui import u\nfrom fakedesk.feeds import y\n",
    "feeds/y.py": "from fakedesk.feeds import x\n",
    "ui/u.py": "from typing import TYPE_CHECKING\nimport ccxt\nif TYPE_CHECKING:\n    from fakedesk.ui import v\n",
    "ui/v.py": "from fakedesk.ui import u\n",
    "app/m.py": "from fakedesk.app import n\n",
    "app/n.py": "from fakedesk.app import m\n",
}


def _toml(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    return json.dumps(value)  # TOML basic strings take JSON's escapes


def test_the_import_contracts_catch_what_they_are_for(tmp_path):
    lint = shutil.which("lint-imports", path=str(Path(sys.executable).parent)) or shutil.which("lint-imports")
    if lint is None:
        pytest.skip("import-linter is not installed (pip install -e '.[test]')")
    config = json.loads(json.dumps(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"])
                        .replace("liqdesk", "fakedesk"))  # fmt: skip
    contracts = config.pop("contracts")
    lines = ["[tool.importlinter]", *(f"{k} = {_toml(v)}" for k, v in config.items())]
    for c in contracts:
        lines += ["", "[[tool.importlinter.contracts]]", *(f"{k} = {_toml(v)}" for k, v in c.items())]
    (tmp_path / "contracts.toml").write_text("\n".join(lines) + "\n")
    for layer in ("core", "feeds", "ui", "app"):
        (tmp_path / "fakedesk" / layer).mkdir(parents=True)
        (tmp_path / "fakedesk" / layer / "__init__.py").write_text("")
    (tmp_path / "fakedesk" / "__init__.py").write_text("")
    for name, text in _BROKEN.items():
        (tmp_path / "fakedesk" / name).write_text(text)
    env = {**os.environ, "PYTHONPATH": str(tmp_path)}
    r = subprocess.run(
        [lint, "--no-cache", "contracts.toml"], cwd=tmp_path, env=env, capture_output=True, text=True
    )
    out = r.stdout + r.stderr
    assert r.returncode == 1, out
    for c in contracts:
        assert f"{c['name']} BROKEN" in out, out
    # every layer's cycle is found, through an import inside a function and one under TYPE_CHECKING too
    for layer in ("core", "feeds", "ui", "app"):
        assert f"No cycles are allowed in fakedesk.{layer}" in out, out
