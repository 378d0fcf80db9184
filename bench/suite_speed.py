"""Benchmark: `otarig run` on the simulated bench — its wall time, the scenarios' own time, and
where the rest goes.

Runs `otarig run` once, in a child process (so interpreter start and imports count, as they do
for a user), with wall-clock spans wrapped around the stages of the run: host builds, pytest's
start, each scenario's setup (composing the simulated bench, the baseline transition), its call,
its teardown (timeline picture, artifacts, closing the bench) and the report at the end. The
spans are measured with `time.perf_counter`; nothing in otarig is changed.

Prints the wall time, the sum of scenario times (the report's per-scenario "wall (s)": pytest's
call phase), their ratio (issue 15 target: ≤ 1.3 on one worker), a table of where the time went,
and the device time covered (issue target: ≥ 7 device-days in under 60 s). Run:
    .venv/bin/python bench/suite_speed.py [--seed N] [-k EXPR]
"""
from __future__ import annotations

import argparse
import functools
import json
import os
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]

#: (module, attribute path, span name): stages wrapped in the child; a missing one is skipped
WRAPPED = [
    ("otarig.runner", "_prebuild", "host builds"),
    ("otarig.runner", "_conclude", "report: record, junit, html, summary"),
    ("otarig.report", "write_html", "report.html"),
    ("otarig.record", "write_record", "certification.json"),
    ("otarig.compose", "compose", "compose the bench"),
    ("otarig.sim.service", "SimService.__init__", "SimService (world, ptys, HTTP, SCPI, tester)"),
    ("otarig.strategy", "BaselineStrategy.transition", "baseline transition"),
    ("otarig.plugin", "_write_artifacts", "write artifacts"),
    ("otarig.plot", "plot_timeline", "timeline.png"),
    ("otarig.timeline", "Timeline.write_jsonl", "timeline.jsonl"),
    ("otarig.rig", "Rig.collect", "rig.collect"),
    ("otarig.rig", "Rig.close", "close the bench"),
    ("otarig.pictures", "TimelinePictures.close", "wait for the last timeline pictures"),
    ("otarig.runner", "_run_pytest", "pytest run"),
]

#: how the table nests: child span → parent span
PARENT = {
    "compose the bench": "scenario setup", "baseline transition": "scenario setup",
    "SimService (world, ptys, HTTP, SCPI, tester)": "compose the bench",
    "write artifacts": "scenario teardown", "close the bench": "scenario teardown",
    "wait for the last timeline pictures": "scenario teardown",
    "timeline.png": "write artifacts", "timeline.jsonl": "write artifacts",
    "report.html": "report: record, junit, html, summary",
    "certification.json": "report: record, junit, html, summary",
}


class Spans:
    """Durations by name, summed; only the outermost of nested calls of one name counts."""

    def __init__(self) -> None:
        self.total: dict[str, float] = defaultdict(float)
        self.count: dict[str, int] = defaultdict(int)
        self.marks: dict[str, float] = {}
        self._depth: dict[str, int] = defaultdict(int)

    def wrap(self, fn: Callable[..., Any], name: str) -> Callable[..., Any]:
        @functools.wraps(fn)
        def timed(*args: Any, **kwargs: Any) -> Any:
            self._depth[name] += 1
            t0 = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                self._depth[name] -= 1
                if not self._depth[name]:
                    self.add(name, time.perf_counter() - t0)
                    self.marks[f"{name} ends"] = time.time()
        return timed

    def add(self, name: str, seconds: float) -> None:
        self.total[name] += seconds
        self.count[name] += 1

    def mark(self, name: str) -> None:
        self.marks.setdefault(name, time.time())


class _PhasePlugin:
    """pytest's own view: setup/call/teardown of each scenario, and the session's edges."""

    def __init__(self, spans: Spans) -> None:
        self.spans = spans

    def pytest_sessionstart(self) -> None:
        self.spans.mark("pytest session start")

    def pytest_runtest_logstart(self) -> None:
        self.spans.mark("first scenario starts")

    def pytest_runtest_logreport(self, report: Any) -> None:
        self.spans.add(f"scenario {report.when}", report.duration)
        self.spans.marks["last scenario ends"] = report.stop

    def pytest_sessionfinish(self) -> None:
        self.spans.marks["pytest session finish"] = time.time()


def _install(spans: Spans) -> None:
    import importlib

    import pytest

    for module, attr, name in WRAPPED:
        try:
            owner: Any = importlib.import_module(module)
        except ImportError:
            continue
        *path, last = attr.split(".")
        for part in path:
            owner = getattr(owner, part)
        if hasattr(owner, last):
            setattr(owner, last, spans.wrap(getattr(owner, last), name))
    main = pytest.main

    def main_with_phases(args: Any, plugins: Any = None) -> Any:
        spans.mark("pytest.main")
        return main(args, plugins=[*(plugins or []), _PhasePlugin(spans)])

    pytest.main = main_with_phases  # type: ignore[assignment]


def _count_gc(spans: Spans) -> None:
    """Garbage collection as a span of its own (it runs inside whichever stage allocates)."""
    import gc

    started: list[float] = []

    def on_gc(phase: str, info: dict) -> None:
        if phase == "start":
            started.append(time.perf_counter())
        elif started:
            spans.add(f"garbage collection (generation {info['generation']})", time.perf_counter() - started.pop())

    gc.callbacks.append(on_gc)


def child(spans_path: Path, argv: list[str]) -> int:
    """In the child: wrap the stages, run `otarig` with `argv`, write the spans."""
    spans = Spans()
    spans.mark("child imports otarig")
    _count_gc(spans)
    from otarig import cli

    _install(spans)
    code = 1
    try:
        code = cli.main(argv)
    finally:
        spans.marks["otarig exits"] = time.time()
        spans_path.write_text(json.dumps({"total": spans.total, "count": spans.count, "marks": spans.marks}))
    return code


def _table(data: dict, wall: float, started: float) -> list[tuple[str, float, int]]:
    total, count, marks = data["total"], data["count"], data["marks"]
    rows: list[tuple[str, float, int]] = []
    edges = [("interpreter start, imports", started, marks.get("child imports otarig")),
             ("otarig startup to pytest", marks.get("child imports otarig"), marks.get("pytest.main")),
             ("pytest start, collection", marks.get("pytest.main"), marks.get("first scenario starts"))]
    span = {name: (b - a) if a is not None and b is not None else 0.0 for name, a, b in edges}
    builds = total.get("host builds", 0.0)
    rows.append(("interpreter start, imports", span["interpreter start, imports"], 1))
    rows.append(("otarig startup (host builds inside)", span["otarig startup to pytest"], 1))
    rows.append(("  host builds", builds, count.get("host builds", 0)))
    rows.append(("pytest start, collection", span["pytest start, collection"], 1))
    for phase in ("setup", "call", "teardown"):
        rows.append((f"scenario {phase}", total.get(f"scenario {phase}", 0.0), count.get(f"scenario {phase}", 0)))
        for name in _children(f"scenario {phase}", total):
            rows.extend(_subtree(name, total, count, 1))
    scenarios = sum(total.get(f"scenario {p}", 0.0) for p in ("setup", "call", "teardown"))
    in_pytest = (marks.get("last scenario ends", 0) - marks.get("first scenario starts", 0))
    rows.append(("between scenarios (pytest)", max(in_pytest - scenarios, 0.0), 1))
    rows.append(("pytest end (session finish, junit, summary)", _gap(marks, "pytest session finish", "pytest run ends"), 1))
    for name in _children("report: record, junit, html, summary", total, include_self=True):
        rows.extend(_subtree(name, total, count, 0))
    rows.append(("interpreter exit", started + wall - marks.get("otarig exits", started + wall), 1))
    for generation in range(3):
        name = f"garbage collection (generation {generation})"
        if name in total:
            rows.append((f"  (inside the above) {name}", total[name], count[name]))
    accounted = sum(seconds for name, seconds, _ in rows if not name.startswith(" "))
    rows.append(("elsewhere", wall - accounted, 1))
    return rows


def _gap(marks: dict, start: str, end: str) -> float:
    return marks[end] - marks[start] if start in marks and end in marks else 0.0


def _children(parent: str, total: dict, include_self: bool = False) -> list[str]:
    if include_self:
        return [parent] if parent in total else []
    return [name for name in total if PARENT.get(name) == parent]


def _subtree(name: str, total: dict, count: dict, depth: int) -> list[tuple[str, float, int]]:
    rows = [("  " * depth + name, total[name], count[name])]
    for sub in _children(name, total):
        rows.extend(_subtree(sub, total, count, depth + 1))
    return rows


def main() -> int:
    if len(sys.argv) > 1 and sys.argv[1].startswith("--child="):
        return child(Path(sys.argv[1].partition("=")[2]), sys.argv[2:])
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("-k", default=None, help="only scenarios matching this pytest -k expression")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "report"
        spans_path = Path(tmp) / "spans.json"
        argv = ["run", f"--bench={REPO / 'bench_config.toml'}", f"--seed={args.seed}", f"--report={out}"]
        if args.k:
            argv += ["-k", args.k]
        started = time.time()
        t0 = time.perf_counter()
        proc = subprocess.run([sys.executable, __file__, f"--child={spans_path}", *argv], cwd=REPO, check=False,
                              stdout=subprocess.DEVNULL, env={**os.environ, "PYTHONUNBUFFERED": "1"})
        wall = time.perf_counter() - t0
        data = json.loads(spans_path.read_text())
        record = json.loads((out / "certification.json").read_text())
    scenarios = record.get("scenarios") or record.get("results") or []
    call = data["total"].get("scenario call", 0.0)
    device_s = sum(s.get("device_time_s") or 0 for s in scenarios)
    print(f"{'otarig run':<44}exit {proc.returncode}, {len(scenarios)} scenarios, load {os.getloadavg()[0]:.2f}")
    print(f"{'wall time':<44}{wall:7.1f} s")
    print(f"{'sum of scenario times (call)':<44}{call:7.1f} s")
    print(f"{'ratio wall / scenario times':<44}{wall / call if call else float('nan'):7.2f}   (target <= 1.3)")
    print()
    print(f"{'where the time went':<44}{'seconds':>8}{'calls':>7}")
    for name, seconds, n in _table(data, wall, started):
        print(f"{name:<44}{seconds:8.2f}{n:7d}")
    print()
    print(f"{'device time covered':<44}{device_s / 86400:.2f} device-days ({device_s:,.0f} s)")
    print(f"{'target':<44}>= 7 device-days in < 60 s: "
          f"{'met' if device_s >= 7 * 86400 and wall < 60 else 'NOT met'}")
    return proc.returncode


if __name__ == "__main__":
    sys.exit(main())
