"""`liqdesk --version`, `--help` and every sub-command's help: complete, and consistent with the README."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from liqdesk import __version__
from liqdesk.app.cli import COMMAND_MODULES, build_parser, main

README = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")


def _section(title: str) -> str:
    start = README.index(f"## {title}")
    nxt = README.find("\n## ", start + 3)
    return README[start : nxt if nxt >= 0 else None]


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["--version"])
    assert exc.value.code == 0 and capsys.readouterr().out.strip() == f"liqdesk {__version__}"


def test_top_level_help_lists_every_command_and_window_option(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["--help"])
    out = capsys.readouterr().out
    for module in COMMAND_MODULES:
        name = module.replace("_", "-")  # the module sample_positions holds the command sample-positions
        assert re.search(rf"^\s+{name}\s+\S", out, re.M), name  # listed with a one-line description
    for opt in ("--exchange", "--symbol", "--timeframe", "--ccxt-options", "--offline", "--version"):
        assert opt in out
    assert "estimates" in out and "LIQDESK_CONFIG_DIR" in out


@pytest.mark.parametrize("module", COMMAND_MODULES)
def test_each_command_has_help_and_the_readme_shows_it(
    module: str, capsys: pytest.CaptureFixture[str]
) -> None:
    name = module.replace("_", "-")
    with pytest.raises(SystemExit) as exc:
        main([name, "--help"])
    out = capsys.readouterr().out
    assert exc.value.code == 0 and out.startswith(f"usage: liqdesk {name}")
    sub = build_parser()._subparsers._group_actions[0].choices[name]  # type: ignore[union-attr]
    assert sub.description and len(sub.description) > 40  # says what it does
    for action in sub._actions:
        if action.option_strings and action.dest != "help":
            assert action.help, f"{name} {action.option_strings} has no help"
    assert f"liqdesk {name}" in _section("Command line")


def test_readme_options_exist() -> None:
    """Every --option the README's command section names is an option of some command (or of the window)."""
    parser = build_parser()
    known = set(parser._option_string_actions)
    for sub in parser._subparsers._group_actions[0].choices.values():  # type: ignore[union-attr]
        known |= set(sub._option_string_actions)
        for action in sub._subparsers._group_actions if sub._subparsers else []:  # e.g. `store copy`
            for nested in getattr(action, "choices", None) or {}:
                known |= set(action.choices[nested]._option_string_actions)
    named = set(re.findall(r"(--[a-z][a-z-]+)", _section("Command line")))
    assert named and named <= known, named - known
    commands = set(re.findall(r"^liqdesk ([a-z]+) ", _section("Command line"), re.M))
    assert commands <= set(COMMAND_MODULES)
