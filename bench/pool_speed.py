"""Benchmark: the board pool. The full suite on the simulated bench with 1 worker, then with N
(`otarig run --workers N`), each in a child process as a user runs it.

Prints each run's wall time, scenarios passed, the throughput ratio (issue 14 target with 2
workers on this 2-core machine: ≥ 1.7×), the load average before and after each run (the machine
is shared: a figure taken under load says so), and whether every scenario's timeline is the same
byte for byte in both runs (a scenario must not depend on which worker ran it). Run:
    .venv/bin/python bench/pool_speed.py [--workers 2] [-k EXPR] [--seed N]
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def run(report: Path, workers: int, select: str | None, seed: int) -> dict:
    """One `otarig run`; its wall time, outcome counts and the load average around it."""
    cmd = [sys.executable, "-m", "otarig.cli", "run", "--bench", str(REPO / "bench_config.toml"),
           "--report", str(report), "--seed", str(seed), "--workers", str(workers)]
    if select:
        cmd += ["-k", select]
    load_before = os.getloadavg()
    t0 = time.perf_counter()
    done = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - t0
    record = json.loads((report / "certification.json").read_text())
    failed = [f"{r['name']}: {(r.get('reason') or '')[:200]}" for r in record["results"]
              if r["outcome"] in ("failed", "error")]
    return {"workers": workers, "wall_s": wall, "exit": done.returncode, "summary": record["summary"], "failed": failed,
            "load_before": load_before, "load_after": os.getloadavg(),
            "timelines": timelines(report / "tests")}


def timelines(tests: Path) -> dict[str, str]:
    """Scenario folder → SHA-256 of its timeline.jsonl."""
    return {p.parent.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(tests.glob("*/timeline.jsonl"))}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("-k", default=None, help="only scenarios matching this -k expression (default: the suite)")
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    print(f"{os.cpu_count()} CPUs; the full suite on the simulated bench, seed {args.seed}")
    with tempfile.TemporaryDirectory(prefix="otarig-pool-speed-") as tmp:
        subprocess.run([sys.executable, "-m", "otarig.cli", "run", "--report", f"{tmp}/warm", "-k", "lock_and_flash"],
                       cwd=REPO, capture_output=True, check=False)  # host builds into the cache, outside the timing
        one = run(Path(tmp) / "one", 1, args.k, args.seed)
        many = run(Path(tmp) / "many", args.workers, args.k, args.seed)
    for r in (one, many):
        s = r["summary"]
        print(f"  {r['workers']} worker(s): {r['wall_s']:7.1f} s wall, exit {r['exit']}, "
              f"{s.get('passed')} passed / {s.get('failed')} failed / {s.get('error')} error / "
              f"{s.get('skipped')} skipped; load average {r['load_before'][0]:.2f} before, "
              f"{r['load_after'][0]:.2f} after")
        for line in r["failed"]:
            print(f"    failed: {line}")
    ratio = one["wall_s"] / many["wall_s"]
    print(f"throughput with {args.workers} workers: {ratio:.2f}x that of 1 (target >= 1.7x with 2)")
    same = [k for k in one["timelines"] if one["timelines"][k] == many["timelines"].get(k)]
    differ = sorted(set(one["timelines"]) ^ set(many["timelines"]) | {k for k in one["timelines"] if k not in same})
    print(f"timelines identical in both runs: {len(same)} of {len(one['timelines'])}"
          + (f"; differ: {', '.join(differ)}" if differ else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
