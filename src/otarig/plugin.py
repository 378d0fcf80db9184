"""The otarig pytest plugin: `--bench`, `--seed`, fixtures, capability markers, artifacts.

Registered through the `pytest11` entry point, so `pytest hil/` on any machine with otarig
installed gets the `rig` fixture. Each test gets a fresh rig and an artifact folder holding
the serial log of each board, `timeline.jsonl`, `timeline.png`, PSU samples, CLI
transcripts and `meta.json` (read by `otarig run` for the report).
"""
from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any, Iterator

import pytest

from . import __version__
from .config import BenchConfig, Capabilities, ConfigError, load

CAPABILITIES = tuple(Capabilities.model_fields)
DEFAULT_SCENARIO_TIMEOUT = 240
#: a scenario without a `budget` marker is assumed to need this much bench time
DEFAULT_BUDGET_S = 3600.0
#: on a real bench, scenarios whose budget exceeds this are skipped unless `--long`
LONG_BUDGET_S = 4 * 3600.0
#: skip reasons: a scenario not run by policy (sim_only on hardware, over budget) does not fail a
#: run; one skipped for want of a capability, a firmware or a tool does, unless --allow-skips
SKIP_POLICY = "not run on this bench: "
SKIP_NEEDS = "needs "
#: the firmware under test lacks what the scenario exercises (a hook, a threading): no fault of the
#: bench, so it does not fail a run either (docs/your-firmware.md "Hooks")
SKIP_NOT_APPLICABLE = "not applicable to this firmware: "


def pytest_addoption(parser: pytest.Parser) -> None:
    g = parser.getgroup("otarig", "otarig bench")
    g.addoption("--bench", default=None, help="bench_config.toml to run against (default: ./bench_config.toml)")
    g.addoption("--seed", type=int, default=None, help="simulation seed (default: the bench file's seed)")
    g.addoption("--mutant", type=int, default=0,
                help="simulated bench only: build the companion with defect N (otarig selftest uses this)")
    g.addoption("--firmware", default=None, metavar="DIR",
                help="simulated bench only: certify this Particle project folder instead of the device companion")
    g.addoption("--fleet-release", default=None, metavar="PATH",
                help="the fleet's release the candidate must upgrade from (a .bin, or on the simulated bench a "
                     "project folder); overrides [firmware] fleet_release of the bench file")
    g.addoption("--threading", choices=("threaded", "non-threaded"), default=None,
                help="simulated bench only: build the firmware with this threading model (OTARIG_THREADED) "
                     "instead of the bench file's [simulation] threaded; otarig selftest's second look uses it")
    g.addoption("--otarig-artifacts", default="otarig-artifacts", help="folder for per-test artifacts")
    g.addoption("--scenario-timeout", type=float, default=None, metavar="SECONDS",
                help=f"simulated bench: each scenario's wall-clock limit (default {DEFAULT_SCENARIO_TIMEOUT} s); "
                     "otarig selftest raises it from the good build's durations, so load is not taken for a hang")
    g.addoption("--long", action="store_true", default=False,
                help=f"real bench: also run scenarios whose budget exceeds {LONG_BUDGET_S / 3600:g} h of bench time")
    g.addoption("--max-budget", type=float, default=None,
                help="skip scenarios whose bench-time budget exceeds this many seconds (e.g. a CI profile)")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "requires(*capabilities): skip unless the bench has them "
                                       f"({', '.join(CAPABILITIES)})")
    config.addinivalue_line("markers", "sim_only: needs the simulated bench; the only scenarios that may use rig.sim")
    config.addinivalue_line("markers", "spec(section): the reference section a scenario demonstrates")
    config.addinivalue_line("markers", "threaded(flag): run the firmware built with (True) or without (False) "
                                       "SYSTEM_THREAD(ENABLED); a real bench takes it from [firmware.nonthreaded]")
    config.addinivalue_line("markers", "budget(seconds): the bench time a scenario needs; on a real bench its "
                                       "timeout follows it and long ones need --long")


def _bench_path(config: pytest.Config) -> Path:
    opt = config.getoption("--bench")
    return Path(opt) if opt else Path(config.rootpath) / "bench_config.toml"


@pytest.fixture(scope="session")
def bench_config(pytestconfig: pytest.Config) -> BenchConfig:
    """The validated bench file; a broken one fails the session with the config's own message."""
    from .pool import worker_bench

    try:
        cfg = worker_bench(load(_bench_path(pytestconfig)))  # a pool worker: narrowed to its board
    except ConfigError as exc:
        pytest.exit(f"otarig: {exc}", returncode=4)
    threading = pytestconfig.getoption("--threading")
    if threading is not None:
        if not cfg.simulated:
            pytest.exit("otarig: --threading is for the simulated bench: a real bench runs the binaries its "
                        "[firmware] table names (nonthreaded = … for the other model)", returncode=4)
        cfg.simulation.threaded = threading == "threaded"
    return cfg


def budget_of(item: pytest.Item) -> float:
    mark = item.get_closest_marker("budget")
    return float(mark.args[0]) if mark else DEFAULT_BUDGET_S


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Every scenario gets a wall-clock timeout: fixed on the simulated bench (virtual time), from
    its budget on a real one (bench seconds / time scale, with room for the baseline transition)."""
    scale = _time_scale(config)
    for item in items:
        if "rig" not in getattr(item, "fixturenames", ()) or item.get_closest_marker("timeout") is not None:
            continue
        if scale is None:
            item.add_marker(pytest.mark.timeout(config.getoption("--scenario-timeout") or DEFAULT_SCENARIO_TIMEOUT))
        else:
            item.add_marker(pytest.mark.timeout(int(budget_of(item) / scale * 1.5 + 600)))


def _time_scale(config: pytest.Config) -> float | None:
    """None on a simulated bench (virtual time), else bench seconds per wall second."""
    try:
        cfg = load(_bench_path(config))
    except ConfigError:
        return None
    return None if cfg.simulated else cfg.bench.time_scale


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: Any) -> Iterator[None]:
    outcome = yield
    rep = outcome.get_result()
    setattr(item, f"otarig_rep_{rep.when}", rep)
    picture = getattr(item, "otarig_picture", None)
    if rep.when == "teardown" and picture is not None:  # a pool worker's: for the controller (otarig.pool)
        rep.otarig_picture = picture


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Iterator[None]:
    """A command the firmware's agent has no hook for skips the scenario as not applicable; a bench
    without the fleet's release skips the scenarios that upgrade from it, saying what to add."""
    from .board import NotSupported
    from .fleet_release import NoFleetRelease

    try:
        return (yield)
    except NotSupported as exc:
        pytest.skip(f"{SKIP_NOT_APPLICABLE}{exc}")
    except NoFleetRelease as exc:
        pytest.skip(f"{SKIP_NEEDS}{exc}")


def _safe_name(nodeid: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", nodeid).strip("_")[:150]


def _check_applicable(item: pytest.Item, cfg: BenchConfig) -> None:
    """Skip, with a reason of the right kind, what this bench cannot or should not run."""
    if item.get_closest_marker("sim_only") and not cfg.simulated:
        pytest.skip(f"{SKIP_POLICY}sim_only (uses what only the simulated bench can do)")
    for mark in item.iter_markers("requires"):
        for cap in mark.args:
            if cap not in CAPABILITIES:
                raise pytest.UsageError(f"{item.nodeid}: unknown capability {cap!r}; known: {CAPABILITIES}")
            if not getattr(cfg.capabilities, cap):
                pytest.skip(f"{SKIP_NEEDS}capability {cap} (capabilities.{cap} = false on bench '{cfg.bench.name}')")
    budget = budget_of(item)
    limit = item.config.getoption("--max-budget")
    if limit is not None and budget > limit:
        pytest.skip(f"{SKIP_POLICY}budget {budget / 3600:.1f} h of bench time is over --max-budget {limit / 3600:.1f} h")
    if not cfg.simulated and budget > LONG_BUDGET_S and not item.config.getoption("--long"):
        pytest.skip(f"{SKIP_POLICY}long (budget {budget / 3600:.1f} h of bench time; run with --long)")


def _threaded(item: pytest.Item) -> bool | None:
    params = item.get_closest_marker("threaded")
    return params.args[0] if params else None


class _BenchSession:
    """The bench for a whole pytest session: a real bench is composed once (one board, one cloud
    session, one allocation of product versions); the simulated bench builds a fresh world per
    scenario so scenarios stay independent and reproducible."""

    def __init__(self, config: pytest.Config, cfg: BenchConfig) -> None:
        self.config = config
        self.cfg = cfg
        self.shared: dict[bool, Any] = {}  # threaded → parts (real benches)
        self.root = Path(config.getoption("--otarig-artifacts")).resolve()

    def parts_for(self, item: pytest.Item, artifacts: Path, seed: int) -> tuple[Any, bool]:
        """(parts, owned): owned parts are closed after the scenario."""
        from .compose import compose

        threaded = _threaded(item)
        if self.cfg.simulated:
            from .compose import NotApplicable

            project = self.config.getoption("--firmware")
            try:
                return compose(self.cfg, _bench_path(self.config), artifacts, seed=seed,
                               mutant=self.config.getoption("--mutant"), threaded=threaded,
                               project=Path(project).resolve() if project else None,
                               fleet_release=self._fleet_release()), True
            except NotApplicable as exc:
                pytest.skip(f"{SKIP_NOT_APPLICABLE}{exc}")
        if not self.shared:
            self.root.mkdir(parents=True, exist_ok=True)
            self.shared[True] = compose(self.cfg, _bench_path(self.config), self.root, seed=seed,
                                        fleet_release=self._fleet_release())
        parts = self.shared[True]
        want = self.cfg.simulation.threaded if threaded is None else threaded
        if want != parts.threaded:
            if not parts.firmware.has(self.cfg.firmware.baseline if self.cfg.firmware else 1, threaded=want):
                pytest.skip(f"{SKIP_NEEDS}firmware: no {'threaded' if want else 'non-threaded'} build in the "
                            "[firmware] catalog of the bench file")
            parts.threaded = want
        return parts, False

    def _fleet_release(self) -> Path | None:
        """`--fleet-release`, relative to where pytest runs (the bench file's key is read by compose)."""
        value = self.config.getoption("--fleet-release")
        return Path(value).resolve() if value else None

    def close(self) -> None:
        for parts in self.shared.values():
            parts.close()
        self.shared.clear()


@pytest.fixture(scope="session")
def otarig_bench(pytestconfig: pytest.Config, bench_config: BenchConfig) -> Iterator[_BenchSession]:
    """The bench of this session; torn down at the end, also after Ctrl-C or SIGTERM."""
    session = _BenchSession(pytestconfig, bench_config)
    try:
        yield session
    finally:
        session.close()


@pytest.fixture(scope="session")
def timeline_pictures() -> Iterator[Any]:
    """Draws each scenario's timeline.png in a worker process while the next one runs; the
    session ends once the last is drawn (`otarig.pictures`). None in a pool worker: the pool's
    controller draws every worker's pictures in one process (`otarig.pool`)."""
    from .pictures import TimelinePictures
    from .pool import PICTURES_ENV

    if os.environ.get("PYTEST_XDIST_WORKER") and os.environ.get(PICTURES_ENV):
        yield None
        return

    pictures = TimelinePictures()
    pictures.start()
    try:
        yield pictures
    finally:
        pictures.close()


@pytest.fixture
def rig(request: pytest.FixtureRequest, otarig_bench: _BenchSession, bench_config: BenchConfig,
        record_property: Any, timeline_pictures: Any) -> Iterator[Any]:
    """A rig on the configured bench at its baseline, with its artifact folder; writes artifacts at teardown."""
    from .cloud_access import NoProductVersion
    from .rig import Rig
    from .strategy import BaselineStrategy, NoTestAgent

    config = request.config
    cfg = bench_config
    _check_applicable(request.node, cfg)
    seed = config.getoption("--seed")
    seed = cfg.bench.seed if seed is None else seed
    root = Path(config.getoption("--otarig-artifacts"))
    artifacts = (root / _safe_name(request.node.nodeid)).resolve()
    artifacts.mkdir(parents=True, exist_ok=True)
    if not cfg.simulated:
        _check_real_bench(config, cfg, root)
    parts, owned = otarig_bench.parts_for(request.node, artifacts, seed)
    the_rig = Rig(cfg, parts, artifacts, seed, sim_allowed=request.node.get_closest_marker("sim_only") is not None)
    try:
        baseline = cfg.firmware.baseline if cfg.firmware is not None and not cfg.simulated \
            else cfg.simulation.firmware_version
        try:
            BaselineStrategy(baseline).transition(the_rig)
        except NoTestAgent as exc:  # no scenario can run on this firmware: stop at bench start
            pytest.exit(f"otarig: {exc}", returncode=4)
        except Exception as exc:  # the scenario errors in its setup: its record says why (the summary's line)
            request.node.otarig_setup_error = f"E   {type(exc).__name__}: {exc}"
            if isinstance(exc, NoProductVersion):  # no scenario can upload it: the run stops after this one,
                request.session.shouldfail = f"otarig: {exc}"  # as -x does
            raise
        the_rig.start_scenario()
        yield the_rig
        the_rig.check_drift()
    finally:
        try:
            the_rig.collect()
        finally:
            try:
                _write_artifacts(request, the_rig, artifacts, record_property, timeline_pictures)
            finally:
                if owned:
                    the_rig.close()
                else:
                    the_rig.detach()


def _check_real_bench(config: pytest.Config, cfg: BenchConfig, root: Path) -> None:
    """Once per session: the instruments the bench declares answer (a silent companion stops the run)."""
    if getattr(config, "_otarig_bench_checked", False):
        return
    from .bench_companion import BenchCompanionError, check_at_start

    root.mkdir(parents=True, exist_ok=True)
    try:
        check_at_start(cfg, root / "bench-companion-start.log")
    except BenchCompanionError as exc:
        pytest.exit(f"otarig: {exc}", returncode=4)
    config._otarig_bench_checked = True  # type: ignore[attr-defined]


@pytest.fixture
def board(rig: Any) -> Any:
    """The device under test's serial link (`otarig.board.Board`)."""
    return rig.board


@pytest.fixture
def cloud(rig: Any) -> Any:
    """The cloud as scenarios use it (`otarig.rig.CloudAccess`)."""
    return rig.cloud


@pytest.fixture
def psu(rig: Any) -> Any:
    """The bench power supply driver (`otarig.psu.PowerSupply`); skips on a bench without one."""
    if rig.psu is None:
        pytest.skip("this bench has no PSU (capabilities.psu = false or no [psu] section)")
    return rig.psu


@pytest.fixture
def particle_cli(rig: Any, pytestconfig: pytest.Config) -> Iterator[Any]:
    """The `particle` CLI the bench file names (`[particle_cli] path`: a folder with the pinned
    install, or the CLI's executable; the pinned install by default) aimed at the bench's cloud,
    with a fresh HOME (never the user's profile). The CLI writes the token into that HOME, so it
    is deleted when the scenario ends. The first use in a run asks the CLI its version (the record
    states the version that ran); a CLI that is not there skips the scenario naming the path."""
    import tempfile

    from .particle_cli import CliFailed, CliNotFound, ParticleCli, locate, reported_version

    with tempfile.TemporaryDirectory(prefix="otarig-cli-home-") as home:
        try:
            where = locate(rig.cfg.particle_cli.path, base=_bench_path(pytestconfig).resolve().parent)
            cli = ParticleCli(Path(home), rig.parts.api_url, rig.parts.token, executable=where.executable,
                              node=where.node, timeout=90)
            reported_version(cli)
        except CliNotFound as exc:
            pytest.skip(f"{SKIP_NEEDS}tool: {exc} (run `otarig tools install`, or fix [particle_cli] path)")
        except CliFailed as exc:
            pytest.skip(f"{SKIP_NEEDS}tool: the particle-cli at {where.executable} does not run: {exc}")
        rig.cli_transcripts.append(cli)
        yield cli


def _write_psu_csv(rig: Any, path: Path) -> None:
    samples = rig.timeline.select(source="psu", kind="sample")
    if samples:
        with open(path, "w") as fh:
            fh.write("t_s,volts,amps\n")
            for e in samples:
                fh.write(f"{e.t:.3f},{e.get('volts', '')},{e.get('amps', '')}\n")


def _write_artifacts(request: pytest.FixtureRequest, rig: Any, artifacts: Path, record_property: Any,
                     pictures: Any) -> None:
    item = request.node
    rep = getattr(item, "otarig_rep_call", None)
    outcome = "error" if rep is None else rep.outcome
    rig.timeline.write_jsonl(artifacts / "timeline.jsonl")
    _write_psu_csv(rig, artifacts / "psu.csv")
    for i, cli in enumerate(getattr(rig, "cli_transcripts", [])):
        cli.write_transcript(artifacts / (f"cli-transcript-{i}.txt" if i else "cli-transcript.txt"))
    verdicts = getattr(rig, "verdicts", [])
    if pictures is None:  # a pool worker: the controller draws it, asked by this scenario's teardown report
        item.otarig_picture = [str(artifacts / "timeline.jsonl"), str(artifacts / "timeline.png"), item.name]
    else:
        pictures.submit(artifacts / "timeline.jsonl", artifacts / "timeline.png", item.name)
    for f in rig.firmware_used:  # the binaries themselves, so the record's SHA-256s can be re-checked
        dest = artifacts / f"firmware-{f.sha256[:16]}.bin"
        if not dest.exists():
            dest.write_bytes(f.image)
    hellos = [e for e in rig.timeline if e.kind == "hello"]
    meta = {
        "nodeid": item.nodeid, "name": item.name, "outcome": outcome,
        "doc": (getattr(item, "function", None).__doc__ or "").strip() if hasattr(item, "function") else "",
        "duration_wall_s": round(rep.duration, 3) if rep is not None else None,
        "device_time_s": round(rig.now() - (0.0 if rig.simulated else rig.t_created), 3),
        "data_bytes": rig.data_bytes(), "seed": rig.seed, "bench": rig.parts.description,
        "drift_s": rig.drift_s,
        "boards": {bid: sorted({e.get("product_version") for e in hellos if e.source == f"board:{bid}"})
                   for bid in rig.boards},
        "firmware": [{"version": f.version, "label": f.label, "sha256": f.sha256} for f in rig.firmware_used],
        "verdicts": [{"name": v.name, "passed": v.passed, "message": v.message, "explanation": v.explain()}
                     for v in verdicts],
        "longrepr": (str(rep.longrepr) if rep is not None and rep.failed
                     else getattr(item, "otarig_setup_error", "") if rep is None else ""),
        "artifacts_dir": str(artifacts),
        "pool_worker": os.environ.get("PYTEST_XDIST_WORKER"),  # which worker of a board pool ran it
    }
    (artifacts / "meta.json").write_text(json.dumps(meta, indent=2, sort_keys=True))
    record_property("board_ids", ",".join(rig.boards))
    record_property("firmware", ";".join(f"v{f.version}:{f.sha256[:16]}" for f in rig.firmware_used))
    record_property("device_os", "2.3.1")
    record_property("otarig_version", __version__)
    clis = getattr(rig, "cli_transcripts", [])
    if clis:  # the version the CLI this scenario ran reported, not the bench file's
        from .particle_cli import known_version

        record_property("particle_cli", known_version(clis[0]) or "unknown")
    record_property("device_time_s", meta["device_time_s"])
    record_property("data_bytes", meta["data_bytes"])
    record_property("seed", rig.seed)
