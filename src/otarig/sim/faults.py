"""Power faults on the simulated bench, placed *exactly* at a named OTA phase.

Why: the real bench can only time a cut from the board's serial progress events (tens of ms of
jitter, `otarig.power_faults`); the simulator can cut between any two model steps. Following
MCUboot's simulator (docs/reference/instruments-and-faults.md A.2: cut at every step, not at one lucky spot) the sweep
cuts at every chunk boundary of a download, after `complete` and during the bootloader copy, and
checks the oracle of docs/reference/particle-ota.md §7.10 / §2.6:

* cut during RECEIVING (any chunk boundary, also "all chunks in, not yet validated") → the old
  app boots (no DCT slot was registered; the OTA region is scratch);
* cut after `complete`, before the reset → the new app boots (the slot is registered, the
  bootloader copies it at the next boot);
* cut during the bootloader copy → the copy is redone at the next boot (the slot magic is cleared
  only after the copy) → the new app boots.

How the fault is placed: a listener on the device's trace (`Electron.listeners`) sees each model
step as it happens; the cut is then scheduled at the *same virtual instant*, right after the step
completes (a timer at `now`), so "after k chunks" means exactly k chunks in the OTA region. The cut
is `Electron.power_off()` — the bench tester board switching VIN *and* USB VBUS (docs/power.md §4).
"""
from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Iterator

from . import deviceos as dos
from .electron_power import power_on_after_brownout

if TYPE_CHECKING:
    from .electron import Electron, TraceEntry
    from .stm32_flash import Op


class OtaPhase(str, enum.Enum):
    """Where in an OTA a cut lands (docs/reference/particle-ota.md §7.10 "Power cut injection")."""

    DOWNLOAD = "download"                # RECEIVING, exactly `chunks` chunks in the OTA region
    AFTER_COMPLETE = "after_complete"    # HAL_FLASH_End registered the slot; reset not yet done
    BOOTLOADER_COPY = "bootloader_copy"  # `copy_offset_ms` into the bootloader's copy (docs/reference/particle-ota.md §2.6)


@dataclass(frozen=True)
class CutPoint:
    """A named place to cut power."""

    phase: OtaPhase
    chunks: int = 0
    copy_offset_ms: int = 0

    @property
    def label(self) -> str:
        if self.phase is OtaPhase.DOWNLOAD:
            return f"download@{self.chunks}"
        if self.phase is OtaPhase.BOOTLOADER_COPY:
            return f"copy@{self.copy_offset_ms}ms"
        return self.phase.value

    @property
    def expects_new_image(self) -> bool:
        """docs/reference/particle-ota.md §2.6: only a registered DCT slot survives a cut; the download itself does not."""
        return self.phase is not OtaPhase.DOWNLOAD


def sweep_points(chunk_count: int, copy_ms: int, copy_offsets: tuple[float, ...] = (0.0, 0.5, 1.0)
                 ) -> Iterator[CutPoint]:
    """Every chunk boundary 0..chunk_count, after `complete`, and a few instants of the copy.

    `copy_offsets` are fractions of the copy time; 1.0 means the last millisecond of the copy.
    """
    for k in range(chunk_count + 1):
        yield CutPoint(OtaPhase.DOWNLOAD, chunks=k)
    yield CutPoint(OtaPhase.AFTER_COMPLETE)
    seen: set[int] = set()
    for frac in copy_offsets:
        off = min(int(frac * copy_ms), copy_ms - 1)
        if off not in seen:
            seen.add(off)
            yield CutPoint(OtaPhase.BOOTLOADER_COPY, copy_offset_ms=off)


@dataclass
class CutRecord:
    """Ground truth at the instant of the cut (the model's view, not the rig's)."""

    t_ms: int
    point: CutPoint
    chunks_received: int
    slot_registered: bool
    copying: bool
    user_version: int | None
    data: dict[str, Any] = field(default_factory=dict)


class SimPowerCut:
    """Cut a simulated Electron's power once, at `point`; restore it `off_ms` later.

    `brownout=True` records the cut as a brown-out (reset reason `power_brownout` at the next boot).
    `off_ms=None` leaves the board off. Arm before the OTA starts; `record` is set when it fires.
    """

    def __init__(self, dev: "Electron", point: CutPoint, *, off_ms: int | None = 1_000,
                 brownout: bool = False, on_cut: Callable[[CutRecord], None] | None = None) -> None:
        self.dev = dev
        self.point = point
        self.off_ms = off_ms
        self.brownout = brownout
        self.on_cut = on_cut
        self.record: CutRecord | None = None
        self.restored_ms: int | None = None
        self._armed = False
        self._pending = False

    @property
    def fired(self) -> bool:
        return self.record is not None

    def arm(self) -> "SimPowerCut":
        if not self._armed:
            self._armed = True
            self.dev.listeners.append(self._on_note)
            self.dev.flash.journal.listeners.append(self._on_flash_op)
        return self

    def disarm(self) -> None:
        if self._armed:
            self._armed = False
            if self._on_note in self.dev.listeners:
                self.dev.listeners.remove(self._on_note)
            if self._on_flash_op in self.dev.flash.journal.listeners:
                self.dev.flash.journal.listeners.remove(self._on_flash_op)

    def _on_flash_op(self, op: "Op") -> None:
        """A chunk reached the OTA region (HAL_FLASH_Update, docs/reference/particle-ota.md §2.10): the
        count to cut at is exact even when the chunk is written well after its progress event."""
        if self.point.phase is OtaPhase.DOWNLOAD and op.region == "ota" and op.kind == "program" \
                and not self._pending and self.record is None:
            self.dev.sched.after(0, self._check_download)

    # -- placing the cut ----------------------------------------------------------------------
    def _on_note(self, e: "TraceEntry") -> None:
        if self._pending or self.record is not None:
            return
        p = self.point
        sched = self.dev.sched
        if p.phase is OtaPhase.DOWNLOAD:
            if e.kind == "ota_begin" or (e.kind == "system_event" and e.data.get("event") == dos.FIRMWARE_UPDATE
                                         and e.data.get("param") == dos.FIRMWARE_UPDATE_PROGRESS):
                # the chunk is written after its progress event: look once this step is over
                sched.after(0, self._check_download)
        elif p.phase is OtaPhase.AFTER_COMPLETE:
            if e.kind == "ota_end" and e.data.get("ok"):
                self._pending = True
                sched.after(0, self._cut)
        elif p.phase is OtaPhase.BOOTLOADER_COPY:
            if e.kind == "bootloader_copy_start":
                self._pending = True
                sched.after(p.copy_offset_ms, self._cut)

    def _check_download(self) -> None:
        rx = self.dev.ota.rx
        if self.record is None and not self._pending and self.dev.ota.receiving \
                and rx.chunks_received == self.point.chunks:
            self._cut()

    def _cut(self) -> None:
        dev = self.dev
        self._pending = False
        if self.record is not None or not dev.powered:
            return
        self.disarm()
        self.record = CutRecord(
            t_ms=dev.sched.now_ms, point=self.point,
            chunks_received=dev.ota.rx.chunks_received if dev.ota.receiving else -1,
            slot_registered=dev.flash.slot_pending, copying=dev.flash.copying,
            user_version=dev.running_version)
        dev.note("fault_power_cut", point=self.point.label, brownout=self.brownout)
        dev.power_off(brownout=self.brownout)
        if self.on_cut is not None:
            self.on_cut(self.record)
        if self.off_ms is not None:
            dev.sched.after(self.off_ms, self._restore)

    def _restore(self) -> None:
        self.restored_ms = self.dev.sched.now_ms
        self.dev.note("fault_power_restore", point=self.point.label)
        if self.brownout:
            power_on_after_brownout(self.dev)
        else:
            self.dev.power_on()


def power_cycle(dev: "Electron", off_ms: int = 1_000, *, at_ms: int | None = None) -> None:
    """Cut power at `at_ms` (default: now) and restore it `off_ms` later, both in virtual time.

    Call from the bench's thread (e.g. between `bench.advance` calls).
    """
    sched = dev.sched

    def cut() -> None:
        dev.note("fault_power_cut", point="power_cycle", brownout=False)
        dev.power_off()
        sched.after(off_ms, restore)

    def restore() -> None:
        dev.note("fault_power_restore", point="power_cycle")
        dev.power_on()

    sched.at(sched.now_ms if at_ms is None else at_ms, cut)
