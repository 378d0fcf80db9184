"""The rig as a scenario sees it: boards, cloud, faults and one timeline, on any bench.

A `hil/` scenario talks only to a `Rig`: it waits through the rig (bench clock), commands
boards over serial, releases firmware through the cloud, injects faults, and checks verdicts
over `rig.timeline`. The rig is composed from the bench file by `otarig.compose` out of small
parts (`otarig.interfaces`): the same drivers on a real bench, a stand-in and the simulated one.
What only a simulator can do is `rig.sim`, which exists only on a simulated bench and only for
scenarios marked `sim_only`.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Iterable

from .bench_companion import BenchCompanion, CompanionTimeline, edges_for_byte
from .board import NOT_SUPPORTED, Board, ExpectTimeout, NotSupported
from .config import BenchConfig
from .fleet_release import NO_FLEET_RELEASE, NoFleetRelease
from .interfaces import BenchParts, CloudAccess, FirmwareBuild  # noqa: F401 - re-exported for scenarios
from .protocol import Event
from .timeline import Entry, Timeline
from .verdicts import Verdict, VerdictFailed


class SimOnlyError(RuntimeError):
    """A scenario reached for the simulator handle without being marked `sim_only`."""


class ClockDrift(RuntimeError):
    """The bench clock and the board's own uptime disagree: on a stand-in, the world could not keep
    up with its time scale, so the scenario's timings mean nothing."""


class Rig:
    """Bench-independent scenario API. Subclasses supply the bench specifics."""

    def __init__(self, cfg: BenchConfig, parts: BenchParts, artifacts: Path, seed: int, *,
                 sim_allowed: bool = False) -> None:
        self.cfg = cfg
        self.parts = parts
        self.clock = parts.clock
        self.cloud = parts.cloud
        self.artifacts = artifacts
        self.seed = seed
        self.timeline = Timeline()
        self.boards: dict[str, Board] = dict(parts.boards)
        self.firmware_used: list[FirmwareBuild] = []
        self.psu: Any | None = parts.psu
        self.monitor: Any | None = None
        self.verdicts: list[Verdict] = []
        self.cli_transcripts: list[Any] = []
        #: the tester board beside the DUT (firmware/bench/), when the bench has one
        self.bench_companion: BenchCompanion | None = parts.tester
        self._companion_tl: CompanionTimeline | None = None
        self._sim_allowed = sim_allowed
        #: what happened before the scenario proper (the baseline transition), kept for the record
        self.setup_timeline: Timeline | None = None
        self.t0 = self.t_created = self.clock.now()
        #: bench time minus the DUT's uptime over the scenario (wall clocks only; see check_drift)
        self.drift_s: float | None = None
        # a bench shared between scenarios (hardware): start from what its boards say from now on
        self._seen = {bid: len(b.history_since(0)) for bid, b in self.boards.items()}
        self._companion_seen = len(self.bench_companion.board.history_since(0)) if self.bench_companion else 0
        if parts.sim is not None:
            parts.sim.bind(self)

    def start_scenario(self) -> None:
        """The scenario begins: a fresh timeline (the transition's entries go to `setup_timeline`),
        seeded with the DUT's state now, and the PSU monitor sampling into it."""
        for b in self.boards.values():
            b.expect_from_now()
        self.collect()
        self.setup_timeline, self.timeline = self.timeline, Timeline()
        self.t0 = self.now()
        self.note_state(self.t0)
        if self.parts.start_monitor is not None:
            self.monitor = self.parts.start_monitor(self.timeline)

    def note_state(self, t: float | None = None) -> float:
        """The DUT's state as its agent reports it (version, window, workload, records), a `state`
        entry at `t` (now): where a judged stretch of timeline begins (the scenario's start, or a
        later point, e.g. once the fleet's release runs: hil/conftest.py `ota_verdicts(since=...)`)."""
        t = self.now() if t is None else t
        status = self.board.command("status")
        self.timeline.add(t, f"board:{self.dut_id}", "state",
                          {k: status.get(k) for k in ("product_version", "window_open", "workload", "records",
                                                       "last_seq", "cloud_connected", "updates_pending",
                                                       "reset_enabled", "uptime_ms")})
        return t

    @property
    def sim(self) -> Any:
        """What only the simulated bench can do (exact-phase cuts, a silent cloud, defective
        images, byte counters). Only for scenarios marked `sim_only`; absent on other benches."""
        if not self._sim_allowed:
            raise SimOnlyError("this scenario uses rig.sim (a simulator-only ability) but is not marked "
                               "@pytest.mark.sim_only; mark it, or use what every bench has")
        if self.parts.sim is None:
            raise SimOnlyError(f"bench {self.cfg.bench.name!r} ({self.cfg.bench.kind}) has no simulator handle")
        return self.parts.sim

    def _at_least(self, timeout: float) -> float:
        """A wait in bench seconds, but never shorter than a USB round trip: on a fast stand-in
        (x200) 10 bench seconds are 50 ms of wall time, less than a line takes to come back."""
        return max(timeout, 50 * self.clock.resolution_s)

    @property
    def clock_tolerance_s(self) -> float:
        """How far apart two bench times of the same instant may be on this bench (exact to the ms
        in virtual time; a few polls on a wall clock, more on a fast stand-in)."""
        return max(0.01, 20 * self.clock.resolution_s)

    @property
    def simulated(self) -> bool:
        """True when the bench is the in-process simulated one (timings are then exact)."""
        return self.parts.sim is not None

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
            return b.expect(match, self._at_least(timeout))
        finally:
            self.collect()

    def await_entry(self, source: str, kind: str, timeout: float, *, start: float | None = None) -> Any:
        """Wait (bench clock) until the timeline has an entry of `source`/`kind` at or after `start`
        — for what arrives on its own (a tester's timed switch, a PSU sample), not as a reply."""
        deadline = self.now() + timeout
        while True:
            self.collect()
            found = self.timeline.select(source=source, kind=kind, start=start)
            if found:
                return found[-1]
            if self.now() >= deadline:
                raise TimeoutError(f"no {source} {kind} entry within {timeout:g} s of bench time")
            self.clock.wait(min(1.0, deadline - self.now()))

    def expect_sys(self, event: str, param: str | None = None, timeout: float = 600, **kw: Any) -> Event:
        return self.expect(_named(lambda e: e.name == "sys" and e.get("event") == event and
                                  (param is None or e.get("param") == param),
                                  f"the app's `{event}{' ' + param if param else ''}` system event"), timeout, **kw)

    def expect_guard(self, action: str, timeout: float = 600, **kw: Any) -> Event:
        return self.expect(_named(lambda e: e.name == "guard" and e.get("action") == action,
                                  f"the guard's `{action}` report"), timeout, **kw)

    def expect_version(self, version: int, timeout: float = 1800, **kw: Any) -> Event:
        return self.expect(_named(lambda e: e.name == "hello" and e.get("product_version") == version,
                                  f"a `hello` from version {version}"), timeout, **kw)

    def command(self, cmd: str, *, board: str | None = None, timeout: float = 10.0, **keys: Any) -> dict:
        b = self.boards[board] if board else self.board
        self.timeline.add(self.now(), "rig", "command", {"board": b.board_id, "cmd": cmd, **keys})
        try:
            return b.command(cmd, timeout=self._at_least(timeout), **keys)
        except ExpectTimeout as exc:
            self.collect()
            held = self.app_held(b.board_id)
            if held:
                first, _, rest = str(exc).partition("\n")
                raise ExpectTimeout(f"{first}: the firmware is not threaded and {held}, so its test agent "
                                    f"cannot answer; SYSTEM_THREAD(ENABLED) keeps the app running\n{rest}") from None
            raise
        finally:
            self.collect()

    def app_held(self, board: str | None = None) -> str | None:
        """Why Device OS runs no loop() of the board's app now, as its timeline shows (a non-threaded
        app during a download or while its cloud connection is being made), or None."""
        source = f"board:{board or self.dut_id}"
        return held_by_device_os(e for tl in (self.setup_timeline, self.timeline) if tl is not None
                                 for e in tl.select(source=source))

    def collect(self) -> None:
        """Bring board events and cloud events into the timeline."""
        for bid, b in self.boards.items():
            b.poll()  # on a wall clock nobody else reads a board the scenario is not waiting on
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
            data = {k: v for k, v in ev.items() if k not in ("name", "t")}
            self.timeline.add(ev["t"], "cloud", ev["name"], data)

    def _collect_companion(self) -> None:
        if self.bench_companion is None:
            return
        if self._companion_tl is None:  # its switches as it answered at start, not assumed closed
            self._companion_tl = CompanionTimeline(self.dut_id, self.bench_companion.hello.get("switches"))
        self.bench_companion.board.poll()
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
        (an Electron is cellular: no cable to pull; docs/reference/instruments-and-faults.md A.3, docs/reference/hil-anchors.md §10 rec. 7)."""
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

    def require_status_line(self) -> None:
        """After a `firmware_update` begin: the tester board saw the DUT's download status line rise
        (docs/protocol.md "The download status line"). A firmware that does not drive it cannot have
        a cut timed to a byte: the scenario is not applicable to it (raises NotSupported)."""
        status = self.companion("power_switch").status()
        self.collect()
        if not status.get("edges") and not status.get("status_line"):
            raise NotSupported(f"{NOT_SUPPORTED}: its download status line (D6, DownloadSignal) never rose at "
                               "`firmware_update` begin, so a power cut cannot be timed to a byte",
                               Event("reply", 0, dict(status)))

    def wake(self, pulse_ms: int = 10) -> None:
        """Pulse the DUT's WKP pin (a rising edge wakes it from HIBERNATE, docs/reference/particle-ota.md §3.2)."""
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

    def development(self, on: bool = True, *, device_id: str | None = None) -> None:
        """Mark the DUT a development device: the product's release no longer pulls it back to the
        released version (docs/reference/particle-cloud-api.md §5)."""
        self.timeline.add(self.now(), "rig", "development", {"on": on})
        self.cloud.development(device_id or self.dut_id, on)

    def inject(self, kind: str, **data: Any) -> None:
        """Record an injected fault (the verdicts excuse what was injected)."""
        self.timeline.add(self.now(), "fault", kind, data)

    # -- firmware ----------------------------------------------------------------------------------
    def firmware(self, version: int, *, size: int | None = None) -> FirmwareBuild:
        """The firmware at logical `version` from the bench's firmware source (built for the host on
        a simulated bench, the `[firmware]` catalog on a real one); `size` is a hint for the image
        size, honoured where the source builds images."""
        build = self.parts.firmware.get(version, size=size, threaded=self.parts.threaded)
        self.firmware_used.append(build)
        return build

    def fleet_release(self, version: int, *, size: int | None = None) -> FirmwareBuild:
        """The fleet's release — what the devices in the field run now, which the candidate must
        upgrade from and whose persisted records it must read — uploaded as logical `version`
        (otarig.fleet_release: the bench file's `[firmware] fleet_release`; on the simulated bench
        by default the project under test built without defects). Raises NoFleetRelease (the
        scenario is skipped, saying what to add) when the bench has none."""
        if self.parts.fleet_release is None:
            raise NoFleetRelease(NO_FLEET_RELEASE)
        build = self.parts.fleet_release.get(version, size=size, threaded=self.parts.threaded)
        self.firmware_used.append(build)
        return build

    def flash(self, build: FirmwareBuild) -> None:
        """A cloud OTA of one binary to the DUT (`particle flash <device> <file.bin>`): the cloud
        sends the bytes as they are (docs/reference/particle-cloud-api.md §4)."""
        self.firmware_used.append(build)
        self.timeline.add(self.now(), "rig", "flash", {"version": build.version, "label": build.label})
        self.cloud.flash(self.dut_id, build.image, build.version)

    def run_tool(self, fn: Callable[[], Any], timeout: float = 120.0) -> Any:
        """Run a real external tool (e.g. the `particle` CLI) while the bench goes on."""
        try:
            return self.clock.run_external(fn, timeout)
        finally:
            self.collect()

    def data_bytes(self) -> int | None:
        """Cellular bytes the DUTs spent, where the bench can count them (None on hardware)."""
        return self.parts.sim.data_bytes() if self.parts.sim is not None else None

    def check_drift(self) -> None:
        """On a wall clock, compare bench time with the DUT's own uptime over the scenario; raise
        ClockDrift when they part by more than the clock's resolution allows (2 % plus 2 s)."""
        if self.clock.time_scale == 0:
            return  # virtual time: the board's clock is the bench's
        start = self.timeline.select(kind="state")
        if not start or start[0].get("uptime_ms") is None:
            return
        if self.timeline.select(kind="hello") or self.timeline.select(kind="boot") or \
                self.timeline.select(source="rig", kind="command", where=lambda e: e.get("cmd") == "sleep"):
            return  # a reset or sleep restarts or pauses the board's clock: nothing to compare
        try:
            status = self.board.command("status", timeout=10)
        except Exception:  # noqa: BLE001 - a board that does not answer is the scenario's problem, not drift's
            return
        elapsed = self.now() - start[0].t
        self.drift_s = round(elapsed - (int(status["uptime_ms"]) - int(start[0].get("uptime_ms"))) / 1000.0, 3)
        allowed = max(2.0, 2 * self.clock_tolerance_s) + 0.02 * elapsed
        if abs(self.drift_s) > allowed:
            raise ClockDrift(f"bench time and the board's uptime parted by {self.drift_s:+.1f} s over {elapsed:.0f} s "
                             f"(allowed {allowed:.1f} s): at time scale x{self.clock.time_scale:g} the stand-in "
                             "could not keep up; run it with a lower --speed")

    def detach(self) -> None:
        """The scenario is over but the bench goes on (a real bench serves the whole run)."""
        if self.monitor is not None:
            self.monitor.stop()
            self.monitor = None
        if self.bench_companion is not None:
            self.bench_companion.release()

    def close(self) -> None:
        """Teardown that always runs: every part's closer, in reverse order of opening."""
        try:
            self.detach()
        finally:
            self.parts.close()


def _ms(seconds: float) -> int:
    """A duration for the bench companion: whole ms, at least 1 (0 there means "until told")."""
    if seconds <= 0:
        raise ValueError(f"a fault duration must be positive, got {seconds} s")
    return max(1, round(seconds * 1000))


def _named(match: Callable[[Event], bool], what: str) -> Callable[[Event], bool]:
    """`match`, named for what it waits for: a timeout then says "no output matching the app's
    `firmware_update begin` system event", not "<lambda>"."""
    match.__name__ = what
    return match


def held_by_device_os(entries: Iterable[Entry]) -> str | None:
    """A board's entries, in order: when its last hello says non-threaded, why Device OS runs no
    loop() of its app now, or None. During a download: a `firmware_update begin` with no
    `complete`, `failed` or cloud disconnect since (docs/reference/particle-ota.md §2.2, §2.8). While
    the cloud connection is being made: a `cloud_status disconnected` with no `connected` since; a
    non-threaded SEMI_AUTOMATIC app gets no loop() then (§3.1; device-os v2.3.1
    system/src/main.cpp:450-452, :474-480), nor does an AUTOMATIC one while Spark_Idle, which runs
    before each loop(), blocks in the modem's connect (main.cpp:469-470,
    system/src/system_network_cellular.h:74-77)."""
    threaded, downloading, connecting = True, False, False
    for e in entries:
        if e.kind == "hello":
            threaded, downloading, connecting = bool(e.get("threaded", True)), False, False
        elif e.is_sys("firmware_update", "begin"):
            downloading = True
        elif e.is_sys("firmware_update", "complete") or e.is_sys("firmware_update", "failed"):
            downloading = False
        elif e.is_sys("cloud_status", "disconnected"):
            downloading, connecting = False, True
        elif e.is_sys("cloud_status", "connected"):
            connecting = False
    if threaded:
        return None
    if downloading:
        return ("a download is in progress, and Device OS runs no loop() until it ends "
                "(docs/reference/particle-ota.md §2.8)")
    if connecting:
        return ("its cloud connection is being made, and Device OS runs no loop() until it is "
                "(docs/reference/particle-ota.md §3.1)")
    return None
