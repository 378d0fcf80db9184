"""Shared fixtures for the rig's own tests: companion builds, simulated benches, boards.

Keep this file small: a fixture belongs here when two or more test files use it. Everything
simulated runs in virtual time (DESIGN principle 4); nothing here sleeps in wall time.
"""
from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from otarig.board import Board
from otarig.protocol import Event
from otarig.sim import deviceos as dos
from otarig.sim.bench import SimBench
from otarig.sim.build import build_companion
from otarig.sim.cloud import DeviceRecord
from otarig.sim.electron import Electron, TraceEntry
from otarig.sim.images import make_app_image

DEVICE_ID = "e00fce680000000000000001"
PRODUCT_ID = 4242
#: spec §2.6: apps up to 128 KB; the issue's OTA transfers are 100 KB (200 chunks of 512 B).
OTA_SIZE = 100 * 1024


# -- firmware -------------------------------------------------------------------------------------
ImageFactory = Callable[..., bytes]


@pytest.fixture(scope="session")
def companion_image() -> ImageFactory:
    """`companion_image(version, *, threaded=True, mode=None, mutant=0, defines=None, **image)`.

    Builds the real companion with g++ (cached by source hash, so only the first call per variant
    compiles) and wraps it in a Particle module binary; `image` goes to `make_app_image`
    (e.g. `size=OTA_SIZE`, `platform_id=12`, `required_system_version=...`).
    """
    cache: dict[tuple, bytes] = {}

    def make(version: int, *, threaded: bool = True, mode: str | None = None, mutant: int = 0,
             defines: dict[str, object] | None = None, **image: Any) -> bytes:
        extra = dict(defines or {})
        if mode is not None:
            extra["OTARIG_SYSTEM_MODE"] = mode
        key = (version, threaded, mutant, tuple(sorted(extra.items())), tuple(sorted(image.items())))
        if key not in cache:
            so = build_companion(version, threaded=threaded, mutant=mutant, product_id=PRODUCT_ID,
                                 extra_defines=extra or None)
            cache[key] = make_app_image(so, product_id=PRODUCT_ID, product_version=version, **image)
        return cache[key]

    return make


# -- simulated bench ------------------------------------------------------------------------------
@dataclass
class SimRig:
    """One simulated Electron on a simulated bench, with its board (pty + pyserial) if opened."""

    bench: SimBench
    dev: Electron
    board: Board | None
    log_path: Path
    notes: list[str] = field(default_factory=list)

    @property
    def rec(self) -> DeviceRecord:
        """The cloud's record of this device (spec §7.6)."""
        return self.bench.cloud.devices[self.dev.device_id]

    @property
    def now_ms(self) -> int:
        return self.bench.world.now_ms

    def run(self, seconds: float) -> None:
        self.bench.run_for(seconds)

    def until(self, pred: Callable[[TraceEntry], bool], timeout: float, what: str = "") -> TraceEntry:
        """Run virtual time until the model notes an entry matching `pred` (from now on); stop there.

        The listener stops the scheduler at that very event, so the test sees the instant itself.
        """
        hit: list[TraceEntry] = []
        sched = self.bench.world.sched

        def listen(entry: TraceEntry) -> None:
            if not hit and pred(entry):
                hit.append(entry)
                sched.request_stop()

        self.dev.listeners.append(listen)
        try:
            deadline = self.now_ms + int(timeout * 1000)
            while not hit and self.now_ms < deadline:
                self.bench.advance((deadline - self.now_ms) / 1000)
        finally:
            self.dev.listeners.remove(listen)
        if not hit:
            tail = "\n".join(f"  {e.t_ms:>9} {e.kind} {e.data}" for e in self.dev.trace[-15:])
            raise AssertionError(f"no trace entry {what or pred!r} within {timeout} s; last entries:\n{tail}")
        return hit[0]

    def until_kind(self, kind: str, timeout: float, **data: Any) -> TraceEntry:
        return self.until(lambda e: e.kind == kind and all(e.data.get(k) == v for k, v in data.items()),
                          timeout, f"{kind} {data}")

    def until_event(self, event: int, param: int | None = None, timeout: float = 60) -> TraceEntry:
        """Until the model emits a Device OS system event (spec §2.2)."""
        return self.until(lambda e: e.kind == "system_event" and e.data["event"] == event
                          and (param is None or e.data["param"] == param), timeout, f"event {event}/{param}")

    def trace(self, kind: str | None = None, since_ms: int = 0, **data: Any) -> list[TraceEntry]:
        return [e for e in self.dev.trace if (kind is None or e.kind == kind) and e.t_ms >= since_ms
                and all(e.data.get(k) == v for k, v in data.items())]

    def events(self, event: int, param: int | None = None, since_ms: int = 0) -> list[TraceEntry]:
        return [e for e in self.trace("system_event", since_ms) if e.data["event"] == event
                and (param is None or e.data["param"] == param)]

    def expect_sys(self, event: str, param: str | None = None, timeout: float = 60) -> Event:
        """Wait for the companion's `sys` line (what the app's System.on handler saw), via the board."""
        assert self.board is not None, "this rig has no board"
        return self.board.expect(lambda e: e.name == "sys" and e.get("event") == event
                                 and (param is None or e.get("param") == param), timeout)

    def connected(self, timeout: float = 90) -> Event:
        return self.expect_sys("cloud_status", "connected", timeout)

    def cloud_events(self, name: str, data: str | None = None) -> list[dict]:
        """Events in the cloud's stream from this device (e.g. what the device published)."""
        return [e for e in self.bench.cloud.events if e["coreid"] == self.dev.device_id and e["name"] == name
                and (data is None or e["data"] == data)]

    def release(self, image: bytes, version: int, *, intelligent: bool = True) -> None:
        """Upload product firmware `version` and make it the product default (spec §7.8.2)."""
        self.bench.cloud.upload_firmware(PRODUCT_ID, version, image)
        self.bench.cloud.release(PRODUCT_ID, version, product_default=True, intelligent=intelligent)


RigFactory = Callable[..., SimRig]


@pytest.fixture
def sim_rig(tmp_path: Path) -> Iterator[RigFactory]:
    """`sim_rig(image, *, seed=1, board=True, factory=None, **add_electron)` → a `SimRig`.

    Each call makes its own `SimBench` (closed at teardown) with one Electron USB-flashed with
    `image`; the board is opened on the device's real pty with pyserial, and its log is
    `tmp_path/<n>.log`. `bench_kw` goes to `SimBench` (device_params, cloud_params).
    """
    benches: list[SimBench] = []

    def make(image: bytes | None, *, seed: int = 1, board: bool = True, factory: bytes | None = None,
             bench_kw: dict[str, Any] | None = None, **add: Any) -> SimRig:
        n = len(benches)
        bench = SimBench(seed, workdir=tmp_path / f"bench{n}", **(bench_kw or {}))
        benches.append(bench)
        power_on = add.pop("power_on", True)
        dev = bench.add_electron(DEVICE_ID, product_id=PRODUCT_ID, image=image, power_on=False, **add)
        if factory is not None:
            dev.flash.factory = factory
        if power_on:
            dev.power_on()
        log = tmp_path / f"{n}.log"
        opened = bench.open_board(DEVICE_ID, log) if board and power_on else None
        return SimRig(bench, dev, opened, log)

    yield make
    for bench in benches:
        for slot in bench.slots.values():
            if slot.board is not None:
                slot.board.close()
        bench.close()


def sys_event_names() -> dict[str, int]:
    """Device OS system event bits by the names the companion prints (spec §2.2)."""
    return {"firmware_update": dos.FIRMWARE_UPDATE, "firmware_update_pending": dos.FIRMWARE_UPDATE_PENDING,
            "reset_pending": dos.RESET_PENDING, "reset": dos.RESET, "cloud_status": dos.CLOUD_STATUS}
