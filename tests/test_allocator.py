"""The allocator policy the app sets at start (app/allocator.py)."""

from __future__ import annotations

import sys

import pytest

from liqdesk.app import allocator, cli


def test_the_environment_decides_when_it_names_an_allocator_setting(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    for key in ("LIQDESK_DEFAULT_ALLOCATOR", "MALLOC_TRIM_THRESHOLD_", "GLIBC_TUNABLES"):
        monkeypatch.setenv(key, "1")
        assert allocator.set_policy() is False
        monkeypatch.delenv(key)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt")
def test_glibc_takes_the_thresholds(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    for key in allocator._ENV:
        monkeypatch.delenv(key, raising=False)
    assert allocator.set_policy() is True


def test_every_command_starts_under_the_policy(monkeypatch, capsys) -> None:  # type: ignore[no-untyped-def]
    calls: list[int] = []
    monkeypatch.setattr(allocator, "set_policy", lambda: calls.append(1) or True)
    with pytest.raises(SystemExit):
        cli.main(["--version"])
    assert calls == [1]
