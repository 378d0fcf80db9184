"""The rig as a scenario sees it: boards, cloud, faults and one timeline, on any bench.

A `hil/` scenario talks only to a `Rig`: it waits through the rig (bench clock), commands
boards over serial, releases firmware through the cloud, injects faults, and checks verdicts
over `rig.timeline`. `SimRig` builds the simulated bench from `bench_config.toml`; a real
bench plugs a `CloudAccess` over the Cloud API and a PSU driver into the same facade.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Protocol

from .bench_companion import BenchCompanion, CompanionTimeline, edges_for_byte
from .board import Board
from .clock import BenchClock
from .config import BenchConfig
from .protocol import Event
from .timeline import Timeline
from .verdicts import Verdict, VerdictFailed


class CloudAccess(Protocol):
    """What scenarios need from the cloud (real API client or the simulated cloud)."""

    def upload(self, version: int, binary: bytes, title: str = "") -> None: ...
    def release(self, version: int, *, intelligent: bool = False, groups: list[str] | None = None) -> None: ...
    def lock(self, device_id: str, version: int | None, *, flash: bool = True) -> None: ...
    def force(self, device_id: str, forced: bool) -> None: ...
    def device(self, device_id: str) -> dict: ...
    def new_events(self) -> list[dict]: ...


@dataclass
class FirmwareBuild:
    """A firmware image the rig made or was given, for the certification record."""

    version: int
    image: bytes
    label: str = ""
    sha256: str = field(init=False)

    def __post_init__(self) -> None:
        self.sha256 = hashlib.sha256(self.image).hexdigest()


class Rig:
    """Bench-independent scenario API. Subclasses supply the bench specifics."""

    def __init__(self, cfg: BenchConfig, clock: BenchClock, cloud: CloudAccess, artifacts: Path, seed: int) -> None:
        self.cfg = cfg
        self.clock = clock
        self.cloud = cloud
        self.artifacts = artifacts
        self.seed = seed
        self.timeline = Timeline()
        self.boards: dict[str, Board] = {}
        self.firmware_used: list[FirmwareBuild] = []
        self._seen: dict[str, int] = {}
        self.psu: Any | None = None
        self.verdicts: list[Verdict] = []
        self.cli_transcripts: list[Any] = []
        #: the tester board beside the DUT (firmware/bench/), when the bench has one
        self.bench_companion: BenchCompanion | None = None
        self._companion_seen = 0
        self._companion_tl: CompanionTimeline | None = None

    # -- boards and time -----------------------------------------------------------------------
    @property
    def dut_id(self) -> str:
        return next(b.id for b in self.cfg.boards if b.role == "dut")

    @property
    def board(self) -> Board:
        """The device under test (the board with role "dut")."""
        return self.boards[self.dut_id]

    def now(self) -> float:
        return self.clock.now()

    def wait(self, seconds: float) -> None:
        """Let the bench run for `seconds` (virtual on a simulated bench), recording what happens."""
        end = self.clock.now() + seconds
        while True:
            self.collect()
            remaining = end - self.clock.now()
            if remaining < 0.0005:  # the bench clock counts whole milliseconds
                break
            self.clock.wait(remaining)
        self.collect()

    def expect(self, match: Callable[[Event], bool] | str, timeout: float, *, board: str | None = None) -> Event:
        """Wait for a board event (through the bench clock); the timeline keeps up."""
        b = self.boards[board] if board else self.board
        try:
            return b.expect(match, timeout)
        finally:
            self.collect()

    def expect_sys(self, event: str, param: str | None = None, timeout: float = 600, **kw: Any) -> Event:
        return self.expect(lambda e: e.name == "sys" and e.get("event") == event and
                           (param is None or e.get("param") == param), timeout, **kw)

    def expect_guard(self, action: str, timeout: float = 600, **kw: Any) -> Event:
        return self.expect(lambda e: e.name == "guard" and e.get("action") == action, timeout, **kw)

    def expect_version(self, version: int, timeout: float = 1800, **kw: Any) -> Event:
        return self.expect(lambda e: e.name == "hello" and e.get("product_version") == version, timeout, **kw)

    def command(self, cmd: str, *, board: str | None = None, timeout: float = 10.0, **keys: Any) -> dict:
        b = self.boards[board] if board else self.board
        self.timeline.add(self.now(), "rig", "command", {"board": b.board_id, "cmd": cmd, **keys})
        try:
            return b.command(cmd, timeout=timeout, **keys)
        finally:
            self.collect()

    def collect(self) -> None:
        """Bring board events and cloud events into the timeline."""
        for bid, b in self.boards.items():
            start = self._seen.get(bid, 0)
            new = b.history_since(start)
            for t, entry in new:
                if isinstance(entry, Event):
                    self.timeline.add(t, f"board:{bid}", entry.name, dict(entry.fields), device_t=int(entry.t))
                else:
                    self.timeline.add(t, f"board:{bid}", "noise", {"reason": entry.reason})
            self._seen[bid] = start + len(new)
        self._collect_companion()
        for ev in self.cloud.new_events():
            data = {k: v for k, v in ev.items() if k not in ("name", "t_ms")}
            t = ev["t_ms"] / 1000.0 if "t_ms" in ev else self.now()
            self.timeline.add(t, "cloud", ev["name"], data)

    def _collect_companion(self) -> None:
        if self.bench_companion is None:
            return
        if self._companion_tl is None:  # its switches as it answered at start, not assumed closed
            self._companion_tl = CompanionTimeline(self.dut_id, self.bench_companion.hello.get("switches"))
        new = self.bench_companion.board.history_since(self._companion_seen)
        self._companion_seen += len(new)
        for t, entry in new:
            if isinstance(entry, Event):
                for source, kind, data in self._companion_tl.entries(entry):
                    self.timeline.add(t, source, kind, data)

    # -- the bench companion: faults and wake-ups, the same commands on every bench -----------------
    def companion(self, capability: str) -> BenchCompanion:
        """The bench companion, if the bench declares `capability` (scenarios mark `requires(...)`)."""
        if self.bench_companion is None or not getattr(self.cfg.capabilities, capability, False):
            raise RuntimeError(f"this bench has no {capability} (capabilities.{capability} = false, or no "
                               f"[bench_companion] section); mark the scenario requires({capability!r})")
        return self.bench_companion

    def link_outage(self, seconds: float) -> None:
        """Connectivity lost from now for `seconds`: the companion disconnects the DUT's antenna
        (an Electron is cellular: no cable to pull; instruments spec A.3, hil-anchors rec. 7)."""
        self.companion("antenna_switch").antenna_off(_ms(seconds))
        self.collect()

    def power_cycle(self, off_s: float = 2.0) -> None:
        """VIN and USB VBUS off now, back on after `off_s` (timed on the companion), then wait."""
        self.companion("vbus_switch")
        self.companion("power_switch").power_off(_ms(off_s))
        self.wait(off_s)

    def cut_power_at_byte(self, byte: int, *, off_s: float = 5.0) -> int:
        """Arm a cut of VIN and VBUS once `byte` bytes of the next download are in flash (rounded
        down to a 512 B chunk), timed by the companion on the DUT's status line; returns the edge."""
        edges = edges_for_byte(byte)
        self.companion("vbus_switch")
        self.companion("power_switch").arm_cut(edges, _ms(off_s))
        self.collect()
        return edges

    def wake(self, pulse_ms: int = 10) -> None:
        """Pulse the DUT's WKP pin (a rising edge wakes it from HIBERNATE, spec particle-ota.md §3.2)."""
        self.companion("wake_pin").wake(pulse_ms)
        self.collect()

    # -- verdicts ---------------------------------------------------------------------------------
    def check(self, *verdicts: Verdict) -> None:
        """Record verdicts for the report; fail the scenario with the slices of those that failed."""
        self.collect()
        self.verdicts.extend(verdicts)
        failed = [v for v in verdicts if not v.passed]
        if failed:
            raise VerdictFailed("\n\n".join(v.explain() for v in failed))

    # -- cloud actions recorded on the timeline --------------------------------------------------
    def upload(self, build: FirmwareBuild) -> None:
        self.firmware_used.append(build)
        self.timeline.add(self.now(), "rig", "upload", {"version": build.version, "sha256": build.sha256})
        self.cloud.upload(build.version, build.image, build.label)

    def release(self, version: int, *, intelligent: bool = False, groups: list[str] | None = None) -> None:
        self.timeline.add(self.now(), "rig", "release", {"version": version, "intelligent": intelligent})
        self.cloud.release(version, intelligent=intelligent, groups=groups)

    def lock(self, version: int | None, *, flash: bool = True, device_id: str | None = None) -> None:
        self.timeline.add(self.now(), "rig", "lock", {"version": version, "flash": flash})
        self.cloud.lock(device_id or self.dut_id, version, flash=flash)

    def force(self, forced: bool = True, *, device_id: str | None = None) -> None:
        self.timeline.add(self.now(), "rig", "force", {"forced": forced})
        self.cloud.force(device_id or self.dut_id, forced)

    def inject(self, kind: str, **data: Any) -> None:
        """Record an injected fault (the verdicts excuse what was injected)."""
        self.timeline.add(self.now(), "fault", kind, data)

    # -- bench specifics ----------------------------------------------------------------------------
    def firmware(self, version: int, **options: Any) -> FirmwareBuild:
        raise NotImplementedError

    def data_bytes(self) -> int:
        return 0

    def close(self) -> None:
        for b in self.boards.values():
            b.close()
        if self.bench_companion is not None:
            self.bench_companion.release()  # a real tester outlives the run: nothing armed or left off
            self.bench_companion.close()


def _ms(seconds: float) -> int:
    """A duration for the bench companion: whole ms, at least 1 (0 there means "until told")."""
    if seconds <= 0:
        raise ValueError(f"a fault duration must be positive, got {seconds} s")
    return max(1, round(seconds * 1000))
