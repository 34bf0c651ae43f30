"""Model experiments (not part of the test run): python tests/benchmarks/model_experiments.py [--boot 1000]

Every model variant tried (entry points spread over the bar, level lifetime, leverage presets, taker
floor, churn) scored against real liquidations with the fit / report split of
liqdesk.app.model_experiments (fit on the Hyperliquid fills before 2025-05-25 23:00 UTC, report on the
fills after it and on the Binance capture of 2025-01-27), and the magnet test on long candle sets.
Prints one table per held-out set: variant × (top-10 % share, path-conditional ρ, precision at 5,
log-likelihood against the fitted spot Laplace and against the best null, paired Δ against the
baseline), with 95 % intervals. Every before/after figure the README quotes comes from this output.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import dataclasses  # noqa: E402

import numpy as np  # noqa: E402

from liqdesk.app.calibration_tables import Table, num, render_text  # noqa: E402
from liqdesk.app.model_experiments import (  # noqa: E402
    HORIZONS_MS,
    all_tables,
    bundled_candle_sets,
    bundled_tapes,
    experiment_config,
    notes,
    run_bundled,
)
from liqdesk.core.calibration import magnet_test  # noqa: E402
from liqdesk.core.density_snapshots import Snapshots, density_snapshots, snapshot_times  # noqa: E402
from liqdesk.core.engine import LiquidationEngine  # noqa: E402
from liqdesk.core.model_experiments import paired_difference, score_tape_part, tape_snapshots  # noqa: E402
from liqdesk.feeds.presets import params_for  # noqa: E402

SHORT_H, LONG_H, SHARE = 1.0, 48.0, 0.5


def mixed(a: Snapshots, b: Snapshots, w: float) -> Snapshots:
    """w of a's map and 1 − w of b's, each scaled to the same total per snapshot (a mix of two lifetimes)."""

    def unit(s: Snapshots) -> tuple[np.ndarray, np.ndarray]:
        t = (s.long.sum(axis=1) + s.short.sum(axis=1))[:, None]
        t = np.where(t > 0, t, 1.0)
        return s.long / t, s.short / t

    (la, sa), (lb, sb) = unit(a), unit(b)
    return dataclasses.replace(a, long=w * la + (1 - w) * lb, short=w * sa + (1 - w) * sb)


def lifetime_mix_probe(n_boot: int, seed: int) -> Table:
    """Not a product variant (one engine has one decay per bar): the map of two engines mixed, to see
    whether short- and long-lived positions together would keep the short lifetime's gain without its loss."""
    base = params_for()
    rows = []
    for h in HORIZONS_MS:
        cfg = experiment_config(h, n_boot, seed)
        cells = [f"{h // 3_600_000} h"]
        for tape in bundled_tapes():
            e0, s0 = tape_snapshots(tape, base, cfg)
            _, s1 = tape_snapshots(tape, base.with_(volume_half_life_h=SHORT_H), cfg)
            _, s2 = tape_snapshots(tape, base.with_(volume_half_life_h=LONG_H), cfg)
            ev = tape.part("report")
            b = score_tape_part(e0, s0, ev, cfg)
            m = score_tape_part(e0, mixed(s1, s2, SHARE), ev, cfg)
            cells.append(num(paired_difference(m, b, cfg), "+.3f"))
        for cs in bundled_candle_sets():
            engines = {hl: LiquidationEngine.build(cs.candles, None, base.with_(volume_half_life_h=hl))
                       for hl in (SHORT_H, LONG_H, base.volume_half_life_h)}  # fmt: skip
            e = engines[base.volume_half_life_h]
            times = snapshot_times(e.open_time, e.interval_ms, cfg)
            by = {hl: density_snapshots(eng, times, cfg) for hl, eng in engines.items()}
            diff = [
                magnet_test(sn, e.sweep_high, e.sweep_low, cfg).difference
                for sn in (by[base.volume_half_life_h], mixed(by[SHORT_H], by[LONG_H], SHARE))
            ]
            cells.append(
                f"{num(diff[1].scaled(100), '+.1f', ' pp')} (defaults {num(diff[0].scaled(100), '+.1f', ' pp')})"
            )
        rows.append(cells)
    header = [
        "horizon",
        *(f"{t.name} · held out" for t in bundled_tapes()),
        *(f"magnet · {c.name}" for c in bundled_candle_sets()),
    ]
    return Table(
        f"Probe: {SHARE:.0%} of the notional with a {SHORT_H:g} h half-life and the rest {LONG_H:g} h (two engines "
        "mixed, not a product variant): paired Δ nats per event against the defaults, and the magnet test",
        header,
        rows,
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--boot", type=int, default=1000, help="bootstrap resamples (default 1000)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--no-magnets", action="store_true", help="skip the candle-only magnet sets (faster)")
    args = ap.parse_args()
    t0 = time.perf_counter()
    results = run_bundled(
        n_boot=args.boot, seed=args.seed, magnets=not args.no_magnets,
        progress=lambda m: print(f"  … {m}", file=sys.stderr),
    )  # fmt: skip
    for t in [*all_tables(results), lifetime_mix_probe(args.boot, args.seed)]:
        print()
        print("\n".join(render_text(t, indent="")))
    print()
    print("\n".join(f"· {n}" for n in notes(results)))
    print(f"\n({time.perf_counter() - t0:.0f} s on a shared 2-core machine)")


if __name__ == "__main__":
    main()
