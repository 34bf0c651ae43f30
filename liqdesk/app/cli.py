"""The `liqdesk` command: the chart window with no sub-command, headless tools with one.

Each sub-command lives in liqdesk.app.commands.<name> and exposes `register(subparsers)`;
errors meant for the user (LiqdeskError) become one line on stderr and exit status 2.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import logging
import signal
import sys
import threading
import warnings
from collections.abc import Sequence

from liqdesk import __version__
from liqdesk.app import allocator
from liqdesk.errors import LiqdeskError

# Order here is the order in --help.
COMMAND_MODULES = ["export", "levels", "snapshot", "record", "liquidations", "calibrate"]
COMMAND_MODULES += ["sample_positions", "actual", "screen", "store"]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="liqdesk",
        description=(
            "Liquidation-heatmap terminal for crypto perpetual futures. With no sub-command, opens the chart "
            "window (live exchange data when reachable, else the bundled sample). Liquidation levels are "
            "model estimates, not exchange data."
        ),
        epilog=(
            "The window remembers its tabs, market, preset, colours, theme and layout in state.json in the "
            "config directory (LIQDESK_CONFIG_DIR overrides it; exchange options in config.json and user presets "
            "in presets.json live there too); the local cache is in LIQDESK_DATA_DIR. Keyboard shortcuts: Help "
            "> Keyboard shortcuts (F1) in the window. Each command has its own help: liqdesk COMMAND --help."
        ),
    )
    parser.add_argument("--version", action="version", version=f"liqdesk {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug messages to stderr")
    from liqdesk.app.desktop import add_window_options

    add_window_options(parser)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(f"liqdesk.app.commands.{name}").register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    allocator.set_policy()
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.WARNING,
        format="liqdesk: %(levelname)s: %(message)s",
    )
    try:
        if args.command is None:
            return _open_window(args)
        with _terminate_cleanly(), warnings.catch_warnings():
            warnings.showwarning = _show_warning
            return int(args.func(args) or 0)
    except LiqdeskError as exc:
        print(f"liqdesk: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("liqdesk: interrupted", file=sys.stderr)
        return 130
    except _Terminated:
        print("liqdesk: terminated", file=sys.stderr)
        return 143
    except BrokenPipeError:
        return 0


class _Terminated(BaseException):
    """SIGTERM, raised in the main thread so that cleanups run (a half-written temp file is removed)."""


@contextlib.contextmanager
def _terminate_cleanly():  # type: ignore[no-untyped-def]
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: object) -> None:
        raise _Terminated

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _show_warning(message, category, filename, lineno, file=None, line=None):  # type: ignore[no-untyped-def]
    """Warnings as one line for a user: never a source line of liqdesk's own code."""
    print(f"liqdesk: warning: {message}", file=sys.stderr)


def _open_window(args: argparse.Namespace) -> int:
    from liqdesk.app import desktop  # Qt is imported only when the window opens

    return desktop.run(args)


if __name__ == "__main__":
    raise SystemExit(main())
