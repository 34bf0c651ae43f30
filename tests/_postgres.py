"""A throwaway PostgreSQL cluster for the tests (and the load benchmark): initdb in a temporary folder, a server
listening only on a Unix socket in that folder, stopped and removed at the end.

The binaries are looked for under /usr/lib/postgresql/*/bin (newest first) and on PATH; where they are missing and
this runs as root on Debian, the ``postgresql`` package is installed with apt-get (quietly) first. initdb refuses
to run as root: as root the cluster runs as an unprivileged user (``nobody``) that owns the folder. Anything that
fails says why in ``PgUnavailable`` (the PostgreSQL tests are then skipped with that reason).
"""

from __future__ import annotations

import contextlib
import fcntl
import glob
import itertools
import os
import pwd
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

SUPERUSER = "liqdesk"
_names = itertools.count(1)


class PgUnavailable(Exception):
    """PostgreSQL cannot be run here (the reason is the message)."""


def find_bin_dir() -> Path | None:
    """A folder with initdb, pg_ctl and postgres: the newest /usr/lib/postgresql/*/bin, else PATH's."""

    def version(p: str) -> float:
        try:
            return float(Path(p).parent.name)
        except ValueError:
            return 0.0

    for d in sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=version, reverse=True):
        if all((Path(d) / b).exists() for b in ("initdb", "pg_ctl", "postgres")):
            return Path(d)
    initdb, pg_ctl = shutil.which("initdb"), shutil.which("pg_ctl")
    if initdb and pg_ctl:
        folder = Path(initdb).resolve().parent
        if (folder / "postgres").exists() and (folder / "pg_ctl").exists():
            return folder
    return None


def install_from_debian(run: object = subprocess.run) -> str:
    """Install the Debian ``postgresql`` package (root only, quietly). Returns "" on success, else why not."""
    if os.geteuid() != 0:
        return "PostgreSQL is not installed and this is not root (install the Debian package postgresql)"
    if not shutil.which("apt-get"):
        return "PostgreSQL is not installed and there is no apt-get here"
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    install = ["apt-get", "install", "-y", "-qq", "--no-install-recommends", "postgresql"]
    last = ""
    for cmd in (install, ["apt-get", "update", "-qq"], install):
        done = run(cmd, env=env, capture_output=True, text=True, timeout=600, check=False)  # type: ignore[operator]
        last = ((done.stderr or done.stdout or "").strip().splitlines() or [""])[-1]
        if done.returncode == 0 and cmd is install:
            return ""
    return f"installing the postgresql package failed: {last}"


class PgCluster:
    """``start()`` (PgUnavailable when it cannot), ``database()`` for a fresh database URL, ``stop()``."""

    def __init__(self) -> None:
        self.dir: Path | None = None
        self.bin: Path | None = None
        self.install_s = 0.0
        self.initdb_s = 0.0
        self.start_s = 0.0
        self.installed = False
        self._user: int | None = None
        self._group: int | None = None
        self.running = False

    @property
    def socket_dir(self) -> Path:
        assert self.dir is not None
        return self.dir

    def url(self, dbname: str = "postgres") -> str:
        return f"postgresql://{SUPERUSER}@/{dbname}?host={self.socket_dir}"

    def _run(self, args: list[str], timeout: float = 120) -> None:
        kw: dict[str, object] = {}
        if self._user is not None:
            kw = {"user": self._user, "group": self._group, "extra_groups": []}
        done = subprocess.run(
            args, capture_output=True, text=True, timeout=timeout, check=False, cwd="/", **kw
        )  # type: ignore[call-overload]
        if done.returncode != 0:
            tail = (done.stderr or done.stdout).strip().splitlines()[-3:]
            raise PgUnavailable(f"{Path(args[0]).name} failed: {' / '.join(tail)}")

    def start(self) -> None:
        t0 = time.perf_counter()
        # Test processes running side by side (pytest -n) install once: the others wait for the first.
        with open(Path(tempfile.gettempdir()) / "liqdesk-pg-install.lock", "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            self.bin = find_bin_dir()
            if self.bin is None:
                why = install_from_debian()
                if why:
                    raise PgUnavailable(why)
                self.installed = True
                self.bin = find_bin_dir()
                if self.bin is None:
                    raise PgUnavailable(
                        "the postgresql package was installed but initdb/pg_ctl are not found"
                    )
        self.install_s = time.perf_counter() - t0
        self.dir = Path(tempfile.mkdtemp(prefix="liqdesk-pg-"))
        if os.geteuid() == 0:  # initdb refuses root: the cluster runs as nobody, owning its folder
            try:
                nobody = pwd.getpwnam("nobody")
            except KeyError:
                raise PgUnavailable(
                    "running as root and there is no user 'nobody' to run PostgreSQL as"
                ) from None
            self._user, self._group = nobody.pw_uid, nobody.pw_gid
            os.chown(self.dir, nobody.pw_uid, nobody.pw_gid)
        data = self.dir / "data"
        t1 = time.perf_counter()
        self._run([str(self.bin / "initdb"), "-D", str(data), "-U", SUPERUSER, "-A", "trust", "-E", "UTF8",
                   "--locale=C", "--no-sync"])  # fmt: skip
        self.initdb_s = time.perf_counter() - t1
        options = (f"-k {self.dir} -c listen_addresses='' -c fsync=off -c synchronous_commit=off "
                   "-c full_page_writes=off -c max_connections=200")  # fmt: skip
        t2 = time.perf_counter()
        self._run([str(self.bin / "pg_ctl"), "-D", str(data), "-o", options, "-l", str(self.dir / "server.log"),
                   "-w", "-t", "60", "start"])  # fmt: skip
        self.running = True
        self.start_s = time.perf_counter() - t2

    def database(self, prefix: str = "t") -> str:
        """A new empty database; its URL."""
        import psycopg

        name = f"{prefix}_{os.getpid()}_{next(_names)}"
        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    @staticmethod
    def dbname(url: str) -> str:
        from psycopg.conninfo import conninfo_to_dict

        return str(conninfo_to_dict(url)["dbname"])

    def drop(self, url: str) -> None:
        import psycopg

        name = self.dbname(url)
        with contextlib.suppress(psycopg.Error), psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def pg_ctl(self, *args: str) -> None:
        """Run pg_ctl on this cluster (e.g. "stop", "-m", "fast"; or "start" again)."""
        assert self.bin is not None and self.dir is not None
        extra: list[str] = []
        if args and args[0] == "start":
            extra = ["-o", f"-k {self.dir} -c listen_addresses='' -c fsync=off -c synchronous_commit=off "
                     "-c full_page_writes=off -c max_connections=200", "-l", str(self.dir / "server.log"), "-w"]  # fmt: skip
        self._run([str(self.bin / "pg_ctl"), "-D", str(self.dir / "data"), *args, *extra])

    def stop(self) -> None:
        if self.dir is None:
            return
        if self.running:
            with contextlib.suppress(Exception):
                self.pg_ctl("stop", "-m", "immediate")
            self.running = False
        shutil.rmtree(self.dir, ignore_errors=True)
        self.dir = None

    def summary(self) -> str:
        parts = []
        if self.installed:
            parts.append(f"installed from the Debian package in {self.install_s:.1f} s")
        parts.append(f"initdb {self.initdb_s:.2f} s, server start {self.start_s:.2f} s")
        return f"PostgreSQL ({self.bin}) for the tests: " + ", ".join(parts)
