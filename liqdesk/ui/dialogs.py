"""The workspace's dialogs: Settings (model, data, appearance), Keyboard shortcuts, About.

All are opened with ``open()`` (never ``exec()``: a nested event loop inside qasync's is the known failure) and act
through signals. Settings apply live: model changes go to every pane, whose engines rebuild in their workers.
"""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path
from typing import Any, Protocol

from PySide6 import QtCore, QtWidgets

from liqdesk.errors import ConfigError, LiqdeskError
from liqdesk.feeds.atomic import write_json_atomic
from liqdesk.feeds.cache import clear_cache_file
from liqdesk.feeds.state import AppState
from liqdesk.ui.jobs import SerialExecutor
from liqdesk.ui.results import ResultInbox
from liqdesk.ui.state_settings import model_overrides
from liqdesk.ui.view_settings import ViewSettings


class SettingsHost(Protocol):
    """What the settings dialog changes (the workspace implements it)."""

    state: AppState

    def current_settings(self) -> ViewSettings: ...

    def current_exchange(self) -> str: ...

    def cache_path(self) -> Path: ...

    def apply_model(
        self, *, preset: str | None = None, overrides: dict[str, Any] | None = None, bins: int | None = None
    ) -> None: ...

    def reload_presets(self) -> None: ...

    def schedule_save(self) -> None: ...

    def set_theme(self, name: str) -> None: ...

    def set_utc(self, on: bool) -> None: ...


def save_user_preset(name: str, label: str, tiers: dict[str, float]) -> Path:
    """Add or replace a preset in config_dir()/presets.json (what liqdesk.feeds.presets loads). ConfigError for
    bad tiers or a bad existing file."""
    from liqdesk.core.leverage import Tiers
    from liqdesk.feeds.paths import config_dir

    if not name.strip():
        raise ConfigError("the preset needs a name")
    Tiers.from_mapping(tiers)  # ConfigError when the tiers are unusable
    path = config_dir() / "presets.json"
    data: dict[str, Any] = {}
    if path.exists():
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise ConfigError(f"{path}: cannot be read ({exc}); fix or remove it first") from None
        if not isinstance(data, dict):
            raise ConfigError(f"{path}: not an object of presets; fix or remove it first")
    data[name.strip()] = {"label": label.strip() or name.strip(), "tiers": tiers}
    write_json_atomic(path, data)
    return path


def default_cache_path() -> Path:
    from liqdesk.feeds.cache import default_path

    return default_path()


def cache_files(path: Path) -> list[Path]:
    return [
        p
        for p in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm"))
        if p.exists()
    ]


def cache_size(path: Path) -> int:
    return sum(p.stat().st_size for p in cache_files(path))


def human_bytes(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GB"


class SettingsDialog(QtWidgets.QDialog):
    """Model · Data · Appearance. Non-modal; every change applies at once."""

    def __init__(self, ws: SettingsHost, parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(parent)
        # Emptying the cache takes seconds on a big tape (DELETE + VACUUM): off the UI thread.
        self._disk = SerialExecutor("liqdesk-cache-clear")
        self._inbox = ResultInbox(self)
        self.ws = ws
        self.setWindowTitle("Settings — liqdesk")
        self.setModal(False)
        self.resize(560, 520)
        self._updating = False
        layout = QtWidgets.QVBoxLayout(self)
        self.tabs = QtWidgets.QTabWidget()
        layout.addWidget(self.tabs)
        self.tabs.addTab(self._model_tab(), "Model")
        self.tabs.addTab(self._data_tab(), "Data")
        self.tabs.addTab(self._appearance_tab(), "Appearance")
        self.message = QtWidgets.QLabel("")
        self.message.setWordWrap(True)
        buttons = QtWidgets.QDialogButtonBox(QtWidgets.QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.close)
        row = QtWidgets.QHBoxLayout()
        row.addWidget(self.message, 1)
        row.addWidget(buttons)
        layout.addLayout(row)
        self._model_timer = QtCore.QTimer(self, singleShot=True, interval=400)
        self._model_timer.timeout.connect(self._apply_model)

    # ---------------------------------------------------------------- model
    def _model_tab(self) -> QtWidgets.QWidget:
        page = QtWidgets.QWidget()
        v = QtWidgets.QVBoxLayout(page)
        form = QtWidgets.QFormLayout()
        self.preset_box = QtWidgets.QComboBox()
        self.preset_box.activated.connect(self._on_preset)
        form.addRow("Leverage preset", self.preset_box)

        def spin(lo: float, hi: float, step: float, decimals: int, tip: str) -> QtWidgets.QDoubleSpinBox:
            s = QtWidgets.QDoubleSpinBox()
            s.setRange(lo, hi)
            s.setSingleStep(step)
            s.setDecimals(decimals)
            s.setToolTip(tip)
            s.valueChanged.connect(self._model_changed)
            return s

        self.taker_floor = spin(
            0.0, 0.49, 0.05, 2, "Damps the long/short skew taken from taker flow (0: none)"
        )
        form.addRow("Taker floor", self.taker_floor)
        self.half_life = spin(
            0.0, 10_000, 6, 1, "Alive levels decay with this half-life (0: no decay, OI model)"
        )
        self.half_life.setSpecialValueText("no decay")
        form.addRow("Half-life (h)", self.half_life)
        self.churn = spin(0.0, 10.0, 0.01, 3, "Volume model (no OI): new positions = churn × traded notional")
        form.addRow("Churn", self.churn)
        self.bins = QtWidgets.QSpinBox()
        self.bins.setRange(50, 4000)
        self.bins.setSingleStep(100)
        self.bins.setToolTip("Price bins of the visible heatmap at most (more: finer, slower)")
        self.bins.valueChanged.connect(self._model_changed)
        form.addRow("Heatmap bins (max)", self.bins)
        self.backend_box = QtWidgets.QComboBox()
        for value, text in (("auto", "auto (GPU when CuPy and a CUDA device work)"), ("numpy", "numpy (CPU)"),
                            ("cupy", "cupy (NVIDIA GPU)")):  # fmt: skip
            self.backend_box.addItem(text, value)
        self.backend_box.setToolTip(
            "Where the heatmap is computed. Chosen once per process: a change applies on the next start. "
            "--backend and LIQDESK_BACKEND win over this setting."
        )
        self.backend_box.activated.connect(self._on_backend)
        self.backend_info = QtWidgets.QLabel("")
        self.backend_info.setWordWrap(True)
        form.addRow("Compute backend", self.backend_box)
        form.addRow("", self.backend_info)
        v.addLayout(form)

        box = QtWidgets.QGroupBox("Custom tiers (leverage → share of new positions)")
        g = QtWidgets.QVBoxLayout(box)
        self.tiers = QtWidgets.QTableWidget(0, 2)
        self.tiers.setHorizontalHeaderLabels(["Leverage (x)", "Share"])
        self.tiers.horizontalHeader().setStretchLastSection(True)
        self.tiers.verticalHeader().setVisible(False)
        g.addWidget(self.tiers)
        row = QtWidgets.QHBoxLayout()
        add = QtWidgets.QPushButton("Add tier")
        add.clicked.connect(lambda: self._add_tier_row("", ""))
        remove = QtWidgets.QPushButton("Remove tier")
        remove.clicked.connect(lambda: self.tiers.removeRow(max(self.tiers.currentRow(), 0)))
        self.preset_name = QtWidgets.QLineEdit()
        self.preset_name.setPlaceholderText("name, e.g. my-mix")
        save = QtWidgets.QPushButton("Save as preset")
        save.clicked.connect(self.save_preset)
        for w in (add, remove):
            row.addWidget(w)
        row.addStretch(1)
        row.addWidget(self.preset_name)
        row.addWidget(save)
        g.addLayout(row)
        v.addWidget(box, 1)
        return page

    def _add_tier_row(self, lev: str, share: str) -> None:
        r = self.tiers.rowCount()
        self.tiers.insertRow(r)
        self.tiers.setItem(r, 0, QtWidgets.QTableWidgetItem(lev))
        self.tiers.setItem(r, 1, QtWidgets.QTableWidgetItem(share))

    def _fill_tiers(self, preset: str) -> None:
        from liqdesk.feeds.presets import load_presets

        self.tiers.setRowCount(0)
        p = load_presets().get(preset)
        if p is None:
            return
        for lev, w in zip(p.tiers.leverage, p.tiers.weight, strict=True):
            self._add_tier_row(f"{lev:g}", f"{w:.3g}")

    def tiers_mapping(self) -> dict[str, float]:
        out: dict[str, float] = {}
        for r in range(self.tiers.rowCount()):
            lev, share = (self.tiers.item(r, c) for c in (0, 1))
            lt, st = (lev.text().strip() if lev else ""), (share.text().strip() if share else "")
            if not lt and not st:
                continue
            try:
                out[f"{float(lt.rstrip('xX')):g}"] = float(st.rstrip("%")) / (
                    100.0 if st.endswith("%") else 1.0
                )
            except ValueError:
                raise ConfigError(f"row {r + 1}: leverage and share must be numbers") from None
        if not out:
            raise ConfigError("add at least one tier")
        return out

    def save_preset(self) -> None:
        name = self.preset_name.text().strip()
        try:
            path = save_user_preset(name, name, self.tiers_mapping())
        except (ConfigError, OSError) as exc:
            self.say(f"not saved: {exc}", error=True)
            return
        self.ws.reload_presets()
        self.refresh()
        i = self.preset_box.findData(name)
        if i >= 0:
            self.preset_box.setCurrentIndex(i)
        self.ws.apply_model(preset=name)
        self.say(f"preset {name!r} saved in {path} and selected")

    def _on_preset(self, index: int) -> None:
        preset = self.preset_box.itemData(index)
        self._fill_tiers(preset)
        self.ws.apply_model(preset=preset)
        self.say(f"preset {self.preset_box.itemText(index)}: rebuilding the model")

    def _on_backend(self, index: int) -> None:
        value = self.backend_box.itemData(index)
        self.ws.state.set("model", "backend", value)
        self.ws.schedule_save()
        self._show_backend()
        self.say(f"compute backend {value!r} saved: applies on the next start of liqdesk")

    def _show_backend(self) -> None:
        from liqdesk.ui.worker import current_backend

        be = current_backend()
        saved = self.ws.state.get("model", "backend")
        text = f"Active now: {be.name} ({be.device}); a change applies on the next start."
        if be.reason:
            text += f" GPU not used: {be.reason}"
        if be.source in ("argument", "LIQDESK_BACKEND") and saved != be.requested:
            where = "--backend" if be.source == "argument" else "LIQDESK_BACKEND"
            text += f" {where} overrides this setting now."
        self.backend_info.setText(text)

    def _model_changed(self, *_: object) -> None:
        if not self._updating:
            self._model_timer.start()

    def _apply_model(self) -> None:
        st = self.ws.state
        hl = self.half_life.value()
        values = {"taker_floor": round(self.taker_floor.value(), 4), "half_life_h": None if hl <= 0 else hl,
                  "churn": round(self.churn.value(), 5)}  # fmt: skip
        try:
            for k, val in values.items():
                st.set("model", k, val)
            st.set("model", "bins", int(self.bins.value()))
        except ValueError as exc:
            self.say(str(exc), error=True)
            return
        self.ws.apply_model(overrides=model_overrides(st), bins=int(self.bins.value()))
        self.say("model parameters applied: rebuilding")

    # ---------------------------------------------------------------- data
    def _data_tab(self) -> QtWidgets.QWidget:
        page = QtWidgets.QWidget()
        v = QtWidgets.QVBoxLayout(page)
        self.exchange_label = QtWidgets.QLabel("")
        v.addWidget(self.exchange_label)
        self.options = QtWidgets.QPlainTextEdit()
        self.options.setPlaceholderText('{"options": {"defaultType": "swap"}, "aiohttp_proxy": "http://…"}')
        self.options.setToolTip(
            "ccxt constructor options for this exchange (urls, proxies, options), as JSON"
        )
        v.addWidget(self.options, 1)
        row = QtWidgets.QHBoxLayout()
        self.options_state = QtWidgets.QLabel("")
        save = QtWidgets.QPushButton("Validate and save")
        save.clicked.connect(self.save_options)
        row.addWidget(self.options_state, 1)
        row.addWidget(save)
        v.addLayout(row)
        box = QtWidgets.QGroupBox("Local cache")
        f = QtWidgets.QFormLayout(box)
        self.cache_path = QtWidgets.QLabel("")
        self.cache_path.setTextInteractionFlags(QtCore.Qt.TextInteractionFlag.TextSelectableByMouse)
        self.cache_path.setWordWrap(True)
        self.cache_size = QtWidgets.QLabel("")
        clear = QtWidgets.QPushButton("Clear cache…")
        clear.clicked.connect(self.ask_clear_cache)
        folder_row = QtWidgets.QHBoxLayout()
        self.cache_dir = QtWidgets.QLineEdit()
        self.cache_dir.setToolTip(
            "Folder for the cache file; empty: the default data folder (LIQDESK_DATA_DIR)"
        )
        use = QtWidgets.QPushButton("Use folder")
        use.clicked.connect(self.set_cache_dir)
        folder_row.addWidget(self.cache_dir, 1)
        folder_row.addWidget(use)
        f.addRow("Folder", folder_row)
        f.addRow("In use", self.cache_path)
        f.addRow("Size on disk", self.cache_size)
        f.addRow("", clear)
        v.addWidget(box)
        v.addWidget(self._store_box())
        return page

    def _store_box(self) -> QtWidgets.QGroupBox:
        """Settings → Data → Store: the URL of a shared store (PostgreSQL) instead of the local cache."""
        box = QtWidgets.QGroupBox("Store")
        f = QtWidgets.QFormLayout(box)
        row = QtWidgets.QHBoxLayout()
        self.store_url = QtWidgets.QLineEdit()
        self.store_url.setPlaceholderText("postgresql://user@host/db  (empty: the local cache)")
        self.store_url.setToolTip(
            "sqlite:///path or postgresql://user@host/db; --store and LIQDESK_STORE win"
        )
        use = QtWidgets.QPushButton("Use store")
        use.clicked.connect(self.set_store)
        row.addWidget(self.store_url, 1)
        row.addWidget(use)
        f.addRow("URL", row)
        note = QtWidgets.QLabel(
            "The password is never saved here: PostgreSQL takes it from ~/.pgpass (host:port:database:user:password,"
            " mode 600) or PGPASSWORD. Used from the next start."
        )
        note.setWordWrap(True)
        f.addRow("", note)
        return box

    def set_store(self) -> bool:
        """Save the store URL in config.json (without a password: say so when one was left out)."""
        from liqdesk.feeds.store import save_store_url

        try:
            said = save_store_url(self.store_url.text())
        except (ConfigError, OSError) as exc:
            self.say(f"store not saved: {exc}", error=True)
            return False
        self._show_store()
        self.say(f"{said}; used from the next start")
        return True

    def _show_store(self) -> None:
        from liqdesk.feeds.store import saved_store_url

        try:
            self.store_url.setText(saved_store_url() or "")
        except ConfigError as exc:
            self.say(str(exc), error=True)

    def _exchange(self) -> str:
        return self.ws.current_exchange()

    def save_options(self) -> bool:
        from liqdesk.feeds.exchange_config import CONFIG_FILE, load_config_file, parse_options_json
        from liqdesk.feeds.paths import config_dir

        ex = self._exchange()
        try:
            value = parse_options_json(self.options.toPlainText(), where=f"{ex} options")
            config = load_config_file()
        except ConfigError as exc:
            self.options_state.setText(f"✗ {exc}")
            self.say(str(exc), error=True)
            return False
        config.setdefault("exchanges", {})[ex] = value
        try:
            write_json_atomic(config_dir() / CONFIG_FILE, config)
        except OSError as exc:
            self.say(f"not saved: {exc}", error=True)
            return False
        self.options_state.setText("✓ valid JSON, saved")
        self.say(f"{ex} options saved: used by new connections (a new tab, or the next start)")
        return True

    def _cache_file(self) -> Path:
        return self.ws.cache_path()

    def set_cache_dir(self) -> bool:
        """Keep the cache in another folder (used by new tabs and from the next start)."""
        text = self.cache_dir.text().strip()
        if text:
            folder = Path(text).expanduser()
            try:
                folder.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                self.say(f"cannot use {folder}: {exc.strerror or exc}", error=True)
                return False
            if not os.access(folder, os.W_OK):
                self.say(f"cannot use {folder}: not writable", error=True)
                return False
            text = str(folder)
        self.ws.state.set("data", "cache_dir", text)
        self.ws.schedule_save()
        self.say(f"cache folder {text or 'default'}: used by new tabs and from the next start")
        return True

    def _show_cache(self) -> None:
        path = self._cache_file()
        self.cache_path.setText(str(path))
        self.cache_size.setText(
            human_bytes(cache_size(path)) if path.exists() else "empty (no cache file yet)"
        )

    def ask_clear_cache(self) -> QtWidgets.QMessageBox:
        path = self._cache_file()
        box = QtWidgets.QMessageBox(
            QtWidgets.QMessageBox.Icon.Question, "Clear cache",
            f"Delete every cached bar, open-interest row and liquidation in\n{path}?\n\n"
            "History is fetched again from the exchange when needed.",
            QtWidgets.QMessageBox.StandardButton.Yes | QtWidgets.QMessageBox.StandardButton.Cancel, self,
        )  # fmt: skip
        box.setDefaultButton(QtWidgets.QMessageBox.StandardButton.Cancel)
        box.finished.connect(
            lambda r: self.clear_cache() if r == QtWidgets.QMessageBox.StandardButton.Yes else None
        )
        self.confirm = box
        box.open()
        return box

    def clear_cache(self) -> None:
        """Empty the cache off the UI thread (DELETE + VACUUM can take seconds on a big tape)."""
        path = self._cache_file()
        self.say("clearing the cache…")

        def work() -> str:
            try:
                clear_cache_file(path)
            except (OSError, LiqdeskError) as exc:
                return str(exc) or type(exc).__name__
            return ""

        self._inbox.deliver(self._disk.submit(work), self._on_cache_cleared)

    def _on_cache_cleared(self, error: str) -> None:
        if error:
            self.say(f"cache not cleared: {error}", error=True)
            return
        self._show_cache()
        self.say("cache cleared")

    # ---------------------------------------------------------------- appearance
    def _appearance_tab(self) -> QtWidgets.QWidget:
        page = QtWidgets.QWidget()
        f = QtWidgets.QFormLayout(page)
        self.theme_dark = QtWidgets.QRadioButton("Dark")
        self.theme_light = QtWidgets.QRadioButton("Light")
        row = QtWidgets.QHBoxLayout()
        row.addWidget(self.theme_dark)
        row.addWidget(self.theme_light)
        row.addStretch(1)
        self.theme_dark.toggled.connect(lambda on: self._theme_chosen("dark", on))
        self.theme_light.toggled.connect(lambda on: self._theme_chosen("light", on))
        f.addRow("Theme", row)
        self.utc = QtWidgets.QCheckBox("Time axis and logs in UTC (off: local time)")
        self.utc.toggled.connect(self._utc_chosen)
        f.addRow("Time", self.utc)
        note = QtWidgets.QLabel(
            "The heatmap keeps its colour map in both themes; pick the map in the toolbar."
        )
        note.setWordWrap(True)
        f.addRow("", note)
        return page

    def _theme_chosen(self, name: str, on: bool) -> None:
        if on and not self._updating:
            self.ws.set_theme(name)

    def _utc_chosen(self, on: bool) -> None:
        if not self._updating:
            self.ws.set_utc(on)

    # ---------------------------------------------------------------- common
    def refresh(self) -> None:
        """Show the current values (called each time the dialog opens and after a preset is saved)."""
        from liqdesk.ui import data as data_mod

        self._updating = True
        try:
            st = self.ws.state
            cur = self.ws.current_settings()
            self.preset_box.clear()
            with contextlib.suppress(Exception):
                for value, text in data_mod.preset_names():
                    self.preset_box.addItem(text, value)
            self.preset_box.setCurrentIndex(max(self.preset_box.findData(cur.preset), 0))
            self._fill_tiers(cur.preset)
            self.taker_floor.setValue(float(st.get("model", "taker_floor")))
            self.half_life.setValue(float(st.get("model", "half_life_h") or 0.0))
            self.churn.setValue(float(st.get("model", "churn")))
            self.bins.setValue(int(st.get("model", "bins")))
            self.backend_box.setCurrentIndex(max(self.backend_box.findData(st.get("model", "backend")), 0))
            self._show_backend()
            from liqdesk.feeds.exchange_config import load_config_file

            ex = self._exchange()
            self.exchange_label.setText(f"ccxt options for <b>{ex}</b> (config.json; --ccxt-options wins):")
            try:
                opts = load_config_file().get("exchanges", {}).get(ex, {})
                self.options.setPlainText(json.dumps(opts, indent=2) if opts else "")
                self.options_state.setText("")
            except ConfigError as exc:
                self.options_state.setText(f"✗ {exc}")
            self.cache_dir.setText(st.get("data", "cache_dir"))
            self.cache_dir.setPlaceholderText(str(default_cache_path().parent))
            self._show_cache()
            self._show_store()
            from liqdesk.ui import theme

            (self.theme_dark if theme.current_theme() == "dark" else self.theme_light).setChecked(True)
            self.utc.setChecked(cur.utc)
        finally:
            self._updating = False

    def say(self, text: str, error: bool = False) -> None:
        self.message.setText(text)
        self.message.setStyleSheet("color: #ef5350;" if error else "")


class ShortcutsDialog(QtWidgets.QDialog):
    """Help → Keyboard shortcuts: a table built from the menu bar's QActions (it cannot drift) and the chart keys."""

    def __init__(self, rows: list[tuple[str, str, str]], parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Keyboard shortcuts — liqdesk")
        self.resize(620, 640)
        v = QtWidgets.QVBoxLayout(self)
        rows = [r for r in rows if r[2]]
        self.table = QtWidgets.QTableWidget(len(rows), 3)
        self.table.setHorizontalHeaderLabels(["Shortcut", "Action", "Menu"])
        self.table.verticalHeader().setVisible(False)
        self.table.setEditTriggers(QtWidgets.QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setAlternatingRowColors(True)
        for r, (menu, action, keys) in enumerate(rows):
            for c, text in enumerate((keys, action, menu)):
                self.table.setItem(r, c, QtWidgets.QTableWidgetItem(text))
        self.table.verticalHeader().setDefaultSectionSize(22)
        self.table.resizeColumnsToContents()
        self.table.horizontalHeader().setSectionResizeMode(1, QtWidgets.QHeaderView.ResizeMode.Stretch)
        v.addWidget(self.table)
        buttons = QtWidgets.QDialogButtonBox(QtWidgets.QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.close)
        v.addWidget(buttons)

    def shortcuts(self) -> list[str]:
        items = (self.table.item(r, 0) for r in range(self.table.rowCount()))
        return [item.text() if item is not None else "" for item in items]


ABOUT_HTML = """
<h2>liqdesk {version}</h2>
<p>A liquidation-heatmap terminal for crypto perpetual futures.</p>
<h3>What the heatmap is</h3>
<p><b>An estimate, not exchange data.</b> No exchange publishes where open positions would be liquidated.
liqdesk estimates it: each bar's new positions are placed at the bar's VWAP and split across leverage
tiers; a position's liquidation price follows from its entry, leverage and the exchange's maintenance-margin
brackets; levels are removed when price trades through them (swept) or when open interest falls.</p>
<ul>
<li><b>Open-interest model</b>: where open-interest history exists, new positions = the rise in open interest,
and closes remove levels pro rata. <b>Volume model</b> otherwise (or in gaps): new positions = churn × traded
notional, decaying with a half-life because closes cannot be seen.</li>
<li><b>Long/short split</b> comes from the taker buy share of volume, damped by the taker floor.</li>
<li><b>Leverage presets</b> (Coinglass-like, all leverage, high only, or your own in Settings → Model) are
assumptions about who trades with what leverage; the map changes with them.</li>
<li><b>Brackets</b>: Binance BTCUSDT maintenance-margin brackets at a retail position size, bundled with the app.</li>
</ul>
<p>Diamonds marked “real liquidation” are actual exchange events (the exchange's liquidation stream); circles marked
“estimated sweep” are the model's.</p>
<h3>Data sources</h3>
<p>Live: the exchange's public REST and websocket APIs through ccxt (Binance USD-M by default; Bybit, OKX),
cached locally in SQLite. Offline: bundled samples of real Binance data published by others; where each file
comes from, its licence and checksums are in <code>resources/sample/PROVENANCE.md</code>.</p>
<p>Not financial advice. Check levels against your own exchange's data before acting on them.</p>
"""


class AboutDialog(QtWidgets.QDialog):
    def __init__(self, parent: QtWidgets.QWidget | None = None) -> None:
        from liqdesk import __version__
        from liqdesk.ui.icons import app_icon

        super().__init__(parent)
        self.setWindowTitle("About liqdesk")
        self.resize(600, 620)
        v = QtWidgets.QVBoxLayout(self)
        top = QtWidgets.QHBoxLayout()
        icon = QtWidgets.QLabel()
        icon.setPixmap(app_icon().pixmap(64, 64))
        top.addWidget(icon, 0, QtCore.Qt.AlignmentFlag.AlignTop)
        self.text = QtWidgets.QTextBrowser()
        self.text.setOpenExternalLinks(True)
        self.text.setHtml(ABOUT_HTML.format(version=__version__))
        top.addWidget(self.text, 1)
        v.addLayout(top, 1)
        buttons = QtWidgets.QDialogButtonBox(QtWidgets.QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.close)
        v.addWidget(buttons)

    def plain_text(self) -> str:
        return self.text.toPlainText()
