"""The suite over the real-bench path, against a stand-in bench in another process; prints figures.

For each build (the good one, then each shipped defect with --mutants) it starts
`otarig sim --speed S --bench-file …` in its own process, runs `otarig run --bench …` against it
(a profile: --max-budget, or --long for every scenario), and prints the wall time and the
verdict; a defective build is run with -x and must fail (the scenario that caught it is shown).

    .venv/bin/python bench/standin_profile.py                      # CI profile, good build
    .venv/bin/python bench/standin_profile.py --mutants 1 2 3 4 5 6 --only-mutants
    .venv/bin/python bench/standin_profile.py --speed 400 --long    # every non-sim_only scenario
"""
from __future__ import annotations

import argparse
import json
import os
import secrets
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
OTARIG = [sys.executable, "-m", "otarig.cli"]


def _why(report: Path, name: str) -> str:
    """The first failed verdict of a scenario, else the last `E ` line pytest printed for it."""
    for meta_path in report.glob("tests/*/meta.json"):
        meta = json.loads(meta_path.read_text())
        if meta.get("name") != name:
            continue
        for v in meta.get("verdicts", []):
            if not v["passed"]:
                return f"{v['name']}: {v['message']}"
        lines = [ln.strip() for ln in meta.get("longrepr", "").splitlines() if ln.startswith("E ")]
        return lines[0][2:].strip()[:160] if lines else "error"
    return "no artifacts"


def run_profile(work: Path, *, speed: float, mutant: int, max_budget: float | None, long: bool) -> dict:
    env = {**os.environ, "OTARIG_STANDIN_TOKEN": secrets.token_hex(20)}
    bench = work / "bench-standin.toml"
    sim = subprocess.Popen([*OTARIG, "sim", "--json", "--speed", str(speed), "--bench-file", str(bench),
                            "--mutant", str(mutant)], cwd=work, env=env, stdout=subprocess.PIPE,
                           stderr=subprocess.DEVNULL, text=True)
    try:
        if not (sim.stdout and sim.stdout.readline()):
            raise SystemExit("otarig sim did not start")
        args = ["run", "--bench", str(bench), "--report", str(work / "report")]
        args += ["--long"] if long else []
        args += ["--max-budget", str(max_budget)] if max_budget is not None else []
        args += ["-x"] if mutant else []
        t0 = time.perf_counter()
        done = subprocess.run([*OTARIG, *args], cwd=REPO, env=env, capture_output=True, text=True)
        wall = time.perf_counter() - t0
    finally:
        sim.terminate()
        sim.wait(timeout=60)
    record = json.loads((work / "report" / "certification.json").read_text())
    failed = [f"{r['name']} ({_why(work / 'report', r['name'])})" for r in record["results"]
              if r["outcome"] in ("failed", "error")]
    return {"mutant": mutant, "exit": done.returncode, "passed": record["passed"], "wall_s": round(wall, 1),
            "summary": record["summary"], "failed": failed,
            "device_time_s": record["summary"]["device_time_s"]}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--speed", type=float, default=20)
    ap.add_argument("--max-budget", type=float, default=2400)
    ap.add_argument("--long", action="store_true", help="every scenario that is not sim_only (no budget limit)")
    ap.add_argument("--mutants", type=int, nargs="*", default=[])
    ap.add_argument("--only-mutants", action="store_true")
    args = ap.parse_args()
    budget = None if args.long else args.max_budget
    builds = ([] if args.only_mutants else [0]) + list(args.mutants)
    ok = True
    for m in builds:
        with tempfile.TemporaryDirectory(prefix="otarig-standin-") as tmp:
            r = run_profile(Path(tmp), speed=args.speed, mutant=m, max_budget=budget, long=args.long)
        s = r["summary"]
        label = "good build" if m == 0 else f"mutant {m}"
        print(f"{label:<11} x{args.speed:g}  exit {r['exit']}  passed={r['passed']}  wall {r['wall_s']:.0f} s  "
              f"scenarios {s['passed']} passed / {s['failed'] + s['error']} failed / {s['skipped']} skipped  "
              f"bench time {r['device_time_s'] / 3600:.2f} h" + (f"  caught by: {', '.join(r['failed'])}" if m else ""))
        if m == 0:
            for f in r["failed"]:
                print(f"    failed: {f}")
        ok &= r["passed"] if m == 0 else (not r["passed"] and bool(r["failed"]))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
