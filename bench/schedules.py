"""The long profile of the schedule family (tests/test_schedules.py): many drawn schedules.

Runs the property test in a child pytest with `OTARIG_SCHEDULES_LONG=N` (Hypothesis explores
instead of replaying its derandomized CI set; `--seed` makes the exploration reproducible), then
prints what was tried: schedules played, verdicts checked, failing schedules, steps the board
could not take (asleep, off, rebooting), and how often each action was drawn. A failure's shrunk
schedule is written to `--found` for tests/schedules/regressions.json.

    .venv/bin/python bench/schedules.py --examples 200 --seed 1
    .venv/bin/python bench/schedules.py --examples 30 --mutant 3   # a shipped defect: must fail
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--examples", type=int, default=200, help="schedules to draw (default 200)")
    ap.add_argument("--seed", type=int, default=0, help="Hypothesis seed (default 0)")
    ap.add_argument("--mutant", type=int, default=0,
                    help="play on a shipped defect (firmware/mutants/NN-*.patch): the family must find it")
    ap.add_argument("--found", type=Path, default=REPO / "otarig-schedules-found.json",
                    help="where a failing (shrunk) schedule is written")
    args = ap.parse_args(argv)
    if args.examples < 1:
        ap.error("--examples must be at least 1")
    with tempfile.TemporaryDirectory(prefix="otarig-schedules-") as tmp:
        stats_path = Path(tmp) / "stats.json"
        env = {**os.environ, "OTARIG_SCHEDULES_LONG": str(args.examples), "OTARIG_SCHEDULE_SEED": str(args.seed),
               "OTARIG_SCHEDULE_STATS": str(stats_path), "OTARIG_SCHEDULES_FOUND": str(args.found.resolve()),
               "OTARIG_SCHEDULE_MUTANT": str(args.mutant)}
        start = time.perf_counter()
        done = subprocess.run([sys.executable, "-m", "pytest", "tests/test_schedules.py", "-q", "-x",
                               "-p", "no:cacheprovider", "-k", "drawn"], cwd=REPO, env=env,
                              capture_output=True, text=True, check=False)
        wall = time.perf_counter() - start
        stats = json.loads(stats_path.read_text()) if stats_path.is_file() else {}
    print(done.stdout[-4000:] if done.returncode else done.stdout.strip().splitlines()[-1])
    print(f"\nschedules played: {stats.get('schedules', 0)} (Hypothesis examples asked: {args.examples}, "
          f"seed {args.seed}; shrinking replays count too)")
    print(f"verdicts checked: {stats.get('verdicts', 0)}")
    print(f"schedules failing a verdict: {stats.get('failed_schedules', 0)}")
    print(f"steps the board could not take (asleep, off, rebooting): {stats.get('refused_steps', 0)}")
    print("actions drawn: " + ", ".join(f"{k} {n}" for k, n in sorted(stats.get("actions", {}).items())))
    print(f"wall time: {wall:.0f} s")
    if done.returncode:
        print(f"a failing schedule (shrunk) is in {args.found}")
    return done.returncode


if __name__ == "__main__":
    sys.exit(main())
