"""Scale benchmark of the rollout planner (issue #6): 100,000 devices × 30 days, one release,
each strategy — wall time and peak memory. Target: < 20 s and < 2 GB per strategy.

Usage: .venv/bin/python bench/rollout_scale.py [--devices N] [--days D] [--fleet FILE] [--check]

The per-device event model runs ~10^4–10^5 events/s in Python, so at this size the planner uses
its vectorised twin (`otarig.rollout.aggregate_model`); `--check` also runs both models on a
1,000-device copy of the fleet and prints how far apart their adoption percentiles are.
Peak memory is tracemalloc's peak of Python + numpy allocations during the strategy's run, and
the process's peak RSS (resource.getrusage) after it.
"""
from __future__ import annotations

import argparse
import resource
import sys
import time
import tracemalloc
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from otarig import rollout  # noqa: E402
from otarig.rollout import aggregate_model, event_model, report  # noqa: E402

TARGET_S = 20.0
TARGET_MB = 2048.0


def _pct(s: dict) -> str:
    return " ".join(f"{q}%={'—' if s['hours_to'][q] is None else format(s['hours_to'][q] / 24, '.2f') + 'd'}"
                    for q in ("50", "90", "99", "100"))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--devices", type=int, default=100_000)
    ap.add_argument("--days", type=float, default=30.0)
    ap.add_argument("--fleet", default=str(ROOT / "examples" / "fleets" / "default.toml"))
    ap.add_argument("--check", action="store_true", help="compare the two models on 1,000 devices too")
    args = ap.parse_args()
    fleet = rollout.load(args.fleet).scaled(args.devices).model_copy(update={"horizon_days": args.days})
    print(f"fleet {fleet.name!r}: {fleet.size} devices in {len(fleet.cohort)} cohorts, {args.days:g} days, "
          f"vectorised model")
    ok = True
    for strategy in rollout.ALL:
        tracemalloc.start()
        t = time.perf_counter()
        res = aggregate_model.simulate(fleet, strategy)
        wall = time.perf_counter() - t
        peak_mb = tracemalloc.get_traced_memory()[1] / 2**20
        tracemalloc.stop()
        rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        s = report.summary(res)
        good = wall < TARGET_S and peak_mb < TARGET_MB
        ok &= good
        print(f"{strategy.value:15s} wall {wall:6.2f} s  peak {peak_mb:7.1f} MB (process RSS {rss_mb:6.0f} MB)  "
              f"steps {res.extra['steps']:5d}  {_pct(s)}  not reached {s['not_reached']}  "
              f"{'ok' if good else 'OVER TARGET'}")
    if args.check:
        small = fleet.scaled(1000)
        print("event model vs vectorised model on 1,000 devices (hours; Δ = vectorised − event):")
        for strategy in rollout.ALL:
            e = report.summary(event_model.simulate(small, strategy))
            a = report.summary(aggregate_model.simulate(small, strategy))
            diffs = []
            for q in ("50", "90", "99", "100"):
                x, y = e["hours_to"][q], a["hours_to"][q]
                diffs.append(f"{q}%: {x} vs {y}" + ("" if x is None or y is None else f" (Δ {y - x:+.4f} h)"))
            print(f"  {strategy.value:15s} " + "; ".join(diffs) +
                  f"; not reached {e['not_reached']} vs {a['not_reached']}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
