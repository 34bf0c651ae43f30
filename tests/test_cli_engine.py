"""`liqdesk export` and `liqdesk levels` on the bundled sample and on files; clean errors."""

import json
import subprocess
import sys

import numpy as np
import pytest

from liqdesk.app.cli import main
from liqdesk.feeds.timeparse import parse_time


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_export_npz_on_the_sample(tmp_path, capsys):
    out = tmp_path / "heat.npz"
    code, _, err = run(capsys, "export", "--start", "2024-05-15T00:00Z", "--end", "2024-05-16T00:00Z",
                       "--bins", "120", "--out", str(out))  # fmt: skip
    assert code == 0, err
    z = np.load(out)
    assert z["long"].shape == (288, 120) and z["long"].dtype == np.float32
    assert z["time_ms"][0] == parse_time("2024-05-15T00:00Z")
    assert np.all(np.diff(z["time_ms"]) == 300_000)
    assert np.all(np.diff(z["price"]) > 0)
    assert z["long"].sum() > 0 and z["short"].sum() > 0
    meta = json.loads(str(z["params"]))
    assert meta["model"] == "OI model" and meta["params"]["preset"] == "coinglass"
    assert "OI model" in err


def test_export_resampled_csv_is_long_format_without_zero_cells(tmp_path, capsys):
    out = tmp_path / "heat.csv"
    code, _, err = run(capsys, "export", "--range", "1d", "--time-columns", "24", "--bins", "50",
                       "--preset", "high", "--out", str(out))  # fmt: skip
    assert code == 0, err
    lines = out.read_text().splitlines()
    assert lines[0] == "time_ms,price,long_usd,short_usd"
    rows = np.loadtxt(lines[1:], delimiter=",")
    assert len(np.unique(rows[:, 0])) == 24
    assert ((rows[:, 2] > 0) | (rows[:, 3] > 0)).all()


def test_levels_json_and_table(capsys):
    code, out, err = run(capsys, "levels", "--json", "--at", "2024-05-15T12:00Z", "--preset", "all")
    assert code == 0, err
    r = json.loads(out)
    assert r["time"].startswith("2024-05-15T12:00")
    assert r["clusters_below"] and r["clusters_above"]
    assert all(c["distance_pct"] < 0 for c in r["clusters_below"])
    assert all(c["distance_pct"] > 0 for c in r["clusters_above"])
    cum = r["cumulative"]
    assert cum["1%"]["long_below_usd"] <= cum["2%"]["long_below_usd"] <= cum["5%"]["long_below_usd"]
    code, out, _ = run(capsys, "levels")
    assert code == 0 and "clusters above" in out and "estimates, not exchange data" in out


def test_export_from_files(tmp_path, capsys):
    from liqdesk.feeds.sample import load_sample

    s = load_sample()
    c = s.candles.take(slice(len(s.candles) - 600, len(s.candles)))
    path = tmp_path / "k.csv"
    rows = np.column_stack([c.open_time, c.open, c.high, c.low, c.close, c.volume])
    np.savetxt(path, rows, fmt=["%d", "%.1f", "%.1f", "%.1f", "%.1f", "%.3f"], delimiter=",",
               header="open_time,open,high,low,close,volume", comments="")  # fmt: skip
    out = tmp_path / "o.npz"
    code, _, err = run(capsys, "export", "--candles", str(path), "--range", "1d", "--out", str(out))
    assert code == 0, err
    assert "volume model" in err  # no open interest given


@pytest.mark.parametrize(
    ("argv", "needle"),
    [
        (["export", "--candles", "/nonexistent/k.csv", "--out", "x.npz"], "/nonexistent/k.csv"),
        (["export", "--start", "yesterday-ish", "--out", "x.npz"], "--start"),
        (["export", "--start", "2030-01-01", "--end", "2030-02-01", "--out", "x.npz"], "no candles between"),
        (["export", "--preset", "nope", "--out", "x.npz"], "unknown preset 'nope'"),
        (["export", "--out", "x.txt"], ".npz or .csv"),
        (["levels", "--at", "1999-01-01"], "no candles"),
    ],
)
def test_bad_input_gives_one_clear_line(tmp_path, capsys, monkeypatch, argv, needle):
    monkeypatch.chdir(tmp_path)
    code, _, err = run(capsys, *argv)
    assert code == 2
    assert needle in err
    assert "Traceback" not in err and err.count("\n") == 1


def test_garbage_candles_file_is_an_error_not_an_empty_chart(tmp_path, capsys):
    bad = tmp_path / "bad.csv"
    bad.write_text("open_time,open,high,low,close,volume\n" + "x,y,z,w,v,u\n" * 50)
    code, _, err = run(capsys, "export", "--candles", str(bad), "--out", str(tmp_path / "o.npz"))
    assert code == 2 and "bad.csv" in err


def test_unwritable_output_is_a_clear_error(tmp_path, capsys):
    (tmp_path / "file").write_text("")
    code, _, err = run(capsys, "export", "--range", "12h", "--out", str(tmp_path / "file" / "x.npz"))
    assert code == 2 and "cannot write" in err


def test_python_dash_m_and_version():
    r = subprocess.run([sys.executable, "-m", "liqdesk", "--version"], capture_output=True, text=True)
    assert r.returncode == 0 and r.stdout.startswith("liqdesk ")


@pytest.mark.parametrize("command", [["export", "--out", "x.npz"], ["levels"], ["calibrate"]])
def test_unavailable_cupy_backend_is_a_clear_error_on_headless_commands(
    tmp_path, capsys, monkeypatch, command
):
    import importlib.util

    if importlib.util.find_spec("cupy") is not None:
        pytest.skip("CuPy is installed here")
    monkeypatch.chdir(tmp_path)
    code, _, err = run(capsys, *command, "--backend", "cupy")
    assert code == 2 and "--backend cupy" in err and "CuPy is not installed" in err
    assert err.count("\n") == 1


def test_window_without_a_display_is_a_clear_error_not_a_qt_abort():
    import os

    if not sys.platform.startswith("linux"):
        pytest.skip("display detection is for Linux")
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM")}
    r = subprocess.run([sys.executable, "-m", "liqdesk", "--offline"], capture_output=True, text=True, env=env,
                       timeout=60)  # fmt: skip
    assert r.returncode == 2
    assert "no display" in r.stderr and "liqdesk snapshot" in r.stderr
