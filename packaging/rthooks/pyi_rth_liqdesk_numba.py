"""PyInstaller runtime hook (runs before liqdesk is imported): give numba's `cache=True` a cache folder.

Inside an installed bundle the sources' folder is usually read-only, and a frozen program's cache
stamp is the executable, which need not change between builds. So compiled kernels go to a per-user
cache folder named after a digest of the bundled numba modules: a build never loads machine code
compiled from other sources. If that folder cannot be written, a temporary one is used, as
numba refuses to import a `cache=True` module when no cache folder is writable. A NUMBA_CACHE_DIR set
by the user wins.
"""

import hashlib
import os
import sys
import tempfile
from pathlib import Path


def _user_cache_root() -> Path:
    if sys.platform == "win32":
        return Path(os.environ.get("LOCALAPPDATA") or Path.home() / "AppData" / "Local") / "liqdesk" / "Cache"
    if sys.platform == "darwin":
        return Path.home() / "Library" / "Caches" / "liqdesk"
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "liqdesk"


def _build_tag(bundle: Path) -> str:
    # The numba modules are shipped as .py files (see the spec): hash them, in a stable order.
    digest = hashlib.sha256()
    for path in sorted((bundle / "liqdesk" / "core").glob("*.py")):
        digest.update(path.name.encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:12]


def _writable(folder: Path) -> bool:
    try:
        folder.mkdir(parents=True, exist_ok=True)
        tempfile.TemporaryFile(dir=folder).close()
        return True
    except OSError:
        return False


def _choose_cache_dir() -> None:
    if os.environ.get("NUMBA_CACHE_DIR"):
        return
    bundle = Path(getattr(sys, "_MEIPASS", Path(sys.executable).parent))
    try:
        tag = _build_tag(bundle)
    except OSError:
        tag = "unknown"
    name = Path("numba") / tag
    user = os.getuid() if hasattr(os, "getuid") else os.environ.get("USERNAME", "user")
    for root in (_user_cache_root(), Path(tempfile.gettempdir()) / f"liqdesk-{user}"):
        if _writable(root / name):
            os.environ["NUMBA_CACHE_DIR"] = str(root / name)
            return


_choose_cache_dir()
