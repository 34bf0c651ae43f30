"""The tests' PostgreSQL: where its binaries are looked for, the Debian install where they are missing, and the
visible reason when it cannot run (the cluster itself is exercised by every PostgreSQL test)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests import _postgres
from tests._postgres import PgCluster, PgUnavailable, install_from_debian


class Apt:
    """apt-get as a list of calls; ``fail`` says how many calls fail before one succeeds."""

    def __init__(self, fail: int) -> None:
        self.calls: list[list[str]] = []
        self.fail = fail

    def __call__(self, cmd: list[str], **kw: Any) -> subprocess.CompletedProcess[str]:
        self.calls.append(cmd)
        assert kw["env"]["DEBIAN_FRONTEND"] == "noninteractive"
        ok = len(self.calls) > self.fail
        return subprocess.CompletedProcess(
            cmd, 0 if ok else 100, "", "" if ok else "E: Unable to locate package"
        )


@pytest.mark.skipif(os.geteuid() != 0, reason="the install path runs as root only")
def test_the_debian_package_is_installed_quietly_and_the_index_updated_when_needed() -> None:
    apt = Apt(fail=0)
    assert install_from_debian(apt) == ""
    assert apt.calls == [["apt-get", "install", "-y", "-qq", "--no-install-recommends", "postgresql"]]
    apt = Apt(fail=1)  # an image without package lists: update, then install
    assert install_from_debian(apt) == ""
    assert [c[1] for c in apt.calls] == ["install", "update", "install"]
    apt = Apt(fail=9)
    assert "installing the postgresql package failed: E: Unable to locate package" in install_from_debian(apt)


def test_without_binaries_or_install_the_reason_is_said(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_postgres, "find_bin_dir", lambda: None)
    monkeypatch.setattr(
        _postgres, "install_from_debian", lambda: "PostgreSQL is not installed and this is not root"
    )
    with pytest.raises(PgUnavailable, match="not installed"):
        PgCluster().start()


def test_binaries_are_found_under_usr_lib_postgresql_or_on_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    found = _postgres.find_bin_dir()
    if found is not None:
        assert all((found / b).exists() for b in ("initdb", "pg_ctl", "postgres"))
    monkeypatch.setattr(_postgres.glob, "glob", lambda pattern: [])
    fake = tmp_path / "bin"
    fake.mkdir()
    for b in ("initdb", "pg_ctl", "postgres"):
        (fake / b).write_text("#!/bin/sh\n")
        (fake / b).chmod(0o755)
    monkeypatch.setenv("PATH", str(fake))
    assert _postgres.find_bin_dir() == fake
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    assert _postgres.find_bin_dir() is None
