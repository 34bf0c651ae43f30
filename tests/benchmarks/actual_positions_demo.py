"""The real app (`liqdesk`, desktop.run) on a Hyperliquid tab against the fake Hyperliquid, for a screenshot.

Eighty crafted accounts hold BTC positions around the live price; their addresses reach the app only through the
fake's public trades stream. The script waits for the sampler to ask for them, closes the live bar (the fake
liquidates the positions its low reached: inferred liquidations), turns on the actual heat columns, points the
crosshair at a cluster, opens the model check, and saves a screenshot of the whole screen with ImageMagick's
`import` (run it on an X display, e.g. `Xvfb :72 & DISPLAY=:72 python tests/benchmarks/actual_positions_demo.py
out.png`). Prints what the window shows.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from tests.fake_exchange.hyperliquid import FakeHyperliquid, HlPosition, HlTrade  # noqa: E402
from tests.fake_exchange.venue_data import bar_values  # noqa: E402

SYMBOL = "BTC/USDC:USDC"


def accounts(fake: FakeHyperliquid, n: int = 80, seed: int = 7) -> dict[str, list[HlPosition]]:
    rng = random.Random(seed)
    mark = fake.mark_price()
    low = float(bar_values(fake.bars, fake.closed_count(), final=True).low)
    out: dict[str, list[HlPosition]] = {}
    for k in range(n):
        address = "0x" + f"{rng.getrandbits(160):040x}"
        long = rng.random() < 0.55
        lev = rng.choice([3, 5, 10, 10, 20, 25, 40])
        size = round(rng.lognormvariate(-0.5, 1.2), 4) * (1 if long else -1)
        if k < 4:  # crossed by the live bar's low: the fake liquidates them when it closes
            liq = low * (1.0004 + 0.0003 * k)
            long, size = True, abs(size)
        else:
            # around the price the leverage implies, with clusters at round numbers
            dist = 0.9 / lev * rng.uniform(0.6, 1.1)
            liq = mark * (1 - dist) if long else mark * (1 + dist)
            if rng.random() < 0.35:
                liq = round(liq / 500.0) * 500.0
        out[address] = [HlPosition("BTC", size, mark, lev, rng.choice(["cross", "isolated"]),
                                   liquidation_px=None if k % 23 == 5 else round(liq, 1))]  # fmt: skip
    return out


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("out", help="screenshot PNG")
    p.add_argument("--size", default="1600x950")
    args = p.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="liqdesk-demo-"))
    os.environ["LIQDESK_DATA_DIR"] = str(tmp / "data")
    os.environ["LIQDESK_CONFIG_DIR"] = str(tmp / "config")

    from liqdesk.app import desktop
    from liqdesk.app.cli import build_parser
    from liqdesk.app.live_source import LiveConfig

    probe = FakeHyperliquid()
    crafted = accounts(probe)
    fake = FakeHyperliquid(accounts=crafted, auto_liquidate=True, ping_interval=1.0)
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    asyncio.run_coroutine_threadsafe(fake.start(), loop).result(10)

    def on_fake(coro: object) -> asyncio.Future[object]:
        return asyncio.wrap_future(asyncio.run_coroutine_threadsafe(coro, loop))  # type: ignore[arg-type]

    config = LiveConfig(exchange="hyperliquid", symbol=SYMBOL, timeframe="1h", ccxt_options=fake.ccxt_options(),
                        symbols=(SYMBOL,))  # fmt: skip
    w_px, h_px = (int(x) for x in args.size.split("x"))

    async def after_start(window: object, controller: object) -> None:
        w = window
        ws = w.window()  # type: ignore[attr-defined]
        ws.resize(w_px, h_px)
        ws.move(0, 0)

        async def until(cond: object, timeout: float, what: str) -> None:
            for _ in range(int(timeout * 10)):
                if cond():  # type: ignore[operator]
                    return
                await asyncio.sleep(0.1)
            raise SystemExit(f"timed out waiting for {what}")

        await until(lambda: controller.mode == "live" and w.frame is not None, 60, "live")  # type: ignore[attr-defined]
        await on_fake(fake.wait_subscribed("trades:BTC", 20))
        users = list(crafted)
        for k in range(0, len(users), 10):
            batch = [HlTrade(fake.now_ms, fake.mark_price(), 0.01, "B", users[i], users[(i + 1) % len(users)])
                     for i in range(k, min(k + 10, len(users)))]  # fmt: skip
            await on_fake(fake.push_trades(batch))
        await until(
            lambda: w.actual.amap is not None and w.actual.amap.n_accounts >= len(users), 90, "sampling"
        )
        await on_fake(fake.advance(1, revisions=2))
        await until(lambda: len(w.inferred.shown) >= 1, 120, "inferred liquidations")
        await asyncio.sleep(2.0)
        w.menus.actual_heat_action.setChecked(True)
        c = w.candles
        amap = w.actual.amap
        big = int((amap.long + amap.short).argmax())
        w.point_crosshair_at(int(c.open_time[-2]), float(amap.bins.centers[big]))
        await asyncio.sleep(1.5)
        print("map note:", w.actual.note.replace("\n", " | "))
        print("readout:", w.chart.readout.text())
        print("inferred:", len(w.inferred.shown))
        print("magnet labels:", [lb.textItem.toPlainText() for lb in w.chart.magnet_labels if lb.isVisible()])
        subprocess.run(["import", "-window", "root", "-crop", f"{w_px}x{h_px}+0+0", args.out], check=True)
        # the model check, scrolled to its estimate-vs-actual section
        w.menus.actual_heat_action.setChecked(False)
        w.model_check.show()
        ws.resize(w_px + 300, h_px)
        w.model_check.run()
        await until(lambda: w.model_check.outcome is not None, 120, "model check")
        await asyncio.sleep(1.0)
        bar = w.model_check.widget().verticalScrollBar()
        bar.setValue(bar.maximum())
        await asyncio.sleep(1.0)
        o = w.model_check.outcome
        print("estimate vs actual:", {k: (v.n_snapshots, v.top_share, v.w1_pct) for k, v in o.actual.items()})
        check = str(Path(args.out).with_name(Path(args.out).stem + "-model-check.png"))
        subprocess.run(["import", "-window", "root", "-crop", f"{w_px + 300}x{h_px}+0+0", check], check=True)
        ws.close()

    parser = build_parser()
    ns = parser.parse_args([])
    try:
        return desktop.run(ns, clock=lambda: fake.now_ms, config=config, after_start=after_start)
    finally:
        asyncio.run_coroutine_threadsafe(fake.close(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)


if __name__ == "__main__":
    raise SystemExit(main())
