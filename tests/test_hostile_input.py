"""Hostile input, table-driven over generated files: every case gives one clear line on stderr and exit status 2,
or (where the data is partly good) a sensible result with the problem reported. Never a traceback, a hang, an
unbounded allocation or a raw Python warning.

Run with -s to print the table (input → what liqdesk prints, exit status).
"""

from __future__ import annotations

import gzip
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from liqdesk.app.cli import main
from liqdesk.feeds import files as files_mod

H = 3_600_000
M = 60_000
T0 = 1_735_689_600_000  # 2025-01-01


def klines(
    n: int, step: int = H, start: int = T0, *, seed: int = 0, close_time: bool = True
) -> list[list[str]]:
    """Binance kline rows (12 columns, no header) of a plausible BTC-like walk."""
    rng = np.random.default_rng(seed)
    price = 95_000 * np.exp(np.cumsum(rng.normal(0, 0.003, n)))
    rows = []
    for i in range(n):
        o = price[i - 1] if i else price[0]
        c = price[i]
        h, lo = max(o, c) * 1.002, min(o, c) * 0.998
        v = 100 + 50 * rng.random()
        t = start + i * step
        row = [str(t), f"{o:.2f}", f"{h:.2f}", f"{lo:.2f}", f"{c:.2f}", f"{v:.3f}"]
        if close_time:
            row += [str(t + step - 1), f"{v * c:.2f}", "1000", f"{v * 0.5:.3f}", f"{v * c * 0.5:.2f}", "0"]
        rows.append(row)
    return rows


def csv_text(rows: list[list[str]]) -> str:
    return "".join(",".join(r) + "\n" for r in rows)


@dataclass
class Case:
    name: str
    make: Callable[[Path], list[str]]  # builds the input files, returns the argv
    rc: int
    says: str  # must appear on stderr
    check: Callable[[Path], None] | None = None


def _export(path: Path, *extra: str) -> list[str]:
    return ["export", "--candles", str(path), "--range", "5d", "--bins", "80", "--out",
            str(path.parent / "out.npz"), *extra]  # fmt: skip


def _write(d: Path, name: str, text: str | bytes) -> Path:
    p = d / name
    p.write_bytes(text.encode() if isinstance(text, str) else text)
    return p


def long_field(d: Path) -> list[str]:
    rows = klines(300)
    text = (
        csv_text(rows[:150])
        + f'{rows[150][0]},"{"9" * 200_000}",1,1,1,1,1,1,1,1,1,0\n'
        + csv_text(rows[150:])
    )
    return _export(_write(d, "long_field.csv", text))


def deep_json(d: Path) -> list[str]:
    return _export(_write(d, "deep.json", "[" * 100_000))


def deep_json_lines(d: Path) -> list[str]:
    return _export(_write(d, "deep.jsonl", ("[" * 100_000 + "\n") * 2))


def gzip_bomb(d: Path) -> list[str]:
    member = gzip.compress(b"0" * (1 << 20), 9)  # 1 MiB of text in about 1 KiB
    bomb = _write(d, "bomb.csv.gz", member * 1024)  # 1 MB of gzip members expanding to 1 GiB
    assert bomb.stat().st_size < 2 << 20
    return _export(bomb)


def dev_zero(d: Path) -> list[str]:
    return _export(Path("/dev/zero")) + ["--out", str(d / "out.npz")]


def fifo(d: Path) -> list[str]:
    p = d / "pipe.csv"
    os.mkfifo(p)
    return _export(p)


def implausible(field: int, value: str) -> Callable[[Path], list[str]]:
    def make(d: Path) -> list[str]:
        rows = klines(300)
        rows[200][field] = value
        return _export(_write(d, f"implausible_{field}.csv", csv_text(rows)))

    return make


def mixed_blocks(d: Path) -> list[str]:
    """1m, then 5m, then 1h bars concatenated (no close-time column): one file, three timeframes."""
    rows = klines(3000, M, close_time=False)
    rows += klines(1000, 5 * M, T0 + 3000 * M, close_time=False, seed=1)
    rows += klines(200, H, T0 + 3000 * M + 1000 * 5 * M, close_time=False, seed=2)
    return _export(_write(d, "mixed.csv", csv_text(rows)))


def mixed_klines(d: Path) -> list[str]:
    """Binance klines of 1m with 5m and 1h bars of the same days mixed in: the close time says which is which."""
    rows = klines(6000, M) + klines(1200, 5 * M, seed=1) + klines(100, H, seed=2)
    rows.sort(key=lambda r: int(r[0]))
    return _export(_write(d, "mixed_klines.csv", csv_text(rows)))


def many_bad_rows(d: Path) -> list[str]:
    rows = klines(1000)
    for i in range(100, 130):
        rows[i][2] = "not-a-price"
    return _export(_write(d, "many_bad.csv", csv_text(rows)))


def sample_args(*args: str) -> Callable[[Path], list[str]]:
    return lambda d: [a.replace("{d}", str(d)) for a in args]


def grid_sane(d: Path) -> None:
    z = np.load(d / "out.npz")
    assert z["price"].max() < 2 * np.median(z["price"]) and z["long"].sum() > 0


CASES = [
    Case("CSV field of 200,000 characters", long_field, 0, "long_field.csv:151: unreadable CSV line (field larger",
         grid_sane),
    Case("JSON nested 100,000 deep", deep_json, 2, "deep.json: not valid JSON (nested too deeply)"),
    Case("JSON lines nested 100,000 deep", deep_json_lines, 2, "not valid JSON (nested too deeply)"),
    Case("gzip bomb, 1 MB → 1 GiB (read cap 64 MiB here)", gzip_bomb, 2,
         "bomb.csv.gz: expands to more than 64 MiB, the most liqdesk reads from one file"),
    Case("/dev/zero", dev_zero, 2, "/dev/zero: is a device, not a data file"),
    Case("a FIFO nobody writes to", fifo, 2, "pipe.csv: a named pipe (FIFO) that nothing wrote to within 0.3 s"),
    Case("--timeframe 7x with --exchange", sample_args("export", "--exchange", "binanceusdm", "--timeframe", "7x",
                                                        "--out", "{d}/x.npz"), 2, "--timeframe 7x: unknown timeframe"),
    Case("--end 2010-01-01 --range 99999999y", sample_args("export", "--end", "2010-01-01", "--range", "99999999y",
                                                            "--out", "{d}/x.npz"), 2,
         "bad --range '99999999y': longer than 100 years"),
    Case("--end 2010-01-01 --range 3d (before the data)", sample_args("export", "--end", "2010-01-01", "--range",
                                                                       "3d", "--out", "{d}/x.npz"), 2,
         "no candles between 2009-12-29T00:00Z and 2010-01-01T00:00Z"),
    Case("levels --bins 0", sample_args("levels", "--bins", "0"), 2, "--bins 0: give a whole number from 10"),
    Case("levels --bins 1000000000", sample_args("levels", "--bins", "1000000000"), 2,
         "--bins 1000000000: give a whole number from 10 to 20,000"),
    Case("--half-life nan", sample_args("levels", "--half-life", "nan"), 2, "--half-life nan: give a number of hours"),
    Case("--half-life -1", sample_args("levels", "--half-life", "-1"), 2, "--half-life -1: give a number of hours"),
    Case("a row with high = 1e308", implausible(2, "1e308"), 0,
         "implausible_2.csv:201: high 1e+308 is implausible: the file's median price is", grid_sane),
    Case("a row with low = 1e-300", implausible(3, "1e-300"), 0,
         "implausible_3.csv:201: low 1e-300 is implausible: the file's median price is", grid_sane),
    Case("a row with volume = 1e308", implausible(5, "1e308"), 0,
         "implausible_5.csv:201: volume 1e+308 is implausible: the file's median volume is", grid_sane),
    Case("--ccxt-options '{bad' with --candles", lambda d: [*implausible(2, "1")(d), "--ccxt-options", "{bad"], 2,
         "--ccxt-options is not valid JSON"),
    Case("--ccxt-options nested 100,000 deep with --exchange", sample_args("export", "--exchange", "binanceusdm",
                                                                           "--ccxt-options", "[" * 100_000,
                                                                           "--out", "{d}/x.npz"), 2,
         "--ccxt-options is not valid JSON: nested too deeply"),
    Case("levels --top 0", sample_args("levels", "--top", "0"), 2, "--top 0: give a whole number from 1 to 100"),
    Case("levels --top -3", sample_args("levels", "--top", "-3"), 2, "--top -3: give a whole number from 1 to 100"),
    Case("calibrate --warmup 999y", sample_args("calibrate", "--warmup", "999y", "--boot", "10"), 2,
         "bad --warmup '999y': longer than 100 years"),
    Case("calibrate --warmup 300d (longer than the data)", sample_args("calibrate", "--warmup", "300d", "--boot",
                                                                        "10"), 2, "no snapshot to score"),
    Case("1m / 5m / 1h blocks in one file", mixed_blocks, 2, "bars at mixed intervals: most are 1m apart"),
    Case("1m klines with 5m and 1h bars mixed in", mixed_klines, 0, "bar lasts 5m, the file's bars 1m"),
    Case("export --range 9999d --bins 20000 (an 8.5 GiB grid)", sample_args("export", "--range", "9999d", "--bins",
                                                                         "20000", "--out", "{d}/x.npz"), 2,
         "over the 1 GiB memory budget; resample time with --time-columns"),
    Case("calibrate --every 1m --bins 5000 (a 29 GiB calibration)", sample_args("calibrate", "--every", "1m",
                                                                              "--bins", "5000", "--boot", "10"), 2,
         "over the 1 GiB memory budget; space the snapshots with --every"),
    Case("30 bad rows of 1,000", many_bad_rows, 0, "many_bad.csv: 30 of 1,000 rows rejected (25 not shown); 970 kept"),
]  # fmt: skip
TABLE: list[str] = []


@pytest.fixture(autouse=True)
def _env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LIQDESK_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("LIQDESK_CONFIG_DIR", str(tmp_path / "config"))
    monkeypatch.setattr(files_mod, "MAX_INPUT_BYTES", 64 << 20)
    monkeypatch.setattr(files_mod, "FIFO_WAIT_S", 0.3)


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_hostile_input(case: Case, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    argv = case.make(tmp_path)
    rc = main(argv)
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    TABLE.append(f"{case.name} → exit {rc}: {lines[-1] if rc else ' | '.join(lines)[:300]}")
    print(f"\n{TABLE[-1]}")
    assert "Traceback" not in err and "Warning:" not in err and ".py:" not in err
    assert rc == case.rc, err
    assert case.says in err, err
    if rc:
        assert len(lines) == 1 and lines[0].startswith("liqdesk: error: "), err
    else:
        assert all(
            line.startswith(("liqdesk: warning: ", "liqdesk: note: ", "wrote ", "note: ")) for line in lines
        ), err
    if case.check is not None:
        case.check(tmp_path)


def test_rejected_rows_print_one_readable_line_each(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rc = main(many_bad_rows(tmp_path))
    lines = capsys.readouterr().err.strip().splitlines()
    assert rc == 0
    assert lines[:5] == [f"liqdesk: warning: {tmp_path / 'many_bad.csv'}:{n}: high is not a number: 'not-a-price'"
                         for n in range(101, 106)]  # fmt: skip
    assert lines[5].endswith("30 of 1,000 rows rejected (25 not shown); 970 kept")


def test_a_gzip_bomb_is_streamed_not_expanded(tmp_path: Path) -> None:
    """The cap holds while decompressing: memory stays near the cap, not the 1 GiB the file expands to."""
    import tracemalloc

    argv = gzip_bomb(tmp_path)
    tracemalloc.start()
    try:
        assert main(argv) == 2
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 3 * (64 << 20)


def test_a_broken_user_presets_file_is_reported_and_skipped(tmp_path: Path) -> None:
    import subprocess
    import sys

    (tmp_path / "config").mkdir(exist_ok=True)
    (tmp_path / "config" / "presets.json").write_text("[" * 100_000)
    env = {
        **os.environ,
        "LIQDESK_CONFIG_DIR": str(tmp_path / "config"),
        "LIQDESK_DATA_DIR": str(tmp_path / "d"),
    }
    r = subprocess.run([sys.executable, "-m", "liqdesk", "levels", "--json"], capture_output=True, text=True,
                       env=env, timeout=120)  # fmt: skip
    assert r.returncode == 0 and "Traceback" not in r.stderr
    assert "ignoring user presets: " in r.stderr and "not valid JSON (nested too deeply)" in r.stderr
