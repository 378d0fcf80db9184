"""Composing a rig from the bench file: one composition for every kind of bench.

* `simulated`: a `otarig.sim.service.SimService` builds a world in this process and *serves* its
  channels (ptys, Cloud API on loopback HTTP, SCPI on loopback TCP); the rig reaches them with
  the drivers below, on the simulator's virtual clock, plus the simulator handle.
* `real`: the endpoints come from the bench file (boards found on USB by device ID), the clock is
  the wall clock (scaled on a stand-in bench), the firmware comes from the `[firmware]` catalog.

Either way the parts are the same drivers: `otarig.board.Board` (pyserial), `otarig.psu`
(PyVISA), `otarig.bench_companion` (pyserial), `otarig.cloud_access` (HTTP + SSE). On a real
bench nothing here imports `otarig.sim`.
"""
from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

from .bench_companion import BenchCompanion
from .board import Board
from .clock import BenchClock, WallClock
from .cloud import ParticleCloud, find_credentials
from .cloud_access import ApiCloudAccess
from .config import URL_SCHEMES, BenchConfig
from .endpoints import Endpoints
from .flasher import CloudFlasher, UsbFlasher
from .fleet_release import FleetReleaseError
from .fleet_release import binary as fleet_binary
from .fleet_release import locate as locate_fleet_release
from .interfaces import BenchParts

#: bench seconds the rig waits for a board's serial port to appear (USB enumeration after boot)
PORT_WAIT_S = 60.0
#: wall seconds the rig waits for the simulated bench's supply (in-process; see `compose`)
SIM_PSU_TIMEOUT_S = 30.0


class CompositionError(RuntimeError):
    """The bench could not be composed; the message names the part and the fix."""


class NotApplicable(CompositionError):
    """The scenario asks for a firmware variant the project under test is not (its threading is
    in its source); the plugin skips it as not applicable to this firmware."""


def compose(cfg: BenchConfig, bench_path: Path, artifacts: Path, *, seed: int, mutant: int = 0,
            threaded: bool | None = None, cloud_params: Any = None, project: Path | None = None,
            fleet_release: Path | None = None) -> BenchParts:
    """The parts of a rig on the bench `cfg` describes; on failure everything opened is closed.
    `fleet_release` overrides the bench file's `[firmware] fleet_release` (otarig.fleet_release)."""
    asked = threaded
    fleet = fleet_release_path(cfg, bench_path, fleet_release)
    threaded = cfg.simulation.threaded if threaded is None else threaded
    if cfg.simulated:
        from .sim.service import SimService  # the only place the rig reaches the simulator

        service = SimService(cfg, artifacts / "world", seed=seed, mutant=mutant, threaded=threaded,
                             cloud_params=cloud_params, project=project)
        if project is not None and service.firmware_threaded != threaded:
            if asked is not None:
                service.close()
                raise NotApplicable(f"the scenario needs a {'threaded' if asked else 'non-threaded'} build; "
                                    f"{project.name} is {'threaded' if service.firmware_threaded else 'non-threaded'}"
                                    " (SYSTEM_THREAD(ENABLED) in its source decides)")
            threaded = service.firmware_threaded
        endpoints = service.endpoints()
        parts = BenchParts(clock=service.clock, cloud=None, boards={}, firmware=service.firmware,  # type: ignore[arg-type]
                           sim=service.handle, threaded=threaded,
                           description={"kind": "simulated", "stand_in": False, "time_scale": None,
                                        "firmware_project": str(project) if project is not None else None})
        parts.closers.append(service.close)
        if fleet is None or fleet.is_dir():  # the project under test (or the one named), without any defect
            from .sim.firmware_source import SimFirmwareSource

            parts.fleet_release = SimFirmwareSource(cfg.cloud.product_id, project=fleet or project)
        else:
            parts.fleet_release = fleet_binary(fleet)
        parts.description["fleet_release"] = str(fleet) if fleet is not None else "the project under test, unmutated"
    else:
        if mutant:
            raise CompositionError("--mutant builds a defective companion for the simulated bench; a real bench "
                                   "flashes the binaries of its [firmware] catalog")
        if project is not None:
            raise CompositionError(f"--firmware {project}: a project folder is built for the host on the simulated "
                                   "bench only; a real bench flashes Electron binaries from the [firmware] catalog "
                                   "of its bench file (build them with `particle compile electron`, "
                                   "docs/building-firmware.md)")
        from .firmware_catalog import CatalogFirmware

        assert cfg.firmware is not None  # checked by the config
        firmware = CatalogFirmware.load(cfg.firmware.versions, cfg.firmware.nonthreaded,
                                        product_id=cfg.cloud.product_id, base=bench_path.resolve().parent)
        endpoints = real_endpoints(cfg)
        parts = BenchParts(clock=WallClock(time_scale=cfg.bench.time_scale), cloud=None, boards={},  # type: ignore[arg-type]
                           firmware=firmware, threaded=threaded,
                           fleet_release=fleet_binary(fleet) if fleet is not None else None,
                           description={"kind": "real", "stand_in": cfg.stand_in, "time_scale": cfg.bench.time_scale,
                                        "fleet_release": str(fleet) if fleet is not None else None})
    try:
        connect(parts, cfg, endpoints, artifacts, bench_dir=bench_path.resolve().parent)
    except BaseException:
        parts.close()
        raise
    return parts


def fleet_release_path(cfg: BenchConfig, bench_path: Path, override: Path | None = None) -> Path | None:
    """The fleet's release the bench names (`--fleet-release`, else `[firmware] fleet_release`
    relative to the bench file), checked; None when neither names one (otarig.fleet_release)."""
    if override is not None:
        value, key = str(override), "--fleet-release"
    elif cfg.firmware is not None and cfg.firmware.fleet_release is not None:
        value, key = cfg.firmware.fleet_release, "firmware.fleet_release"
    else:
        return None
    try:
        return locate_fleet_release(value, base=bench_path.resolve().parent, simulated=cfg.simulated,
                                    product_id=cfg.cloud.product_id, key=key)
    except FleetReleaseError as exc:
        raise CompositionError(f"{bench_path}: {exc}") from None


def real_endpoints(cfg: BenchConfig) -> Endpoints:
    """A real bench's endpoints: the token from `cloud.token_env`, boards found on USB."""
    from .discovery import find_board

    creds = find_credentials(cfg.cloud.api_url, token_env=cfg.cloud.token_env)
    boards = {b.id: b.port or find_board(b.id, b.usb_serial) for b in cfg.boards}
    return Endpoints(api_url=cfg.cloud.api_url, token=creds.token, boards=boards,
                     tester_port=cfg.bench_companion.port if cfg.bench_companion is not None else None,
                     psu_resource=cfg.psu.resource if cfg.psu is not None and cfg.capabilities.psu else None)


def connect(parts: BenchParts, cfg: BenchConfig, endpoints: Endpoints, artifacts: Path, *,
            bench_dir: Path | None = None) -> None:
    """Open every part over its channel, registering each closer as soon as it is open."""
    clock = parts.clock
    api = ParticleCloud(endpoints.api_url, endpoints.token, product=cfg.cloud.product_id)
    parts.api_url = endpoints.api_url
    parts.token = lambda: endpoints.token
    cloud = ApiCloudAccess.connect(api, cfg.cloud.product_id, clock, group=cfg.cloud.group,
                                   device_ids=[b.id for b in cfg.boards], allocate=cfg.cloud.allocate_versions)
    parts.cloud = cloud
    parts.closers.append(cloud.close)
    for b in cfg.boards:
        path = endpoints.boards[b.id]
        wait_for_port(path, clock, PORT_WAIT_S, what=f"board {b.id}")
        board = Board(b.id, path, clock=clock, log_path=artifacts / f"serial-{b.id}.log")
        board.open()
        parts.closers.append(board.close)
        clock.attach(board)
        parts.boards[b.id] = board
    if cfg.bench_companion is not None and endpoints.tester_port is not None:
        tester = BenchCompanion.open(endpoints.tester_port, clock=clock, log_path=artifacts / "serial-bench-companion.log",
                                     timeout_s=cfg.bench_companion.timeout_s)
        parts.closers.append(lambda: _release_tester(tester))
        tester.release()
        parts.tester = tester
    if cfg.capabilities.psu and cfg.psu is not None and endpoints.psu_resource is not None:
        from .monitor import PowerMonitor
        from .psu import PowerSupply

        # The simulated bench's supply answers from a thread of this process: its replies come in
        # virtual time, but a loaded machine can starve that thread for seconds of wall time
        # (bench/seeds.py saw a 2 s timeout under a load of 16 on 2 cores), so wait longer there.
        timeout_s = max(cfg.psu.timeout_s, SIM_PSU_TIMEOUT_S) if cfg.simulated else cfg.psu.timeout_s
        psu = PowerSupply.open(endpoints.psu_resource, model=None, channel=cfg.psu.channel,
                               timeout_s=timeout_s, safe_state=cfg.psu.safe_state)
        parts.closers.append(psu.close)
        parts.psu = psu
        period = cfg.psu.monitor_period_s
        parts.start_monitor = lambda timeline: PowerMonitor(psu, timeline, clock, period_s=period).start()
    parts.flasher = _flasher(cfg, parts, endpoints, bench_dir)
    parts.description.update({"api_url": endpoints.api_url, "boards": dict(endpoints.boards),
                              "tester_port": endpoints.tester_port, "psu_resource": endpoints.psu_resource,
                              "flasher": parts.flasher.method})


def _flasher(cfg: BenchConfig, parts: BenchParts, endpoints: Endpoints, bench_dir: Path | None = None) -> Any:
    """USB on a real bench when asked; the cloud otherwise (a stand-in or simulated bench has no USB)."""
    if cfg.simulated or cfg.stand_in or cfg.flasher.method == "cloud":
        return CloudFlasher(parts.cloud)
    from .particle_cli import CliNotFound, ParticleCli, locate

    try:  # `[particle_cli] path`: a folder with the pinned install, or the CLI's executable itself
        where = locate(cfg.particle_cli.path, base=bench_dir)
        executable, node = where.executable, where.node
    except CliNotFound as exc:  # the first flash says so, naming the path
        executable, node = exc.path, None
    home = tempfile.TemporaryDirectory(prefix="otarig-cli-home-")  # the CLI's profile (with the token) dies with the run
    parts.closers.append(home.cleanup)
    cli = ParticleCli(Path(home.name), endpoints.api_url, parts.token, executable=executable, node=node,
                      timeout=cfg.flasher.timeout_s)
    return UsbFlasher(cli)


def _release_tester(tester: BenchCompanion) -> None:
    """Nothing armed, every rail on, whatever the scenario did; then close its port."""
    try:
        tester.release()
    finally:
        tester.close()


def wait_for_port(path: str, clock: BenchClock, timeout: float, *, what: str) -> None:
    """Wait (bench time) for a serial device path to exist; URLs are checked when opened."""
    if path.startswith(URL_SCHEMES) or "://" in path:
        return
    deadline = clock.now() + timeout
    while not os.path.exists(path):
        if clock.now() >= deadline:
            raise CompositionError(f"{what}: no serial device at {path!r} after {timeout:g} s; is it plugged in "
                                   "and running its application (not in DFU mode)?")
        clock.wait(min(0.5, deadline - clock.now()))
