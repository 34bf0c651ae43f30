"""Regenerate the app icon's PNG sizes (and the Windows .ico / macOS .icns) from resources/icons/liqdesk.svg.

    .venv/bin/python packaging/make_icons.py

Rendering uses Qt's own SVG renderer offscreen, so no display and no extra tools are needed; the
.ico and .icns files hold PNG images (both formats allow that: Windows Vista+, macOS 10.7+), so they
are written here by hand instead of needing Pillow or macOS's iconutil.
"""

from __future__ import annotations

import os
import struct
import sys
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from liqdesk.ui.icons import ICON_SIZES, icon_file_name  # noqa: E402  (names shared with the app)

ICONS = Path(__file__).resolve().parents[1] / "resources" / "icons"
SVG = ICONS / "liqdesk.svg"
ICO_SIZES = (16, 32, 48, 64, 128, 256)  # 256 is the largest an .ico entry can describe
# icns PNG-capable types (size in pixels); the @2x types reuse the next size up.
ICNS_TYPES = (
    (b"icp4", 16), (b"icp5", 32), (b"ic11", 32), (b"ic12", 64), (b"ic07", 128),
    (b"ic08", 256), (b"ic13", 256), (b"ic09", 512), (b"ic14", 512),
)  # fmt: skip


def render_png(svg: Path, size: int) -> bytes:
    from PySide6 import QtCore, QtGui, QtSvg

    renderer = QtSvg.QSvgRenderer(str(svg))
    if not renderer.isValid():
        raise SystemExit(f"make_icons: {svg} is not a valid SVG for Qt")
    image = QtGui.QImage(size, size, QtGui.QImage.Format.Format_ARGB32_Premultiplied)
    image.fill(QtCore.Qt.GlobalColor.transparent)
    painter = QtGui.QPainter(image)
    painter.setRenderHint(QtGui.QPainter.RenderHint.Antialiasing)
    painter.setRenderHint(QtGui.QPainter.RenderHint.SmoothPixmapTransform)
    renderer.render(painter, QtCore.QRectF(0, 0, size, size))
    painter.end()
    data = QtCore.QByteArray()
    buf = QtCore.QBuffer(data)
    buf.open(QtCore.QIODevice.OpenModeFlag.WriteOnly)
    if not image.save(buf, "PNG"):
        raise SystemExit(f"make_icons: could not encode {size}px PNG")
    buf.close()
    return bytes(data.data())


def ico_bytes(pngs: dict[int, bytes]) -> bytes:
    """ICONDIR + one ICONDIRENTRY per size, each pointing at a PNG image."""
    sizes = [s for s in ICO_SIZES if s in pngs]
    head = struct.pack("<HHH", 0, 1, len(sizes))
    offset = len(head) + 16 * len(sizes)
    entries, blobs = b"", b""
    for s in sizes:
        png = pngs[s]
        dim = 0 if s >= 256 else s  # 0 means 256 in an ICONDIRENTRY
        entries += struct.pack("<BBBBHHII", dim, dim, 0, 0, 1, 32, len(png), offset)
        blobs += png
        offset += len(png)
    return head + entries + blobs


def icns_bytes(pngs: dict[int, bytes]) -> bytes:
    body = b"".join(kind + struct.pack(">I", 8 + len(pngs[s])) + pngs[s] for kind, s in ICNS_TYPES)
    return b"icns" + struct.pack(">I", 8 + len(body)) + body


def main() -> int:
    from PySide6 import QtGui

    _app = QtGui.QGuiApplication.instance() or QtGui.QGuiApplication(sys.argv[:1])
    pngs = {size: render_png(SVG, size) for size in ICON_SIZES}
    for size, png in pngs.items():
        (ICONS / icon_file_name(size)).write_bytes(png)
    (ICONS / "liqdesk.ico").write_bytes(ico_bytes(pngs))
    (ICONS / "liqdesk.icns").write_bytes(icns_bytes(pngs))
    print(f"make_icons: wrote {len(pngs)} PNGs, liqdesk.ico and liqdesk.icns to {ICONS}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
