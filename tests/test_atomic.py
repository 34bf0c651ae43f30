"""Files the user keeps are written atomically: a full disk, an exception, SIGINT, SIGTERM or SIGKILL never leave a
truncated file under the target's name nor destroy the previous file; an input of the run is never overwritten."""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys
import textwrap
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest

from liqdesk.app.cli import main
from liqdesk.errors import ConfigError
from liqdesk.feeds.atomic import AtomicWrite, write_bytes_atomic, write_json_atomic
from tests._fullfs import run_on_small_fs

ROOT = Path(__file__).resolve().parent.parent


def test_replaces_keeps_permissions_and_says_what_it_did(tmp_path: Path) -> None:
    target = tmp_path / "new" / "deeper" / "x.json"
    r = write_json_atomic(target, {"a": 1})
    assert json.loads(target.read_text()) == {"a": 1}
    assert not r.replaced and r.created == (tmp_path / "new", tmp_path / "new" / "deeper")
    assert r.note() == f"created folder {tmp_path / 'new'}"
    os.chmod(target, 0o640)
    r = write_json_atomic(target, {"a": 2})
    assert r.replaced and r.note() == "replaced the previous file"
    assert stat.S_IMODE(target.stat().st_mode) == 0o640
    assert sorted(p.name for p in target.parent.iterdir()) == ["x.json"]  # no temp file left


def test_a_failed_write_keeps_the_previous_file(tmp_path: Path) -> None:
    target = tmp_path / "x.csv"
    target.write_text("previous\n")
    with pytest.raises(RuntimeError), AtomicWrite(target) as w, w.open("w") as fh:
        fh.write("half of a new file")
        raise RuntimeError("disk pulled out")
    assert target.read_text() == "previous\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.csv"]


def test_an_input_of_the_run_is_never_overwritten(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    src = ROOT / "tests" / "data" / "fake_binance_BTCUSDT_1h_klines.csv.gz"
    candles = tmp_path / "candles.csv"
    import gzip

    candles.write_bytes(gzip.decompress(src.read_bytes()))
    before = candles.read_bytes()
    link = tmp_path / "same.csv"
    link.symlink_to(candles)
    with pytest.raises(ConfigError, match="also an input"):
        write_bytes_atomic(link, b"x", inputs=[candles])
    for out in (candles, link):
        rc = main(["export", "--candles", str(candles), "--range", "2d", "--bins", "50", "--out", str(out)])
        err = capsys.readouterr().err.strip()
        assert rc == 2 and "also an input of this run" in err and "\n" not in err
    assert candles.read_bytes() == before


def test_export_says_when_it_replaces_a_file_or_creates_a_folder(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    out = tmp_path / "exports" / "heat.npz"
    assert main(["export", "--range", "1d", "--bins", "50", "--out", str(out)]) == 0
    assert f"created folder {tmp_path / 'exports'}" in capsys.readouterr().err
    assert main(["export", "--range", "1d", "--bins", "50", "--out", str(out)]) == 0
    assert "replaced the previous file" in capsys.readouterr().err


_EXPORT = [sys.executable, "-m", "liqdesk", "export", "--range", "7d", "--bins", "3000"]


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT, signal.SIGKILL])
def test_an_export_killed_while_writing_leaves_the_previous_file(tmp_path: Path, sig: int) -> None:
    out = tmp_path / "heat.csv"
    out.write_text("previous export\n")
    env = {**os.environ, "LIQDESK_CONFIG_DIR": str(tmp_path / "c"), "LIQDESK_DATA_DIR": str(tmp_path / "d")}
    proc = subprocess.Popen([*_EXPORT, "--out", str(out)], env=env, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while not any(p.stat().st_size > 1 << 20 for p in tmp_path.glob(".heat.csv.*.part")):  # mid-write
        assert proc.poll() is None and time.monotonic() < deadline, "the export ended before it was signalled"
        time.sleep(0.02)
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=120)
    assert out.read_text() == "previous export\n"
    if (
        sig == signal.SIGKILL
    ):  # nothing can clean up after SIGKILL: the partial file never has the target's name
        assert all(
            p.name == "heat.csv" or p.name.endswith(".part") for p in tmp_path.iterdir() if p.is_file()
        )
    else:
        assert proc.returncode == (143 if sig == signal.SIGTERM else 130)
        assert err.strip() == ("liqdesk: terminated" if sig == signal.SIGTERM else "liqdesk: interrupted")
        assert sorted(p.name for p in tmp_path.iterdir() if p.is_file()) == ["heat.csv"]


def test_an_export_left_alone_is_complete(tmp_path: Path) -> None:
    out = tmp_path / "heat.csv"
    assert main(["export", "--range", "2d", "--bins", "300", "--out", str(out)]) == 0
    text = out.read_text()
    lines = text.splitlines()
    assert lines[0] == "time_ms,price,long_usd,short_usd" and text.endswith("\n") and len(lines) > 1000
    assert all(line.count(",") == 3 for line in lines)


_FULL_EXPORT = textwrap.dedent("""
    import contextlib, io, json, os, sys
    from pathlib import Path
    from liqdesk.app.cli import main
    from tests._fullfs import fill

    fs = Path(os.environ["FS"])
    out = fs / "heat.npz"
    out.write_bytes(b"previous export")
    fill(fs)
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        rc = main(["export", "--range", "7d", "--bins", "400", "--out", str(out)])
    print(json.dumps({"rc": rc, "err": err.getvalue(), "previous": out.read_bytes() == b"previous export",
                      "files": sorted(p.name for p in fs.iterdir())}))
""")


def test_export_on_a_full_disk_keeps_the_previous_file(tmp_path: Path) -> None:
    r = run_on_small_fs(_FULL_EXPORT, tmp_path, size_kb=512)
    assert r["rc"] == 2 and r["previous"], r
    last = r["err"].strip().splitlines()[-1]
    assert last.startswith("liqdesk: error: cannot write") and "No space left" in last
    assert "previous file is unchanged" in last
    assert r["files"] == ["filler", "heat.npz"]  # no temp file left


def test_export_npz_is_complete(tmp_path: Path) -> None:
    out = tmp_path / "h.npz"
    assert main(["export", "--range", "1d", "--bins", "50", "--out", str(out)]) == 0
    with zipfile.ZipFile(out) as z:
        assert z.testzip() is None
    assert np.load(out)["long"].shape[1] == 50
