"""Runs the suite against defective builds: the good build once, then each defect until it fails.

Each defect is a project copy (otarig.mutation.projects) run as `pytest --firmware=COPY -x` in its
own process, `jobs` at a time. Scenarios that have killed most so far go first, so most defects
die in their first scenario; a defect that hangs is stopped at a wall-clock limit and counts as
killed by timeout (a real bench's watchdog would see the same silence). Outcomes are cached by
everything that decides them (the rig, the suite, the bench file, the seed, the defect's sources),
so a re-run only runs what changed.
"""
from __future__ import annotations

import hashlib
import importlib.resources
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
import xml.etree.ElementTree as ET
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path

from .. import __version__, resources
from ..config import load as load_config
from ..sim import sanitizer
from ..sim.build import BuildError, build_firmware, companion_project
from .equivalence import code_digest
from .generate import Mutant
from .projects import project_copy
from .shipped import shipped_defect_project

__all__ = ["KILLED", "NOT_RUN", "Candidate", "MutationEngine", "Outcome", "SuiteRun", "Variant",
           "sanitizer_report"]

#: outcomes that count as the suite catching the defect
KILLED = frozenset({"killed", "timeout", "crashed"})
#: outcomes of mutants that are not counted (never ran, or cannot differ)
NOT_RUN = frozenset({"invalid", "tce", "equivalent", "allowed"})
#: the builds compared for trivial equivalence (version, threaded): both threading models
TCE_VARIANTS = ((1, True), (1, False))
#: the good build's per-scenario wall-clock limit: generous, since its times set the defects' limits
GOOD_SCENARIO_TIMEOUT_S = 1200.0


@dataclass
class Candidate:
    """A defective build to run: a shipped patch (`shipped` > 0) or a generated mutant."""

    key: str
    label: str
    shipped: int = 0
    mutant: Mutant | None = None


@dataclass
class Outcome:
    status: str                     # killed, timeout, crashed, survived, invalid, tce, equivalent, allowed
    killed_by: list[str] = field(default_factory=list)
    wall_s: float = 0.0
    detail: str = ""
    cached: bool = False


@dataclass(frozen=True)
class Variant:
    """Another way to build and run the same firmware, for a second look at the survivors
    (docs/selftest.md "A second look at survivors"): a defect no plain scenario can see may still
    be seen by the sanitizer or by the firmware's other threading model."""

    name: str                                   # "sanitized", "non-threaded": in ids of runs and caches
    why: str                                    # what it can see that the plain build cannot
    args: tuple[str, ...] = ()                  # what it adds to the suite's command line (otarig.plugin)
    env: tuple[tuple[str, str], ...] = ()       # what it adds to the suite process's environment


@dataclass
class SuiteRun:
    failed: list[str]
    durations: dict[str, float]
    wall_s: float
    ran: int


def _digest_tree(digest: hashlib._Hash, root: Path, suffixes: tuple[str, ...]) -> None:
    for p in sorted(root.rglob("*")):
        if p.is_file() and p.suffix in suffixes and "__pycache__" not in p.parts:
            digest.update(p.relative_to(root).as_posix().encode() + b"\0" + p.read_bytes())


def sanitizer_report(out: Path) -> str | None:
    """The first memory error the sanitizer reported in a run's folder (otarig.sim.sanitizer), if any."""
    found = sanitizer.first_report(out)
    return found[0] if found else None


def _in_project(text: str, project: str) -> str:
    """Paths into a copy of the project (or another copy a cached build was made from, the same
    sources) as the project's own: lib/RecordLog/src/RecordLog.cpp:83."""
    return re.sub(rf"\S*/{re.escape(project)}/(?=(?:src|lib)/)", "", text)


def _scenario_of(out: Path) -> str:
    """The scenario the sanitizer stopped: the one whose artifacts folder was written last (the
    plugin names each after its scenario)."""
    tests = [p for p in (out / "tests").glob("*") if p.is_dir()]
    if not tests:
        return "a scenario"
    newest = max(tests, key=lambda p: p.stat().st_mtime_ns).name
    return newest.split(".py_", 1)[-1]


class MutationEngine:
    """One selftest session: a bench file, a suite, a base project, a report folder."""

    def __init__(self, bench_path: Path, suite: Path, report_dir: Path, *, project: Path | None, seed: int,
                 jobs: int, pinned: list[str], timeout_factor: float = 3.0) -> None:
        self.bench_path, self.suite, self.report_dir = bench_path, suite, report_dir
        self.project = project
        self.base = (project or companion_project()).resolve()
        self.seed, self.jobs, self.pinned = seed, max(1, jobs), pinned
        self.timeout_factor = timeout_factor
        self.kills: Counter[str] = Counter()
        self.durations: dict[str, float] = {}
        self.nodeids: list[str] = []
        self.timeout_s = 1800.0
        self.scenario_timeout_s: float | None = None
        self._lock = threading.Lock()
        self._base_digests: dict[tuple[int, bool], str] = {}
        self._session_key = self._session_digest()
        self.results_dir = resources.build_cache_dir() / "selftest-results"
        self.results_dir.mkdir(parents=True, exist_ok=True)

    # -- what decides an outcome -------------------------------------------------------------------
    def _session_digest(self) -> str:
        d = hashlib.sha256(f"{__version__}\0{self.seed}\0".encode())
        d.update(self.bench_path.read_bytes())
        _digest_tree(d, Path(str(importlib.resources.files("otarig"))), (".py", ".ini"))  # the rig, its verdicts
        _digest_tree(d, self.suite, (".py",))
        _digest_tree(d, resources.firmware_dir() / "host", (".cpp", ".h", ".map"))
        _digest_tree(d, self.base, (".cpp", ".c", ".h", ".hpp", ".ino", ".properties"))
        return d.hexdigest()

    def _cache_path(self, c: Candidate, variant: Variant | None = None) -> Path:
        d = hashlib.sha256(self._session_key.encode())
        if variant is not None:
            d.update("\0".join(("variant", variant.name, *variant.args, "")).encode())
        # the scenarios run decide a survivor: one that survived a `-k` subset may die in the rest
        d.update("\0".join(sorted(self.nodeids)).encode() + b"\0")
        d.update(c.key.encode() + b"\0")
        if c.mutant is not None:
            d.update(c.mutant.text.encode())
        elif c.shipped:
            d.update(shipped_defect_project(c.shipped).as_posix().encode())  # named by the patch's hash
        return self.results_dir / f"{d.hexdigest()[:32]}.json"

    # -- the suite as a subprocess -----------------------------------------------------------------
    def _pytest(self, out: Path, args: list[str], variant: Variant | None = None) -> subprocess.Popen:
        out.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, "PYTHONUNBUFFERED": "1", **dict(variant.env if variant is not None else ())}
        if sanitizer.ENV in env:  # its reports in the run's folder: pytest holds stderr, and the halt loses it
            env["ASAN_OPTIONS"] = f"{env.get('ASAN_OPTIONS', '')}:log_path={out / 'sanitizer'}".lstrip(":")
        cmd = [sys.executable, "-m", "pytest", *args, *(variant.args if variant is not None else ()),
               f"--bench={self.bench_path}", f"--seed={self.seed}",
               f"--otarig-artifacts={out / 'tests'}", f"--junitxml={out / 'junit.xml'}", "-q",
               "-p", "no:cacheprovider", *self.pinned]
        log = open(out / "pytest.log", "w")
        return subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, cwd=self.suite.parent,
                                env=env, start_new_session=True)

    def collect(self, select: str | None = None) -> list[str]:
        """The suite's scenario ids (those matching `-k select`), in collection order."""
        proc = subprocess.run([sys.executable, "-m", "pytest", str(self.suite), "--collect-only", "-q",
                               *(["-k", select] if select else []),
                               f"--bench={self.bench_path}", "-p", "no:cacheprovider", *self.pinned],
                              capture_output=True, text=True, cwd=self.suite.parent, timeout=600, check=False)
        ids = [ln.strip() for ln in proc.stdout.splitlines() if "::" in ln and not ln.startswith(" ")]
        if not ids:
            raise RuntimeError(f"the suite {self.suite} collected no scenarios:\n{proc.stdout[-2000:]}{proc.stderr[-2000:]}")
        self.nodeids = ids
        return ids

    @staticmethod
    def _junit(out: Path) -> tuple[list[str], dict[str, float], int, bool] | None:
        """(failed scenarios, durations, how many ran, whether a failure was a scenario timeout)."""
        junit = out / "junit.xml"
        if not junit.exists():
            return None
        failed, durations, ran, timed_out = [], {}, 0, False
        for case in ET.parse(junit).getroot().iter("testcase"):
            name = case.get("name", "?")
            cls = case.get("classname", "")
            node = cls.replace(".", "/") + ".py::" + name if cls else name
            ran += 1
            durations[node] = float(case.get("time", 0) or 0)
            bad = case.find("failure") if case.find("failure") is not None else case.find("error")
            if bad is not None:
                failed.append(node)
                timed_out = timed_out or "Timeout (>" in (bad.get("message") or "")
        return failed, durations, ran, timed_out

    def good_run(self, variant: Variant | None = None) -> SuiteRun:
        """The whole suite on the unmodified firmware: it must pass; its durations order the rest.
        With a `variant`, the same for that variant, whose survivor runs need it to pass too."""
        folder = "good" if variant is None else f"good-{variant.name}"
        out = self.report_dir / "runs" / folder
        shutil.rmtree(out, ignore_errors=True)
        args = [*self.nodeids, *([f"--firmware={self.project}"] if self.project else []),
                f"--scenario-timeout={GOOD_SCENARIO_TIMEOUT_S:.0f}"]
        t0 = time.perf_counter()
        proc = self._pytest(out, args, variant)
        proc.wait()
        wall = time.perf_counter() - t0
        memory_error = sanitizer_report(out)
        if memory_error is not None:
            return SuiteRun([f"(AddressSanitizer: {memory_error})"], {}, wall, 0)
        parsed = self._junit(out)
        if parsed is None:
            return SuiteRun([f"(the suite did not run: see runs/{folder}/pytest.log)"], {}, wall, 0)
        failed, durations, ran, _ = parsed
        if variant is not None:
            return SuiteRun(failed, durations, wall, ran)
        self.durations = durations
        self.timeout_s = max(300.0, self.timeout_factor * wall)
        # A scenario's wall-clock limit from its good-build time: on a loaded machine the longest
        # ones come close to the plugin's default, and load must not pass for a hang.
        self.scenario_timeout_s = max(240.0, self.timeout_factor * max(durations.values(), default=0.0))
        return SuiteRun(failed, durations, wall, ran)

    def order(self) -> list[str]:
        """Scenarios that killed most first, then the quickest."""
        with self._lock:
            kills = dict(self.kills)
        return sorted(self.nodeids, key=lambda n: (-kills.get(n, 0), self.durations.get(n, 1e9)))

    # -- one defect --------------------------------------------------------------------------------
    def prepare(self, c: Candidate) -> tuple[Path | None, Outcome | None]:
        """The defect's project copy, or its outcome when it needs no run (invalid or TCE)."""
        if c.shipped:
            return shipped_defect_project(c.shipped), None
        assert c.mutant is not None
        copy = project_copy(self.base, files={c.mutant.file: c.mutant.text}, label=c.key.replace(":", "-"))
        same = True
        for version, threaded in TCE_VARIANTS:
            try:
                so = build_firmware(version, project=copy, threaded=threaded)
            except BuildError as exc:
                errors = [ln.strip() for ln in str(exc).splitlines() if "error" in ln]
                return None, Outcome("invalid", detail=(errors or ["does not compile"])[0][:300])
            if (version, threaded) not in self._base_digests:
                self._base_digests[(version, threaded)] = code_digest(
                    build_firmware(version, project=self.base, threaded=threaded))
            same = same and code_digest(so) == self._base_digests[(version, threaded)]
        return copy, (Outcome("tce", detail="same machine code as the original") if same else None)

    def other_threading(self) -> str | None:
        """The threading model the bench file does not run ("threaded" or "non-threaded"), when the
        firmware can be built either way (OTARIG_THREADED changes its machine code); else None."""
        digests = []
        for threaded in (True, False):
            if (1, threaded) not in self._base_digests:
                self._base_digests[(1, threaded)] = code_digest(
                    build_firmware(1, project=self.base, threaded=threaded))
            digests.append(self._base_digests[(1, threaded)])
        if digests[0] == digests[1]:
            return None
        return "non-threaded" if load_config(self.bench_path).simulation.threaded else "threaded"

    def cached(self, c: Candidate, variant: Variant | None = None) -> Outcome | None:
        path = self._cache_path(c, variant)
        if not path.is_file():
            return None
        o = Outcome(**json.loads(path.read_text()))
        o.cached = True
        if o.status in KILLED and variant is None:
            with self._lock:
                self.kills.update(o.killed_by[:1])
        return o

    def _fleet_release(self) -> list[str]:
        """The fleet's release a mutant must upgrade from: the unmutated project, unless the bench
        file names the release in the field (otarig.fleet_release). A shipped defect (`--mutant N`)
        gets the unmutated build by default."""
        cfg = load_config(self.bench_path)
        if cfg.firmware is not None and cfg.firmware.fleet_release is not None:
            return []
        return [f"--fleet-release={self.base}"]

    def run(self, c: Candidate, copy: Path, variant: Variant | None = None) -> Outcome:
        """The suite against one defect, stopping at its first failing scenario. With a `variant`,
        a survivor's second look: its kills do not order the plain runs' scenarios."""
        out = self.report_dir / "runs" / (c.key.replace(":", "-") + (f"-{variant.name}" if variant else ""))
        shutil.rmtree(out, ignore_errors=True)
        firmware = [f"--mutant={c.shipped}"] if c.shipped else [f"--firmware={copy}", *self._fleet_release()]
        t0 = time.perf_counter()
        limit = [f"--scenario-timeout={self.scenario_timeout_s:.0f}"] if self.scenario_timeout_s else []
        proc = self._pytest(out, [*self.order(), *firmware, *limit, "-x"], variant)
        try:
            proc.wait(timeout=self.timeout_s)
            timed_out = False
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            timed_out = True
        wall = round(time.perf_counter() - t0, 1)
        parsed = self._junit(out)
        memory_error = sanitizer_report(out)
        if memory_error is not None:  # the sanitizer halted the suite at the firmware's first bad access
            o = Outcome("crashed", killed_by=[f"{_scenario_of(out)} (AddressSanitizer)"], wall_s=wall,
                        detail=f"AddressSanitizer: {_in_project(memory_error, copy.name)}")
        elif timed_out:
            o = Outcome("timeout", wall_s=wall, detail=f"stopped after {self.timeout_s:.0f} s of wall time")
        elif parsed is None:
            o = Outcome("crashed", wall_s=wall, detail=f"the suite process ended with {proc.returncode} and no "
                                                         "results (see pytest.log)")
        elif parsed[0] and parsed[3]:
            o = Outcome("timeout", killed_by=parsed[0], wall_s=wall,
                        detail=f"a scenario passed its wall-clock limit ({self.scenario_timeout_s or 240:.0f} s)")
        elif parsed[0]:
            o = Outcome("killed", killed_by=parsed[0], wall_s=wall)
        elif proc.returncode not in (0, 5):
            o = Outcome("crashed", wall_s=wall, detail=f"pytest exit {proc.returncode}")
        else:
            o = Outcome("survived", wall_s=wall, detail=f"{parsed[2]} scenarios passed")
        if variant is not None and o.status in KILLED:
            o.detail = (f"survived the plain build; its {variant.name} build: "
                        f"{o.detail or 'failed ' + ', '.join(o.killed_by)}")
            o.killed_by = [f"{variant.name}: {k}" for k in o.killed_by]
        if o.status in KILLED:
            if variant is None:
                with self._lock:
                    self.kills.update(o.killed_by[:1])
            shutil.rmtree(out / "tests", ignore_errors=True)  # the evidence of a kill is junit + log
        self._cache_path(c, variant).write_text(json.dumps(asdict(o) | {"cached": False}))
        return o

    def run_all(self, candidates: list[Candidate], on_done: Callable[[Candidate, Outcome], None],
                variant: Variant | None = None) -> dict[str, Outcome]:
        """Run the candidates that need it, `jobs` at a time."""
        results: dict[str, Outcome] = {}

        def one(c: Candidate, copy: Path) -> None:
            o = self.run(c, copy, variant)
            results[c.key] = o
            on_done(c, o)

        with ThreadPoolExecutor(max_workers=self.jobs) as pool:
            futures = []
            for c in candidates:
                o = self.cached(c, variant)
                if o is None:
                    copy, o = self.prepare(c)
                    if o is None:
                        assert copy is not None
                        futures.append(pool.submit(one, c, copy))
                        continue
                    self._cache_path(c, variant).write_text(json.dumps(asdict(o)))
                results[c.key] = o
                on_done(c, o)
            for f in futures:
                f.result()
        return results
