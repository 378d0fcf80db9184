"""The rollout planner against a SimPy model of the same rules (issue 15): wall times, ratio, agreement.

Usage: .venv/bin/python bench/rollout_vs_simpy.py [--devices N] [--days D] [--fleet FILE]
                                                  [--strategies S1,S2,…|all] [--repeat R]

Needs the bench extra (`pip install -e '.[bench]'`, SimPy). For each strategy the two models run
one after the other on the same fleet and seed, `--repeat` times (alternating which goes first),
so a change of machine load hits both; the best wall time of each is kept (set-up included).
Printed per strategy: both wall times, SimPy / planner, and the 50/90/99 % times of both with
their difference, checked against `rollout_simpy.AGREEMENT_H`. Target: planner ≥ 10× SimPy.
"""
from __future__ import annotations

import argparse
import gc
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "bench"))

import rollout_simpy  # noqa: E402

from otarig import rollout  # noqa: E402
from otarig.rollout import report  # noqa: E402

TARGET_RATIO = 10.0
QS = ("50", "90", "99")


def _run(fn, *args) -> tuple[float, object]:
    gc.collect()
    t = time.perf_counter()
    res = fn(*args)
    return time.perf_counter() - t, res


def _h(h: float | None) -> str:
    return "never" if h is None else f"{h:.3f} h"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--devices", type=int, default=100_000)
    ap.add_argument("--days", type=float, default=30.0)
    ap.add_argument("--fleet", default=str(ROOT / "examples" / "fleets" / "default.toml"))
    ap.add_argument("--strategies", default="all")
    ap.add_argument("--repeat", type=int, default=1)
    args = ap.parse_args()
    fleet = rollout.load(args.fleet).scaled(args.devices).model_copy(update={"horizon_days": args.days})
    strategies = rollout.parse_strategies(args.strategies)
    print(f"fleet {fleet.name!r} (seed {fleet.seed}): {fleet.size} devices in {len(fleet.cohort)} cohorts, "
          f"{args.days:g} days; best of {args.repeat}; agreement tolerance {rollout_simpy.AGREEMENT_H} h")
    print(f"{'strategy':15s} {'planner':>9s} {'SimPy':>9s} {'ratio':>7s}   "
          + "   ".join(f"{q} % planner / SimPy (Δ)" for q in QS) + "   agree")
    ok = True
    for strategy in strategies:
        best_p = best_s = float("inf")
        plan = simp = None
        for r in range(args.repeat):
            order = ("planner", "simpy") if r % 2 == 0 else ("simpy", "planner")
            for who in order:
                if who == "planner":
                    wall, plan = _run(rollout.plan, fleet, strategy)
                    best_p = min(best_p, wall)
                else:
                    wall, simp = _run(rollout_simpy.simulate, fleet, strategy)
                    best_s = min(best_s, wall)
        sp, ss = report.summary(plan), report.summary(simp)
        cells, agree = [], sp["not_reached"] == ss["not_reached"]
        for q in QS:
            a, b = sp["hours_to"][q], ss["hours_to"][q]
            if a is None or b is None:
                agree &= a is None and b is None
                cells.append(f"{_h(a)} / {_h(b)}")
            else:
                agree &= abs(a - b) <= rollout_simpy.AGREEMENT_H
                cells.append(f"{_h(a)} / {_h(b)} ({(a - b) * 60:+.2f} min)")
        ratio = best_s / best_p
        ok &= agree and ratio >= TARGET_RATIO
        print(f"{strategy.value:15s} {best_p:7.3f} s {best_s:7.2f} s {ratio:6.1f}×   " + "   ".join(cells)
              + f"   {'yes' if agree else 'NO'}{'' if ratio >= TARGET_RATIO else '  (ratio under 10×)'}",
              flush=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
