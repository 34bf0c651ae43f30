"""The application icon and id, from resources/icons (PNG sizes rendered by packaging/make_icons.py).

The PNGs are used rather than the SVG so the icon does not depend on Qt's SVG icon-engine plugin,
and each size is the one checked by eye. Found through liqdesk.feeds.resources, like every other
bundled file, so a checkout, a wheel and the PyInstaller bundle all work.
"""

from __future__ import annotations

import logging
from pathlib import Path

from PySide6 import QtCore, QtGui

from liqdesk.errors import DataError
from liqdesk.feeds.resources import resources_dir

log = logging.getLogger(__name__)

# Reverse-DNS id: the .desktop file's name (packaging/io.liqdesk.Liqdesk.desktop), the icon theme
# name, the macOS bundle id, and what QGuiApplication.setDesktopFileName() should be given so
# Wayland compositors match the window to the .desktop file.
APP_ID = "io.liqdesk.Liqdesk"
ICON_SIZES = (16, 32, 48, 64, 128, 256, 512)


def icon_file_name(size: int) -> str:
    return f"liqdesk-{size}.png"


def icon_files() -> list[Path]:
    """The icon PNGs that exist, smallest first; empty when the resources cannot be found."""
    try:
        folder = resources_dir() / "icons"
    except DataError as exc:
        log.warning("no application icon: %s", exc)
        return []
    return [p for p in (folder / icon_file_name(s) for s in ICON_SIZES) if p.is_file()]


def app_icon() -> QtGui.QIcon:
    """All sizes in one QIcon, so Qt picks the nearest for title bar, task bar and switcher.

    A missing icon is not worth failing over: the result is then an empty QIcon (Qt's default).
    """
    icon = QtGui.QIcon()
    for path in icon_files():
        size = int(path.stem.rsplit("-", 1)[1])
        icon.addFile(str(path), QtCore.QSize(size, size))
    return icon
