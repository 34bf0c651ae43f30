"""Run a scenario on a real, small file system that can fill up (not collected: no test_ prefix).

A fresh tmpfs is mounted in a private mount namespace (``unshare -m`` as root, ``unshare -rm`` as a user where
unprivileged user namespaces are allowed), so the mount exists only for the child process and disappears with
it. Where neither works the test is skipped with the reason.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
_SKIP = 77


def fill(folder: Path | str) -> Path:
    """Write a filler file until the file system is full; returns it (delete it to free the space)."""
    filler = Path(folder) / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
    try:
        for size in (1 << 16, 4096, 1):  # big blocks, then the last bytes
            try:
                while os.write(fd, b"\0" * size):
                    pass
            except OSError:
                pass
    finally:
        os.close(fd)
    return filler


def run_on_small_fs(code: str, tmp_path: Path, *, size_kb: int = 1024, timeout: float = 180) -> Any:
    """Run ``code`` (Python) in a child whose ``FS`` variable names a folder on a fresh tmpfs of ``size_kb``;
    returns the JSON value the child prints on its last line of stdout."""
    if not sys.platform.startswith("linux") or shutil.which("unshare") is None:
        pytest.skip("needs Linux with unshare(1) to mount a small tmpfs")
    mnt = tmp_path / "smallfs"
    mnt.mkdir()
    prefix = ["unshare", "-m", "--propagation", "private"] if os.geteuid() == 0 else ["unshare", "-r", "-m"]
    script = f'mount -t tmpfs -o size={size_kb}k liqdesk-test "$1" || exit {_SKIP}; shift; exec "$@"'
    env = {**os.environ, "FS": str(mnt), "PYTHONPATH": str(ROOT), "QT_QPA_PLATFORM": "offscreen"}
    cmd = [*prefix, "sh", "-c", script, "sh", str(mnt), sys.executable, "-c", code]
    try:
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env, cwd=ROOT)
    except OSError as exc:
        pytest.skip(f"cannot start unshare: {exc}")
    if r.returncode == _SKIP or (r.returncode != 0 and r.stderr.startswith("unshare")):
        pytest.skip(
            f"cannot mount a small tmpfs here (needs root or user namespaces): {r.stderr.strip()[:200]}"
        )
    assert r.returncode == 0, f"scenario failed:\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}"
    return json.loads(r.stdout.strip().splitlines()[-1])
