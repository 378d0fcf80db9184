"""The simulated bench as a *service*: a world that serves the channels a real bench has.

`SimService` builds the world from the bench file (Electrons USB-flashed with the baseline, the
tester board, the SCPI supply) and serves it: each board's pty, the tester's pty, the PSU's VISA
resource and the Cloud API on loopback HTTP. The rig then reaches it through exactly the drivers
it uses on hardware (`otarig.compose`); only the clock (virtual) and `SimHandle` are the
simulator's own.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from ..config import BenchConfig
from ..endpoints import Endpoints
from .bench import SimBench
from .cloud_http import CloudHttpServer
from .firmware_source import SimFirmwareSource
from .handle import SimHandle
from .params import CloudParams

TESTER = "bench-companion"
#: how long (virtual) the bench waits for every board's USB port to enumerate after power-on
PORT_WAIT_S = 30.0


class SimService:
    """One simulated world serving one rig (a fresh world per scenario keeps scenarios independent)."""

    def __init__(self, cfg: BenchConfig, workdir: Path, *, seed: int, mutant: int = 0, threaded: bool = True,
                 cloud_params: CloudParams | None = None, project: Path | None = None) -> None:
        self.cfg = cfg
        self.threaded = threaded
        product = cfg.cloud.product_id
        self.bench = SimBench(seed, workdir=workdir, cloud_params=cloud_params)
        self.firmware = SimFirmwareSource(product, mutant=mutant, project=project)
        base = self.firmware.get(cfg.simulation.firmware_version, threaded=threaded)
        dut = next(b.id for b in cfg.boards if b.role == "dut")
        for b in cfg.boards:
            self.bench.add_electron(b.id, product_id=product, image=base.image, link_profile=cfg.simulation.link)
        if cfg.bench_companion is not None:
            self.bench.add_bench_companion(dut, TESTER, vbus_cable=cfg.bench_companion.vbus_cable)
        self.psu_resource: str | None = None
        if cfg.capabilities.psu and cfg.psu is not None:
            model = "DP832" if cfg.psu.model == "rigol-dp8xx" else "E36312A"
            self.psu_resource = self.bench.start_psu(model, device_id=dut, channel=cfg.psu.channel,
                                                     volts=cfg.psu.voltage, current_limit=cfg.psu.current_limit)
        self.api = CloudHttpServer(self.bench)
        self.api.start()
        self._wait_ports()
        app = self.bench.slots[dut].device.app
        #: what the firmware itself chose (SYSTEM_THREAD(ENABLED) or not): a team's project decides
        #: its threading in its source, whatever the rig asked the build for
        self.firmware_threaded: bool = app.threaded if app is not None else threaded
        self.handle = SimHandle(self.bench, self.firmware, dut, threaded=threaded)

    @property
    def clock(self) -> Any:
        return self.bench.clock

    def _wait_ports(self) -> None:
        """Run virtual time until every simulated USB port has enumerated (the boards boot)."""
        deadline = self.bench.world.now_ms + int(PORT_WAIT_S * 1000)
        while (not all(s.port is None or s.port.present for s in self.bench.port_slots())
               and self.bench.world.now_ms < deadline):
            self.bench.advance(0.1)

    def endpoints(self) -> Endpoints:
        """Where each part of this bench is served, as a real bench file would name them."""
        tester = self.bench.companions.get(TESTER)
        return Endpoints(
            api_url=self.api.url, token=self.api.token,
            boards={d: str(s.port.link) for d, s in self.bench.slots.items() if s.port is not None},
            tester_port=str(tester.port.link) if tester is not None and tester.port is not None else None,
            psu_resource=self.psu_resource)

    def close(self) -> None:
        try:
            self.api.stop()
        finally:
            self.bench.close()
