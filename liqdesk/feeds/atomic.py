"""Atomic file writes: the content goes to a hidden temp file beside the target (``.NAME.XXXXXXXX.part``),
is flushed to disk, and only then renamed over the target.

A reader, a crash, a full disk, Ctrl-C or SIGTERM therefore sees the previous file or the complete new one,
never part of one: a failed write removes its temp file and leaves the previous file as it was. (The command
line turns SIGTERM into an exception so the temp file is removed then too; only SIGKILL can leave a stray
``.part`` file, which never carries the target's name.)

``AtomicWrite`` is the one way liqdesk writes a file the user keeps: exports, screenshots, the state file,
presets, ccxt options. Writers that want a file object use ``AtomicWrite.open``; writers that want a file name
(Qt's image writer) write ``AtomicWrite.tmp``.
"""

from __future__ import annotations

import json
import os
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from liqdesk.errors import ConfigError, DataError

PART_SUFFIX = ".part"


@dataclass(frozen=True)
class WriteResult:
    """What a completed write did: whether it replaced an existing file, and which folders it created."""

    path: Path
    replaced: bool
    created: tuple[Path, ...] = ()

    def note(self) -> str:
        """'' or e.g. 'replaced the previous file; created folder /tmp/out' (for the user)."""
        parts = []
        if self.replaced:
            parts.append("replaced the previous file")
        if self.created:
            parts.append(f"created folder {self.created[0]}")
        return "; ".join(parts)


def same_file(a: Path | str, b: Path | str) -> bool:
    """True when both names reach one file (symbolic and hard links included)."""
    pa, pb = Path(a).expanduser(), Path(b).expanduser()
    try:
        return os.path.samefile(pa, pb)
    except OSError:
        return pa.resolve() == pb.resolve()


class AtomicWrite:
    """``with AtomicWrite(path) as w: ...`` — write ``w.open("wb")`` (or the file named ``w.tmp``); leaving the
    block without an exception makes it ``path`` (``w.result`` says what happened), an exception removes it.

    ``inputs``: files this run reads; writing over one of them raises ConfigError before anything is written.
    Missing folders are created (``result.created`` names them). A symbolic link is written through."""

    def __init__(self, path: Path | str, *, inputs: Iterable[Path | str | None] = ()) -> None:
        target = Path(path).expanduser()
        if target.is_symlink():
            target = target.resolve()
        self.path = target
        self.inputs = [Path(p) for p in inputs if p]
        self.tmp = target  # set in __enter__
        self.result: WriteResult | None = None
        self._created: list[Path] = []

    def __enter__(self) -> AtomicWrite:
        for inp in self.inputs:
            if self.path.exists() and same_file(self.path, inp):
                raise ConfigError(
                    f"{self.path} is also an input of this run ({inp}); write the output to another file"
                )
        if self.path.is_dir():
            raise IsADirectoryError(21, "is a folder", str(self.path))
        self._make_folders(self.path.parent)
        self.tmp = self._new_temp()
        return self

    def open(self, mode: str = "wb", **kwargs: Any) -> IO[Any]:
        """The temp file opened for writing (``"wb"``, or ``"w"`` with ``encoding``/``newline``)."""
        if "w" not in mode:
            raise ValueError("AtomicWrite.open is for writing")
        return open(self.tmp, mode, **kwargs)  # noqa: SIM115 (the caller closes it)

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        if exc_type is not None:
            self.tmp.unlink(missing_ok=True)
            return
        try:
            _fsync_file(self.tmp)
            replaced = self.path.exists()
            if replaced:
                mode = self.path.stat().st_mode & 0o7777
                os.chmod(self.tmp, mode)  # keep the permissions the user gave the file
            os.replace(self.tmp, self.path)
        except BaseException:
            self.tmp.unlink(missing_ok=True)
            raise
        _fsync_dir(self.path.parent)
        self.result = WriteResult(self.path, replaced, tuple(self._created))

    def _make_folders(self, folder: Path) -> None:
        missing: list[Path] = []
        p = folder
        while not p.exists() and p != p.parent:
            missing.append(p)
            p = p.parent
        folder.mkdir(parents=True, exist_ok=True)
        self._created = list(reversed(missing))

    def _new_temp(self) -> Path:
        while True:
            tmp = self.path.with_name(f".{self.path.name}.{secrets.token_hex(4)}{PART_SUFFIX}")
            try:
                # 0o666 minus the umask: the finished file gets the permissions a plain open() would give it
                fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
            except FileExistsError:
                continue
            os.close(fd)
            return tmp


def _fsync_file(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_dir(folder: Path) -> None:
    """Make the rename itself durable (POSIX; folders cannot be opened for fsync on Windows)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def write_bytes_atomic(
    path: Path | str, data: bytes, *, inputs: Iterable[Path | str | None] = ()
) -> WriteResult:
    """Write ``data`` to ``path`` atomically (see AtomicWrite)."""
    with AtomicWrite(path, inputs=inputs) as w, w.open("wb") as fh:
        fh.write(data)
    assert w.result is not None
    return w.result


def write_json_atomic(path: Path, data: Any) -> WriteResult:
    """Write ``data`` as indented, key-sorted JSON to ``path``; a reader sees the old file or the new one, never
    half of one. The folder is created if missing; the temp file is removed if anything fails."""
    text = json.dumps(data, indent=2, sort_keys=True)
    return write_bytes_atomic(path, text.encode("utf-8"))


def write_text_atomic(path: Path, text: str) -> WriteResult:
    """Write ``text`` (UTF-8) to ``path`` atomically, for sharing: a replaced file keeps its permissions, a new
    one gets what a plain open() would give it. An OS error becomes a DataError naming the file."""
    try:
        return write_bytes_atomic(path, text.encode("utf-8"))
    except OSError as exc:
        raise DataError(f"cannot write {path}: {exc.strerror or exc}") from None
