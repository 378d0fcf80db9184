"""Scale benchmark of the rollout planner (issues 6, 15): 1,000,000 devices × 90 days, one release,
each strategy — wall time and peak memory. Target: ≤ 10 s and ≤ 2 GB per strategy.

Usage: .venv/bin/python bench/rollout_scale.py [--devices N] [--days D] [--fleet FILE] [--check]

Each strategy runs in a fresh Python process, so its peak memory is its own: the process's peak
RSS (resource.getrusage), interpreter and numpy included; "before" is the RSS once the fleet is
loaded, just before `rollout.plan`. (tracemalloc is not used: it slows numpy-heavy code 2–3×.)
The wall time is `rollout.plan` alone (the vectorised model at this size).
`--check` also runs both models on a 1,000-device copy of the fleet and prints how far apart
their adoption percentiles are.
"""
from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from otarig import rollout  # noqa: E402
from otarig.rollout import aggregate_model, event_model, report  # noqa: E402

TARGET_S = 10.0
TARGET_MB = 2048.0


def _rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize() / 2**20


def _fleet(args: argparse.Namespace) -> rollout.Fleet:
    return rollout.load(args.fleet).scaled(args.devices).model_copy(update={"horizon_days": args.days})


def _child(args: argparse.Namespace) -> int:
    """One strategy in this process; one JSON line on stdout."""
    fleet = _fleet(args)
    strategy = rollout.Strategy(args.child)
    before = _rss_mb()
    t = time.perf_counter()
    res = rollout.plan(fleet, strategy)
    wall = time.perf_counter() - t
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    s = report.summary(res)
    print(json.dumps({"wall": wall, "peak_mb": peak, "before_mb": before, "model": res.model,
                      "steps": res.extra.get("steps"), "hours_to": s["hours_to"], "not_reached": s["not_reached"]}))
    return 0


def _pct(hours_to: dict) -> str:
    return " ".join(f"{q}%={'—' if hours_to[q] is None else format(hours_to[q] / 24, '.2f') + 'd'}"
                    for q in ("50", "90", "99", "100"))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--devices", type=int, default=1_000_000)
    ap.add_argument("--days", type=float, default=90.0)
    ap.add_argument("--fleet", default=str(ROOT / "examples" / "fleets" / "default.toml"))
    ap.add_argument("--check", action="store_true", help="compare the two models on 1,000 devices too")
    ap.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        return _child(args)
    fleet = _fleet(args)
    print(f"fleet {fleet.name!r}: {fleet.size} devices in {len(fleet.cohort)} cohorts, {args.days:g} days; "
          f"one process per strategy; targets ≤ {TARGET_S:g} s, ≤ {TARGET_MB:g} MB")
    ok = True
    for strategy in rollout.ALL:
        cmd = [sys.executable, __file__, "--devices", str(args.devices), "--days", str(args.days),
               "--fleet", args.fleet, "--child", strategy.value]
        out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
        r = json.loads(out.strip().splitlines()[-1])
        good = r["wall"] <= TARGET_S and r["peak_mb"] <= TARGET_MB
        ok &= good
        print(f"{strategy.value:15s} wall {r['wall']:6.2f} s  peak RSS {r['peak_mb']:7.1f} MB "
              f"(before the run {r['before_mb']:6.1f} MB)  {r['model']} steps {r['steps']:5d}  "
              f"{_pct(r['hours_to'])}  not reached {r['not_reached']}  {'ok' if good else 'OVER TARGET'}",
              flush=True)
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
