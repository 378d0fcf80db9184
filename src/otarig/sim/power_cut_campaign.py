"""Power cut inside any write: record an OTA + record-log run once, then cut it everywhere.

Why (docs/reference/instruments-and-faults.md A.2, MCUboot's simulator): the interesting cuts are
the ones inside a write — a word half programmed, a sector half erased — and there are tens of
thousands of them. The campaign:

1. records one run on a simulated bench with the real companion firmware: the board drives
   (records persisted to the emulated EEPROM), parks, takes an OTA (download, HAL_FLASH_End's DCT
   write, reset, the bootloader's copy), drives again on the new app. Every flash operation is
   journalled (`stm32_flash`), every record the board reported `persisted: true` is noted;
2. cuts inside every operation in turn (every word of every program run, every erase) and at
   seeded random instants, over the whole run and over the time the flash was busy (`cut_replay`);
3. boots the flash each cut leaves on an Electron of its own — the real boot path (bootloader
   copy, module validation, HAL_EEPROM_Init) and the real firmware (its `RecordLog::begin()` reads
   the log back and prints `boot`) — once per distinct state (`CutReplay.boot_key`);
4. judges each cut: a valid app must run (old or new: no safe mode, no missing app) and every
   record acknowledged as persisted before the cut must be there (`boot.last_seq` at least the
   highest acknowledged seq, `records_recovered` at least as many as were acknowledged, up to the
   log's capacity).
"""
from __future__ import annotations

import bisect
import json
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .. import resources
from ..mutation.projects import project_copy
from .bench import SimBench
from .build import build_firmware, companion_project
from .cut_replay import (
    SHORT_RUN,
    Cut,
    CutReplay,
    every_op_cuts,
    random_cuts,
    random_cuts_in_writes,
)
from .electron import Electron
from .flash import FlashState
from .images import make_app_image
from .stm32_flash import WORD_PROGRAM_US, Op

DEVICE_ID = "e00fce68000000000000c0de"
PRODUCT_ID = 4242
#: records the companion's RecordLog holds (firmware/companion/lib/RecordLog: 32 slots, the last 31)
LOG_CAPACITY = 31


@dataclass
class Workload:
    """What the recorded run does (seconds of virtual time)."""

    drive_before_s: float = 40.0
    drive_after_s: float = 70.0
    #: EEPROM bytes written before the run (a device that has lived): page 1 swapped to page 2 and
    #: page 2 nearly full, so the run swaps back, erasing page 1 on the way
    prefill_puts: int = 19_700


@dataclass
class Recording:
    """One recorded run: its flash ops, its final flash, its acknowledgements."""

    ops: list[Op]
    flash: FlashState
    start_us: int
    end_us: int
    #: (µs at which the board reported it, seq) of every record acknowledged as persisted
    acks: list[tuple[int, int]]
    wall_s: float


@dataclass
class BootOutcome:
    """What the first boot after a cut showed."""

    version: int | None
    safe_mode: bool
    last_seq: int
    records: int

    @property
    def valid_app(self) -> bool:
        return self.version is not None and not self.safe_mode


@dataclass
class CampaignResult:
    cuts: dict[str, int] = field(default_factory=dict)
    inside_writes: int = 0
    boots: int = 0
    bricked: list[str] = field(default_factory=list)
    records_lost: list[str] = field(default_factory=list)
    outcomes: dict[str, int] = field(default_factory=dict)
    record_wall_s: float = 0.0
    sweep_wall_s: float = 0.0
    ops: int = 0
    acks: int = 0

    @property
    def total_cuts(self) -> int:
        return sum(self.cuts.values())

    def summary(self) -> str:
        lines = [(f"recorded run: {self.ops} flash operations, {self.acks} records acknowledged, "
                 f"{self.record_wall_s:.1f} s wall"),
                 (f"cuts: {self.total_cuts} ({', '.join(f'{k} {v}' for k, v in self.cuts.items())}); "
                 f"{self.inside_writes} inside a write; {self.boots} distinct states booted"),
                 "first boot: " + ", ".join(f"{k} {v}" for k, v in sorted(self.outcomes.items())),
                 (f"bricked {len(self.bricked)}, records lost {len(self.records_lost)}; "
                 f"sweep {self.sweep_wall_s:.1f} s wall")]
        lines += [f"  bricked: {b}" for b in self.bricked[:5]]
        lines += [f"  lost: {b}" for b in self.records_lost[:5]]
        return "\n".join(lines)


def defects_dir() -> Path:
    """firmware/defects/: the defects only a cut inside a write exposes (its README)."""
    return resources.firmware_dir() / "defects"


def campaign_images(defect: str | None = None) -> tuple[bytes, bytes]:
    """v1 (flashed) and a 100 KB v2 (released) of the companion, both with `defect`'s patch from
    firmware/defects/ applied to a copy of its sources when one is named."""
    project = None
    if defect is not None:
        path = defects_dir() / f"{defect}.patch"
        if not path.is_file():
            known = sorted(p.stem for p in defects_dir().glob("*.patch"))
            raise ValueError(f"no defect {defect!r} in {defects_dir()} (known: {', '.join(known) or 'none'})")
        project = project_copy(companion_project(), patch=path.read_text(), label=f"defect-{defect}")
    v1 = make_app_image(build_firmware(1, project=project, product_id=PRODUCT_ID),
                        product_id=PRODUCT_ID, product_version=1)
    v2 = make_app_image(build_firmware(2, project=project, product_id=PRODUCT_ID),
                        product_id=PRODUCT_ID, product_version=2, size=100 * 1024)
    return v1, v2


def _acks(board: Any) -> list[tuple[int, int]]:
    return [(round(t * 1_000_000), e.get("seq")) for t, e in board.history
            if e.name == "app" and e.get("action") == "record" and e.get("persisted") is True]


def _prefill(flash: FlashState, n: int) -> None:
    """EEPROM bytes beyond the record log's reach, written before the run (instant: no clock)."""
    clock, flash.journal.clock_us = flash.journal.clock_us, None
    for i in range(n):
        flash.emulation.put(2040 + i % 7, bytes([i % 251]))
    flash.journal.clock_us = clock
    flash.refresh_eeprom()


def record(v1: bytes, v2: bytes, log: Path, *, workload: Workload | None = None, seed: int = 1) -> Recording:
    """Run the workload on a simulated bench (module docstring, step 1)."""
    w = workload or Workload()
    started = time.monotonic()
    bench = SimBench(seed=seed)
    try:
        dev = bench.add_electron(DEVICE_ID, product_id=PRODUCT_ID, image=v1, power_on=False)
        _prefill(dev.flash, w.prefill_puts)
        ops: list[Op] = []
        dev.flash.journal.listeners.append(ops.append)
        start_us = bench.world.sched.now_ms * 1000
        dev.power_on()
        board = bench.open_board(DEVICE_ID, log)
        board.expect(lambda e: e.name == "sys" and e.get("param") == "connected", 120)
        board.command("workload", state="busy")
        bench.run_for(w.drive_before_s)
        bench.cloud.upload_firmware(PRODUCT_ID, 2, v2)
        bench.cloud.release(PRODUCT_ID, 2, product_default=True, intelligent=True)
        board.command("workload", state="idle")
        board.expect(lambda e: e.name == "hello" and e.get("product_version") == 2, 900)
        board.expect(lambda e: e.name == "sys" and e.get("param") == "connected", 120)
        board.command("workload", state="busy")
        bench.run_for(w.drive_after_s)
        board.command("workload", state="idle")  # the guard persists the last batch
        bench.run_for(5)
        end_us = bench.world.sched.now_ms * 1000
        bench.run_for(3)  # every op has ended: the final flash is whole
        acks = _acks(board)
        dev.flash.journal.listeners.remove(ops.append)
        flash = dev.flash
        flash.journal.clock_us = None  # detached from the world: closing the bench takes nothing back
        return Recording(ops, flash, start_us, end_us, acks, time.monotonic() - started)
    finally:
        bench.close()


class _CapturePort:
    """The recovery Electron's USB serial: what it prints, kept in memory."""

    def __init__(self) -> None:
        self.present = False
        self.vanish_requested = False
        self.text = bytearray()

    def write(self, data: bytes) -> None:
        self.text.extend(data)

    def appear(self) -> None:
        self.present = True

    def vanish(self) -> None:
        self.present = False


class RecoveryBench:
    """One Electron that boots a cut's flash: the real bootloader model and the real firmware."""

    def __init__(self, seed: int = 1) -> None:
        self.bench = SimBench(seed=seed)
        self.dev: Electron = self.bench.add_electron(DEVICE_ID, product_id=PRODUCT_ID, with_port=False,
                                                     power_on=False)
        self.port = _CapturePort()
        self.dev.port = self.port

    def boot(self, flash: FlashState, timeout_s: float = 60.0) -> BootOutcome:
        dev, world = self.dev, self.bench.world
        f = dev.flash
        for name in ("eeprom1", "eeprom2", "user"):
            f.regions[name][:] = flash.regions[name]
        f.user_length = flash.user_length
        f.slots[:] = flash.slots
        f.factory = flash.factory
        f.journal.ops.clear()
        f.journal.busy_until_us = 0
        self.port.text.clear()
        self.port.present = False
        dev.power_on()
        deadline = world.sched.now_ms + int(timeout_s * 1000)
        outcome = None
        while world.sched.now_ms < deadline and outcome is None:
            world.dirty_ports.clear()
            world.run_until(deadline)
            if dev.safe_mode:
                outcome = BootOutcome(None, True, 0, 0)
            for line in bytes(self.port.text).splitlines():
                if b'"boot"' in line:
                    boot = json.loads(line)
                    outcome = BootOutcome(dev.running_version, dev.safe_mode, int(boot.get("last_seq") or 0),
                                          int(boot.get("records_recovered") or 0))
        world.dirty_ports.clear()
        dev.power_off()
        return outcome or BootOutcome(None, False, 0, 0)

    def close(self) -> None:
        self.bench.close()


def judge(cut: Cut, outcome: BootOutcome, acks: list[tuple[int, int]], ack_times: list[int]) -> tuple[str, str]:
    """("bricked"|"lost"|"", why) for one cut (module docstring, step 4)."""
    acked = [seq for _, seq in acks[:bisect.bisect_right(ack_times, cut.t_us)]]
    if not outcome.valid_app:
        return "bricked", "safe mode" if outcome.safe_mode else "no app booted"
    if acked:
        want = max(acked)
        if outcome.last_seq < want or outcome.records < min(len(acked), LOG_CAPACITY):
            return "lost", (f"acknowledged up to #{want} ({len(acked)} records), booted with last_seq "
                            f"{outcome.last_seq}, {outcome.records} records")
    return "", ""


def run_campaign(v1: bytes, v2: bytes, log: Path, *, random_n: int = 10_000, random_in_writes_n: int = 0,
                 every_op_stride: int = 1,
                 per_short_word: int = 8, workload: Workload | None = None, seed: int = 1,
                 progress: Callable[[str], None] | None = None) -> CampaignResult:
    """Steps 1-4 of the module docstring. `random_n` instants uniform over the run, `random_in_writes_n`
    uniform over the time the flash was busy. `per_short_word`: cuts inside each word of an EEPROM
    record or page status (each tears it differently); `every_op_stride` > 1 keeps every erase and
    every short run's words but only one word in that many of the long program runs (a quicker sweep)."""
    rec = record(v1, v2, log, workload=workload, seed=seed)
    rng = random.Random(seed)
    cuts = every_op_cuts(rec.ops, rng, per_short_word=per_short_word)
    if every_op_stride > 1:
        cuts = [c for c in cuts if rec.ops[c.op_index].kind == "erase" or rec.ops[c.op_index].words < SHORT_RUN
                or ((c.t_us - rec.ops[c.op_index].start_us) // WORD_PROGRAM_US) % every_op_stride == 0]
    cuts += random_cuts(rec.ops, rec.start_us, rec.end_us, random_n, rng)
    cuts += random_cuts_in_writes(rec.ops, random_in_writes_n, rng)
    result = CampaignResult(ops=len(rec.ops), acks=len(rec.acks), record_wall_s=rec.wall_s)
    for c in cuts:
        result.cuts[c.origin] = result.cuts.get(c.origin, 0) + 1
    started = time.monotonic()
    ack_times = [t for t, _ in rec.acks]
    replay = CutReplay(rec.flash, rec.ops, seed)
    recovery = RecoveryBench(seed)
    seen: dict[str, BootOutcome] = {}
    try:
        for cut in replay.states(cuts):
            if cut.op_index >= 0:
                result.inside_writes += 1
            key = replay.boot_key()
            if key not in seen:
                seen[key] = recovery.boot(rec.flash)
                if progress and len(seen) % 100 == 0:
                    progress(f"{len(seen)} states booted")
            outcome = seen[key]
            name = f"v{outcome.version}" if outcome.valid_app else "no valid app"
            result.outcomes[name] = result.outcomes.get(name, 0) + 1
            verdict, why = judge(cut, outcome, rec.acks, ack_times)
            where = f"{cut.origin} cut at {cut.t_us / 1e6:.6f} s ({cut.where(rec.ops)})"
            if verdict == "bricked":
                result.bricked.append(f"{where}: {why}")
            elif verdict == "lost":
                result.records_lost.append(f"{where}: {why}")
    finally:
        recovery.close()
    result.boots = len(seen)
    result.sweep_wall_s = time.monotonic() - started
    return result
