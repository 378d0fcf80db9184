"""Flakiness over seeds: the suite on the good firmware, once per seed.

Runs `otarig run --seed S --report DIR/seed-S` for S = first .. first+N-1 (default 100 seeds,
at most 2 at a time: the machine has 2 cores), each in its own process, then prints per
scenario how many seeds failed it (target 0) and how many distinct timelines the seeds produced
(sha256 of each scenario's `timeline.jsonl`; a seed that means something gives about one per
seed). The seed drives every random choice of the simulated bench (`otarig.sim.randomness`), so
a verdict that fails on some seeds only depends on a lucky interleaving — a bug in the verdict or
the scenario — unless the firmware really misbehaves then (a finding).

    .venv/bin/python bench/seeds.py                      # 100 seeds, the whole suite
    .venv/bin/python bench/seeds.py --seeds 3 -k "lock_and_flash or forced_update"
    .venv/bin/python bench/seeds.py --json out.json      # the figures as JSON too
    .venv/bin/python bench/seeds.py --summarize DIR      # figures of an earlier --out DIR, run nothing

Exit status 1 when any scenario failed on any seed. The short CI version is
tests/test_seed_sweep.py (3 seeds, 2 scenarios).
"""
from __future__ import annotations

import argparse
import hashlib
import json
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
MAX_JOBS = 2


@dataclass
class SeedRun:
    """One seed's `otarig run`: its exit status and, per scenario, outcome and timeline hash."""

    seed: int
    returncode: int
    wall_s: float
    outcomes: dict[str, str] = field(default_factory=dict)
    timelines: dict[str, str] = field(default_factory=dict)
    tail: str = ""


@dataclass
class Sweep:
    """Figures per scenario over all seeds."""

    runs: list[SeedRun]

    def scenarios(self) -> list[str]:
        return sorted({name for r in self.runs for name in r.outcomes})

    def failures(self) -> dict[str, list[int]]:
        """Scenario → the seeds on which it did not pass (missing from a run counts as failed)."""
        out: dict[str, list[int]] = defaultdict(list)
        for name in self.scenarios():
            for r in self.runs:
                if r.outcomes.get(name, "missing") not in ("passed", "skipped"):
                    out[name].append(r.seed)
        return dict(out)

    def distinct_timelines(self) -> dict[str, int]:
        hashes: dict[str, set[str]] = defaultdict(set)
        for r in self.runs:
            for name, digest in r.timelines.items():
                hashes[name].add(digest)
        return {name: len(hashes[name]) for name in self.scenarios()}

    def as_dict(self) -> dict:
        return {"seeds": [r.seed for r in self.runs], "failures": self.failures(),
                "distinct_timelines": self.distinct_timelines(),
                "runs": [{"seed": r.seed, "returncode": r.returncode, "wall_s": round(r.wall_s, 1)} for r in self.runs]}


def read_report(report: Path) -> tuple[dict[str, str], dict[str, str]]:
    """Per scenario (its node id): outcome and the sha256 of its timeline, from the report folder."""
    outcomes: dict[str, str] = {}
    timelines: dict[str, str] = {}
    for meta_path in sorted(report.glob("tests/*/meta.json")):
        meta = json.loads(meta_path.read_text())
        name = meta.get("nodeid") or meta_path.parent.name
        outcomes[name] = meta.get("outcome", "unknown")
        timeline = meta_path.parent / "timeline.jsonl"
        if timeline.is_file():
            timelines[name] = hashlib.sha256(timeline.read_bytes()).hexdigest()
    record = report / "certification.json"
    if record.is_file():  # the record has every scenario, also one that left no artifacts folder
        for res in json.loads(record.read_text()).get("results", []):
            outcomes.setdefault(res["nodeid"], res["outcome"])
    return outcomes, timelines


def run_seed(seed: int, out: Path, *, keyword: str | None, bench: Path | None, timeout_s: float) -> SeedRun:
    """`otarig run --seed seed --report out/seed-<seed>` in a child process."""
    report = out / f"seed-{seed}"
    cmd = [sys.executable, "-m", "otarig.cli", "run", "--seed", str(seed), "--report", str(report)]
    if keyword:
        cmd += ["-k", keyword]
    if bench:
        cmd += ["--bench", str(bench)]
    start = time.perf_counter()
    try:
        done = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=timeout_s, check=False)
        rc, tail = done.returncode, (done.stdout + done.stderr)[-1500:]
    except subprocess.TimeoutExpired:
        rc, tail = -1, f"timed out after {timeout_s:.0f} s"
    outcomes, timelines = read_report(report) if report.is_dir() else ({}, {})
    return SeedRun(seed, rc, time.perf_counter() - start, outcomes, timelines, tail)


def sweep(seeds: list[int], out: Path, *, jobs: int = MAX_JOBS, keyword: str | None = None,
          bench: Path | None = None, timeout_s: float = 1800, progress: bool = False) -> Sweep:
    """Run every seed, at most `jobs` (≤ 2) at a time."""
    if not 1 <= jobs <= MAX_JOBS:
        raise ValueError(f"--jobs {jobs}: the machine has 2 cores; use 1 or 2")
    runs: list[SeedRun] = []
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        futures = [pool.submit(run_seed, s, out, keyword=keyword, bench=bench, timeout_s=timeout_s) for s in seeds]
        for fut in futures:
            run = fut.result()
            runs.append(run)
            if progress:
                bad = [n for n, o in run.outcomes.items() if o not in ("passed", "skipped")]
                print(f"seed {run.seed}: exit {run.returncode}, {len(run.outcomes)} scenarios, "
                      f"{len(bad)} not passed, {run.wall_s:.0f} s", flush=True)
    return Sweep(runs)


def summarize(out: Path) -> Sweep:
    """The figures of the finished seed runs in `out` (a sweep stopped early included)."""
    runs = []
    for report in sorted(out.glob("seed-*"), key=lambda p: int(p.name.split("-")[1])):
        if not (report / "certification.json").is_file():
            continue  # still running, or stopped before its record
        outcomes, timelines = read_report(report)
        record = json.loads((report / "certification.json").read_text())
        wall = float(record.get("summary", {}).get("duration_wall_s") or 0.0)
        runs.append(SeedRun(int(report.name.split("-")[1]), 0 if record.get("passed") else 1, wall, outcomes, timelines))
    return Sweep(runs)


def print_table(result: Sweep) -> None:
    failures, distinct = result.failures(), result.distinct_timelines()
    n = len(result.runs)
    width = max((len(s) for s in result.scenarios()), default=10)
    print(f"\n{'scenario':<{width}}  failed/{n}  distinct timelines/{n}")
    for name in result.scenarios():
        seeds = failures.get(name, [])
        shown = f" (seeds {', '.join(map(str, seeds[:10]))}{'…' if len(seeds) > 10 else ''})" if seeds else ""
        print(f"{name:<{width}}  {len(seeds):>8}  {distinct.get(name, 0):>8}{shown}")
    total_fail = sum(len(v) for v in failures.values())
    wall = sum(r.wall_s for r in result.runs)
    print(f"\n{n} seeds × {len(result.scenarios())} scenarios: {total_fail} failure(s); "
          f"run time {wall:.0f} s summed over runs")
    for r in result.runs:
        if r.returncode not in (0, 1) or not r.outcomes:
            print(f"seed {r.seed}: exit {r.returncode} without a usable report:\n{r.tail}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seeds", type=int, default=100, help="how many seeds (default 100)")
    ap.add_argument("--first", type=int, default=1, help="first seed (default 1)")
    ap.add_argument("--jobs", type=int, default=MAX_JOBS, help="runs at a time, 1 or 2 (default 2)")
    ap.add_argument("-k", dest="keyword", default=None, help="pytest -k expression: a subset of scenarios")
    ap.add_argument("--bench", type=Path, default=None, help="bench file (default: the repository's)")
    ap.add_argument("--out", type=Path, default=None, help="keep the report folders here (default: a temporary folder)")
    ap.add_argument("--json", type=Path, default=None, help="also write the figures to this JSON file")
    ap.add_argument("--summarize", type=Path, default=None, metavar="DIR",
                    help="run nothing: print the figures of the seed-* reports an earlier --out DIR holds")
    args = ap.parse_args(argv)
    if args.summarize:
        result = summarize(args.summarize)
        print_table(result)
        if args.json:
            args.json.write_text(json.dumps(result.as_dict(), indent=2) + "\n")
        return 1 if result.failures() else 0
    if args.seeds < 1:
        ap.error("--seeds must be at least 1")
    seeds = list(range(args.first, args.first + args.seeds))
    with tempfile.TemporaryDirectory(prefix="otarig-seeds-") as tmp:
        out = args.out or Path(tmp)
        out.mkdir(parents=True, exist_ok=True)
        try:
            result = sweep(seeds, out, jobs=args.jobs, keyword=args.keyword, bench=args.bench, progress=True)
        except ValueError as exc:
            ap.error(str(exc))
    print_table(result)
    if args.json:
        args.json.write_text(json.dumps(result.as_dict(), indent=2) + "\n")
    return 1 if result.failures() else 0


if __name__ == "__main__":
    sys.exit(main())
