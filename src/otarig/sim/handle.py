"""`rig.sim`: what only the simulated bench can do, behind one explicit handle.

Exact-phase power cuts, a cloud that goes silent mid-transfer, images with a defect, and byte
counters of the simulated cellular link have no counterpart on hardware. Scenarios that use
them are marked `sim_only`; the rig refuses the handle to any other scenario (`Rig.sim`).
"""
from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any

from ..interfaces import FirmwareBuild
from . import faults

if TYPE_CHECKING:
    from .bench import SimBench
    from .firmware_source import SimFirmwareSource


class SimHandle:
    """The simulator's abilities for one rig (bound to it when the rig is made)."""

    def __init__(self, bench: "SimBench", source: "SimFirmwareSource", dut_id: str, *, threaded: bool) -> None:
        self.bench = bench
        self.source = source
        self.dut_id = dut_id
        self.threaded = threaded
        self._rig: Any = None

    def bind(self, rig: Any) -> None:
        """The simulator's own power faults go on the rig's timeline at the instant they happen."""
        self._rig = rig
        self.device.listeners.append(self._fault_notes)

    @property
    def device(self) -> Any:
        """The simulated DUT (for fault injection only; scenarios observe through the board)."""
        return self.bench.slots[self.dut_id].device

    # -- firmware a real bench would never be given ------------------------------------------------
    def firmware(self, version: int, *, size: int | None = None, defect: str | None = None,
                 requires_system: int | None = None) -> FirmwareBuild:
        """The companion with a defect (`bad_crc`, `wrong_platform`, `truncated`) or a dependency
        on a newer Device OS (docs/reference/particle-ota.md §2.5, §2.7)."""
        build = self.source.build(version, size=size, threaded=self.threaded, defect=defect,
                                  requires_system=requires_system)
        if self._rig is not None:
            self._rig.firmware_used.append(build)
        return build

    # -- faults placed exactly --------------------------------------------------------------------
    def cut_power_at(self, phase: str, *, chunk: int = 0, off_s: float = 5.0) -> None:
        """Arm a power cut at an OTA phase, exact to the model step (docs/reference/particle-ota.md
        §2.6, §7.10): `download` with `chunk` chunks in the OTA region, `complete` (slot registered,
        before the reset), or `copy` (in the middle of the bootloader's slot copy)."""
        phases = {"download": faults.OtaPhase.DOWNLOAD, "complete": faults.OtaPhase.AFTER_COMPLETE,
                  "copy": faults.OtaPhase.BOOTLOADER_COPY}
        if phase not in phases:
            raise ValueError(f"unknown phase {phase!r}: expected {', '.join(phases)}")
        point = faults.CutPoint(phases[phase], chunks=chunk,
                                copy_offset_ms=self.device.params.bootloader_copy_ms // 2)
        faults.SimPowerCut(self.device, point, off_ms=int(off_s * 1000)).arm()

    def damage_eeprom(self, put: int = 1, *, before: float | None = None, reads: str = "wrong",
                      bits: int = 0x01) -> int:
        """Damage stored application data: the flash records of the `put`-th newest EEPROM put the
        firmware made (1: the last one; counted among those begun before bench time `before`, when
        given) read wrong from now on, as a worn or disturbed flash word would
        (docs/reference/particle-ota.md §2.10 "Damaged stored data"). `wrong`: each of its bytes
        reads with the `bits` of the mask flipped (bit 0 unless told); `invalid`: its first record reads invalid, so the emulated EEPROM
        reads nothing from there on (for the newest put: as a cut inside it before its commit).
        Addressed by puts, not addresses, so that a scenario needs no knowledge of the app's layout.
        No bench can do this to a real Electron. Returns how many bytes now read differently."""
        before_us = None if before is None else round(before * 1_000_000)
        damaged = self.device.flash.damage_eeprom(put, before_us=before_us, reads=reads, bits=bits)
        if self._rig is not None:
            self._rig.inject("eeprom_damage", board=self.dut_id, put=put, reads=reads, bytes=len(damaged),
                             **({"bits": bits} if reads == "wrong" else {}),
                             **({} if before is None else {"before": before}))
        return len(damaged)

    def cloud_blackhole(self, after_chunks: int) -> None:
        """The cloud stops sending a transfer after N chunks (cloud-side fault)."""
        if self._rig is not None:
            self._rig.inject("cloud_blackhole", after_chunks=after_chunks)
        self.bench.cloud.faults.blackhole_after_chunks = after_chunks

    def cloud_renegotiates_now(self) -> None:
        """The cloud renegotiates the DUT's session now, as it does once its 3 days are up
        (docs/reference/particle-ota.md §1.2, §8.2: DISCARD_SESSION): the device's event loop fails,
        so a transfer in progress ends with `firmware_update failed` (§2.2), and the device connects
        again with a full handshake. When is the cloud's choice, which no bench can make."""
        rec = self.bench.cloud.devices[self.dut_id]
        if not self.bench.cloud.renegotiate(rec):
            raise RuntimeError("the cloud has no session with the device to renegotiate (not connected)")
        if self._rig is not None:
            self._rig.inject("cloud_renegotiation", board=self.dut_id)

    def cloud_offers_at_handshake(self, after_ms: int = 0) -> None:
        """The cloud sends UpdateBegin `after_ms` after the HELLO of a connection whose check found an
        update, instead of its default 4-9.5 s (docs/reference/particle-ota.md §8.15: the real delay is not
        public; "within 8 seconds" allows 0). At 0 it lands while the device still waits for its
        handshake's acknowledgements (§7.3). A timing choice, not a fault: recorded as the rig's."""
        if self._rig is not None:
            self._rig.timeline.add(self._rig.now(), "rig", "cloud_timing", {"handshake_offer_ms": after_ms})
        cloud = self.bench.cloud
        cloud.params = dataclasses.replace(cloud.params, handshake_offer_ms=after_ms)

    def cloud_clears_pending_at_connect(self, *, renotify: bool = False) -> None:
        """The cloud sends `particle/device/updates/pending=false` after every connection, an update
        still waiting included, and tells the device again only if `renotify` (docs/reference/particle-ota.md
        §2.1 "pending=false about 1 s after every connection", §8.3: which of the two the real cloud does is
        not public). System.updatesPending() is then cleared by any reconnection (a resume after lost
        coverage); the `firmware_update_pending` the app took is what is left of the waiting update. A
        cloud behaviour, not a fault: recorded as the rig's."""
        if self._rig is not None:
            self._rig.timeline.add(self._rig.now(), "rig", "cloud_timing",
                                   {"pending_false_on_every_connect": True, "renotify_pending_on_connect": renotify})
        cloud = self.bench.cloud
        cloud.params = dataclasses.replace(cloud.params, pending_false_on_every_connect=True,
                                           renotify_pending_on_connect=renotify)

    # -- counters ---------------------------------------------------------------------------------
    def ota_bytes(self) -> int:
        return sum(n for s in self.bench.slots.values() for d in (s.device.link.stats.up, s.device.link.stats.down)
                   for k, n in d.items() if k == "ota")

    def data_bytes(self) -> int:
        return sum(s.device.link.stats.total for s in self.bench.slots.values())

    def _fault_notes(self, entry: Any) -> None:
        if entry.kind in ("fault_power_cut", "fault_power_restore") and self._rig is not None:
            self._rig.timeline.add(entry.t_ms / 1000.0, "fault", entry.kind.removeprefix("fault_"),
                                   {"board": self.dut_id, **entry.data})
