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

from liqdesk.app.calibration_tables import render_text  # noqa: E402
from liqdesk.app.model_experiments import all_tables, notes, run_bundled  # noqa: E402


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
    for t in all_tables(results):
        print()
        print("\n".join(render_text(t, indent="")))
    print()
    print("\n".join(f"· {n}" for n in notes(results)))
    print(f"\n({time.perf_counter() - t0:.0f} s on a shared 2-core machine)")


if __name__ == "__main__":
    main()
