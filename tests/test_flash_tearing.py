"""The flash at word and sector grain, and Device OS's emulated EEPROM over it
(docs/reference/particle-ota.md §2.10; otarig.sim.stm32_flash, eeprom_emulation, cut_replay)."""
from __future__ import annotations

import random
import struct

from otarig.sim.cut_replay import Cut, CutReplay
from otarig.sim.eeprom_emulation import ACTIVE, CAPACITY, COPY, INACTIVE
from otarig.sim.flash import FlashState
from otarig.sim.stm32_flash import SECTOR_ERASE_US, WORD_PROGRAM_US, Op, torn_bits


class Clock:
    def __init__(self) -> None:
        self.us = 0

    def __call__(self) -> int:
        return self.us


def timed_flash() -> tuple[FlashState, Clock, list[Op]]:
    flash, clock, ops = FlashState(), Clock(), []
    flash.attach_clock(clock)
    flash.journal.listeners.append(ops.append)
    return flash, clock, ops


def test_a_torn_word_or_sector_is_on_the_way_from_before_to_target() -> None:
    """Programming only clears bits and erasing only sets them; a cut leaves some of them moved."""
    rng = random.Random(3)
    before, target = bytes([0xFF, 0xF0, 0x0F, 0xAA]), bytes([0x00, 0x30, 0x0F, 0x22])
    assert torn_bits(before, target, 0.0, rng) == before
    assert torn_bits(before, target, 1.0, rng) == target
    for _ in range(200):
        torn = torn_bits(before, target, rng.random(), rng)
        for b, t, x in zip(before, target, torn):
            assert x & b == x and x | t == x  # only bits that go 1 -> 0 have moved, and only some
    erased = torn_bits(bytes(64), b"\xff" * 64, 0.5, rng)
    assert erased not in (bytes(64), b"\xff" * 64)


def test_the_kept_read_of_a_page_agrees_with_a_fresh_read_through_puts_swaps_and_cuts() -> None:
    """The emulation keeps its last read of a page while the page's bytes are unchanged; a fresh
    emulation over the same flash (nothing kept) must see the same thing after every put, page
    swap and torn write."""
    from otarig.sim.eeprom_emulation import EepromEmulation

    flash, clock, _ = timed_flash()
    rng = random.Random(7)
    em = flash.emulation
    for step in range(1500):
        index = rng.randrange(0, 200)
        em.put(index, bytes(rng.randrange(256) for _ in range(rng.randrange(1, 12))))
        if step % 97 == 0:  # a cut inside the last write, then a boot
            clock.us = max(flash.journal.busy_until_us - 5, 0)
            flash.journal.power_lost(flash, rng)
            em.init()
        clock.us = flash.journal.busy_until_us
        fresh = EepromEmulation(flash, flash.journal)
        assert em.view(256) == fresh.view(256), f"step {step}"


def test_power_loss_takes_back_unstarted_ops_and_tears_the_one_in_progress() -> None:
    flash, clock, _ = timed_flash()
    ops = [flash.journal.run(flash, Op("program", "dct", 4 * k, 4, 0, bytes(4), f"w{k}")) for k in range(3)]
    assert [o.start_us for o in ops] == [0, WORD_PROGRAM_US, 2 * WORD_PROGRAM_US]  # one at a time
    clock.us = WORD_PROGRAM_US + 8
    torn = flash.journal.power_lost(flash, random.Random(1))
    dct = flash.regions["dct"]
    assert torn is ops[1] and dct[:4] == bytes(4) and dct[8:12] == b"\xff" * 4
    assert dct[4:8] not in (bytes(4),)  # half the program time: not all bits in (seeded)


def test_eeprom_reads_back_what_was_put_and_survives_page_swaps() -> None:
    flash = FlashState()
    em = flash.emulation
    em.put(10, b"hello")
    assert em.view(16)[10:15] == b"hello"
    # 50 records a put: fill page 1 (4095 records), swap to page 2 (16383), then back (page 1 erased)
    for i in range(420):
        em.put(100, bytes((i + k) % 200 for k in range(50)))
    assert em.view(16)[10:15] == b"hello"
    assert em.view(150)[100:150] == bytes((419 + k) % 200 for k in range(50))
    assert em.status(0) == ACTIVE and em.status(1) == INACTIVE
    assert CAPACITY == 2048


def test_a_put_that_changes_nothing_writes_nothing_unless_a_torn_record_is_in_the_page() -> None:
    """writeRange (device-os v2.3.1 services/inc/eeprom_emulation.h:352-385): unchanged bytes are
    not written; but the page is checked for invalid records first, and one there sends any put,
    even an unchanged one, to a page swap."""
    flash, clock, ops = timed_flash()
    em = flash.emulation
    em.put(10, b"same")
    clock.us = ops[-1].end_us
    first = len(ops)
    em.put(10, b"same")
    assert len(ops) == first and em.status(0) == ACTIVE
    page = flash.region("eeprom1")
    empty_at = 4 + 4 * 4  # the page status, then one record per byte of "same"
    assert page[empty_at:empty_at + 4] == b"\xff" * 4
    page[empty_at:empty_at + 4] = struct.pack("<BBH", 0x41, 0x01, 99)  # a torn record: status not 0
    em.put(10, b"same")
    assert len(ops) > first and em.status(1) == ACTIVE and em.status(0) == INACTIVE
    assert em.view(14)[10:14] == b"same"


def test_a_put_is_all_or_nothing_at_every_operation_boundary() -> None:
    """eeprom_emulation.h writes records backwards and the first one last: a cut between two of
    them shows the old bytes or the new, never a mix; inside a word, mostly one or the other."""
    flash, clock, ops = timed_flash()
    flash.emulation.put(0, b"old old old!")
    old_view = flash.emulation.view(12)
    clock.us = ops[-1].end_us
    first = len(ops)
    flash.emulation.put(0, b"new NEW new?")
    new_view = flash.emulation.view(12)
    put_ops = ops[first:]
    assert len(put_ops) == sum(a != b for a, b in zip(b"old old old!", b"new NEW new?"))
    # latest first: after the put's last (commit) record, then before each of its records
    boundaries = [Cut(op.end_us, "boundary") for op in put_ops]
    seen = [flash.emulation.view(12) for _ in CutReplay(flash, ops, seed=1).states(boundaries)]
    assert seen == [new_view] + [old_view] * (len(put_ops) - 1)


def test_a_torn_commit_word_can_change_one_byte_elsewhere_at_a_superset_index() -> None:
    """The fact RecordLog's layout rests on: the last record of a put, torn, can read valid with
    some index bits still unprogrammed; the stray byte's index has every bit of the intended one."""
    flash, _clock, ops = timed_flash()
    em = flash.emulation
    for s in range(1, 40):
        em.put(0x400 + ((s - 1) % 32) * 16, struct.pack("<IIiI", s, s, s, s ^ 0x5A5A5A5A))
    before = em.view(2047)
    first = len(ops)
    target = 0x400 + (39 % 32) * 16
    em.put(target, struct.pack("<IIiI", 40, 40, 40, 0x12345678))
    commit = ops[-1]
    assert len(ops) > first and commit.offset > 4
    commit_index = struct.unpack("<BBH", commit.data)[2]
    strays = set()
    mem = flash.region(commit.region)
    for seed in range(3000):
        commit.restore(mem)
        commit.tear(mem, commit.start_us + 1 + seed % (WORD_PROGRAM_US - 1), random.Random(seed))
        view = em.view(2047)
        strays |= {i for i in range(2047) if view[i] != before[i] and not target <= i < target + 16}
        mem[commit.offset:commit.offset + 4] = commit.before
        commit.apply(mem)
    assert strays, "no torn commit reached outside its put in 3000 tears"
    assert all(i & commit_index == commit_index for i in strays)


def test_copy_and_dct_writes_take_their_datasheet_time() -> None:
    flash, clock, ops = timed_flash()
    flash.user = b"\x01" * 1000
    flash.register_slot(b"\x02" * 2000, "user")
    assert [o.kind for o in ops] == ["erase", "program"] and ops[1].label.startswith("register slot")
    assert ops[-1].end_us == SECTOR_ERASE_US[16 * 1024] + 4096 * WORD_PROGRAM_US
    clock.us = ops[-1].end_us
    copy_ms = flash.begin_copy()
    assert copy_ms == -(-(SECTOR_ERASE_US[128 * 1024] + 500 * WORD_PROGRAM_US
                          + SECTOR_ERASE_US[16 * 1024] + 4096 * WORD_PROGRAM_US) // 1000)
    assert flash.user == b"\x02" * 2000 and flash.slots == []
    clock.us += 1_000_000 + 250 * WORD_PROGRAM_US  # mid-program: the slot is back, the app torn
    torn = flash.power_lost(random.Random(2))
    assert torn is not None and torn.region == "user"
    assert len(flash.slots) == 1 and flash.user != b"\x02" * 2000 and flash.user_length == 2000
    assert COPY != ACTIVE
