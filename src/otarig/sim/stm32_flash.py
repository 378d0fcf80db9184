"""The Electron's internal flash (STM32F205) at the grain a power cut sees it.

Why: a cut lands inside a write as often as between two writes, and a write cut short leaves
flash in a state no completed sequence of writes produces (docs/reference/particle-ota.md §2.10).
Device OS programs the internal flash one 32-bit word at a time (`FLASH_ProgramWord`, voltage
range 3 = x32) and erases whole sectors (`FLASH_EraseSector`); every write the simulated Electron
makes is an `Op` in a `Journal`, timed with the datasheet figures below and applied at once, with
what it overwrote kept so that a power loss can take back what had not finished
(`Journal.power_lost`) and leave the operation in progress torn:

* a word partly programmed: programming only clears bits (1 -> 0); each bit still to clear has
  its own seeded threshold in [0, 1) and is cleared when the cut came later than that fraction of
  the word's program time;
* a sector partly erased: erasing only sets bits (0 -> 1); the same rule per bit, over the sector.
"""
from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

# docs/reference/particle-ota.md §2.10: STM32F205 datasheet, "Flash memory programming", x32, typical
WORD_PROGRAM_US = 16
SECTOR_ERASE_US = {16 * 1024: 250_000, 64 * 1024: 550_000, 128 * 1024: 1_000_000}
WORD = 4


class Regions(Protocol):
    """What ops act on: named byte regions, and effects that are not bytes (a DCT slot)."""

    def region(self, name: str) -> bytearray: ...


@dataclass
class Op:
    """One flash operation: `program` (a run of consecutive word programs, one `WORD_PROGRAM_US`
    each) or `erase` (one sector). `before` is what the op overwrote; `effect`/`undo` act on state
    that is not bytes (a DCT record becomes valid when the run's last word, its CRC, is in)."""

    kind: str
    region: str
    offset: int
    size: int
    start_us: int
    data: bytes = b""
    label: str = ""
    before: bytes = b""
    effect: Callable[[], None] | None = None
    undo: Callable[[], None] | None = None

    @property
    def words(self) -> int:
        return self.size // WORD if self.kind == "program" else 1

    @property
    def duration_us(self) -> int:
        if self.kind == "program":
            return self.words * WORD_PROGRAM_US
        return SECTOR_ERASE_US[self.size]

    @property
    def end_us(self) -> int:
        return self.start_us + self.duration_us

    def apply(self, mem: bytearray) -> None:
        """The op completed: program ANDs (a bit only goes 1 -> 0), erase sets 0xFF."""
        o, n = self.offset, self.size
        if self.kind == "program":
            mem[o:o + n] = (np.frombuffer(self.before, np.uint8) & np.frombuffer(self.data, np.uint8)).tobytes()
        else:
            mem[o:o + n] = b"\xff" * n
        if self.effect is not None:
            self.effect()

    def restore(self, mem: bytearray) -> None:
        """Take the op back (it had not started when power went)."""
        mem[self.offset:self.offset + self.size] = self.before
        if self.effect is not None and self.undo is not None:
            self.undo()

    def tear(self, mem: bytearray, at_us: int, rng: random.Random) -> int:
        """Leave the op as a cut at `at_us` (inside it) leaves it; returns the byte offset torn."""
        elapsed = at_us - self.start_us
        if self.kind == "erase":
            fraction = elapsed / self.duration_us
            mem[self.offset:self.offset + self.size] = torn_bits(self.before, b"\xff" * self.size, fraction, rng)
            return self.offset
        done = elapsed // WORD_PROGRAM_US
        fraction = (elapsed % WORD_PROGRAM_US) / WORD_PROGRAM_US
        o = self.offset
        cut = done * WORD
        if cut:
            mem[o:o + cut] = (np.frombuffer(self.before[:cut], np.uint8)
                              & np.frombuffer(self.data[:cut], np.uint8)).tobytes()
        word = slice(cut, cut + WORD)
        mem[o + cut:o + cut + WORD] = torn_bits(self.before[word], self.data[word], fraction, rng)
        mem[o + cut + WORD:o + self.size] = self.before[cut + WORD:]
        return o + cut


def torn_bits(before: bytes, target: bytes, fraction: float, rng: random.Random) -> bytes:
    """`before` on its way to `target` (bits that change all go the same way), stopped at
    `fraction` of the operation: each changing bit has a seeded threshold (docstring above)."""
    b = np.frombuffer(before, np.uint8)
    t = np.frombuffer(target, np.uint8)
    gen = np.random.default_rng(rng.getrandbits(64))
    changed = np.unpackbits(b ^ t)
    moved = np.packbits(changed & (gen.random(changed.size) < fraction))
    return (b ^ moved).tobytes()


@dataclass
class Journal:
    """Every flash operation in the order the flash controller ran them (one at a time)."""

    clock_us: Callable[[], int] | None = None
    ops: list[Op] = field(default_factory=list)
    busy_until_us: int = 0
    #: called with each op as it is recorded (the campaign listens)
    listeners: list[Callable[[Op], None]] = field(default_factory=list)

    def run(self, regions: Regions, op: Op) -> Op:
        """Start `op` when the controller is free; apply it now (a power loss takes it back)."""
        now = self.clock_us() if self.clock_us else 0
        op.start_us = max(now, self.busy_until_us) if self.clock_us else 0
        mem = regions.region(op.region)
        op.before = bytes(mem[op.offset:op.offset + op.size])
        op.apply(mem)
        if self.clock_us:
            self.busy_until_us = op.end_us
            # only ops a power loss could still take back are kept (the campaign listens instead)
            self.ops = [o for o in self.ops if o.end_us > now]
            self.ops.append(op)
        for fn in self.listeners:
            fn(op)
        return op

    def power_lost(self, regions: Regions, rng: random.Random) -> Op | None:
        """Power went at the clock's now: ops not yet started are taken back, the one in progress
        is torn. Returns the torn op, if any."""
        if not self.clock_us:
            return None
        now = self.clock_us()
        torn = None
        while self.ops and self.ops[-1].end_us > now:
            op = self.ops.pop()
            mem = regions.region(op.region)
            op.restore(mem)
            if op.start_us < now:
                op.tear(mem, now, rng)
                torn = op
        self.busy_until_us = min(self.busy_until_us, now)
        return torn
