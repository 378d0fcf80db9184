"""The `Rig` on the simulated bench: companion builds, a `SimBench`, faults done exactly.

Boards are reached through their ptys and the bench clock is virtual, so a scenario runs the
same code as on a real bench; only firmware building and fault timing are simulator-specific.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from .config import BenchConfig
from .rig import FirmwareBuild, Rig
from .sim import faults, firmware_defects
from .sim.bench import SimBench
from .sim.build import build_companion
from .sim.images import make_app_image
from .sim.params import CloudParams


class SimCloudAccess:
    """`CloudAccess` straight onto the simulated cloud model (under the bench lock)."""

    def __init__(self, bench: SimBench, product_id: int) -> None:
        self.bench = bench
        self.product_id = product_id
        self._seen = 0

    def upload(self, version: int, binary: bytes, title: str = "") -> None:
        with self.bench.lock:
            self.bench.cloud.upload_firmware(self.product_id, version, binary, title)

    def release(self, version: int, *, intelligent: bool = False, groups: list[str] | None = None) -> None:
        with self.bench.lock:
            self.bench.cloud.release(self.product_id, version, product_default=not groups, groups=groups,
                                     intelligent=intelligent)

    def lock(self, device_id: str, version: int | None, *, flash: bool = True) -> None:
        with self.bench.lock:
            self.bench.cloud.update_device(self.product_id, device_id, desired_firmware_version=version, flash=flash)

    def force(self, device_id: str, forced: bool) -> None:
        with self.bench.lock:
            self.bench.cloud.update_device(self.product_id, device_id, firmware_updates_forced=forced)

    def device(self, device_id: str) -> dict:
        with self.bench.lock:
            return self.bench.cloud.device_json(self.bench.cloud.device(device_id))

    def new_events(self) -> list[dict]:
        events = self.bench.cloud.events
        new = events[self._seen:]
        self._seen = len(events)
        return [e for e in new if not e["name"].startswith("otarig/")]


class SimRig(Rig):
    """A simulated bench built from the config; `mutant` selects a defective companion build."""

    def __init__(self, cfg: BenchConfig, artifacts: Path, *, seed: int, mutant: int = 0,
                 threaded: bool | None = None, cloud_params: CloudParams | None = None) -> None:
        self.bench = SimBench(seed, workdir=artifacts / "world", cloud_params=cloud_params)
        super().__init__(cfg, self.bench.clock, SimCloudAccess(self.bench, cfg.cloud.product_id), artifacts, seed)
        self.mutant = mutant
        self.threaded = cfg.simulation.threaded if threaded is None else threaded
        self.product_id = cfg.cloud.product_id
        self.base = self.firmware(cfg.simulation.firmware_version)
        for b in cfg.boards:
            self.bench.add_electron(b.id, product_id=self.product_id, image=self.base.image,
                                    link_profile=cfg.simulation.link)
        for b in cfg.boards:
            self.boards[b.id] = self.bench.open_board(b.id, artifacts / f"serial-{b.id}.log")
        if cfg.bench_companion is not None:
            self._start_companion(cfg, artifacts)
        self.device.listeners.append(self._fault_notes)
        self.monitor = None
        if cfg.capabilities.psu and cfg.psu is not None:
            self._start_psu(cfg)
        self.collect()

    # -- the cloud API over HTTP, for tools that need it (the real particle CLI) -------------------
    @property
    def api_url(self) -> str:
        """Start the simulated Cloud API on loopback on first use; its URL."""
        if getattr(self, "_api", None) is None:
            from .sim.cloud_http import CloudHttpServer

            self._api = CloudHttpServer(self.bench)
            self._api.start()
        return self._api.url

    @property
    def api_token(self) -> str:
        self.api_url  # noqa: B018 - starts the server
        return self._api.token

    def run_tool(self, fn: Any, timeout: float = 120.0) -> Any:
        """Run a real external tool (a subprocess) while the bench keeps running, recording what
        happens; the one place a simulated run waits on wall time (the tool is a real process)."""
        from .sim.launcher import pump_while

        try:
            return pump_while(self.bench, fn, timeout=timeout, on_step=self.collect)
        finally:
            self.collect()

    def _start_companion(self, cfg: BenchConfig, artifacts: Path) -> None:
        """firmware/bench/ in the simulated bench, on its own pty, driven like a real one."""
        from .bench_companion import BenchCompanion

        assert cfg.bench_companion is not None
        name = "bench-companion"
        self.bench.add_bench_companion(self.dut_id, name, vbus_cable=cfg.bench_companion.vbus_cable)
        board = self.bench.open_board(name, artifacts / "serial-bench-companion.log")
        self.bench_companion = BenchCompanion.connect(board, str(board.url), timeout_s=cfg.bench_companion.timeout_s)
        self.bench_companion.release()

    #: PSU sampling period on the simulated bench: coarse, so a simulated week stays cheap.
    MONITOR_PERIOD_S = 120.0

    def _start_psu(self, cfg: BenchConfig) -> None:
        """The simulated SCPI supply feeding the DUT, reached over PyVISA like a real one."""
        from .monitor import PowerMonitor
        from .psu import PowerSupply

        model = "DP832" if cfg.psu.model == "rigol-dp8xx" else "E36312A"
        resource = self.bench.start_psu(model, device_id=self.dut_id, channel=cfg.psu.channel,
                                        volts=cfg.psu.voltage, current_limit=cfg.psu.current_limit)
        self.psu = PowerSupply.open(resource, channel=cfg.psu.channel, timeout_s=cfg.psu.timeout_s,
                                    safe_state=cfg.psu.safe_state)
        self.monitor = PowerMonitor(self.psu, self.timeline, self.clock, period_s=self.MONITOR_PERIOD_S).start()

    def firmware(self, version: int, *, size: int | None = None, threaded: bool | None = None,
                 mutant: int | None = None, defect: str | None = None, requires_system: int | None = None,
                 **build: Any) -> FirmwareBuild:
        """The companion at `version`, built for the host; `defect` makes a bad image on purpose;
        `requires_system` sets the system-part dependency (a newer Device OS → safe mode, spec §2.7)."""
        so = build_companion(version, threaded=self.threaded if threaded is None else threaded,
                             mutant=self.mutant if mutant is None else mutant, product_id=self.product_id, **build)
        extra = {"required_system_version": requires_system} if requires_system else {}
        image = make_app_image(so, product_id=self.product_id, product_version=version, size=size, **extra)
        label = f"companion v{version}"
        if defect:
            image = firmware_defects.apply(defect, image)
            label += f" ({defect})"
        fw = FirmwareBuild(version, image, label)
        self.firmware_used.append(fw)
        return fw

    @property
    def device(self) -> Any:
        """The simulated DUT (for fault injection only; scenarios observe through the board)."""
        return self.bench.slots[self.dut_id].device

    # -- faults placed exactly at an OTA phase (simulator only) -------------------------------------
    def cut_power_at(self, phase: str, *, chunk: int = 0, off_s: float = 5.0) -> None:
        """Arm a power cut at an OTA phase, exact to the model step (spec §2.6, §7.10): `download`
        with `chunk` chunks in the OTA region, `complete` (slot registered, before the reset), or
        `copy` (in the middle of the bootloader's slot copy). Uses `otarig.sim.faults`."""
        phases = {"download": faults.OtaPhase.DOWNLOAD, "complete": faults.OtaPhase.AFTER_COMPLETE,
                  "copy": faults.OtaPhase.BOOTLOADER_COPY}
        if phase not in phases:
            raise ValueError(f"unknown phase {phase!r}: expected {', '.join(phases)}")
        point = faults.CutPoint(phases[phase], chunks=chunk,
                                copy_offset_ms=self.device.params.bootloader_copy_ms // 2)
        faults.SimPowerCut(self.device, point, off_ms=int(off_s * 1000)).arm()

    def _fault_notes(self, entry: Any) -> None:
        """The simulator's power faults, on the timeline at the instant they happened."""
        if entry.kind in ("fault_power_cut", "fault_power_restore"):
            self.timeline.add(entry.t_ms / 1000.0, "fault", entry.kind.removeprefix("fault_"),
                              {"board": self.dut_id, **entry.data})

    def flash(self, build: FirmwareBuild) -> None:
        """`particle flash <device> <file.bin>`: the cloud sends the bytes as they are (spec
        particle-cloud-api.md §4: cloud flash does not parse the binary)."""
        self.firmware_used.append(build)
        self.timeline.add(self.now(), "rig", "flash", {"version": build.version, "label": build.label})
        with self.bench.lock:
            self.bench.cloud.flash_device(self.dut_id, build.image)

    def cloud_blackhole(self, after_chunks: int) -> None:
        """The cloud stops sending a transfer after N chunks (cloud-side fault)."""
        self.inject("cloud_blackhole", after_chunks=after_chunks)
        self.bench.cloud.faults.blackhole_after_chunks = after_chunks

    def ota_bytes(self) -> int:
        return sum(n for s in self.bench.slots.values() for d in (s.device.link.stats.up, s.device.link.stats.down)
                   for k, n in d.items() if k == "ota")

    def data_bytes(self) -> int:
        return sum(s.device.link.stats.total for s in self.bench.slots.values())

    def close(self) -> None:
        if getattr(self, "_api", None) is not None:
            self._api.stop()
        if self.monitor is not None:
            self.monitor.stop()
        if self.psu is not None:
            self.psu.close()
        super().close()
        self.bench.close()
