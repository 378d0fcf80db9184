"""Helpers shared by the simulated-bench tests (imported by conftest.py and the tests).

A plain module, not conftest: `from conftest import ...` would pick whichever conftest.py was
imported last (hil/ has one too).
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from otarig.board import Board
from otarig.protocol import Event
from otarig.sim.bench import SimBench
from otarig.sim.cloud import DeviceRecord
from otarig.sim.electron import Electron, TraceEntry

DEVICE_ID = "e00fce680000000000000001"
PRODUCT_ID = 4242
#: docs/reference/particle-ota.md §2.6: apps up to 128 KB; the issue's OTA transfers are 100 KB (200 chunks of 512 B).
OTA_SIZE = 100 * 1024

#: `companion_image(version, *, threaded=True, mode=None, mutant=0, defines=None, **image)` → bytes
ImageFactory = Callable[..., bytes]


@dataclass
class SimRig:
    """One simulated Electron on a simulated bench, with its board (pty + pyserial) if opened."""

    bench: SimBench
    dev: Electron
    board: Board | None
    log_path: Path

    @property
    def rec(self) -> DeviceRecord:
        """The cloud's record of this device (docs/reference/particle-ota.md §7.6)."""
        return self.bench.cloud.devices[self.dev.device_id]

    @property
    def now_ms(self) -> int:
        return self.bench.world.now_ms

    def power_on(self) -> None:
        """Power the device (docs/reference/particle-ota.md §7.2 POWER_ON) and open its board once the port is there."""
        self.dev.power_on()
        if self.board is None:
            self.board = self.bench.open_board(self.dev.device_id, self.log_path)

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
        """Until the model emits a Device OS system event (docs/reference/particle-ota.md §2.2)."""
        return self.until(lambda e: e.kind == "system_event" and e.data["event"] == event
                          and (param is None or e.data["param"] == param), timeout, f"event {event}/{param}")

    def trace(self, kind: str | None = None, since_ms: int = 0, **data: Any) -> list[TraceEntry]:
        return [e for e in self.dev.trace if (kind is None or e.kind == kind) and e.t_ms >= since_ms
                and all(e.data.get(k) == v for k, v in data.items())]

    def events(self, event: int, param: int | None = None, since_ms: int = 0) -> list[TraceEntry]:
        return [e for e in self.trace("system_event", since_ms) if e.data["event"] == event
                and (param is None or e.data["param"] == param)]

    def handled(self, event: int, param: int | None = None, since_ms: int = 0) -> list[TraceEntry]:
        """The events whose handlers ran: at once without threading, later from a threaded app's queue
        (docs/reference/particle-ota.md §2.2)."""
        return [e for e in self.trace("system_event_handled", since_ms) if e.data["event"] == event
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
        """Upload product firmware `version` and make it the product default (docs/reference/particle-ota.md §7.8.2)."""
        self.bench.cloud.upload_firmware(PRODUCT_ID, version, image)
        self.bench.cloud.release(PRODUCT_ID, version, product_default=True, intelligent=intelligent)


#: `sim_rig(image, *, seed=1, board=True, factory=None, bench_kw=None, **add_electron)` → SimRig
RigFactory = Callable[..., SimRig]


def real_bench_text(simulated: str) -> str:
    """The shipped (simulated) bench file turned into a valid `kind = "real"` one: an API URL, a
    VISA resource, no simulator-only capability and a firmware catalog (read only at compose time)."""
    return (simulated.replace('kind = "simulated"', 'kind = "real"')
            .replace('api_url = "sim"', 'api_url = "https://api.particle.io"')
            .replace('resource = "sim"', 'resource = "TCPIP::192.0.2.10::5025::SOCKET"')
            .replace("power_cut = true", "power_cut = false")
            + '\n[firmware.versions]\n1 = "companion-v1.bin"\n')
