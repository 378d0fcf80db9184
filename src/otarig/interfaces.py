"""The parts a rig is composed of, as small interfaces (labgrid's protocols, in spirit).

Each interface says what a scenario needs from one kind of thing on a bench, not how a
particular bench provides it: a board console is pyserial on a USB CDC port whether the board
is an Electron or a simulated one behind a pty; the cloud is the Particle Cloud API whether it
is api.particle.io or the simulated cloud on loopback. `otarig.compose` picks implementations
from the bench file and hands the rig a `BenchParts`.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any, Callable, Protocol

from .clock import BenchClock
from .protocol import Event


@dataclass
class FirmwareBuild:
    """A firmware image the rig made or was given, for the certification record."""

    version: int
    image: bytes
    label: str = ""
    sha256: str = field(init=False)

    def __post_init__(self) -> None:
        self.sha256 = hashlib.sha256(self.image).hexdigest()


class Console(Protocol):
    """A board's serial console: expect-style waits and commands of the test agent
    (`otarig.board.Board`), reconnecting across USB re-enumeration with one log."""

    board_id: str

    def expect(self, match: Callable[[Event], bool] | str, timeout: float) -> Event: ...
    def command(self, cmd: str, timeout: float = 10.0, **keys: Any) -> dict[str, Any]: ...
    def history_since(self, index: int) -> list[tuple[float, Any]]: ...
    def close(self) -> None: ...


class PowerSupply(Protocol):
    """A bench supply channel feeding the DUT's VIN (`otarig.psu.PowerSupply`)."""

    def measure_current(self) -> float: ...
    def measure_voltage(self) -> float: ...
    def output(self, on: bool) -> None: ...
    def close(self) -> None: ...


class Tester(Protocol):
    """The tester board beside the DUT (`otarig.bench_companion.BenchCompanion`)."""

    def power_off(self, ms: int = 0) -> dict: ...
    def antenna_off(self, ms: int = 0) -> dict: ...
    def arm_cut(self, edges: int, off_ms: int) -> dict: ...
    def wake(self, ms: int = 10) -> dict: ...
    def release(self) -> None: ...
    def close(self) -> None: ...


class CloudAccess(Protocol):
    """What scenarios need from the cloud, in logical versions (`otarig.cloud_access`)."""

    def upload(self, version: int, binary: bytes, title: str = "") -> None: ...
    def release(self, version: int, *, intelligent: bool = False, groups: list[str] | None = None) -> None: ...
    def lock(self, device_id: str, version: int | None, *, flash: bool = True) -> None: ...
    def force(self, device_id: str, forced: bool) -> None: ...
    def development(self, device_id: str, on: bool) -> None: ...
    def flash(self, device_id: str, binary: bytes, version: int | None = None) -> None: ...
    def device(self, device_id: str) -> dict: ...
    def variable(self, device_id: str, name: str) -> object: ...
    def new_events(self) -> list[dict]: ...
    def reset_device(self, device_id: str) -> None: ...
    def prepare(self, binary: bytes, version: int) -> bytes: ...
    def reset_group(self, baseline: int, binary: bytes) -> None: ...
    def close(self) -> None: ...


class FirmwareSource(Protocol):
    """Firmware by logical version: built for the host (simulated bench) or a catalog of
    Electron binaries named in the bench file (`[firmware]`)."""

    def get(self, version: int, *, size: int | None = None, threaded: bool = True) -> FirmwareBuild: ...


class Flasher(Protocol):
    """Puts a binary on a board without an OTA: over USB (`particle flash --local`) or the cloud."""

    method: str

    def flash(self, device_id: str, build: FirmwareBuild) -> None: ...


@dataclass
class BenchParts:
    """Everything a rig is composed of; `close()` tears it down in reverse order, always."""

    clock: BenchClock
    cloud: CloudAccess
    boards: dict[str, Any]
    firmware: FirmwareSource
    flasher: Flasher | None = None
    #: the fleet's release, the build the candidate upgrades from (otarig.fleet_release); None: not configured
    fleet_release: FirmwareSource | None = None
    psu: Any | None = None
    tester: Any | None = None
    #: starts a PSU monitor on the rig's timeline (None without a PSU)
    start_monitor: Callable[[Any], Any] | None = None
    #: the simulator handle; exists only on a simulated bench
    sim: Any | None = None
    #: the firmware variant scenarios want now (SYSTEM_THREAD enabled or not) …
    threaded: bool = True
    #: … and the one the board was last seen running (None: not asked yet)
    board_threaded: bool | None = None
    #: the Cloud API the bench uses and its token (a callable, so the token is never a field value)
    api_url: str = ""
    token: Callable[[], str] | None = field(default=None, repr=False)
    closers: list[Callable[[], None]] = field(default_factory=list)
    #: how the bench was reached, for the record (kind, stand-in, time scale, endpoints)
    description: dict[str, Any] = field(default_factory=dict)

    def close(self) -> None:
        errors: list[BaseException] = []
        for close in reversed(self.closers):
            try:
                close()
            except Exception as exc:  # noqa: BLE001 - every closer runs; the first error is raised after
                errors.append(exc)
        self.closers.clear()
        if errors:
            raise errors[0]
