"""`liqdesk` with no sub-command: the chart window on qasync's event loop, live when the exchange answers.

First run asks nothing: the window opens at once on the cache (or the bundled sample, with a visible note)
while ``LiveController`` tries the exchange in the background (Binance USDⓈ-M BTC/USDT:USDT 5m unless
``--exchange/--symbol/--timeframe`` say otherwise) and switches to live data when it answers. ``--offline``
never touches the network.

Shutdown (qasync + ccxt): the window's close does not quit Qt by itself; it ends ``main()``, which
closes the feed and the exchange (``await exchange.close()``) and cancels what is left with a timeout, so no
aiohttp session is left unclosed. A loop exception handler logs every stray task error and shows it in the
window.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from liqdesk.errors import ConfigError
from liqdesk.feeds.loop_errors import is_orphaned_heartbeat

if TYPE_CHECKING:
    from liqdesk.app.live_source import LiveConfig, LiveController
    from liqdesk.ui.window import MainWindow

log = logging.getLogger(__name__)

SHUTDOWN_TIMEOUT_S = 5.0
_LOOP_STOPPED = "Event loop stopped before Future completed"


def add_window_options(parser: argparse.ArgumentParser) -> None:
    """Options of the bare `liqdesk` command (the window). Separate dests: sub-commands have their own."""
    g = parser.add_argument_group("chart window (no sub-command)")
    g.add_argument("--exchange", dest="window_exchange", metavar="ID",
                   help="exchange for live data: binanceusdm (default), bybit, okx, hyperliquid; a comma list "
                        "(binanceusdm,bybit,okx,hyperliquid) opens the venues aggregated: every venue's model "
                        "summed, live")  # fmt: skip
    g.add_argument("--symbol", dest="window_symbol", metavar="SYM",
                   help="symbol in ccxt form (default BTC/USDT:USDT)")  # fmt: skip
    g.add_argument("--timeframe", dest="window_timeframe", metavar="TF",
                   help="bar interval: 1m, 5m (default), 15m, 1h, 4h")  # fmt: skip
    g.add_argument("--ccxt-options", dest="window_ccxt_options", metavar="JSON",
                   help="ccxt constructor options (urls, proxies, options), JSON; merged over the config file")  # fmt: skip
    g.add_argument("--offline", dest="window_offline", action="store_true",
                   help="do not connect: open on the bundled sample")  # fmt: skip
    g.add_argument("--sample", dest="window_sample", metavar="NAME",
                   help="do not connect: open on this bundled sample (e.g. btcusdt-5m-2025-10-10, the crash of "
                        "2025-10-10 to replay); implies --offline")  # fmt: skip
    g.add_argument("--store", dest="window_store", metavar="URL",
                   help="the store the window reads and writes: sqlite:///path or postgresql://user@host/db "
                        "(default: $LIQDESK_STORE, else Settings → Data, else the local cache)")  # fmt: skip
    from liqdesk.core.backend import BACKENDS

    g.add_argument("--backend", dest="window_backend", choices=BACKENDS, default=None,
                   help="heatmap compute backend: auto (CuPy if a CUDA GPU works, else NumPy), numpy, cupy "
                        "(default: $LIQDESK_BACKEND, else Settings → Model, else auto)")  # fmt: skip


def config_from_args(args: argparse.Namespace) -> LiveConfig:
    """The live-data choice from the command line (ConfigError for bad values, before any window opens)."""
    from liqdesk.app import live_source
    from liqdesk.feeds.exchange_config import ccxt_options_for
    from liqdesk.ui.data import TIMEFRAMES

    exchange = _arg(args, "exchange") or live_source.DEFAULT_EXCHANGE
    symbol = _arg(args, "symbol") or live_source.DEFAULT_SYMBOL
    timeframe = _arg(args, "timeframe") or live_source.DEFAULT_TIMEFRAME
    if timeframe not in TIMEFRAMES:
        raise ConfigError(f"bad --timeframe {timeframe!r}; the window offers {', '.join(TIMEFRAMES)}")
    sample = _arg(args, "sample")
    if sample:
        from liqdesk.feeds.sample import sample_description

        sample_description(sample)  # an unknown name: one line listing the samples, before any window opens
    offline = bool(_arg(args, "offline")) or bool(sample)
    if "," in exchange:  # the venues aggregated: each venue's own options
        from liqdesk.feeds.venue_set import parse_exchanges, venue_ccxt_options

        venues = parse_exchanges(exchange)
        exchange = ",".join(venues)
        cli = _arg(args, "ccxt_options")
        options = None if offline else {ex: venue_ccxt_options(ex, cli) for ex in venues}
    else:
        options = None if offline else ccxt_options_for(exchange, _arg(args, "ccxt_options"))
    store = _arg(args, "store")
    if store:
        from liqdesk.feeds.store import parse_store_url

        parse_store_url(store)  # a bad URL is one line, before any window opens
    return live_source.LiveConfig(
        exchange=exchange, symbol=symbol, timeframe=timeframe, ccxt_options=options, offline=offline,
        cache_path=store or None, sample=sample or None,
    )  # fmt: skip


def _arg(args: argparse.Namespace, name: str) -> Any:
    # The window's own dest first; the shared data options' dest when a caller built args that way.
    value = getattr(args, f"window_{name}", None)
    return value if value is not None else getattr(args, name, None)


def _check_display() -> None:
    """Qt aborts the process when it finds no screen: say what to do instead."""
    import os

    if not sys.platform.startswith("linux") or os.environ.get("QT_QPA_PLATFORM"):
        return
    if not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        raise ConfigError(
            "no display to open the window on (neither DISPLAY nor WAYLAND_DISPLAY is set); for a picture "
            "without a screen use: liqdesk snapshot --out chart.png"
        )


def run(
    args: argparse.Namespace,
    *,
    clock: Callable[[], int] | None = None,
    config: LiveConfig | None = None,
    after_start: Callable[[MainWindow, Any], Awaitable[None]] | None = None,
) -> int:
    """Open the window and run until it is closed. ``clock``/``config``/``after_start`` are for tests (the fake
    exchange's clock; a prepared config; a coroutine run beside the window, e.g. one that closes it)."""
    _check_display()
    from liqdesk.app import warmup

    warmup.start()  # the model's kernels compile (first run) or load while Qt starts and the sample loads
    from PySide6 import QtWidgets

    from liqdesk.feeds.state import load_state
    from liqdesk.ui.icons import APP_ID, app_icon
    from liqdesk.ui.theme import configure_pyqtgraph
    from liqdesk.ui.workspace import Workspace

    explicit = config is not None or any(_arg(args, k) for k in ("exchange", "symbol", "timeframe", "sample"))
    config = config or config_from_args(args)
    state = load_state()
    # The compute backend, once for the process: --backend, LIQDESK_BACKEND, the saved setting, auto.
    # A cupy asked for on the command line or in the environment that cannot run is a ConfigError
    # (one line, exit 2); asked for in the settings, the app opens on NumPy and says why.
    from liqdesk.app.options import choose_backend
    from liqdesk.ui.worker import set_backend

    backend, backend_note = choose_backend(_arg(args, "backend"), os.environ, state.get("model", "backend"))
    set_backend(backend, backend_note)
    configure_pyqtgraph()
    app = QtWidgets.QApplication.instance() or QtWidgets.QApplication(sys.argv[:1])
    assert isinstance(app, QtWidgets.QApplication)
    app.setApplicationName("liqdesk")
    app.setDesktopFileName(APP_ID)  # Wayland matches the window to packaging/io.liqdesk.Liqdesk.desktop
    app.setWindowIcon(app_icon())
    # Closing the last window must not stop the loop before the feed and the exchange are closed: the
    # window's close ends main() instead, and main() cleans up first.
    quit_on_close = app.quitOnLastWindowClosed()
    app.setQuitOnLastWindowClosed(False)
    # The state file, tolerantly (its warnings appear once in the status bar); the command line's market
    # choice wins for the first tab.
    if explicit:
        state.data["panes"][0] = {**state.data["panes"][0], "exchange": config.exchange, "symbol": config.symbol,
                                  "timeframe": config.timeframe}  # fmt: skip
    if config.cache_path is None:  # no --store: $LIQDESK_STORE, else the store saved in Settings → Data
        from dataclasses import replace

        from liqdesk.feeds.store import resolve_store_url, saved_store_url

        try:
            chosen = resolve_store_url(None, saved_store_url())
        except ConfigError as exc:  # a broken config.json: the local cache, and say why
            log.warning("%s", exc)
            chosen = None
        if chosen:
            config = replace(config, cache_path=chosen)
    cache_dir = state.get("data", "cache_dir")  # Settings → Data: another folder for the cache
    if cache_dir and config.cache_path is None:
        from dataclasses import replace

        from liqdesk.feeds.cache import DB_NAME

        config = replace(config, cache_path=str(Path(cache_dir).expanduser() / DB_NAME))
    workspace = Workspace(lambda spec, settings: _make_pane(config, spec, settings, clock), state)
    watcher = _CloseWatcher(workspace)
    closed = asyncio.Event()
    watcher.closed.connect(closed.set)
    side: list[asyncio.Future[Any]] = []
    controllers = _Controllers(workspace)

    async def main() -> None:
        loop = asyncio.get_running_loop()
        loop.set_exception_handler(_exception_handler(workspace))
        workspace.show()
        workspace.started = True
        if backend_note:
            workspace.current.flash(backend_note)
        for pane in workspace.panes:
            if pane.controller is not None:
                pane.controller.start()
        if after_start is not None:
            pane = workspace.pane_of(workspace.current)
            assert pane.controller is not None  # every tab of the app streams its market
            side.append(asyncio.ensure_future(after_start(pane.window, pane.controller)))
        await closed.wait()
        # Tabs closed just before: let their controllers finish closing while the loop still runs.
        pending = [f for f in workspace.closing if not f.done()]
        if pending:
            await asyncio.wait(pending, timeout=SHUTDOWN_TIMEOUT_S)

    # asyncio.run() takes loop_factory only from 3.12; asyncio.Runner has it on 3.11.
    with asyncio.Runner(loop_factory=_event_loop_class()) as runner:
        try:
            try:
                runner.run(main())
            except RuntimeError as exc:
                # app.quit() from elsewhere (aboutToQuit) ends Qt's loop under main(): clean up all the same.
                if _LOOP_STOPPED not in str(exc):
                    raise
            # Cleanup runs on the same loop (Qt's exec() runs again for it): close the feed and the exchange,
            # then cancel and await what is left, with timeouts.
            runner.run(shutdown(controllers, side))
        finally:
            for pane in workspace.panes:
                pane.window.worker.shutdown()
            app.setQuitOnLastWindowClosed(quit_on_close)
            warmup.join()
    return 0


def _event_loop_class() -> type[asyncio.AbstractEventLoop]:
    import qasync

    class EventLoop(qasync.QEventLoop):  # type: ignore[misc]
        """qasync's loop, with one difference: after its loop stops, qasync processes the Qt events "one last
        time" with no running loop set, and a task step pending then (ccxt's request throttler always has one)
        died with "RuntimeError: no running event loop". Here the loop stays the running one until
        run_until_complete returns, so such a step runs normally and the task is cancelled at shutdown."""

        def _after_run_forever(self) -> None:
            super()._after_run_forever()
            asyncio.events._set_running_loop(self)

        def run_until_complete(self, future: Any) -> Any:
            try:
                return super().run_until_complete(future)
            finally:
                asyncio.events._set_running_loop(None)

    return EventLoop


def _make_pane(base: LiveConfig, spec: dict[str, Any], settings: Any, clock: Callable[[], int] | None) -> tuple[
        MainWindow, Any]:  # fmt: skip
    """One tab: a LiveController for the pane's market (the base config's options and timeouts) and its window;
    an AggregateController for several venues (a comma list of exchanges)."""
    from dataclasses import replace

    from liqdesk.app.aggregate_live import AggregateController, is_aggregate
    from liqdesk.app.live_source import LiveController
    from liqdesk.ui.data import TIMEFRAMES
    from liqdesk.ui.window import MainWindow

    exchange = str(spec.get("exchange") or base.exchange)
    timeframe = str(spec.get("timeframe") or base.timeframe)
    try:
        options = base.ccxt_options
        if exchange != base.exchange and not base.offline:
            options = _pane_options(base, exchange)
        config = replace(base, exchange=exchange, symbol=str(spec.get("symbol") or base.symbol),
                         timeframe=timeframe if timeframe in TIMEFRAMES else base.timeframe,
                         ccxt_options=options)  # fmt: skip
    except Exception as exc:  # a bad pane in the state file: this tab opens on the default market
        log.warning("tab %r: %s; using %s %s", spec, exc, base.exchange, base.symbol)
        config = base
    controller: LiveController | AggregateController
    if is_aggregate(config.exchange):
        try:
            controller = AggregateController(config, clock=clock)
        except Exception as exc:  # a bad pane in the state file: this tab opens on the default market
            log.warning("tab %r: %s; using %s %s", spec, exc, base.exchange, base.symbol)
            config = base if not is_aggregate(base.exchange) else replace(base, exchange="binanceusdm",
                                                                          ccxt_options=None)  # fmt: skip
            controller = LiveController(config, clock=clock)
    else:
        controller = LiveController(config, clock=clock)
    for key, value in controller.initial_settings().items():
        setattr(settings, key, value)
    window = MainWindow(controller.source, settings)
    controller.attach(window)
    from liqdesk.app import magnet_standing_layer

    magnet_standing_layer.install(window)
    venues = controller.config.exchange.split(",")
    if "hyperliquid" in venues and not controller.config.offline:  # one venue or an aggregate with it
        from liqdesk.app.live_positions import LivePositions

        controller.listeners.append(LivePositions(window.positions, controller.config.cache_path,
                                                  clock=controller.clock, say=window.flash))  # fmt: skip
    return window, controller


def _pane_options(base: LiveConfig, exchange: str) -> dict[str, Any] | None:
    """The ccxt options of another tab's market: the base's own for a venue it names (options keyed by venue,
    those of an aggregated base), else the config file's; per venue for a comma list."""
    from liqdesk.feeds.exchange_config import ccxt_options_for
    from liqdesk.feeds.venue_set import venue_ccxt_options

    keyed = base.ccxt_options if base.ccxt_options and "," in base.exchange else {}

    def one(ex: str) -> dict[str, Any]:
        if ex in keyed:
            return dict(keyed[ex])
        if ex == base.exchange and base.ccxt_options is not None:
            return dict(base.ccxt_options)
        return venue_ccxt_options(ex, None) if "," in exchange else ccxt_options_for(ex, None)

    if "," in exchange:
        return {ex.strip(): one(ex.strip()) for ex in exchange.split(",")}
    return one(exchange)


class _Controllers:
    """Every tab's controller (and those of tabs closed earlier), closed together at shutdown."""

    def __init__(self, workspace: Any) -> None:
        self.workspace = workspace

    async def close(self, timeout_s: float = 5.0) -> None:
        closing = [p.controller.close(timeout_s) for p in self.workspace.panes if p.controller is not None]
        await asyncio.gather(*closing, *self.workspace.closing, return_exceptions=True)


async def shutdown(controller: LiveController | _Controllers, extra: list[asyncio.Future[Any]]) -> None:
    """Close the feed and the exchange, then cancel every other task and await them (with a timeout)."""
    try:
        await asyncio.wait_for(controller.close(SHUTDOWN_TIMEOUT_S), SHUTDOWN_TIMEOUT_S * 2)
    except (TimeoutError, asyncio.CancelledError):
        log.warning("live data did not close within %.0f s", SHUTDOWN_TIMEOUT_S * 2)
    me = asyncio.current_task()
    rest = [t for t in asyncio.all_tasks() if t is not me]
    for t in [*extra, *rest]:
        t.cancel()
    pending = {*rest, *extra}
    if pending:
        await asyncio.wait(pending, timeout=SHUTDOWN_TIMEOUT_S)


def _exception_handler(window: Any) -> Callable[[asyncio.AbstractEventLoop, dict[str, Any]], None]:
    def on_error(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        # A silently dead task is the usual failure: log it and say so in the window.
        exc = context.get("exception")
        if is_orphaned_heartbeat(context):  # ccxt's unawaited pong after a disconnect the stream handles
            log.debug("event loop: %s: %r", context.get("message"), exc)
            return
        message = str(context.get("message") or "")
        text = f"{message}: {type(exc).__name__}: {exc}" if exc is not None else message
        log.error("event loop: %s", text, exc_info=exc if isinstance(exc, BaseException) else None)
        with contextlib.suppress(RuntimeError):  # the window may be gone during shutdown
            window.flash(f"background error: {text[:200]}")

    return on_error


class _CloseWatcher:
    """Tells when the window has really closed (a close the window ignores does not count)."""

    def __init__(self, window: Any) -> None:
        from PySide6 import QtCore

        class Filter(QtCore.QObject):
            closed = QtCore.Signal()

            def eventFilter(self, obj: QtCore.QObject, ev: QtCore.QEvent) -> bool:  # noqa: N802
                if ev.type() == QtCore.QEvent.Type.Close:
                    # Decided after the window's own closeEvent: check on the next turn of the loop.
                    QtCore.QTimer.singleShot(0, self._check)
                return False

            def _check(self) -> None:
                if not window.isVisible():
                    self.closed.emit()

        self._filter = Filter(window)
        window.installEventFilter(self._filter)
        self.closed = self._filter.closed
