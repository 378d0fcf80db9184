"""The ``otarig`` command: an argparse dispatcher, one function per subcommand.

To add a subcommand: write ``cmd_<group>_<name>(args) -> int`` and register its parser in
``build_parser``. Expected failures raise ``CommandError`` (or a library error listed in
``_USER_ERRORS``) and become one ``error: …`` line on stderr with a non-zero exit, never a
traceback.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

from otarig import firmware, resources


class CommandError(Exception):
    """An expected failure: printed as one line, exit status ``code``."""

    def __init__(self, message: str, code: int = 1) -> None:
        super().__init__(message)
        self.code = code


from otarig.bench_companion import BenchCompanionError  # noqa: E402
from otarig.config import BenchConfig, ConfigError  # noqa: E402

from otarig.lab import LabError  # noqa: E402

_USER_ERRORS: tuple[type[Exception], ...] = (CommandError, firmware.FirmwareError, OSError, ConfigError,
                                             BenchCompanionError, LabError)


# -- firmware ----------------------------------------------------------------------------------


def _hexint(text: str) -> int:
    return int(text, 0)


def cmd_firmware_inspect(args: argparse.Namespace) -> int:
    """Show a module's header/suffix; with --check, also validate it like an Electron would.

    Only a regular file of at most 1 MB is read (an Electron user part is at most 128 KB): a FIFO,
    a device such as /dev/zero or a 40 GB file gets one line saying why, never a hang or a
    MemoryError. The file is opened without blocking and checked on the open descriptor, so what
    is read is what was checked."""
    import stat

    limit = 1 << 20
    path = Path(args.file)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)  # a FIFO with no writer must not block the open
    except OSError as exc:
        raise CommandError(f"cannot read {path}: {exc.strerror}") from None
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode):
        os.close(fd)
        kind = ("a folder" if stat.S_ISDIR(st.st_mode) else "a FIFO" if stat.S_ISFIFO(st.st_mode)
                else "a device" if stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode)
                else "a socket" if stat.S_ISSOCK(st.st_mode) else "not a regular file")
        raise CommandError(f"{path}: {kind}, not a module binary (give the .bin file itself)")
    with os.fdopen(fd, "rb") as fh:
        if st.st_size > limit:
            raise CommandError(f"{path}: {st.st_size:,} bytes is too large for a module binary (an Electron "
                               f"user part is at most 128 KB; inspect refuses anything over {limit:,} bytes)")
        try:
            data = fh.read(limit + 1)  # bounded even if the file grows after the check
        except OSError as exc:
            raise CommandError(f"cannot read {path}: {exc.strerror}") from None
    if len(data) > limit:
        raise CommandError(f"{path}: grew past {limit:,} bytes while being read; not a module binary")
    try:
        info = firmware.parse(data)
    except firmware.FirmwareError as exc:
        raise CommandError(f"{path}: {exc}") from None
    failure: firmware.FirmwareError | None = None
    if args.check:
        try:
            firmware.validate(data, platform_id=args.platform, max_size=args.max_size)
        except firmware.FirmwareError as exc:
            failure = exc
    if args.json:
        obj = {"file": str(path), **info.to_dict()}
        if args.check:
            obj["valid"] = failure is None
            obj["error"] = str(failure) if failure else None
        print(json.dumps(obj))
    else:
        _print_module_table(path, info)
    if failure is not None:
        print(f"error: {path}: {failure}", file=sys.stderr)
        return 1
    return 0


def _print_module_table(path: Path, info: firmware.ModuleInfo) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=str(path), show_header=False, title_justify="left")
    table.add_column("field", style="bold")
    table.add_column("value")
    ok = lambda good: "[green]ok[/green]" if good else "[red]MISMATCH[/red]"  # noqa: E731
    rows = [
        ("size", f"{info.size} bytes"),
        ("platform", f"{info.platform_id} ({info.platform_name})"),
        ("module", f"{info.module_function_name} (function {info.module_function}), "
                   f"index {info.module_index}, version {info.module_version}"),
        ("address", f"0x{info.start_address:08x} .. 0x{info.end_address:08x}"),
        ("flags", f"0x{info.flags:02x}"),
        ("dependencies", ", ".join(
            f"{d.module_function_name} {d.module_index} >= v{d.module_version}" for d in info.dependencies
        ) or "none"),
        ("product", "none" if info.product_id is None
            else f"id {info.product_id}, version {info.product_version}"),
        ("sha-256", info.sha256),
        ("crc-32", f"{info.crc_stored:08x} (computed {info.crc_computed:08x})"),
        ("checks", f"CRC-32 {ok(info.crc_ok)}, SHA-256 {ok(info.sha256_ok)}"),
    ]
    for name, value in rows:
        table.add_row(name, value)
    Console().print(table)


# -- sim -------------------------------------------------------------------------------------------


def cmd_sim(args: argparse.Namespace) -> int:
    """Start a simulated bench (boards, cloud API, PSU) paced to wall time; print how to reach it."""
    from otarig.sim.launcher import run_sim

    if args.speed <= 0:
        raise CommandError("--speed must be > 0")
    if args.boards < 1:
        raise CommandError("--boards must be >= 1")
    token = None
    if args.bench_file:
        token = os.environ.get(args.token_env)
        if not token:
            raise CommandError(f"--bench-file: set ${args.token_env} to any secret string first (e.g. "
                               f"`export {args.token_env}=$(python3 -c 'import secrets; print(secrets.token_hex(20))')`);"
                               " the stand-in's API accepts it and `otarig run` reads it from there")
    return run_sim(speed=args.speed, json_output=args.json, duration_s=args.duration, boards=args.boards,
                   product=args.product, seed=args.seed, port=args.port, psu=not args.no_psu,
                   link_profile=args.link, token=token, mutant=args.mutant,
                   bench_file=Path(args.bench_file) if args.bench_file else None,
                   token_env=args.token_env if args.bench_file else None)


# -- bench ---------------------------------------------------------------------------------------------


def cmd_bench_safe(args: argparse.Namespace) -> int:
    """What the rig's teardown does, by hand: nothing armed on the tester and every rail back on,
    the PSU in its configured safe state. For after a crash, a kill -9 or a pulled cable."""
    from otarig.bench_companion import BenchCompanion
    from otarig.clock import WallClock

    cfg = _load_bench(args.bench)
    if cfg.simulated:
        raise CommandError("the simulated bench has nothing left on between runs; `bench safe` is for a real one")
    done = []
    if cfg.bench_companion is not None:
        log = Path(tempfile.gettempdir()) / "otarig-bench-safe.log"
        tester = BenchCompanion.open(cfg.bench_companion.port, clock=WallClock(), log_path=log,
                                     timeout_s=cfg.bench_companion.timeout_s)
        try:
            tester.release()
        finally:
            tester.close()
        done.append(f"tester {cfg.bench_companion.port}: disarmed, VIN/VBUS/antenna on")
    if cfg.psu is not None and cfg.capabilities.psu:
        from otarig.psu import PowerSupply

        psu = PowerSupply.open(cfg.psu.resource, channel=cfg.psu.channel, timeout_s=cfg.psu.timeout_s,
                               safe_state=cfg.psu.safe_state)
        psu.close()  # close applies the configured safe state
        done.append(f"PSU {cfg.psu.resource} channel {cfg.psu.channel}: safe state {cfg.psu.safe_state!r}")
    print("\n".join(done) if done else "nothing to make safe: the bench file names no tester and no PSU")
    return 0


# -- tester board ----------------------------------------------------------------------------------------

_COMPANION_ACTIONS = ("status", "ping", "power-off", "power-on", "antenna-off", "antenna-on", "wake",
                      "arm-cut", "disarm", "press-mode", "double-click")


def cmd_companion(args: argparse.Namespace) -> int:
    """Talk to the tester board (firmware/bench/) directly: wiring checks at the bench."""
    import tempfile

    from otarig.bench_companion import BenchCompanion
    from otarig.clock import WallClock

    port = args.port
    if port is None:
        cfg = _load_bench(args.bench)
        if cfg.bench_companion is None:
            raise CommandError(f"{args.bench} has no [bench_companion] section; pass --port")
        port = cfg.bench_companion.port
        if port == "sim":
            raise CommandError("the simulated tester board runs inside `otarig sim` (or a test run): "
                               "pass --port with the path `otarig sim` prints")
    log = Path(tempfile.gettempdir()) / "otarig-companion.log"
    comp = BenchCompanion.open(port, clock=WallClock(), log_path=log, timeout_s=args.timeout)
    try:
        action = args.action
        if action == "status":
            out = comp.status()
        elif action == "ping":
            out = comp.hello
        elif action == "power-off":
            out = comp.power_off(args.ms)
        elif action == "power-on":
            out = comp.switch(vin=True, vbus=True)
        elif action == "antenna-off":
            out = comp.antenna_off(args.ms)
        elif action == "antenna-on":
            out = comp.switch(antenna=True)
        elif action == "wake":
            out = comp.wake(args.ms or 10)
        elif action == "arm-cut":
            if args.edges is None:
                raise CommandError("arm-cut needs --edges K (the K-th rising edge of the status line)")
            out = comp.arm_cut(args.edges, args.ms)
        elif action == "press-mode":
            out = comp.press_mode(args.ms or 100)
        elif action == "double-click":
            out = comp.double_click_mode()
        else:
            out = comp.disarm()
    finally:
        comp.close()
    out = {k: v for k, v in out.items() if k not in ("id", "ok")}
    print(json.dumps(out, sort_keys=True))
    return 0


# -- run / selftest ------------------------------------------------------------------------------------


def _load_bench(path: str) -> "BenchConfig":
    """The bench file; outside a project folder (no bench_config.toml here) say how to make one."""
    from otarig.config import load

    if path == DEFAULT_BENCH and not Path(path).exists():
        raise CommandError(f"no {DEFAULT_BENCH} in {Path.cwd()}: this is not an otarig project folder. Run "
                           "`otarig init` here to write one (a simulated bench; `otarig init --real` for a lab "
                           "bench), or pass --bench FILE")
    return load(path)


# -- init / tools ----------------------------------------------------------------------------------

DEFAULT_BENCH = "bench_config.toml"


def cmd_init(args: argparse.Namespace) -> int:
    """Write a commented bench file (and, with --suite, a copy of the suite) into DIR."""
    import shutil

    target = Path(args.dir)
    bench = target / DEFAULT_BENCH
    suite = target / "hil"
    if bench.exists() and not args.force:
        raise CommandError(f"{bench} exists; pass --force to overwrite it")
    if args.suite and suite.exists():
        raise CommandError(f"{suite} exists; move it away first (otarig init never overwrites scenarios)")
    target.mkdir(parents=True, exist_ok=True)
    bench.write_text(resources.template("real" if args.real else "simulated"), encoding="utf-8")
    print(f"wrote {bench} ({'a real bench: fill in every <…> value' if args.real else 'a simulated bench'})")
    if args.suite:
        shutil.copytree(resources.suite_dir(), suite, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        print(f"copied the certification suite to {suite}/ (otarig run in {target} runs it; add your own "
              "test_*.py scenarios there)")
    where = "" if target.resolve() == Path.cwd().resolve() else f"cd {args.dir} && "
    if args.real:
        print(f"next: edit {bench} (docs/real-bench.md §4), `otarig tools install`, then "
              f"`{where}otarig run -k lock_and_flash`")
    else:
        print(f"next: `{where}otarig run` (needs g++), `otarig rollout` to plan a release on a fleet")
    return 0


def cmd_tools_install(args: argparse.Namespace) -> int:
    """Install the pinned particle CLI and MicroPython (npm ci from the shipped lock files)."""
    from otarig.tools import ToolError, install

    unknown = [n for n in args.name if n not in resources.TOOLS]
    if unknown:
        raise CommandError(f"unknown tool {unknown[0]!r}; known: {', '.join(resources.TOOLS)}", 2)
    try:
        for name in args.name or list(resources.TOOLS):
            where = install(name, force=args.force)
            print(f"{name}: {where}")
    except ToolError as exc:
        raise CommandError(str(exc)) from None
    return 0


def cmd_tools_path(args: argparse.Namespace) -> int:
    """Print where a tool is (or would be) installed, for scripts (e.g. MicroPython's mypy.ini)."""
    print(resources.tool_dir(args.name))
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    """Run the OTA certification suite against the bench; write the report folder.

    The one place an interrupted run's exit status is decided: 128 + the first SIGINT/SIGTERM
    (130 for Ctrl-C, 143 for SIGTERM), whatever that signal became on its way out (the record's
    `RunInterrupted`, a KeyboardInterrupt before the suite started, an error it caused in a
    cleanup). One owner holds both signals for the whole command, place included
    (`runner.sigterm_interrupts`); for the process's own command line it stays until exit."""
    import signal

    from otarig.runner import sigterm_interrupts

    if getattr(args, "sanitize", False):
        return _run_sanitized(args)
    with sigterm_interrupts(keep_installed=getattr(args, "process_exits", False)) as signals:
        try:
            return _run_on_bench(args)
        except BaseException as exc:  # RunInterrupted (the record says which signal) is a SystemExit
            if signals.first is None:
                raise
            if not isinstance(exc, (KeyboardInterrupt, SystemExit)):
                print(f"otarig: interrupted by {signal.Signals(signals.first).name}; then: "
                      f"{type(exc).__name__}: {exc}", file=sys.stderr)
            return 128 + signals.first
        finally:
            if signals.first is not None and getattr(args, "process_exits", False):
                _forget_caught_interrupts()


def _run_sanitized(args: argparse.Namespace) -> int:
    """`otarig run --sanitize`: the same run in a child process that builds the firmware with
    AddressSanitizer and has its runtime preloaded (otarig.sim.sanitizer; docs/selftest.md "A second
    look at survivors"). The sanitizer stops the firmware at its first out-of-bounds access or use
    after free, and the child with it: this process then names the error and where its report is."""
    import subprocess

    from otarig.sim import sanitizer

    cfg = _load_bench(args.bench)
    if not cfg.simulated:
        raise CommandError("--sanitize is for the simulated bench: on a real bench the firmware runs on the "
                           "Electron, where no sanitizer can follow it", 2)
    report = Path(args.report).resolve()
    report.mkdir(parents=True, exist_ok=True)
    for old in report.glob("sanitizer.*"):
        old.unlink()
    try:
        env = sanitizer.environment()
    except sanitizer.SanitizerError as exc:
        raise CommandError(str(exc), 2) from exc
    env["ASAN_OPTIONS"] += f":log_path={report / 'sanitizer'}"
    argv = [a for a in getattr(args, "argv", []) if a != "--sanitize"]
    code = subprocess.run([sys.executable, "-m", "otarig.cli", *argv], env=env, check=False).returncode
    found = sanitizer.first_report(report)
    if found is not None:
        print(f"otarig: AddressSanitizer stopped the firmware: {found[0]}\n"
              f"  the whole report: {found[1]}; the run ended there, so its record is incomplete", file=sys.stderr)
        return 1
    return code


def _forget_caught_interrupts() -> None:
    """A KeyboardInterrupt that passed through an `exec`/`eval` of a string (dataclasses, pydantic
    and pytest run many) leaves CPython's "unhandled KeyboardInterrupt" flag set even though the run
    caught it, and the interpreter then ends by killing itself with SIGINT: exit -2, no traceback,
    whatever status was decided. Each string `exec` clears that flag first (CPython 3.11
    Python/pythonrun.c run_eval_code_obj), so one empty one, once no signal can raise any more,
    lets the decided status stand."""
    exec("")  # noqa: S102 (an empty string: resets the interpreter's flag, runs nothing)


def _run_on_bench(args: argparse.Namespace) -> int:
    """`otarig run` itself: the bench (or the place's), the suite, the record."""
    from otarig.lab import bench_for
    from otarig.pool import pool_args
    from otarig.runner import run_suite

    with bench_for(args.place, Path(args.bench)) as bench:  # a labgrid place: acquired, released in any case
        cfg = _load_bench(str(bench))
        project = _project_arg(cfg, args.firmware, bench)
        extra = pool_args(cfg, args.workers)
        if getattr(args, "threading", None) is not None:
            if not cfg.simulated:
                raise CommandError("--threading is for the simulated bench: a real bench runs the binaries its "
                                   "[firmware] table names (nonthreaded = … for the other model)", 2)
            cfg.simulation.threaded = args.threading == "threaded"  # built so up front, and in the record
            extra.append(f"--threading={args.threading}")
        _check_fleet_release(cfg, bench)
        build_errors: tuple[type[Exception], ...] = ()
        if cfg.simulated:  # on a real bench the rig never imports otarig.sim
            from otarig.sim.build import BuildError

            build_errors = (BuildError,)
        try:
            result = run_suite(cfg, bench.resolve(), report_dir=Path(args.report).resolve(), seed=args.seed,
                               suite=Path(args.suite).resolve() if args.suite else None, select=args.k,
                               allow_skips=args.allow_skips, long=args.long, max_budget=args.max_budget,
                               exitfirst=args.exitfirst, firmware=project, extra_args=extra)
        except build_errors as exc:  # e.g. a Device OS call the host layer lacks: one line (otarig.sim.missing_api)
            raise CommandError(str(exc)) from None
    if result.exit_code == 5:
        raise CommandError("no scenarios matched (check -k / --suite)", 5)
    return 0 if result.exit_code == 0 else 1


def _project_arg(cfg: BenchConfig, value: str | None, bench: Path | None = None) -> Path | None:
    """`--firmware DIR`, else the bench file's `[firmware] project` (relative to the bench file): a
    Particle project folder, certified on the simulated bench; refused at once without the test agent."""
    from otarig.firmware_project import ProjectError, require_agent

    if value is None and cfg.firmware is not None and cfg.firmware.project is not None:
        base = bench.resolve().parent if bench is not None else Path.cwd()
        value = str(base / cfg.firmware.project)
    if value is None:
        return None
    project = Path(value).resolve()
    if not cfg.simulated:
        raise CommandError(f"--firmware {value}: a project folder is built for the host on the simulated bench only; "
                           "a real bench flashes the Electron binaries of its [firmware] catalog "
                           "(docs/building-firmware.md)")
    if not (project / "src").is_dir():
        raise CommandError(f"--firmware {value}: not a Particle project folder (no src/ in {project}); "
                           "expected src/, lib/ and project.properties (docs/your-firmware.md)")
    try:
        require_agent(project)
    except ProjectError as exc:
        raise CommandError(str(exc)) from None
    return project


def _check_fleet_release(cfg: BenchConfig, bench: Path) -> None:
    """`[firmware] fleet_release` checked before anything runs: a wrong path is one line naming the
    file and the fix, not an error in every scenario (otarig.fleet_release)."""
    from otarig.compose import CompositionError, fleet_release_path

    try:
        fleet_release_path(cfg, bench)
    except CompositionError as exc:
        raise CommandError(str(exc)) from None


def cmd_firmware_add_agent(args: argparse.Namespace) -> int:
    """Copy otarig's TestAgent library into a Particle project's lib/ (docs/your-firmware.md)."""
    from otarig.firmware_project import ProjectError, add_agent, agent_problems

    project = Path(args.project).resolve()
    try:
        dest = add_agent(project, force=args.force)
    except ProjectError as exc:
        raise CommandError(str(exc)) from None
    print(f"copied TestAgent into {dest}")
    todo = agent_problems(project)
    if todo:
        print("still to do in your sources (docs/your-firmware.md, \"What to add\"):\n  " + "\n  ".join(todo))
    return 0


def cmd_selftest(args: argparse.Namespace) -> int:
    """Prove the suite can fail: shipped defects and generated mutants of the firmware (otarig.mutation)."""
    from otarig.mutation.generate import GenerationError
    from otarig.mutation.projects import ProjectError
    from otarig.runner import selftest

    cfg = _load_bench(args.bench)
    if not cfg.simulated:
        raise CommandError("selftest builds defective firmware for the host: it needs a simulated bench "
                           "(bench.kind = \"simulated\")")
    project = _project_arg(cfg, args.firmware)
    if project is not None and args.mutant:
        raise CommandError("--mutant N is a shipped defect of the device companion (firmware/mutants/); with "
                           "--firmware DIR, selftest generates defects of your sources (--max-mutants, --files)")
    if args.max_mutants is not None and args.max_mutants < 1:
        raise CommandError(f"--max-mutants {args.max_mutants}: give a positive number of mutants to sample")
    try:
        return selftest(Path(args.bench).resolve(), report_dir=Path(args.report).resolve(), seed=args.seed,
                        suite=Path(args.suite).resolve() if args.suite else None,
                        mutants=args.mutant or ([] if args.only or args.files else None), jobs=args.jobs,
                        project=project,
                        generated=not args.shipped_only and (not args.mutant or args.max_mutants is not None
                                                             or args.files is not None or args.only is not None),
                        max_mutants=args.max_mutants, files=args.files,
                        select=args.k, only=args.only)
    except (GenerationError, ProjectError, ValueError) as exc:
        raise CommandError(str(exc)) from None


# -- rollout ---------------------------------------------------------------------------------------



def cmd_rollout(args: argparse.Namespace) -> int:
    """Plan a release on a fleet: time to 50/90/99/100 %, data, updates begun outside idle windows."""
    from otarig import rollout
    from otarig.rollout import report
    from otarig.sim.params import DAY_MS, CloudParams

    try:
        fleet = rollout.load(args.fleet or resources.default_fleet())
        strategies = rollout.parse_strategies(args.compare or args.strategy)
    except (rollout.FleetError, ValueError) as exc:
        raise CommandError(str(exc)) from None
    updates = {k: v for k, v in (("seed", args.seed), ("horizon_days", args.horizon)) if v is not None}
    if args.horizon is not None and args.horizon <= 0:
        raise CommandError("--horizon must be > 0")
    fleet = fleet.model_copy(update=updates)
    if args.devices is not None:
        if args.devices < 1:
            raise CommandError("--devices must be >= 1")
        fleet = fleet.scaled(args.devices)
    params = rollout.PlannerParams(cloud=CloudParams(check_on_resume=args.check_on_resume,
                                                     renegotiation=args.renegotiation,
                                                     renegotiation_lag_max_ms=int(args.lag_days * DAY_MS)))
    results = []
    show_progress = not args.json and sys.stderr.isatty() and fleet.size * fleet.horizon_days >= 50_000
    from rich.console import Console
    from rich.progress import Progress

    with Progress(console=Console(stderr=True), transient=True, disable=not show_progress) as bar:
        for strategy in strategies:
            task = bar.add_task(strategy.label, total=1.0)
            results.append(rollout.plan(fleet, strategy, params, model=args.model,
                                        progress=lambda f, task=task: bar.update(task, completed=f)))
    if args.json:
        print(json.dumps({"fleet": fleet.name, "devices": fleet.size, "seed": fleet.seed,
                          "renegotiation": params.renegotiation,
                          "strategies": [report.summary(r) for r in results]}))
    else:
        report.print_table(results)
    if args.plot:
        path = report.plot_adoption(results, args.plot)
        if not args.json:
            print(f"adoption curve: {path}")
    return 0


# -- doctor --------------------------------------------------------------------------------------------


def cmd_doctor(args: argparse.Namespace) -> int:
    """What is attached and whether the bench can run: one line per check, ok or the fix
    (otarig.doctor does the checks; this only prints them). Exit 0 when every check is ok."""
    from otarig import doctor

    report = doctor.run(Path(args.bench))
    if args.json:
        print(json.dumps(report.to_dict()))
    else:
        from rich.console import Console
        from rich.markup import escape
        from rich.table import Table

        table = Table(title=f"otarig doctor: {report.bench} ({report.kind} bench)", title_justify="left")
        table.add_column("check", style="bold", no_wrap=True)
        table.add_column("", no_wrap=True)
        table.add_column("found / fix", overflow="fold")
        for c in report.checks:
            text = escape(c.detail) + ("" if c.ok or not c.fix else f"\n[yellow]fix:[/yellow] {escape(c.fix)}")
            table.add_row(escape(c.name), "[green]ok[/green]" if c.ok else "[red]FAIL[/red]", text)
        console = Console()
        console.print(table)
        bad = sum(not c.ok for c in report.checks)
        console.print("every check is ok" if not bad else f"{bad} check(s) failed: see the fix on each line",
                      highlight=False)
    return 0 if report.ok else 1


# -- parser and entry point --------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    """All subcommands; each leaf sets ``func``."""
    parser = argparse.ArgumentParser(prog="otarig", description="OTA test rig for Particle Electron firmware")
    groups = parser.add_subparsers(dest="group", metavar="COMMAND")
    groups.required = True

    fw = groups.add_parser("firmware", help="Particle module binaries; a project's test agent")
    fw_cmds = fw.add_subparsers(dest="command", metavar="SUBCOMMAND")
    fw_cmds.required = True
    inspect = fw_cmds.add_parser("inspect", help="show a module binary's header, suffix and CRC")
    inspect.add_argument("file", help="module binary (.bin)")
    inspect.add_argument("--json", action="store_true", help="print one JSON object")
    inspect.add_argument("--check", action="store_true",
                         help="also validate platform, size, range and CRC; exit 1 on failure")
    inspect.add_argument("--platform", type=_hexint, default=firmware.ELECTRON_PLATFORM_ID,
                         help="platform ID --check expects (default 10, Electron)")
    inspect.add_argument("--max-size", type=_hexint, default=firmware.USER_PART_MAX_SIZE,
                         help="size limit --check applies (default 131072)")
    inspect.set_defaults(func=cmd_firmware_inspect)
    add_agent = fw_cmds.add_parser("add-agent", help="copy otarig's TestAgent library into a Particle project's lib/",
                                   description="Copies the serial test agent the rig talks to into DIR/lib/TestAgent "
                                               "and lists what the sources still need (docs/your-firmware.md).")
    add_agent.add_argument("project", metavar="DIR", help="the Particle project folder (holds src/)")
    add_agent.add_argument("--force", action="store_true", help="replace an existing lib/TestAgent")
    add_agent.set_defaults(func=cmd_firmware_add_agent)

    sim = groups.add_parser("sim", help="run a simulated bench (boards, cloud API, PSU) paced to wall time")
    sim.add_argument("--json", action="store_true",
                     help="print api_url, token, product, boards and psu as one JSON object on the first line")
    sim.add_argument("--speed", type=float, default=1.0, help="virtual seconds per wall second (default 1)")
    sim.add_argument("--boards", type=int, default=1, help="simulated Electrons (default 1)")
    sim.add_argument("--product", type=int, default=4242, help="product ID (default 4242)")
    sim.add_argument("--seed", type=int, default=0, help="world seed (default 0)")
    sim.add_argument("--port", type=int, default=0, help="API port on 127.0.0.1 (default: any free port)")
    sim.add_argument("--link", choices=["2g", "3g", "ltem", "lan"], default="3g", help="cellular link profile")
    sim.add_argument("--no-psu", action="store_true", help="do not start the simulated PSU")
    sim.add_argument("--duration", type=float, default=None, help="stop after this many wall seconds")
    sim.add_argument("--bench-file", default=None, metavar="PATH",
                     help="write a stand-in bench file (kind = \"real\", time_scale = --speed) naming what this "
                          "world serves, and its firmware catalog, for `otarig run --bench PATH` in another process")
    sim.add_argument("--mutant", type=int, default=0, metavar="N",
                     help="run (and, with --bench-file, catalog) the device companion with shipped defect N "
                          "(`otarig selftest` lists them): the suite must fail against it")
    sim.add_argument("--token-env", default="OTARIG_STANDIN_TOKEN", metavar="NAME",
                     help="with --bench-file: the variable holding the API token (set it before starting)")
    sim.set_defaults(func=cmd_sim)

    bench = groups.add_parser("bench", help="the bench itself: make it safe by hand")
    bench_cmds = bench.add_subparsers(dest="command", metavar="SUBCOMMAND")
    bench_cmds.required = True
    safe = bench_cmds.add_parser("safe", help="tester disarmed with rails on, PSU in its safe state (as teardown)",
                                 description="Does by hand what the rig's teardown does after every run: "
                                             "disarms the tester board and switches VIN, VBUS and the antenna "
                                             "on, and puts the PSU in its configured safe state.")
    safe.add_argument("--bench", default="bench_config.toml", help="bench file (default: bench_config.toml)")
    safe.set_defaults(func=cmd_bench_safe)

    comp = groups.add_parser("tester", aliases=["companion"],
                             help="talk to the tester board (firmware/bench/): check its wiring",
                             description="Sends one command to the tester board (firmware/bench/, "
                                         "docs/protocol.md) and prints its reply as JSON. Examples: "
                                         "`otarig tester status`; `otarig tester power-off --ms 2000` "
                                         "(VIN and VBUS off for 2 s); `otarig tester wake` (a WKP pulse); "
                                         "`otarig tester arm-cut --edges 101 --ms 5000` (cut once 50 KB "
                                         "of the next download are in flash); `otarig tester double-click` "
                                         "(two MODE clicks: an Electron powers off).")
    comp.add_argument("action", choices=_COMPANION_ACTIONS)
    comp.add_argument("--port", default=None,
                      help="its serial port (default: [bench_companion] port of the bench file); "
                           "`otarig sim` prints the simulated one")
    comp.add_argument("--bench", default="bench_config.toml", help="bench file (default: bench_config.toml)")
    comp.add_argument("--ms", type=int, default=0,
                      help="power-off / antenna-off: back on after this many ms (0: stay off); "
                           "wake: pulse width (default 10); arm-cut: how long the cut lasts; "
                           "press-mode: how long MODE is held (default 100)")
    comp.add_argument("--edges", type=int, default=None, help="arm-cut: cut at this rising edge (1 = begin)")
    comp.add_argument("--timeout", type=float, default=3.0, help="seconds to wait for its answer (default 3)")
    comp.set_defaults(func=cmd_companion)

    init = groups.add_parser("init", help="start a project folder: a commented bench_config.toml (and the suite)",
                             description="Writes DIR/bench_config.toml, commented: a simulated bench by default, "
                                         "or with --real the template of a lab bench with every field a lab fills "
                                         "in. With --suite, also copies the certification suite to DIR/hil/, which "
                                         "`otarig run` in DIR then runs instead of the shipped one.")
    init.add_argument("dir", nargs="?", default=".", help="project folder (default: this one)")
    init.add_argument("--real", action="store_true", help="the real-bench template (docs/real-bench.md §4)")
    init.add_argument("--suite", action="store_true", help="also copy the suite to DIR/hil/ to extend it")
    init.add_argument("--force", action="store_true", help="overwrite an existing bench_config.toml")
    init.set_defaults(func=cmd_init)

    tools = groups.add_parser("tools", help="the pinned tools: particle CLI, MicroPython (into the user's cache)")
    tools_cmds = tools.add_subparsers(dest="command", metavar="SUBCOMMAND")
    tools_cmds.required = True
    ti = tools_cmds.add_parser("install", help="install the pinned particle CLI + Node.js and MicroPython",
                               description="Installs the pinned particle CLI (and the Node.js 22 it runs on) and "
                                           "MicroPython 1.27 (WebAssembly) with its rp2 type stubs, with `npm ci` "
                                           "from the lock files otarig ships, into the user's cache folder "
                                           "($XDG_CACHE_HOME/otarig/tools, else ~/.cache/otarig/tools). A "
                                           "checkout whose tools/ already has an install keeps using it. "
                                           "Needs npm. Idempotent.")
    ti.add_argument("name", nargs="*", metavar="NAME",
                    help=f"only these ({', '.join(resources.TOOLS)}; default: all)")
    ti.add_argument("--force", action="store_true", help="reinstall even when the install is current")
    ti.set_defaults(func=cmd_tools_install)
    tp = tools_cmds.add_parser("path", help="print the folder a tool is installed in")
    tp.add_argument("name", choices=list(resources.TOOLS))
    tp.set_defaults(func=cmd_tools_path)

    run = groups.add_parser("run", help="run the OTA certification suite (hil/) and write a report",
                            description="Builds what it needs, starts the simulated bench when the bench file "
                                        "says so, runs every hil/ scenario, prints a summary and writes "
                                        "junit.xml, report.html and certification.json. Exit status 0 exactly "
                                        "when the record says passed: every scenario that ran passed, at least "
                                        "one ran, and none was skipped for want of a capability, firmware or "
                                        "tool (see --allow-skips). Scenarios marked sim_only are not run on a "
                                        "real bench, and long ones only with --long; neither fails the run.")
    run.add_argument("--bench", default="bench_config.toml", help="bench file (default: bench_config.toml)")
    run.add_argument("--seed", type=int, default=None, help="simulation seed (default: the bench file's)")
    run.add_argument("--report", default="otarig-report", help="report folder (default: otarig-report/)")
    run.add_argument("--suite", default=None, help="scenario folder (default: hil/)")
    run.add_argument("-k", default=None, help="only scenarios matching this pytest -k expression")
    run.add_argument("--firmware", default=None, metavar="DIR",
                     help="certify this Particle project folder (src/, lib/, project.properties) instead of the "
                          "device companion; simulated bench only (docs/your-firmware.md)")
    run.add_argument("--allow-skips", action="store_true",
                     help="pass even when scenarios are skipped for want of a capability, firmware or tool "
                          "(without it such a skip fails the run)")
    run.add_argument("--long", action="store_true",
                     help="real bench: also run scenarios whose bench-time budget is over 4 h (a week is a week)")
    run.add_argument("--max-budget", type=float, default=None, metavar="SECONDS",
                     help="skip scenarios whose bench-time budget exceeds SECONDS (a CI profile); "
                          "such skips do not fail the run")
    run.add_argument("-x", "--exitfirst", action="store_true",
                     help="stop at the first failing scenario (e.g. to show a defective build is caught)")
    run.add_argument("--place", default=None, metavar="NAME",
                     help="a labgrid place (`+`: the one `labgrid-client reserve` gave $LG_TOKEN): acquire it, "
                          "run on its board, release it; --bench gives the rest (docs/lab.md)")
    run.add_argument("--sanitize", action="store_true",
                     help="simulated bench: build the firmware with AddressSanitizer (heap and globals) and stop "
                          "at its first out-of-bounds access or use after free, naming file:line; about 1.7x slower "
                          "(docs/selftest.md \"A second look at survivors\")")
    run.add_argument("--threading", choices=("threaded", "non-threaded"), default=None,
                     help="simulated bench: build the firmware in this threading model (OTARIG_THREADED for the "
                          "device companion), whatever [simulation] threaded says (the record notes it); a "
                          "firmware whose source declares SYSTEM_THREAD itself is built as it declares")
    run.add_argument("--workers", type=int, default=1, metavar="N",
                     help="spread the scenarios over N boards of the bench file, one pytest-xdist worker each "
                          "(the board pool, docs/lab.md §4)")
    run.set_defaults(func=cmd_run)

    st = groups.add_parser("selftest", help="run the suite against defective firmware (shipped and generated); "
                                            "all must be caught",
                           description="Runs hil/ on the good build, on each shipped defect of the device companion "
                                       "(firmware/mutants/*.patch) and on mutants of the firmware's C++ generated "
                                       "by universalmutator (app and guard sources; never the host layer or the "
                                       "TestAgent), each until its first failing scenario. A survivor gets a "
                                       "second look: the suite again on its build with AddressSanitizer, which "
                                       "sees a memory error no scenario can. Writes selftest.json "
                                       "and selftest.html. Exit 1 if the good build fails anything or a defect "
                                       "survives (unless listed in firmware/mutants/equivalent.toml).")
    st.add_argument("--bench", default="bench_config.toml", help="a simulated bench file")
    st.add_argument("--seed", type=int, default=1, help="the bench's seed, and the mutant sample's")
    st.add_argument("--report", default="otarig-selftest", help="output folder (default: otarig-selftest/)")
    st.add_argument("--suite", default=None, help="scenario folder (default: hil/)")
    st.add_argument("--firmware", default=None, metavar="DIR",
                    help="a Particle project folder to mutate instead of the device companion (src/, lib/); "
                         "equivalents listed in DIR/mutants-equivalent.toml")
    st.add_argument("--mutant", type=int, action="append", help="only this shipped defect (repeatable; generated ones then only with --max-mutants or --files)")
    st.add_argument("--shipped-only", action="store_true", help="the shipped defects only, no generated mutants")
    st.add_argument("--only", nargs="+", default=None, metavar="ID",
                    help="only these generated mutants (ids from selftest.json, e.g. OtaGuard:101:1ab69378)")
    st.add_argument("--max-mutants", type=int, default=None, metavar="N",
                    help="run a sample of N generated mutants (reproducible with --seed); default all")
    st.add_argument("--files", nargs="+", default=None, metavar="PATH",
                    help="mutate these files (relative to the project) instead of src/ and lib/*/src/ without TestAgent")
    st.add_argument("-k", default=None, metavar="EXPR",
                    help="only scenarios matching this pytest -k expression (a quick check; the kill rate is then "
                         "of that subset)")
    st.add_argument("--jobs", type=int, default=2, help="suite runs in parallel (default 2)")
    st.set_defaults(func=cmd_selftest)
    ro = groups.add_parser("rollout", help="plan a release on a fleet: when devices update, data, idle windows",
                           description="Simulates a product firmware release on the fleet described in a TOML "
                                       "file (examples/fleets/) with the simulated cloud's delivery rules, "
                                       "and reports the time to 50/90/99/100 %% of devices on the new version, "
                                       "cellular data, and updates begun outside idle windows.")
    ro.add_argument("--fleet", default=None, help="fleet file (default: examples/fleets/default.toml)")
    ro.add_argument("--strategy", default="standard",
                    help="standard, standard_daily, intelligent, lock_flash or forced (default standard)")
    ro.add_argument("--compare", default=None, metavar="S1,S2,…|all",
                    help="run several strategies on the same fleet and seed")
    ro.add_argument("--devices", type=int, default=None, help="scale the fleet's cohorts to this many devices")
    ro.add_argument("--horizon", type=float, default=None, help="days to simulate after the release")
    ro.add_argument("--seed", type=int, default=None, help="seed (default: the fleet file's)")
    ro.add_argument("--model", choices=["auto", "event", "aggregate"], default="auto",
                    help="per-device event model or its vectorised twin (auto: event up to 2,000 devices)")
    ro.add_argument("--renegotiation", choices=["lag", "at_expiry", "next_connect"], default="lag",
                    help="how a connected device's 3-day session is renegotiated (default lag)")
    ro.add_argument("--lag-days", type=float, default=4.0,
                    help="with --renegotiation lag: renegotiation up to this long after expiry (default 4)")
    ro.add_argument("--check-on-resume", action="store_true",
                    help="docs/reference/particle-ota.md §8.1: treat a resumed session as a Standard-release check")
    ro.add_argument("--json", action="store_true", help="print one JSON object")
    ro.add_argument("--plot", default=None, metavar="PNG", help="write the adoption curves to this PNG")
    ro.set_defaults(func=cmd_rollout)

    doc = groups.add_parser("doctor", help="what is attached and whether the bench can run: each line ok or the fix",
                            description="Checks the bench file's bench without changing it: Particle devices on "
                                        "USB (VID 2b04, running or DFU) and the tester board, each board of the "
                                        "bench file, port permissions, udev rules, groups, ModemManager, the "
                                        "particle CLI and Node.js, the PSU answering *IDN?, the cloud token "
                                        "(never printed) and the product, the labgrid coordinator named by "
                                        "$LG_COORDINATOR. On a simulated bench: g++, the host build, the CLI. "
                                        "Exit 0 when every check is ok, 1 otherwise.")
    doc.add_argument("--bench", default="bench_config.toml", help="bench file (default: bench_config.toml)")
    doc.add_argument("--json", action="store_true", help="print one JSON object (bench, kind, ok, checks)")
    doc.set_defaults(func=cmd_doctor)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``otarig`` script."""
    args = build_parser().parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)  # `run --sanitize` runs them again in a child
    args.process_exits = argv is None  # the process's own command line: it exits next
    try:
        return int(args.func(args) or 0)
    except _USER_ERRORS as exc:
        code = exc.code if isinstance(exc, CommandError) else 1
        print(f"error: {exc}", file=sys.stderr)
        return code
    except KeyboardInterrupt:
        return 130
    finally:
        if argv is None:  # the process's own command line: it exits next
            _leave_objects_to_the_os()


def _leave_objects_to_the_os() -> None:
    """Python's garbage collection at exit walks every object still alive (after `otarig run`,
    its imports and a whole pytest session: over a second of the command's wall time, issue 15).
    Frozen, they are left for the operating system; files, atexit handlers and threads are
    finished at exit as before."""
    import gc

    gc.freeze()


if __name__ == "__main__":
    sys.exit(main())
