"""Damaged stored data: a committed EEPROM record that later reads wrong, addressed by put
(docs/reference/particle-ota.md §2.10 "Damaged stored data"; otarig.sim.eeprom_emulation `damage`,
FlashState.damage_eeprom, rig.sim.damage_eeprom)."""
from __future__ import annotations

import random

import pytest
from test_flash_tearing import timed_flash

from otarig.sim.eeprom_emulation import EepromEmulation
from otarig.sim.flash import FlashState


def two_copies(flash: FlashState, value: bytes) -> None:
    """What a careful log does: the same bytes in two areas, copy A then copy B (two puts)."""
    flash.eeprom_put(0x400, value)
    flash.eeprom_put(0x200, value)


def test_wrong_bits_change_only_the_bytes_the_chosen_put_wrote_and_the_app_sees_them_at_once() -> None:
    """put=1 is copy B (the last put), put=2 copy A; bytes a put left unchanged are not its own."""
    flash = FlashState()
    two_copies(flash, b"record-1")
    two_copies(flash, b"record-2")  # changes only the last byte of each copy
    assert flash.damage_eeprom(1) == [0x200 + 7]
    assert bytes(flash.eeprom[0x200:0x208]) == b"record-3" and bytes(flash.eeprom[0x400:0x408]) == b"record-2"
    assert flash.damage_eeprom(2) == [0x400 + 7]
    assert bytes(flash.eeprom[0x400:0x408]) == b"record-3"
    # the first copy B put: only its first seven bytes are still its own (the eighth was rewritten)
    assert flash.damage_eeprom(3) == list(range(0x200, 0x207))
    assert bytes(flash.eeprom[0x200:0x208]) == b"sdbnse,3"


def test_a_damaged_record_stays_valid_so_the_next_put_needs_no_swap_and_a_reboot_reads_the_same() -> None:
    """Device OS's records carry no check (§2.10): a wrong data byte is read as the value."""
    flash = FlashState()
    two_copies(flash, b"abc")
    flash.damage_eeprom(1)
    seen = bytes(flash.eeprom[:0x600])
    fresh = FlashState(regions=flash.regions)
    fresh.boot()
    assert bytes(fresh.eeprom[:0x600]) == seen
    status = [flash.emulation.status(n) for n in (0, 1)]
    flash.eeprom_put(0x10, b"x")
    assert [flash.emulation.status(n) for n in (0, 1)] == status, "no page swap for a valid record"


def test_the_newest_put_read_invalid_is_undone_and_the_next_put_swaps_pages_keeping_the_rest() -> None:
    """A read stops at the first invalid record (forEachRecord): for the newest put that is as if
    a cut had landed inside it before its commit; the next put finds it and swaps (§2.10)."""
    flash = FlashState()
    two_copies(flash, b"one")
    two_copies(flash, b"two")
    assert flash.damage_eeprom(1, reads="invalid") == [0x200, 0x201, 0x202]
    assert bytes(flash.eeprom[0x200:0x203]) == b"one" and bytes(flash.eeprom[0x400:0x403]) == b"two"
    assert flash.emulation.active() == 0
    flash.eeprom_put(0x10, b"x")
    assert flash.emulation.active() == 1, "the invalid record sends the next put to a page swap"
    assert bytes(flash.eeprom[0x200:0x203]) == b"one" and bytes(flash.eeprom[0x400:0x403]) == b"two"
    assert EepromEmulation(flash, flash.journal).view(0x600) == bytes(flash.eeprom[:0x600])


def test_damage_follows_the_value_across_a_page_swap() -> None:
    """A put is addressed by the indices it changed, not by where its records sit: after a swap
    copied them, the copies are what reads wrong."""
    flash = FlashState()
    two_copies(flash, b"kept")
    flash.damage_eeprom(1, reads="invalid")
    flash.eeprom_put(0x200, b"kept")  # a repair: swaps pages, copy A travels to the new page
    assert flash.emulation.active() == 1
    assert flash.damage_eeprom(2) == [], "the damaged put's bytes were all written again by the repair"
    assert flash.damage_eeprom(3) == [0x400, 0x401, 0x402, 0x403]
    assert bytes(flash.eeprom[0x400:0x404]) == b"jdqu" and bytes(flash.eeprom[0x200:0x204]) == b"kept"


def test_the_bits_that_read_wrong_can_be_any_of_a_byte_so_a_value_reads_larger_or_smaller() -> None:
    """`bits`: a disturbed word reads a bit either way (§2.10), so a number, or a check value, may
    read larger than written as well as smaller; the repair put, damaged in turn, reads wrong again."""
    flash = FlashState()
    two_copies(flash, bytes([0x2D, 0xA0]))
    assert flash.damage_eeprom(1, bits=0x40) == [0x200, 0x201]
    assert bytes(flash.eeprom[0x200:0x202]) == bytes([0x6D, 0xE0]), "bit 6 set where it was clear"
    flash.eeprom_put(0x200, bytes([0x2D, 0xA0]))  # the app writes the copy again
    assert flash.damage_eeprom(1, bits=0xA0) == [0x200, 0x201]
    assert bytes(flash.eeprom[0x200:0x202]) == bytes([0x8D, 0x00]), "bits 5 and 7 cleared where they were set"
    assert bytes(flash.eeprom[0x400:0x402]) == bytes([0x2D, 0xA0])
    for bad in (0, 0x100):
        with pytest.raises(ValueError, match="mask of a data byte"):
            flash.damage_eeprom(1, bits=bad)


def test_puts_are_counted_back_from_a_given_time_and_a_put_taken_back_by_a_cut_is_not_one() -> None:
    flash, clock, _ = timed_flash()
    flash.eeprom_put(0x400, b"A")
    clock.us = flash.journal.busy_until_us
    flash.eeprom_put(0x200, b"B")
    clock.us = mark = flash.journal.busy_until_us + 1000
    flash.eeprom_put(0x10, b"later")
    clock.us = flash.journal.busy_until_us - 5  # inside the last put: the cut takes it back
    flash.power_lost(random.Random(1))
    assert [p.indices for p in flash.emulation.puts] == [(0x400,), (0x200,)]
    flash.eeprom_put(0x20, b"z")
    assert flash.damage_eeprom(1, before_us=mark) == [0x200]
    assert flash.damage_eeprom(2, before_us=mark) == [0x400]
    with pytest.raises(ValueError, match="put 3 back does not exist"):
        flash.damage_eeprom(3, before_us=mark)
    with pytest.raises(ValueError, match="'wrong' or 'invalid'"):
        flash.damage_eeprom(1, reads="erased")


def test_the_fault_is_refused_to_a_scenario_not_marked_sim_only_and_on_a_bench_without_a_simulator() -> None:
    """Only the simulated bench can damage an Electron's flash (docs/design.md principle 1)."""
    from otarig.rig import Rig, SimOnlyError

    class Parts:
        sim = None

    rig = Rig.__new__(Rig)
    rig._sim_allowed = False
    rig.parts = Parts()
    with pytest.raises(SimOnlyError, match="not marked"):
        rig.sim.damage_eeprom(1)
    rig._sim_allowed = True

    class Bench:
        name, kind = "lab", "real"

    rig.cfg = type("Cfg", (), {"bench": Bench})()
    with pytest.raises(SimOnlyError, match="no simulator handle"):
        rig.sim.damage_eeprom(1)
