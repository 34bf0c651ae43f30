"""The quick parts of the desktop packaging (the full bundle build is packaging/build.sh, not CI).

The spec is run with stand-ins for PyInstaller's classes, so what it would bundle is checked
without PyInstaller installed; the bundle's resource lookup is checked by laying the spec's data
entries out under a fake sys._MEIPASS.
"""

from __future__ import annotations

import configparser
import os
import re
import shutil
import struct
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path
from types import SimpleNamespace

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import liqdesk  # noqa: E402
from liqdesk.feeds import resources  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
PACKAGING = ROOT / "packaging"
SPEC = PACKAGING / "liqdesk.spec"
DESKTOP_FILES = sorted(PACKAGING.glob("*.desktop"))
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


class _Recorder:
    """Stand-in for one PyInstaller build class: remembers its arguments."""

    calls: dict[str, list[SimpleNamespace]] = {}

    def __init__(self, *args: object, **kwargs: object) -> None:
        self.args, self.kwargs = args, kwargs
        self.calls.setdefault(type(self).__name__, []).append(SimpleNamespace(args=args, kwargs=kwargs))


class Analysis(_Recorder):
    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        self.pure, self.scripts, self.binaries, self.datas = [], [], [], []


class PYZ(_Recorder): ...


class EXE(_Recorder): ...


class COLLECT(_Recorder): ...


class BUNDLE(_Recorder): ...


@pytest.fixture(scope="session")
def qapp_args() -> list[str]:
    # Same as tests/ui/conftest.py: whichever test makes the shared QApplication, it is the same one.
    return ["liqdesk-tests"]


@pytest.fixture(scope="module")
def spec(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    _Recorder.calls = {}
    namespace: dict[str, object] = {
        "SPECPATH": str(PACKAGING),
        "workpath": str(tmp_path_factory.mktemp("pyi-work")),
        "Analysis": Analysis,
        "PYZ": PYZ,
        "EXE": EXE,
        "COLLECT": COLLECT,
        "BUNDLE": BUNDLE,
    }
    exec(compile(SPEC.read_text(), str(SPEC), "exec"), namespace)
    namespace["_calls"] = dict(_Recorder.calls)
    return namespace


def analysis_kwargs(spec: dict[str, object]) -> dict[str, object]:
    (call,) = spec["_calls"]["Analysis"]  # type: ignore[index]
    return call.kwargs


# --- the spec ----------------------------------------------------------------------------------


def test_spec_version_is_the_package_version(spec: dict[str, object]) -> None:
    assert spec["VERSION"] == liqdesk.__version__


def test_spec_builds_one_folder_bundle(spec: dict[str, object]) -> None:
    calls = spec["_calls"]
    (exe,) = calls["EXE"]  # type: ignore[index]
    (coll,) = calls["COLLECT"]  # type: ignore[index]
    assert exe.kwargs["exclude_binaries"] is True  # one-folder: binaries go to COLLECT, not the exe
    assert exe.kwargs["name"] == coll.kwargs["name"] == "liqdesk"
    (analysis,) = calls["Analysis"]  # type: ignore[index]
    (script,) = analysis.args[0]
    assert Path(script).is_file()
    for hook in analysis_kwargs(spec)["runtime_hooks"]:  # type: ignore[union-attr]
        assert Path(hook).is_file()


def test_spec_bundles_resources_except_screenshots(spec: dict[str, object]) -> None:
    datas = {dest: Path(src) for src, dest in analysis_kwargs(spec)["datas"]}  # type: ignore[union-attr]
    for name in ("model", "sample", "icons"):
        assert datas[f"resources/{name}"] == ROOT / "resources" / name
    assert "resources/screenshots" not in datas
    assert all(src.is_dir() for src in datas.values())


def test_spec_finds_every_liqdesk_module(spec: dict[str, object]) -> None:
    # The CLI imports its sub-commands by name, so they must be listed as hidden imports.
    from liqdesk.app import cli

    hidden = set(analysis_kwargs(spec)["hiddenimports"])  # type: ignore[arg-type]
    for name in cli.COMMAND_MODULES:
        if (ROOT / "liqdesk" / "app" / "commands" / f"{name}.py").exists():
            assert f"liqdesk.app.commands.{name}" in hidden
    assert {"liqdesk", "liqdesk.app.desktop", "liqdesk.core.grid", "liqdesk.ui.icons"} <= hidden
    assert not any("__pycache__" in h or h.endswith("__init__") for h in hidden)


def test_spec_ships_numba_sources_as_files(spec: dict[str, object]) -> None:
    # numba's cache locators need the jitted functions' source files on disk (see the runtime hook).
    assert analysis_kwargs(spec)["module_collection_mode"] == {"liqdesk.core": "py"}


def test_spec_excludes_unused_qt_modules(spec: dict[str, object]) -> None:
    excludes = set(analysis_kwargs(spec)["excludes"])  # type: ignore[arg-type]
    heavy = ("QtWebEngineCore", "QtWebEngineWidgets", "Qt3DCore", "Qt3DRender", "QtQml", "QtQuick", "QtPdf")
    assert {f"PySide6.{m}" for m in heavy} <= excludes
    used = spec["QT_USED"]
    assert {"QtCore", "QtGui", "QtWidgets"} <= used  # type: ignore[operator]
    assert not {f"PySide6.{m}" for m in used} & excludes  # type: ignore[union-attr]
    # A Qt module new to the installed PySide6 must be decided on, not bundled by accident.
    import PySide6

    installed = {p.name.split(".")[0] for p in Path(PySide6.__file__).parent.glob("Qt*.pyi")}
    undecided = {m for m in installed if m not in used and f"PySide6.{m}" not in excludes}  # type: ignore[operator]
    assert not undecided, f"add to QT_ALL in {SPEC.name}: {sorted(undecided)}"


def test_qt_modules_the_ui_imports_are_bundled(spec: dict[str, object]) -> None:
    import liqdesk.ui.icons  # noqa: F401
    import liqdesk.ui.window  # noqa: F401

    loaded = {m.split(".")[1] for m in sys.modules if m.startswith("PySide6.Qt")}
    # pyqtgraph (and pytest-qt) try QtTest but do without it: excluded on purpose.
    missing = loaded - spec["QT_USED"] - {"QtTest"}  # type: ignore[operator]
    assert not missing, f"the UI imports {sorted(missing)}: add to QT_USED in {SPEC.name}"


@pytest.mark.parametrize(
    ("dest", "kept"),
    [
        ("PySide6/Qt/translations/qtbase_de.qm", False),
        ("PySide6/Qt/plugins/sqldrivers/libqsqlite.so", False),
        ("PySide6/Qt/plugins/qmltooling/libqmldbg_debugger.so", False),
        ("PySide6/Qt/plugins/imageformats/libqpdf.so", False),
        ("PySide6/Qt/plugins/imageformats/qpdf.dll", False),
        ("PySide6/Qt/plugins/imageformats/qpdfd.dll", False),
        ("PySide6/Qt/plugins/imageformats/libqgif.dylib", False),
        ("PySide6/Qt/plugins/imageformats/libqsvg.so", True),
        ("PySide6/Qt/plugins/imageformats/libqico.so", True),
        ("PySide6/Qt/plugins/platformthemes/libqgtk3.so", False),
        ("PySide6/Qt/plugins/platformthemes/libqxdgdesktopportal.so", True),
        ("PySide6/Qt/lib/libQt6Gui.so.6", True),
        ("PySide6/QtWidgets.abi3.so", True),
        ("numpy/_core/_multiarray_umath.cpython-311-x86_64-linux-gnu.so", True),
    ],
)
def test_qt_file_filter(spec: dict[str, object], dest: str, kept: bool) -> None:
    assert spec["keep_qt_file"](dest) is kept  # type: ignore[operator]


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux platform plugins")
def test_qt_linux_platform_plugins(spec: dict[str, object]) -> None:
    keep = spec["keep_qt_file"]
    for name in ("libqxcb.so", "libqwayland.so", "libqoffscreen.so"):
        assert keep(f"PySide6/Qt/plugins/platforms/{name}")  # type: ignore[operator]
    for name in ("libqvnc.so", "libqlinuxfb.so", "libqeglfs.so"):
        assert not keep(f"PySide6/Qt/plugins/platforms/{name}")  # type: ignore[operator]


def test_strip_leaves_auditwheel_libraries_alone(spec: dict[str, object], tmp_path: Path) -> None:
    vendored = tmp_path / "numpy.libs" / "libopenblas.so"
    own = tmp_path / "llvmlite" / "libllvmlite.so"
    text = tmp_path / "llvmlite" / "notes.txt"
    for path, head in ((vendored, b"\x7fELF"), (own, b"\x7fELF"), (text, b"text")):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(head + b"\0" * 60)
    strippable = spec["strippable"]
    assert not strippable(str(vendored))  # type: ignore[operator]
    assert strippable(str(own))  # type: ignore[operator]
    assert not strippable(str(text))  # type: ignore[operator]


# --- resources, found the way the bundle finds them ---------------------------------------------


@pytest.fixture
def fake_bundle(spec: dict[str, object], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """sys._MEIPASS pointing at a folder laid out from the spec's data entries (symlinked)."""
    for src, dest in analysis_kwargs(spec)["datas"]:  # type: ignore[union-attr]
        target = tmp_path / dest
        target.parent.mkdir(parents=True, exist_ok=True)
        target.symlink_to(src, target_is_directory=True)
    monkeypatch.delenv("LIQDESK_RESOURCES", raising=False)
    monkeypatch.setattr(sys, "_MEIPASS", str(tmp_path), raising=False)
    return tmp_path


def test_bundle_layout_is_found_by_the_app_lookup(fake_bundle: Path) -> None:
    assert resources.resources_dir() == fake_bundle / "resources"
    checkout = ROOT / "resources"
    for path in sorted(checkout.rglob("*")):
        rel = path.relative_to(checkout)
        if path.is_file() and rel.parts[0] != "screenshots":
            assert resources.resource_path(*rel.parts) == fake_bundle / "resources" / rel


def test_bundle_layout_loads_presets_and_icon(fake_bundle: Path, qapp: object) -> None:
    from liqdesk.feeds import presets
    from liqdesk.ui import icons

    presets._bundled_presets.cache_clear()
    try:
        assert presets.load_presets()
    finally:
        presets._bundled_presets.cache_clear()
    files = icons.icon_files()
    assert [p.parent for p in files] == [fake_bundle / "resources" / "icons"] * len(icons.ICON_SIZES)
    icon = icons.app_icon()
    assert not icon.isNull()
    assert {s.width() for s in icon.availableSizes()} == set(icons.ICON_SIZES)


def test_missing_resources_give_an_empty_icon(monkeypatch: pytest.MonkeyPatch, qapp: object) -> None:
    from liqdesk.errors import DataError
    from liqdesk.ui import icons

    def nowhere() -> Path:
        raise DataError("cannot find liqdesk's resources folder")

    monkeypatch.setattr(icons, "resources_dir", nowhere)
    assert icons.app_icon().isNull()


# --- .desktop file and icons -------------------------------------------------------------------


def test_one_desktop_file_named_by_reverse_dns_id(spec: dict[str, object]) -> None:
    from liqdesk.ui.icons import APP_ID

    assert [p.name for p in DESKTOP_FILES] == [f"{APP_ID}.desktop"]
    assert spec["APP_ID"] == APP_ID
    # Reverse DNS as the Desktop Entry spec asks: at least three dot-separated elements.
    assert re.fullmatch(r"[A-Za-z_][\w-]*(\.[A-Za-z_][\w-]*){2,}", APP_ID)


def test_desktop_file_has_the_required_keys() -> None:
    from liqdesk.ui.icons import APP_ID

    parser = configparser.ConfigParser(interpolation=None, strict=True)
    parser.optionxform = str  # type: ignore[assignment,method-assign]  (keys are case-sensitive)
    parser.read(DESKTOP_FILES[0], encoding="utf-8")
    entry = parser["Desktop Entry"]
    assert entry["Type"] == "Application"
    assert entry["Name"]
    assert entry["Exec"].split()[0] == "liqdesk"
    assert entry["Icon"] == APP_ID
    assert entry["Terminal"] == "false"
    categories = entry["Categories"]
    assert categories.endswith(";")
    main_categories = {"AudioVideo", "Audio", "Video", "Development", "Education", "Game", "Graphics"}
    main_categories |= {"Network", "Office", "Science", "Settings", "System", "Utility"}
    assert main_categories & set(categories.split(";"))


def png_size_of(data: bytes) -> tuple[int, int]:
    assert data[:8] == PNG_MAGIC, "not a PNG"
    assert data[12:16] == b"IHDR"
    return struct.unpack(">II", data[16:24])


def png_size(path: Path) -> tuple[int, int]:
    return png_size_of(path.read_bytes())


def test_every_icon_size_is_a_png_of_that_size() -> None:
    from liqdesk.ui.icons import ICON_SIZES, icon_file_name

    folder = ROOT / "resources" / "icons"
    assert ICON_SIZES == (16, 32, 48, 64, 128, 256, 512)
    for size in ICON_SIZES:
        assert png_size(folder / icon_file_name(size)) == (size, size)
    svg = ET.parse(folder / "liqdesk.svg").getroot()
    assert svg.tag == "{http://www.w3.org/2000/svg}svg"
    assert svg.get("viewBox") == "0 0 64 64"


def test_windows_and_macos_icon_containers() -> None:
    folder = ROOT / "resources" / "icons"
    ico = (folder / "liqdesk.ico").read_bytes()
    reserved, kind, count = struct.unpack("<HHH", ico[:6])
    assert (reserved, kind) == (0, 1) and count >= 6
    for i in range(count):
        w, h, _, _, _, _, length, offset = struct.unpack("<BBBBHHII", ico[6 + 16 * i : 22 + 16 * i])
        assert offset + length <= len(ico)
        assert png_size_of(ico[offset : offset + length]) == ((w or 256), (h or 256))
    icns = (folder / "liqdesk.icns").read_bytes()
    assert icns[:4] == b"icns" and struct.unpack(">I", icns[4:8])[0] == len(icns)
    pos, kinds = 8, set()
    while pos < len(icns):
        kind_, length = icns[pos : pos + 4], struct.unpack(">I", icns[pos + 4 : pos + 8])[0]
        assert icns[pos + 8 : pos + 16] == PNG_MAGIC
        kinds.add(kind_)
        pos += length
    assert pos == len(icns) and {b"icp4", b"ic07", b"ic08", b"ic09"} <= kinds


# --- runtime hook and build script -------------------------------------------------------------


def run_hook(bundle: Path, env: dict[str, str]) -> str:
    """Run the numba runtime hook in a fresh interpreter 'frozen' at `bundle`; NUMBA_CACHE_DIR after."""
    hook = PACKAGING / "rthooks" / "pyi_rth_liqdesk_numba.py"
    code = (
        "import runpy, sys, os; sys._MEIPASS = sys.argv[1]; runpy.run_path(sys.argv[2]); "
        "print(os.environ.get('NUMBA_CACHE_DIR', ''))"
    )
    base = {k: v for k, v in os.environ.items() if k != "NUMBA_CACHE_DIR"}
    out = subprocess.run(
        [sys.executable, "-c", code, str(bundle), str(hook)],
        env=base | env,
        capture_output=True,
        text=True,
        check=True,
    )
    return out.stdout.strip()


def test_numba_cache_hook_uses_a_per_build_user_folder(tmp_path: Path) -> None:
    bundle = tmp_path / "bundle"
    core = bundle / "liqdesk" / "core"
    core.mkdir(parents=True)
    (core / "grid.py").write_text("x = 1\n")
    cache = tmp_path / "xdg-cache"
    first = run_hook(bundle, {"XDG_CACHE_HOME": str(cache)})
    if sys.platform.startswith("linux"):
        assert Path(first).parent == cache / "liqdesk" / "numba"
    assert Path(first).is_dir()
    assert run_hook(bundle, {"XDG_CACHE_HOME": str(cache)}) == first  # stable for one build
    (core / "grid.py").write_text("x = 2\n")
    assert run_hook(bundle, {"XDG_CACHE_HOME": str(cache)}) != first  # new sources, new folder
    assert run_hook(bundle, {"NUMBA_CACHE_DIR": str(tmp_path / "mine")}) == str(tmp_path / "mine")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="XDG cache folder")
def test_numba_cache_hook_falls_back_to_temp(tmp_path: Path) -> None:
    bundle = tmp_path / "bundle"
    (bundle / "liqdesk" / "core").mkdir(parents=True)
    blocked = tmp_path / "not-a-folder"
    blocked.write_text("")  # a file where the cache folder's parent should be: never writable
    (tmp_path / "tmp").mkdir()
    got = run_hook(bundle, {"XDG_CACHE_HOME": str(blocked), "TMPDIR": str(tmp_path / "tmp")})
    assert got.startswith(str(tmp_path / "tmp"))


@pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")
def test_build_script_is_valid_bash() -> None:
    script = PACKAGING / "build.sh"
    assert os.access(script, os.X_OK)
    subprocess.run(["bash", "-n", str(script)], check=True)
    text = script.read_text()
    assert "liqdesk.spec" in text and "--version" in text and "snapshot" in text


def test_build_outputs_stay_untracked() -> None:
    ignored = (ROOT / ".gitignore").read_text().split()
    assert "build/" in ignored and "dist/" in ignored
