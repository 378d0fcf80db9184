"""The Electron's flash as a power cut at any instant of a recorded run would have left it.

Why: a campaign of thousands of cuts cannot afford a bench per cut, and it need not: what the
device did before a cut does not depend on the cut, so one recorded run (its flash `Op`s, each
with what it overwrote) gives the flash at every instant. `CutReplay` walks the cut instants from
the last to the first, taking ops back in reverse (`Op.restore`) and tearing the op a cut lands in
(`Op.tear`, docs/reference/particle-ota.md §2.10), so each state costs one op's bytes, not a replay.

`boot_key` names what the first boot after the cut reads — the EEPROM as HAL_EEPROM_Init leaves it
for the app, the slots waiting for the bootloader, and the user sector when no slot is waiting
(the bootloader erases it before it reads it otherwise) — so that states a boot cannot tell apart
are booted once.
"""
from __future__ import annotations

import bisect
import hashlib
import itertools
import random
from collections.abc import Iterator
from dataclasses import dataclass

from .eeprom_emulation import ACTIVE
from .flash import FlashState
from .stm32_flash import WORD_PROGRAM_US, Op

#: a program run shorter than this is a record or a status word, not a bulk copy
SHORT_RUN = 512


@dataclass(frozen=True)
class Cut:
    """One instant to cut power at, and where it lands."""

    t_us: int
    origin: str        # "every-op" or "random"
    op_index: int = -1  # the op it lands inside, -1: between ops

    def where(self, ops: list[Op]) -> str:
        return ops[self.op_index].label if self.op_index >= 0 else "between writes"


def every_op_cuts(ops: list[Op], rng: random.Random, *, per_short_word: int = 1) -> list[Cut]:
    """A cut inside every operation: every word of every program run, every erase (at a seeded
    instant inside it; MCUboot's simulator cuts at every flash operation in turn). A word of a
    short EEPROM run (a record, a page status: fewer than `SHORT_RUN` words) is cut at
    `per_short_word` seeded instants, each tearing it differently: there a torn word can commit a
    put with wrong bits (docs/reference/particle-ota.md §2.10)."""
    cuts = []
    for k, op in enumerate(ops):
        if op.kind == "erase":
            cuts.append(Cut(op.start_us + rng.randrange(1, op.duration_us), "every-op", k))
            continue
        tears = per_short_word if op.region.startswith("eeprom") and op.words < SHORT_RUN else 1
        for w in range(op.words):
            at = {op.start_us + WORD_PROGRAM_US * w + rng.randrange(1, WORD_PROGRAM_US) for _ in range(tears)}
            cuts.extend(Cut(t, "every-op", k) for t in sorted(at))
    return cuts


def random_cuts(ops: list[Op], start_us: int, end_us: int, n: int, rng: random.Random) -> list[Cut]:
    """`n` seeded instants, uniform over [start_us, end_us)."""
    starts = [op.start_us for op in ops]
    cuts = []
    for _ in range(n):
        t = rng.randrange(start_us, end_us)
        k = bisect.bisect_right(starts, t) - 1
        inside = k >= 0 and ops[k].start_us < t < ops[k].end_us
        cuts.append(Cut(t, "random", k if inside else -1))
    return cuts


def random_cuts_in_writes(ops: list[Op], n: int, rng: random.Random) -> list[Cut]:
    """`n` seeded instants uniform over the time the flash was busy (each op weighted by its
    duration: erases dominate), every one inside a write."""
    ends = list(itertools.accumulate(op.duration_us for op in ops))
    cuts = []
    for _ in range(n):
        u = rng.randrange(ends[-1])
        k = bisect.bisect_right(ends, u)
        op = ops[k]
        offset = max(1, u - (ends[k] - op.duration_us))
        cuts.append(Cut(op.start_us + offset, "random-in-writes", k))
    return cuts


class CutReplay:
    """Takes a recorded run's final `flash` back to each cut instant in turn (latest first)."""

    def __init__(self, flash: FlashState, ops: list[Op], seed: int) -> None:
        self.flash = flash
        self.ops = ops
        self.seed = seed
        self._applied = len(ops)
        #: bumped whenever a region's bytes change, so a digest is recomputed only then
        self._version = {name: 0 for name in flash.regions}
        self._digests: dict[tuple, bytes] = {}

    def _touch(self, op: Op) -> None:
        self._version[op.region] += 1

    def states(self, cuts: list[Cut]) -> Iterator[Cut]:
        """Yields each cut with `flash` as the cut leaves it (valid until the next step)."""
        for cut in sorted(cuts, key=lambda c: c.t_us, reverse=True):
            while self._applied and self.ops[self._applied - 1].start_us >= cut.t_us:
                op = self.ops[self._applied - 1]
                op.restore(self.flash.region(op.region))
                self._touch(op)
                self._applied -= 1
            last = self.ops[self._applied - 1] if self._applied else None
            if last is not None and last.end_us > cut.t_us:
                mem = self.flash.region(last.region)
                last.restore(mem)
                last.tear(mem, cut.t_us, random.Random(f"{self.seed}/{cut.t_us}"))
                self._touch(last)
                yield Cut(cut.t_us, cut.origin, self._applied - 1)
                mem[last.offset:last.offset + last.size] = last.before
                last.apply(mem)
                self._touch(last)
            else:
                yield Cut(cut.t_us, cut.origin, -1)

    def _digest(self, part: str, regions: tuple[str, ...], make) -> bytes:
        key = (part,) + tuple(self._version[r] for r in regions)
        if key not in self._digests:
            if len(self._digests) > 64:
                self._digests.clear()
            self._digests[key] = hashlib.blake2b(make(), digest_size=16).digest()
        return self._digests[key]

    def boot_key(self) -> str:
        """What the first boot reads (module docstring), as one digest."""
        flash = self.flash
        em = flash.emulation

        def eeprom() -> bytes:
            cleared = ACTIVE not in (em.status(0), em.status(1))
            return b"cleared at boot" if cleared else em.view(len(flash.eeprom))

        h = hashlib.blake2b(digest_size=16)
        h.update(self._digest("eeprom", ("eeprom1", "eeprom2"), eeprom))
        for slot in flash.slots:
            h.update(hashlib.blake2b(slot.image, digest_size=16).digest() + slot.module_function.encode())
        if not flash.slots:
            h.update(self._digest("user", ("user",), lambda: flash.user or b"no app"))
            h.update(flash.user_length.to_bytes(4, "little"))
        return h.hexdigest()
