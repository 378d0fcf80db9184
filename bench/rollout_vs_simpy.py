"""The rollout planner against a SimPy model of the same rules (issue 15): wall times, ratio, agreement.

Usage: .venv/bin/python bench/rollout_vs_simpy.py [--devices N] [--days D] [--fleet FILE]
                                                  [--strategies S1,S2,…|all] [--repeat R] [--batch B]

Needs the bench extra (`pip install -e '.[bench]'`, SimPy). For each strategy the models run one
after the other on the same fleet and seed — the planner (`rollout.plan`), the SimPy model with
the whole fleet in one environment, and the same SimPy model in batches of B devices (its fastest
form; same results) — `--repeat` times, rotating which goes first, so a change of machine load
hits all of them; the best wall time of each is kept (set-up included). The ratio is taken
against the faster SimPy form. Agreement: the 50/90/99 % times of the planner and of SimPy, and
their difference, checked against `rollout_simpy.AGREEMENT_H`. Target: planner ≥ 10× SimPy.
"""
from __future__ import annotations

import argparse
import gc
import sys
import time
from pathlib import Path
from typing import Callable

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "bench"))

import numpy as np  # noqa: E402
import rollout_simpy  # noqa: E402

from otarig import rollout  # noqa: E402
from otarig.rollout import report  # noqa: E402
from otarig.rollout.common import RolloutResult  # noqa: E402

TARGET_RATIO = 10.0
QS = ("50", "90", "99")


def _timed(fn: Callable[[], RolloutResult]) -> tuple[float, RolloutResult]:
    gc.collect()
    t = time.perf_counter()
    res = fn()
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
    ap.add_argument("--batch", type=int, default=200, help="devices per SimPy environment in the batched form")
    args = ap.parse_args()
    fleet = rollout.load(args.fleet).scaled(args.devices).model_copy(update={"horizon_days": args.days})
    strategies = rollout.parse_strategies(args.strategies)
    print(f"fleet {fleet.name!r} (seed {fleet.seed}): {fleet.size} devices in {len(fleet.cohort)} cohorts, "
          f"{args.days:g} days; best of {args.repeat}; SimPy in one environment and in batches of {args.batch}; "
          f"agreement tolerance {rollout_simpy.AGREEMENT_H} h")
    print(f"{'strategy':15s} {'planner':>9s} {'SimPy':>8s} {'batched':>8s} {'ratio':>7s} {'SimPy events':>13s}   "
          + "   ".join(f"{q} % planner / SimPy (Δ)" for q in QS) + "   agree")
    runs: dict[str, Callable[[rollout.Strategy], RolloutResult]] = {
        "planner": lambda s: rollout.plan(fleet, s),
        "simpy": lambda s: rollout_simpy.simulate(fleet, s),
        "batched": lambda s: rollout_simpy.simulate(fleet, s, chunk=args.batch),
    }
    ok = True
    for strategy in strategies:
        best = dict.fromkeys(runs, float("inf"))
        res: dict[str, RolloutResult] = {}
        names = list(runs)
        for r in range(args.repeat):
            for who in names[r % 3:] + names[:r % 3]:
                wall, res[who] = _timed(lambda: runs[who](strategy))
                best[who] = min(best[who], wall)
        sp, ss = report.summary(res["planner"]), report.summary(res["simpy"])
        same_batched = all(np.array_equal(getattr(res["simpy"], f), getattr(res["batched"], f))
                           for f in ("updated_at", "resumes", "full_handshakes", "retry_bytes"))
        cells, agree = [], sp["not_reached"] == ss["not_reached"] and same_batched
        for q in QS:
            a, b = sp["hours_to"][q], ss["hours_to"][q]
            if a is None or b is None:
                agree &= a is None and b is None
                cells.append(f"{_h(a)} / {_h(b)}")
            else:
                agree &= abs(a - b) <= rollout_simpy.AGREEMENT_H
                cells.append(f"{_h(a)} / {_h(b)} ({(a - b) * 60:+.2f} min)")
        ratio = min(best["simpy"], best["batched"]) / best["planner"]
        ok &= agree and ratio >= TARGET_RATIO
        print(f"{strategy.value:15s} {best['planner']:7.3f} s {best['simpy']:6.2f} s {best['batched']:6.2f} s "
              f"{ratio:6.1f}× {res['simpy'].extra['events']:13d}   " + "   ".join(cells)
              + f"   {'yes' if agree else 'NO'}{'' if same_batched else ' (batched SimPy differs!)'}"
              + ("" if ratio >= TARGET_RATIO else "  (ratio under 10×)"), flush=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
