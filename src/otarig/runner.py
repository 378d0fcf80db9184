"""`otarig run` and `otarig selftest`: run the certification suite, write the report folder.

`run` executes `hil/` in-process under pytest with a progress display, then writes JUnit XML,
a self-contained HTML report and the JSON certification record. `selftest` runs the suite
against each device companion mutant (docs/design.md principle 6) and reports which scenarios
caught it.
"""
from __future__ import annotations

import datetime as dt
import json
import contextlib
import os
import platform
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from . import __version__, resources
from .config import BenchConfig


def default_suite() -> Path:
    """./hil when this folder has one (a copy from `otarig init --suite`), else the shipped suite."""
    here = Path.cwd() / "hil"
    return here if here.is_dir() else resources.suite_dir()


def _pinned_config(suite: Path) -> list[str]:
    """pytest reads otarig's ini and conftests from the suite's folder only, wherever it lives
    (site-packages in a project's venv, or a copy in the project)."""
    return [f"--config-file={resources.suite_ini()}", f"--rootdir={suite.parent}", f"--confcutdir={suite.parent}"]


#: a file in every folder otarig writes a report to: only such a folder is ever cleared
REPORT_MARKER = ".otarig-report"


class ReportFolderError(OSError):
    """The report folder exists and is not one otarig made: it is never cleared."""


def prepare_report_dir(report_dir: Path) -> None:
    """Make `report_dir` empty and ours. An existing folder is cleared only when it carries the
    marker of an earlier otarig report, or is empty; anything else (a project, a lab folder) is
    refused with the reason, and nothing in it is touched."""
    if report_dir.exists():
        if not report_dir.is_dir():
            raise ReportFolderError(f"--report {report_dir}: exists and is not a folder")
        if (report_dir / REPORT_MARKER).is_file():
            shutil.rmtree(report_dir)
        elif any(report_dir.iterdir()):
            raise ReportFolderError(f"--report {report_dir}: the folder exists and is not an otarig report "
                                    f"(no {REPORT_MARKER} in it); refusing to clear it — name a new folder")
    report_dir.mkdir(parents=True, exist_ok=True)
    (report_dir / REPORT_MARKER).write_text("written by otarig; this folder is replaced by the next run\n")


class RunInterrupted(SystemExit):
    """`otarig run` was stopped by SIGINT or SIGTERM. `run_suite` raises it once the record,
    junit.xml and the report are written, so the process exits with 128 + the signal (130 for
    Ctrl-C, 143 for SIGTERM), as a shell reports a command a signal ended. `result` is the run's."""

    def __init__(self, result: "RunResult", signum: int) -> None:
        super().__init__(128 + signum)
        self.result = result
        self.signum = signum


class _InterruptSignals:
    """The one owner of SIGINT and SIGTERM while `otarig run` runs (SIGTERM is what CI cancelling
    and `timeout` send); `sigterm_interrupts` installs it once per process, however deeply nested.

    While `raising`, the first signal raises KeyboardInterrupt where the main thread is: pytest
    stops and every teardown runs (the bench is made safe, child processes end). A second one is
    only noted, so it cannot cut those teardowns short; a third abandons them (a teardown that
    hangs). Once the suite has stopped (`raising` off, never on again) signals are only noted, so
    the record is written whole and the place released whatever arrives meanwhile.
    """

    def __init__(self) -> None:
        self.received: list[int] = []
        self.raising = True
        self._previous: dict[int, Any] = {}

    def __call__(self, signum: int, frame: Any) -> None:
        self.received.append(signum)
        if self.raising and len(self.received) != 2:
            raise KeyboardInterrupt(signal.Signals(signum).name)

    @property
    def first(self) -> int | None:
        return self.received[0] if self.received else None

    def install(self) -> None:
        """Take SIGINT and SIGTERM, both at once: a signal that arrives meanwhile waits (blocked)
        and then reaches this owner, never the handler being replaced."""
        if not threading_main():
            return
        with _signals_held():
            for sig in _SIGNALS:
                self._previous[sig] = signal.signal(sig, self)

    def restore(self) -> None:
        """Give SIGINT and SIGTERM back, both at once, after `raising` is off: a signal that lands
        while they change hands is only noted (or goes to the previous handler once both are back)."""
        self.raising = False
        with _signals_held():
            for sig, handler in self._previous.items():
                signal.signal(sig, handler)
        self._previous.clear()


_SIGNALS = (signal.SIGINT, signal.SIGTERM)

#: the process's owner while a `sigterm_interrupts` block is open (nested blocks share it)
_owner: _InterruptSignals | None = None


@contextlib.contextmanager
def _signals_held() -> Iterator[None]:
    """SIGINT and SIGTERM blocked while their handlers change: `signal.signal` runs a pending
    signal's Python handler first, so without this a signal could reach the old one mid-change."""
    held = signal.pthread_sigmask(signal.SIG_BLOCK, _SIGNALS)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, held)


@contextlib.contextmanager
def sigterm_interrupts(*, keep_installed: bool = False) -> Iterator[_InterruptSignals]:
    """SIGTERM and SIGINT end the run like Ctrl-C: teardowns run, a record is written
    (`_InterruptSignals`; yields it). The outermost block owns the signals; nested ones
    (`otarig.lab.place_bench` around `run_suite`) get the same owner, so no inner block ending can
    hand a signal to a second handler that would turn it into a KeyboardInterrupt again. With
    `keep_installed` (a process about to exit: `otarig run`'s own command line) the owner stays,
    noting signals, until the process ends: none can surface after the exit status is decided."""
    global _owner
    if _owner is not None:
        yield _owner
        return
    owner = _owner = _InterruptSignals()
    owner.install()
    try:
        yield owner
    finally:
        _owner = None
        if keep_installed:
            owner.raising = False
        else:
            owner.restore()


def threading_main() -> bool:
    import threading

    return threading.current_thread() is threading.main_thread()


class _ProgressPlugin:
    """Feeds pytest's per-test reports into a rich progress bar and keeps outcomes and skip reasons,
    and where the run was when it stopped: the scenario in progress and its phase, what never started."""

    def __init__(self, progress: Progress) -> None:
        self.progress = progress
        self.task: Any = None
        self.outcomes: dict[str, str] = {}
        self.reasons: dict[str, str] = {}
        self.interrupted = False
        self.stopped_by = ""  # what ended the session early: "KeyboardInterrupt", "pytest.exit: …"
        self.collected: list[str] = []
        self.started: list[str] = []
        self.current: str | None = None  # the scenario whose setup/call/teardown has not finished
        self.phase = ""
        self.durations: dict[str, float] = {}  # nodeid → wall s of setup + call + teardown

    def pytest_collection_finish(self, session: pytest.Session) -> None:
        self.collected = [item.nodeid for item in session.items]
        self.task = self.progress.add_task("scenarios", total=len(session.items))

    def pytest_keyboard_interrupt(self, excinfo: Any) -> None:  # also called for pytest.exit()
        self.interrupted = True
        self.stopped_by = ("KeyboardInterrupt" if excinfo.errisinstance(KeyboardInterrupt)
                           else f"pytest.exit: {str(excinfo.value)[:1000]}")  # whole: it says what to add

    def pytest_runtest_logstart(self, nodeid: str, location: Any) -> None:
        self.current, self.phase = nodeid, "setup"
        self.started.append(nodeid)
        if self.task is not None:
            self.progress.update(self.task, description=nodeid.split("::")[-1][:60])

    def pytest_runtest_logfinish(self, nodeid: str, location: Any) -> None:
        self.current, self.phase = None, ""

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        self.phase = {"setup": "call", "call": "teardown"}.get(report.when, "teardown")
        self.durations[report.nodeid] = self.durations.get(report.nodeid, 0.0) + report.duration
        if report.when == "call" or (report.when == "setup" and report.outcome != "passed"):
            self.outcomes[report.nodeid] = "error" if report.when == "setup" and report.failed else report.outcome
        elif report.when == "teardown" and report.failed and self.outcomes.get(report.nodeid) == "passed":
            self.outcomes[report.nodeid] = "error"  # a teardown that failed (e.g. the bench did not come back)
        if report.skipped and isinstance(report.longrepr, tuple):
            self.reasons[report.nodeid] = str(report.longrepr[2]).removeprefix("Skipped: ")
        if report.when == "teardown" and self.task is not None:
            self.progress.advance(self.task)


@dataclass
class RunResult:
    exit_code: int
    report_dir: Path
    results: list[dict] = field(default_factory=list)
    record: dict = field(default_factory=dict)


def _tools(cfg: BenchConfig, bench_path: Path | None = None) -> dict:
    """What ran, measured: the particle CLI's version as the CLI itself reports it (asked once per
    run, None when the CLI the bench file names is not there or does not run), where that CLI is,
    and the version the bench file declares (`particle_cli_declared`) for comparison."""
    from .particle_cli import ParticleCliError, locate, reported_version
    from .record import default_tools

    measured: str | None = None
    try:
        where = locate(cfg.particle_cli.path, base=bench_path.resolve().parent if bench_path else None)
        path: str | None = str(where.executable)
        measured = reported_version(location=where)
    except ParticleCliError as exc:
        path = str(getattr(exc, "path", None) or cfg.particle_cli.path)
    tools = default_tools(device_os="2.3.1", particle_cli=measured)
    tools["particle_cli_path"] = path
    tools["particle_cli_declared"] = cfg.particle_cli.version
    return tools


def _firmware_entries(results: list[dict], tests_dir: Path) -> list[dict]:
    """Unique firmware images used, with a path to a copy kept in the report folder."""
    seen: dict[str, dict] = {}
    for r in results:
        for fw in r.get("firmware", []) or []:
            sha = fw.get("sha256")
            if sha and sha not in seen:
                seen[sha] = {"version": fw.get("version"), "label": fw.get("label", ""), "sha256": sha,
                             "path": str(tests_dir.parent / "firmware" / f"{sha[:16]}.bin")}
    return list(seen.values())


def run_verdict(results: list[dict], *, allow_skips: bool, interrupted: bool) -> tuple[bool, list[str]]:
    """The run's one verdict, and why not: every scenario that ran passed, at least one ran, the
    run was not interrupted, and nothing was skipped for want of a capability, a firmware or a
    tool (unless allowed). Skips by policy (sim_only on hardware, over budget) do not count."""
    from .plugin import SKIP_NOT_APPLICABLE, SKIP_POLICY

    why = []
    bad = [r for r in results if r.get("outcome") in ("failed", "error")]
    if bad:
        why.append(f"{len(bad)} scenario(s) failed or errored")
    needs = [r for r in results if r.get("outcome") == "skipped" and not str(r.get("reason", "")).startswith((SKIP_POLICY, SKIP_NOT_APPLICABLE))]
    if needs and not allow_skips:
        why.append(f"{len(needs)} scenario(s) skipped for want of a capability, firmware or tool "
                   "(--allow-skips accepts that)")
    if not any(r.get("outcome") == "passed" for r in results):
        why.append("no scenario ran")
    if interrupted:
        why.append("the run was interrupted")
    return not why, why


def run_suite(cfg: BenchConfig, bench_path: Path, *, report_dir: Path, seed: int | None = None,
              suite: Path | None = None, select: str | None = None, mutant: int = 0,
              console: Console | None = None, extra_args: list[str] | None = None,
              allow_skips: bool = False, long: bool = False, max_budget: float | None = None,
              exitfirst: bool = False, firmware: Path | None = None) -> RunResult:
    """Run `hil/` against the bench; write junit.xml, report.html, certification.json. The exit
    code is 0 exactly when the record says `passed: true`.

    Interrupted (SIGINT, SIGTERM: `sigterm_interrupts`), or stopped by a crash of pytest, the run
    still writes all three, marked `interrupted` and never passed, with the scenario in progress
    as an error in both the record and junit.xml; after a signal it then raises `RunInterrupted`
    (exit status 128 + the signal)."""
    console = console or Console(file=sys.stdout)
    suite = suite or default_suite()
    seed = cfg.bench.seed if seed is None else seed
    prepare_report_dir(report_dir)
    tests_dir = report_dir / "tests"
    tests_dir.mkdir(parents=True)
    args = [str(suite), f"--bench={bench_path}", f"--seed={seed}", f"--mutant={mutant}",
            f"--otarig-artifacts={tests_dir}", f"--junitxml={report_dir / 'junit.xml'}",
            "-q", "-p", "no:cacheprovider", *_pinned_config(suite),
            # the suite has no Hypothesis tests, and Hypothesis's plugin imports it at every run's end
            "-p", "no:hypothesispytest",
            # otarig is imported before pytest starts (this process runs it), so pytest cannot
            # rewrite its asserts; the scenarios' own asserts are rewritten as usual
            "-W", "ignore::pytest.PytestAssertRewriteWarning",
            # short tracebacks: a long one prints every frame's arguments, and a request's
            # headers (the access token) are an argument deep inside the HTTP client
            "--tb=short"]
    if select:
        args += ["-k", select]
    if firmware is not None:
        args.append(f"--firmware={firmware}")
    if long:
        args.append("--long")
    if exitfirst:
        args.append("--exitfirst")
    if max_budget is not None:
        args.append(f"--max-budget={max_budget}")
    args += extra_args or []
    log_path = report_dir / "pytest.log"
    with sigterm_interrupts() as signals:  # from here on SIGINT/SIGTERM end the run with a record
        t0 = time.perf_counter()
        code, plugin = _run_pytest(cfg, args, console, report_dir, log_path, signals, firmware)
        wall = time.perf_counter() - t0
        stopped = _stop_reason(code, plugin, signals)
        if not plugin.started and code in (3, 4) and not signals.received:
            tail = "\n".join(log_path.read_text().splitlines()[-15:]) if log_path.exists() else ""
            console.print(f"[red]pytest could not run the suite (exit {code}):[/red]\n{tail}")
            return RunResult(code, report_dir)
        result = _conclude(cfg, bench_path, report_dir, tests_dir, plugin, code=code, wall=wall, seed=seed,
                           mutant=mutant, allow_skips=allow_skips, stopped=stopped, console=console,
                           project=firmware)
    if stopped and signals.first is not None:  # (a signal while the record was written changes nothing in it)
        raise RunInterrupted(result, signals.first)
    return result


def _run_pytest(cfg: BenchConfig, args: list[str], console: Console, report_dir: Path, log_path: Path,
                signals: _InterruptSignals, firmware: Path | None = None) -> tuple[int, "_ProgressPlugin"]:
    """Build what the bench needs, run pytest; (exit code, what the plugin saw). A signal ends
    it as pytest's KeyboardInterrupt (code 2), an exception out of pytest as its crash (code 3, the
    traceback in pytest.log); from the moment this returns signals are only noted."""
    code = 2
    plugin = _ProgressPlugin(None)
    pytest_ran = False  # what fails before pytest (a build, a silent tester board) is the user's error
    try:
        try:
            if cfg.simulated:
                _prebuild(console, cfg, firmware)
            else:
                from .bench_companion import check_at_start

                check_at_start(cfg, report_dir / "bench-companion-start.log")  # absent or silent: stop now
            with Progress(TextColumn("[bold]{task.description:<60}"), BarColumn(), MofNCompleteColumn(),
                          TimeElapsedColumn(), console=console, transient=True) as progress:
                plugin.progress = progress
                saved = sys.stdout
                with open(log_path, "w") as log:  # pytest's output goes to the log
                    sys.stdout = log
                    try:
                        with _long_lived_out_of_gc():
                            pytest_ran = True
                            code = int(pytest.main(args, plugins=[plugin]))
                    finally:
                        sys.stdout = saved
        finally:
            signals.raising = False
    except KeyboardInterrupt:  # before pytest ran, or a third signal while its teardowns ran
        signals.raising = False
        code, plugin.interrupted = 2, True
        plugin.stopped_by = plugin.stopped_by or "KeyboardInterrupt"
    except Exception:  # out of pytest itself: often a signal's KeyboardInterrupt that landed inside a
        # library's own cleanup (argparse restoring its parser, a fixture's teardown at session end)
        # and was replaced by the error that cleanup then met; the run still ends with its record
        if not pytest_ran:
            raise  # a build error or an absent bench companion: one `error:` line (cli), no record
        import traceback

        with open(log_path, "a") as log:
            log.write("\notarig: pytest ended with an exception:\n" + traceback.format_exc())
        code = 3
    return code, plugin


def _stop_reason(code: int, plugin: "_ProgressPlugin", signals: _InterruptSignals) -> str:
    """Why the run stopped before its end ("" when it ran to the end): a signal, Ctrl-C, pytest.exit
    or a crash of pytest itself (an internal error)."""
    if signals.first is not None:
        return signal.Signals(signals.first).name
    if plugin.interrupted or code == 2:
        return plugin.stopped_by or "KeyboardInterrupt"
    if code == 3:
        return "crash: pytest internal error (see pytest.log)"
    return ""


def _conclude(cfg: BenchConfig, bench_path: Path, report_dir: Path, tests_dir: Path, plugin: "_ProgressPlugin",
              *, code: int, wall: float, seed: int, mutant: int, allow_skips: bool, stopped: str,
              console: Console, project: Path | None = None) -> RunResult:
    """The record, junit.xml, the HTML report and the summary, all telling the same story."""
    from .record import build_record, write_record
    from .pool import remember_durations
    from .report import load_results, print_failures, print_summary, write_html

    interrupted = bool(stopped)
    results = load_results(tests_dir)
    if not stopped:
        remember_durations(plugin.durations)
    for r in results:  # pytest's view wins: a teardown error or a skip in setup is not in meta.json
        r["outcome"] = plugin.outcomes.get(r.get("nodeid"), r.get("outcome", "error"))
        if r.get("nodeid") in plugin.reasons:
            r["reason"] = plugin.reasons[r["nodeid"]]
    missing = set(plugin.outcomes) - {r.get("nodeid") for r in results}
    for nodeid in sorted(missing):
        results.append({"nodeid": nodeid, "name": nodeid.split("::")[-1], "outcome": plugin.outcomes[nodeid],
                        "reason": plugin.reasons.get(nodeid, ""), "duration_wall_s": None, "device_time_s": 0,
                        "data_bytes": 0, "verdicts": [], "longrepr": "", "artifacts_dir": ""})
    not_run: list[str] = []
    if interrupted:
        _mark_interrupted(results, plugin, stopped, tests_dir)
        started = set(plugin.started)
        not_run = [nodeid for nodeid in plugin.collected if nodeid not in started]
    _meta_agrees(results)
    passed, why = run_verdict(results, allow_skips=allow_skips, interrupted=interrupted)
    firmware = _firmware_entries(results, tests_dir)
    _keep_firmware(firmware, tests_dir)
    boards = [{"id": b.id, "platform": b.platform,
               "versions_seen": sorted({v for r in results for v in (r.get("boards") or {}).get(b.id, []) if v})}
              for b in cfg.boards]
    bench = {"name": cfg.bench.name, "kind": cfg.bench.kind, "config": str(bench_path),
             "stand_in": cfg.stand_in, "hardware": not cfg.simulated and not cfg.stand_in,
             "time_scale": None if cfg.simulated else cfg.bench.time_scale,
             "link": cfg.simulation.link if cfg.simulated else None, "mutant": mutant,
             # the threading model the simulated bench built the firmware in (the board's hello says what ran)
             "threaded": cfg.simulation.threaded if cfg.simulated else None,
             "firmware_project": str(project) if project is not None else None,
             "place": cfg.lab.model_dump() if cfg.lab is not None else None}  # a labgrid place (otarig.lab)
    tools = _tools(cfg, bench_path)
    record = build_record(results, firmware=firmware, boards=boards, bench=bench, tools=tools, seed=seed)
    record["passed"] = passed  # the run's verdict, the same as the exit status
    record["not_passed_because"] = why
    record["skips_allowed"] = allow_skips
    record["interrupted"] = interrupted
    record["interrupted_by"] = stopped or None  # "SIGINT", "SIGTERM", "KeyboardInterrupt", "pytest.exit: …", "crash: …"
    record["not_run"] = not_run  # collected scenarios that never started (an interrupted run)
    write_record(report_dir / "certification.json", record)
    junit_agrees(report_dir / "junit.xml", results)
    write_html(report_dir, results, record)
    print_summary(results, console)
    print_failures(results, console)
    for r in results:
        if r.get("outcome") == "skipped":
            console.print(f"[yellow]SKIP[/yellow] {escape(str(r.get('name')))}: "
                          f"{escape(str(r.get('reason') or '(no reason given)'))}")
    if tools["particle_cli"] is None:
        console.print(f"[yellow]particle CLI: none runs at {escape(str(tools['particle_cli_path']))}[/yellow]")
    elif tools["particle_cli"] != tools["particle_cli_declared"]:
        console.print(f"[yellow]particle CLI: the bench file declares {tools['particle_cli_declared']}, the CLI "
                      f"reports {tools['particle_cli']} (the record states the latter)[/yellow]")
    if cfg.stand_in:
        console.print(f"[bold]stand-in bench[/bold] (a simulated world at x{cfg.bench.time_scale:g}, not hardware)")
    console.print(f"wall time {wall:.1f}s · report: {report_dir / 'report.html'}")
    if code == 5:
        console.print("[red]no scenarios were collected[/red]")
    if interrupted:
        console.print(f"[red]interrupted ({stopped}): the record says so; {len(not_run)} scenario(s) never "
                      "started[/red]")
    if not passed:
        console.print(f"[red]not passed: {'; '.join(why)}[/red]")
    return RunResult(0 if passed else (code if code not in (0, 5) else 1), report_dir, results, record)


#: the record's entry for an interruption that landed outside any scenario (before the first,
#: between two, or after the last while the session was ending)
RUN_NODEID = "otarig::run_interrupted"


def _mark_interrupted(results: list[dict], plugin: _ProgressPlugin, stopped: str, tests_dir: Path) -> None:
    """The scenario in progress when the run stopped becomes an `error` (never `passed`, even when
    its call had passed and only its teardown was cut into), in the results and in its meta.json."""
    from .plugin import _safe_name

    nodeid = plugin.current or RUN_NODEID
    if plugin.current is not None:
        message = f"interrupted ({stopped}) during its {plugin.phase or 'setup'}"
    elif not plugin.started:
        message = f"the run was interrupted ({stopped}) before any scenario started"
    elif len(plugin.started) < len(plugin.collected):
        message = f"the run was interrupted ({stopped}) between two scenarios"
    else:
        message = f"the run was interrupted ({stopped}) after its last scenario, while the session was ending"
    entry = next((r for r in results if r.get("nodeid") == nodeid), None)
    if entry is None:
        entry = {"nodeid": nodeid, "name": nodeid.split("::")[-1], "duration_wall_s": None, "device_time_s": 0,
                 "data_bytes": 0, "verdicts": [], "longrepr": "", "artifacts_dir": ""}
        results.append(entry)
    entry.update(outcome="error", reason=message, interrupted=stopped,
                 longrepr=(f"{entry.get('longrepr')}\n" if entry.get("longrepr") else "") + message)
    folder = tests_dir / _safe_name(nodeid)
    if not entry.get("artifacts_dir") and folder.is_dir():  # made before the rig came up: it gets a meta.json
        entry["artifacts_dir"] = str(folder)


def _meta_agrees(results: list[dict]) -> None:
    """Each scenario's meta.json says what the record says (the plugin writes it before the last
    teardowns, so a teardown crash or an interruption can change the outcome after it)."""
    for r in results:
        folder = Path(r["artifacts_dir"]) if r.get("artifacts_dir") else None
        if folder is None or not folder.is_dir():
            continue
        meta = folder / "meta.json"
        try:
            data = json.loads(meta.read_text()) if meta.is_file() else {}
        except (OSError, ValueError):
            data = {}
        data = data if isinstance(data, dict) else {}
        want = {"nodeid": r.get("nodeid"), "name": r.get("name"), "outcome": r.get("outcome"),
                "artifacts_dir": str(folder)}
        for key in ("interrupted", "reason"):
            if r.get(key):
                want[key] = r[key]
        if r.get("interrupted") or not data.get("longrepr"):
            want["longrepr"] = r.get("longrepr") or ""
        if any(data.get(k) != v for k, v in want.items()):
            data.update(want)
            meta.write_text(json.dumps(data, indent=2, sort_keys=True))


def _junit_names(nodeid: str) -> tuple[str, str]:
    """(classname, name) of a nodeid as pytest's junitxml writes them (`mangle_test_address`)."""
    path, bracket, params = nodeid.partition("[")
    names = path.split("::")
    names[0] = re.sub(r"\.py$", "", names[0].replace("/", "."))
    names[-1] += bracket + params
    return ".".join(names[:-1]), names[-1]


def junit_agrees(path: Path, results: list[dict]) -> None:
    """Make junit.xml tell what the record tells: every scenario the record says failed or errored
    (an interrupted one included, which pytest leaves out or shows as passed) has a testcase with a
    failure or an error, and the testsuite's counts are those of its testcases. A missing or broken
    junit.xml (pytest stopped before writing it) is written from the results."""
    import xml.etree.ElementTree as ET

    try:
        root = ET.parse(path).getroot()
    except (OSError, ET.ParseError):
        root = ET.Element("testsuites", name="pytest tests")
    suites = [root] if root.tag == "testsuite" else root.findall("testsuite")
    if not suites:
        suites = [ET.SubElement(root, "testsuite", name="pytest")]
    suite = suites[0]
    cases = {(c.get("classname", ""), c.get("name", "")): c for s in suites for c in s.iter("testcase")}
    changed = False
    for r in results:
        key = _junit_names(str(r.get("nodeid") or r.get("name") or ""))
        case = cases.get(key)
        if case is None:
            case = cases[key] = ET.SubElement(suite, "testcase", classname=key[0], name=key[1],
                                              time=f"{float(r.get('duration_wall_s') or 0):.3f}")
            changed = True
            if r.get("outcome") == "skipped":
                ET.SubElement(case, "skipped", type="pytest.skip", message=str(r.get("reason") or ""))
        if r.get("outcome") in ("failed", "error") and case.find("failure") is None and case.find("error") is None:
            for skipped in case.findall("skipped"):
                case.remove(skipped)
            message = str(r.get("reason") or r.get("longrepr") or f"{r.get('outcome')} (see certification.json)")
            ET.SubElement(case, "error", message=message[:500]).text = str(r.get("longrepr") or message)
            changed = True
    for s in suites:
        counts = {"tests": len(s.findall("testcase")),
                  "errors": sum(c.find("error") is not None for c in s.iter("testcase")),
                  "failures": sum(c.find("failure") is not None for c in s.iter("testcase")),
                  "skipped": sum(c.find("skipped") is not None for c in s.iter("testcase"))}
        for k, v in counts.items():
            if s.get(k) != str(v):
                s.set(k, str(v))
                changed = True
    if changed:
        tmp = path.with_name(path.name + ".tmp")
        ET.ElementTree(root).write(tmp, encoding="utf-8", xml_declaration=True)
        os.replace(tmp, path)


def _keep_firmware(firmware: list[dict], tests_dir: Path) -> None:
    """Firmware binaries go into the report folder so the record's hashes can be re-checked."""
    out = tests_dir.parent / "firmware"
    out.mkdir(exist_ok=True)
    index = {f["sha256"]: f for f in firmware}
    for meta in tests_dir.glob("*/firmware-*.bin"):
        sha = meta.stem.split("-", 1)[1]
        for full, entry in index.items():
            if full.startswith(sha):
                shutil.copy2(meta, entry["path"])


@contextlib.contextmanager
def _long_lived_out_of_gc() -> Any:
    """What is alive when the suite starts (otarig, pytest and the simulator, imported) lives as
    long as the run: frozen, it is left out of the run's full garbage collections, each of which
    walked all of it again (issue 15). Unfrozen when the suite ends."""
    import gc

    gc.collect()
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


def _prebuild(console: Console, cfg: BenchConfig, project: Path | None = None) -> None:
    """Build the firmware versions the suite uses up front, so a compiler error shows at once."""
    from . import compose, rig  # noqa: F401 - every scenario imports them: now, before the freeze
    from .sim import service  # noqa: F401 - (see _long_lived_out_of_gc)
    from .sim.build import build_firmware

    what = project.name if project is not None else "the device companion"
    with console.status(f"building {what} (g++, cached in {resources.build_cache_dir()})…"):
        for version in (1, 2, 3):
            build_firmware(version, project=project, threaded=cfg.simulation.threaded)


# -- selftest ----------------------------------------------------------------------------------------

def selftest(bench_path: Path, *, report_dir: Path, seed: int = 1, suite: Path | None = None,
             mutants: list[int] | None = None, jobs: int = 2, console: Console | None = None,
             project: Path | None = None, generated: bool = True, max_mutants: int | None = None,
             files: list[str] | None = None, select: str | None = None, only: list[str] | None = None) -> int:
    """Run the suite on the good build, on the shipped defects (`mutants`, default all; the device
    companion only) and on defects generated by universalmutator (otarig.mutation)."""
    from .mutation.session import run_selftest

    suite = suite or default_suite()
    prepare_report_dir(report_dir)
    return run_selftest(bench_path, report_dir=report_dir, suite=suite, pinned=_pinned_config(suite), seed=seed,
                        project=project, shipped=mutants, generated=generated,
                        max_mutants=max_mutants, files=files, jobs=jobs, select=select, only=only,
                        console=console)
