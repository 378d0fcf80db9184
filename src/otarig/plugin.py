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
import sys
from pathlib import Path
from typing import Any, Iterator

import pytest

from . import __version__
from .config import BenchConfig, Capabilities, ConfigError, load

CAPABILITIES = tuple(Capabilities.model_fields)
DEFAULT_SCENARIO_TIMEOUT = 240


def pytest_addoption(parser: pytest.Parser) -> None:
    g = parser.getgroup("otarig", "otarig bench")
    g.addoption("--bench", default=None, help="bench_config.toml to run against (default: ./bench_config.toml)")
    g.addoption("--seed", type=int, default=None, help="simulation seed (default: the bench file's seed)")
    g.addoption("--mutant", type=int, default=0,
                help="simulated bench only: build the companion with defect N (otarig selftest uses this)")
    g.addoption("--otarig-artifacts", default="otarig-artifacts", help="folder for per-test artifacts")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "requires(*capabilities): skip unless the bench has them "
                                       f"({', '.join(CAPABILITIES)})")
    config.addinivalue_line("markers", "sim_only: needs the simulated bench (exact fault timing)")
    config.addinivalue_line("markers", "spec(section): the spec section a scenario demonstrates")
    config.addinivalue_line("markers", "threaded(flag): simulated bench only: build the companion "
                                       "with or without SYSTEM_THREAD(ENABLED)")


def _bench_path(config: pytest.Config) -> Path:
    opt = config.getoption("--bench")
    return Path(opt) if opt else Path(config.rootpath) / "bench_config.toml"


@pytest.fixture(scope="session")
def bench_config(pytestconfig: pytest.Config) -> BenchConfig:
    """The validated bench file; a broken one fails the session with the config's own message."""
    try:
        return load(_bench_path(pytestconfig))
    except ConfigError as exc:
        pytest.exit(f"otarig: {exc}", returncode=4)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if "rig" in getattr(item, "fixturenames", ()) and item.get_closest_marker("timeout") is None:
            item.add_marker(pytest.mark.timeout(DEFAULT_SCENARIO_TIMEOUT))


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: Any) -> Iterator[None]:
    outcome = yield
    rep = outcome.get_result()
    setattr(item, f"otarig_rep_{rep.when}", rep)


def _safe_name(nodeid: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", nodeid).strip("_")[:150]


def _check_capabilities(item: pytest.Item, cfg: BenchConfig, simulated: bool) -> None:
    for mark in item.iter_markers("requires"):
        for cap in mark.args:
            if cap not in CAPABILITIES:
                raise pytest.UsageError(f"{item.nodeid}: unknown capability {cap!r}; known: {CAPABILITIES}")
            if not getattr(cfg.capabilities, cap):
                pytest.skip(f"bench '{cfg.bench.name}' has no {cap} (capabilities.{cap} = false)")
    if item.get_closest_marker("sim_only") and not simulated:
        pytest.skip("needs the simulated bench (exact fault timing)")


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
def rig(request: pytest.FixtureRequest, bench_config: BenchConfig, record_property: Any) -> Iterator[Any]:
    """A fresh rig on the configured bench, with its artifact folder; writes artifacts at teardown."""
    config = request.config
    cfg = bench_config
    _check_capabilities(request.node, cfg, cfg.simulated)
    seed = config.getoption("--seed")
    seed = cfg.bench.seed if seed is None else seed
    root = Path(config.getoption("--otarig-artifacts"))
    artifacts = (root / _safe_name(request.node.nodeid)).resolve()
    artifacts.mkdir(parents=True, exist_ok=True)
    if not cfg.simulated:
        _check_real_bench(config, cfg, root)
        pytest.skip("real benches: the hardware rig is not implemented in this build (see docs/real-bench.md)")
    from .sim_rig import SimRig

    params = request.node.get_closest_marker("threaded")
    threaded = params.args[0] if params else None
    the_rig = SimRig(cfg, artifacts, seed=seed, mutant=config.getoption("--mutant"), threaded=threaded)
    try:
        yield the_rig
    finally:
        try:
            the_rig.collect()
        finally:
            _write_artifacts(request, the_rig, artifacts, record_property)
            the_rig.close()


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
def particle_cli(rig: Any, tmp_path: Path) -> Any:
    """The pinned `particle` CLI with a fresh HOME (never the user's profile)."""
    from .particle_cli import CliNotFound, ParticleCli

    if not hasattr(rig, "api_url"):
        pytest.skip("the rig has no cloud API URL for the particle CLI on this bench")
    try:
        cli = ParticleCli(tmp_path / "home", rig.api_url, rig.api_token, timeout=90)
        cli.version()
    except CliNotFound as exc:
        if os.environ.get("CI"):
            raise
        pytest.skip(f"{exc} (run `bash tools/particle-cli/install.sh`)")
    rig.cli_transcripts.append(cli)
    return cli


def _write_psu_csv(rig: Any, path: Path) -> None:
    samples = rig.timeline.select(source="psu", kind="sample")
    if samples:
        with open(path, "w") as fh:
            fh.write("t_s,volts,amps\n")
            for e in samples:
                fh.write(f"{e.t:.3f},{e.get('volts', '')},{e.get('amps', '')}\n")


def _write_artifacts(request: pytest.FixtureRequest, rig: Any, artifacts: Path, record_property: Any) -> None:
    item = request.node
    rep = getattr(item, "otarig_rep_call", None)
    outcome = "error" if rep is None else rep.outcome
    rig.timeline.write_jsonl(artifacts / "timeline.jsonl")
    _write_psu_csv(rig, artifacts / "psu.csv")
    for i, cli in enumerate(getattr(rig, "cli_transcripts", [])):
        cli.write_transcript(artifacts / (f"cli-transcript-{i}.txt" if i else "cli-transcript.txt"))
    verdicts = getattr(rig, "verdicts", [])
    try:
        from .plot import plot_timeline

        plot_timeline(rig.timeline, artifacts / "timeline.png", title=item.name)
    except Exception as exc:  # noqa: BLE001 - a plot failure must not hide the test result
        print(f"otarig: timeline plot failed: {exc}", file=sys.stderr)
    for f in rig.firmware_used:  # the binaries themselves, so the record's SHA-256s can be re-checked
        dest = artifacts / f"firmware-{f.sha256[:16]}.bin"
        if not dest.exists():
            dest.write_bytes(f.image)
    hellos = [e for e in rig.timeline if e.kind == "hello"]
    meta = {
        "nodeid": item.nodeid, "name": item.name, "outcome": outcome,
        "doc": (getattr(item, "function", None).__doc__ or "").strip() if hasattr(item, "function") else "",
        "duration_wall_s": round(rep.duration, 3) if rep is not None else None,
        "device_time_s": round(rig.now(), 3), "data_bytes": rig.data_bytes(), "seed": rig.seed,
        "boards": {bid: sorted({e.get("product_version") for e in hellos if e.source == f"board:{bid}"})
                   for bid in rig.boards},
        "firmware": [{"version": f.version, "label": f.label, "sha256": f.sha256} for f in rig.firmware_used],
        "verdicts": [{"name": v.name, "passed": v.passed, "message": v.message, "explanation": v.explain()}
                     for v in verdicts],
        "longrepr": str(rep.longrepr) if rep is not None and rep.failed else "",
        "artifacts_dir": str(artifacts),
    }
    (artifacts / "meta.json").write_text(json.dumps(meta, indent=2, sort_keys=True))
    record_property("board_ids", ",".join(rig.boards))
    record_property("firmware", ";".join(f"v{f.version}:{f.sha256[:16]}" for f in rig.firmware_used))
    record_property("device_os", "2.3.1")
    record_property("otarig_version", __version__)
    record_property("particle_cli", rig.cfg.particle_cli.version)
    record_property("device_time_s", meta["device_time_s"])
    record_property("data_bytes", meta["data_bytes"])
    record_property("seed", rig.seed)
