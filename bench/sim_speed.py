"""How fast the simulated bench runs the real companion: simulated device-seconds per wall-second.

(a) an idle companion (parked, SEMI_AUTOMATIC, threaded, board attached) for 7 simulated days; its
    OTA guard forces one full handshake a day (OTARIG_HANDSHAKE_INTERVAL_MS default, 24 h), counted
    from the model (`dev.net.full_handshakes`) to show the firmware really did its work;
(b) a 100 KB OTA transfer: Intelligent release → pending → guard opens the window → transfer →
    reset → the new app's hello.

Target for (a): ≥ 50,000× (issue #2). Run: `.venv/bin/python bench/sim_speed.py [--profile]`.
"""
from __future__ import annotations

import argparse
import cProfile
import pstats
import tempfile
import time
from pathlib import Path

from otarig.sim.bench import SimBench
from otarig.sim.build import build_companion
from otarig.sim.images import make_app_image

DID = "e00fce680000000000000001"
PRODUCT = 4242
DAY_S = 24 * 3600
TARGET_IDLE = 50_000


def _with_tester(bench: SimBench, workdir: Path, name: str) -> object | None:
    """The bench companion (firmware/bench/ under CPython) beside the board, on its pty."""
    bench.add_bench_companion(DID)
    return bench.open_board("bench-companion", workdir / f"{name}-tester.log")


def idle_week(workdir: Path, days: int = 7, tester: bool = False) -> dict:
    """(a): `days` of an idle companion; returns simulated s, wall s, handshakes."""
    img = make_app_image(build_companion(1), product_id=PRODUCT, product_version=1)
    bench = SimBench(seed=1, workdir=workdir / f"idle{int(tester)}")
    try:
        dev = bench.add_electron(DID, product_id=PRODUCT, image=img)
        if tester:
            _with_tester(bench, workdir, "idle")
        board = bench.open_board(DID, workdir / "idle.log")
        board.expect(lambda e: e.name == "sys" and e.get("param") == "connected", 60)
        start_sim, start_wall = bench.world.now_ms, time.perf_counter()
        sim_s = days * DAY_S + 60  # the last daily handshake falls just after day `days`
        bench.run_for(sim_s)
        wall = time.perf_counter() - start_wall
        forced = [e for e in board.events("guard") if e.get("action") == "handshake_forced"]
        return {"sim_s": (bench.world.now_ms - start_sim) / 1000, "wall_s": wall,
                "full_handshakes": dev.net.full_handshakes, "forced": len(forced),
                "resumes": dev.net.resumes, "bytes": dev.link.stats.total}
    finally:
        bench.close()


def ota_100k(workdir: Path, tester: bool = False) -> dict:
    """(b): one 100 KB OTA from release to the new app's hello (with `tester`: the bench companion
    counts the download status line's edges — one per chunk)."""
    img1 = make_app_image(build_companion(1), product_id=PRODUCT, product_version=1)
    img2 = make_app_image(build_companion(2), product_id=PRODUCT, product_version=2, size=100 * 1024)
    bench = SimBench(seed=1, workdir=workdir / f"ota{int(tester)}")
    try:
        dev = bench.add_electron(DID, product_id=PRODUCT, image=img1)
        tb = _with_tester(bench, workdir, "ota") if tester else None
        board = bench.open_board(DID, workdir / "ota.log")
        board.expect(lambda e: e.name == "sys" and e.get("param") == "connected", 60)
        start_sim, start_wall = bench.world.now_ms, time.perf_counter()
        bench.cloud.upload_firmware(PRODUCT, 2, img2)
        bench.cloud.release(PRODUCT, 2, product_default=True, intelligent=True)
        board.expect(lambda e: e.name == "hello" and e.get("product_version") == 2, 900)
        wall = time.perf_counter() - start_wall
        begin = next(e for e in dev.trace if e.kind == "ota_begin")
        end = next(e for e in dev.trace if e.kind == "ota_end")
        edges = tb.command("status")["edges"] if tb is not None else None  # type: ignore[attr-defined]
        return {"sim_s": (bench.world.now_ms - start_sim) / 1000, "wall_s": wall,
                "transfer_s": (end.t_ms - begin.t_ms) / 1000, "bytes": dev.link.stats.total, "edges": edges}
    finally:
        bench.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--days", type=int, default=7)
    ap.add_argument("--profile", action="store_true", help="cProfile the idle run, print the top 25")
    args = ap.parse_args()
    build_companion(1), build_companion(2)  # compile outside the timed part
    with tempfile.TemporaryDirectory(prefix="otarig-speed-") as tmp:
        work = Path(tmp)
        if args.profile:
            prof = cProfile.Profile()
            prof.enable()
            idle = idle_week(work, args.days)
            prof.disable()
            pstats.Stats(prof).sort_stats("tottime").print_stats(25)
        else:
            idle = idle_week(work, args.days)
        ota = ota_100k(work)
        idle_t = idle_week(work, args.days, tester=True)
        ota_t = ota_100k(work, tester=True)
    rows = [
        (f"(a) idle companion, {args.days} days", idle["sim_s"], idle["wall_s"]),
        ("(b) 100 KB OTA, release → new app", ota["sim_s"], ota["wall_s"]),
        ("(a') (a) + bench companion", idle_t["sim_s"], idle_t["wall_s"]),
        ("(b') (b) + bench companion", ota_t["sim_s"], ota_t["wall_s"]),
    ]
    print(f"{'scenario':<38} {'simulated s':>12} {'wall s':>8} {'speed-up':>10}")
    for name, sim_s, wall_s in rows:
        print(f"{name:<38} {sim_s:>12.0f} {wall_s:>8.2f} {sim_s / wall_s:>9.0f}×")
    print(f"(a) full handshakes {idle['full_handshakes']} (1 at boot + {idle['forced']} forced by the guard), "
          f"resumes {idle['resumes']}, {idle['bytes']} B on air")
    print(f"(b) transfer {ota['transfer_s']:.1f} s simulated, {ota['bytes']} B on air")
    print(f"(b') the bench companion counted {ota_t['edges']} rising edges of the status line "
          "(1 at begin + 1 per chunk)")
    speed = idle["sim_s"] / idle["wall_s"]
    verdict = "meets" if speed >= TARGET_IDLE else "MISSES"
    print(f"(a) {verdict} the {TARGET_IDLE:,}× target")
    if idle["forced"] != args.days or idle["full_handshakes"] != args.days + 1:
        raise SystemExit("the guard did not force one handshake a day: the firmware did not do its work")


if __name__ == "__main__":
    main()
