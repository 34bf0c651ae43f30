"""The Qt layer: chart window, chart items, background worker.

pyqtgraph picks PyQt6 before PySide6 when both are installed, and two Qt builds in one process
crash, so every ui module imports PySide6 through this package first.
"""

from __future__ import annotations

import os

os.environ.setdefault("PYQTGRAPH_QT_LIB", "PySide6")

import PySide6  # noqa: E402, F401  (must precede the first pyqtgraph import)
