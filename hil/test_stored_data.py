"""Stored data: what the app persisted outlives damaged flash (simulated bench only).

Device OS's emulated EEPROM keeps no check of its own (docs/reference/particle-ota.md §2.10): a
power cut inside a put's commit word, or a worn or disturbed word later, makes a byte the app
persisted read wrong, or the newest put read as never made. An app that must not lose records
keeps its own check and a second copy, and at boot writes again a copy that does not check, so
that the loss of the other one later is survived too. These scenarios damage what the firmware
itself wrote, addressed by its EEPROM puts (`rig.sim.damage_eeprom`), never by its layout, and
judge only what its test agent reports: the records it acknowledged and those it finds at boot.
"""
from __future__ import annotations

import pytest
from conftest import connected, drive, park

from otarig import verdicts as v
from otarig.board import NOT_SUPPORTED, NotSupported
from otarig.protocol import Event

#: seconds of work before the faults: long enough for a log of a few dozen records to have wrapped,
#: so that the place a record is written to held an older record, valid in itself, before it
DRIVE_S = 45


def _require_hook(rig, hook: str, lacking: str) -> None:
    """The scenario needs `hook` (docs/your-firmware.md "Hooks"): without it the firmware cannot say
    what the scenario asks, and the scenario is not applicable to it (`lacking` says what it then
    does not do). The hooks are in the board's `hello` (docs/protocol.md), the last one seen in this
    scenario or before it (a board booted long ago has none yet: it is asked again after the first
    boot)."""
    hellos = [e for tl in (rig.setup_timeline, rig.timeline) if tl is not None
              for e in tl.select(kind="hello", where=lambda e: isinstance(e.get("hooks"), list))]
    if hellos and hook not in hellos[-1].get("hooks"):
        raise NotSupported(f"{NOT_SUPPORTED}: its test agent {lacking}", Event("hello", 0, dict(hellos[-1].data)))


def _require_records_hook(rig) -> None:
    _require_hook(rig, "records", "reports no records (no records hook: TestAgentApp.records/lastSeq)")


def _require_declared_copies(rig) -> None:
    """The firmware must declare that it keeps a second checked copy of each record
    (TestAgentInfo.recordCopies >= 2, `record_copies` in its hello, ping and status; docs/your-firmware.md
    "Stored data"): an app that keeps one copy loses a record with it by design, and these faults
    damage an already persisted record, which no power cut around an update does. Read from the
    latest hello or ping/status reply in or before the scenario (asked now if there is none)."""
    said = [e for tl in (rig.setup_timeline, rig.timeline) if tl is not None
            for e in tl.select(where=lambda e: e.kind == "hello" or
                               (e.kind == "reply" and e.get("cmd") in ("ping", "status")))]
    declared = said[-1].get("record_copies") if said else rig.command("status").get("record_copies")
    if not isinstance(declared, int) or declared < 2:
        raise NotSupported(f"{NOT_SUPPORTED}: it declares no second copy of each record "
                           f"(record_copies {declared if declared is not None else 'not declared'}: "
                           "TestAgentInfo.recordCopies); declare 2 if the app keeps two checked copies",
                           Event("reply", 0, {"record_copies": declared}))


def _persisted(rig) -> list:
    return rig.timeline.select(kind="app", where=lambda e: e.get("action") == "record" and e.get("persisted"))


def _drive_and_park_with_records_persisted(rig) -> None:
    """A firmware that reports its records and declares checked copies of them drives, then parks
    until what it writes on parking is in (not applicable when it persisted nothing)."""
    connected(rig)
    _require_records_hook(rig)
    _require_declared_copies(rig)
    drive(rig)
    rig.wait(DRIVE_S)
    park(rig)
    rig.wait(30)  # parked: what the app writes on parking is in
    if not _persisted(rig):
        raise NotSupported(f"{NOT_SUPPORTED}: it persisted no record in {DRIVE_S} s of work",
                           Event("reply", 0, {}))


def _boot(rig):
    """Power off and on (the tester board cuts VIN and VBUS); the board's next `boot` event."""
    rig.power_cycle()
    boot = rig.expect(lambda e: e.name == "boot", 120)
    connected(rig)
    return boot


#: the order the two faults come in: (the put damaged first, how it reads; the put damaged after
#: the boot, how it reads). Counted back from the last put before the faults: put 1 is the newest
#: (for an app that writes each record twice, its second copy), put 2 the one before (its first).
#: Only the newest put can read invalid without taking later ones with it (a read stops there).
ORDERS = {
    "newest-put-first": ((1, "invalid"), (2, "wrong")),
    "older-put-first": ((2, "wrong"), (1, "wrong")),
    # a record older than the newest: for an app that writes each record twice, puts 3 and 4 are the
    # two copies of the record before the newest, so the boot's repair must reach past the newest
    "older-record": ((3, "wrong"), (4, "wrong")),
}


@pytest.mark.sim_only
@pytest.mark.spec("docs/reference/particle-ota.md §2.10")
@pytest.mark.requires("power_switch", "vbus_switch")
@pytest.mark.parametrize("order", list(ORDERS))
@pytest.mark.budget(1800)
def test_a_persisted_record_survives_the_loss_of_either_copy(rig, order):
    """The app persists records while busy and parks. One of its last EEPROM puts is damaged and
    the device boots; then the other one is, and the device boots again, then works a
    little. `newest-put-first`: the newest put reads as never made (its first record reads
    invalid: what a cut inside it before its commit leaves, §2.10), then each byte of the put
    before it reads wrong; `older-put-first`: each byte of the older put reads wrong, then each of
    the newest; `older-record`: each byte of the third newest put reads wrong, then each of the
    fourth. For an app that writes each record twice that is one copy of the newest record (of the
    one before it, for `older-record`), then the other, with a boot in between to write the first
    one again: every record
    acknowledged or recovered before must still be there at each boot (`no persisted record
    lost`), the count it holds must not drop, and its numbers go on."""
    _drive_and_park_with_records_persisted(rig)
    before_faults = rig.now()
    for put, reads in ORDERS[order]:
        rig.sim.damage_eeprom(put, before=before_faults, reads=reads)
        _boot(rig)
        _require_records_hook(rig)
        rig.wait(30)
    drive(rig)
    rig.wait(15)
    park(rig)
    rig.wait(30)
    tl = rig.timeline
    rig.check(v.no_record_lost(tl), v.record_count_never_drops(tl), v.record_numbers_go_up(tl))


#: the bits of each damaged byte that read flipped, one mask a boot: each bit alone, then each two
#: (a disturbed word may read a bit either way, so a damaged value reads larger or smaller than it
#: was, and so does a damaged check value: a check compared loosely, `<=` for `==`, or on part of
#: its bytes, lets through about half of the damaged copies whose number still fits, so the
#: scenario shows it many differently damaged copies, each of which it must refuse)
WRONG_BITS = tuple(1 << k for k in range(8)) + tuple((1 << i) | (1 << j) for i in range(8) for j in range(i + 1, 8))
#: seconds of work between the two series of masks: newer records, so the second series damages
#: copies with other numbers and other check values
RESUME_S = 15


def _damage_newest_put_each_way(rig) -> None:
    """The newest put reads wrong with each mask of `WRONG_BITS` in turn, a boot after each: the
    app must refuse the damaged copy and write it again at boot (its repair is then the newest put,
    damaged with the next mask); what it holds must not change."""
    for bits in WRONG_BITS:
        rig.sim.damage_eeprom(1, reads="wrong", bits=bits)
        rig.power_cycle()
        rig.expect(lambda e: e.name == "boot", 120)
        _require_records_hook(rig)
        rig.wait(2)


@pytest.mark.sim_only
@pytest.mark.spec("docs/reference/particle-ota.md §2.10")
@pytest.mark.requires("power_switch", "vbus_switch")
@pytest.mark.budget(3600)
def test_a_damaged_copy_is_refused_whichever_bits_read_wrong(rig):
    """The app persists records while busy and parks; its newest EEPROM put then reads wrong with
    one or two bits of each of its bytes flipped, each way in turn (`WRONG_BITS`), a boot after
    each; then it works a little and the series runs again on its newer records. A copy whose
    number reads as another record's and whose check value reads as anything but the one its bytes
    give must never be taken (not as the newest record, nor counted): every record acknowledged or
    recovered must be there at each boot (`no persisted record lost`), the count must not drop, and
    the numbers go on one after another. Each damage hits one copy, written again at the boot
    before the next."""
    _drive_and_park_with_records_persisted(rig)
    for _ in range(2):  # on the records first persisted, then on newer ones
        _damage_newest_put_each_way(rig)
        connected(rig)
        drive(rig)
        rig.wait(RESUME_S)
        park(rig)
        rig.wait(30)
    tl = rig.timeline
    rig.check(v.no_record_lost(tl), v.record_count_never_drops(tl), v.record_numbers_go_up(tl))


#: seconds of the first, short drive: a log that has not wrapped yet is read back too
SHORT_DRIVE_S = 12


@pytest.mark.sim_only
@pytest.mark.spec("docs/reference/particle-ota.md §2.10")
@pytest.mark.requires("power_switch", "vbus_switch")
@pytest.mark.budget(1800)
def test_a_record_lost_in_every_copy_is_no_longer_counted(rig):
    """The app persists records in a short drive and a longer one (its log wraps), parking after
    each, and reads them back (`read_back`: its own read of its records, oldest first, next to the
    count it claims). Then the third and fourth newest EEPROM puts read wrong, and the device boots:
    for an app that writes each record twice, that is both copies of the record before the newest,
    lost for good, whatever the app repairs. It reads back again, works a little, and reads back
    once more. The count it claims must be the records it can read at every read-back (a count kept
    apart from the copies would still promise the lost one), in order, none numbered above what it
    took; and its numbers go on. `no persisted record lost` does not apply: the loss is the fault's."""
    connected(rig)
    _require_records_hook(rig)
    _require_hook(rig, "read_back", "cannot read its records back (no read-back hook: TestAgentApp.readRecord)")
    for seconds in (SHORT_DRIVE_S, DRIVE_S):
        drive(rig)
        rig.wait(seconds)
        park(rig)
        rig.wait(30)  # parked: what the app writes on parking is in
        rig.command("read_back")
    if not _persisted(rig):
        raise NotSupported(f"{NOT_SUPPORTED}: it persisted no record in {SHORT_DRIVE_S + DRIVE_S} s of work",
                           Event("reply", 0, {}))
    before_faults = rig.now()
    for put in (3, 4):
        rig.sim.damage_eeprom(put, before=before_faults, reads="wrong")
    _boot(rig)
    rig.command("read_back")
    drive(rig)
    rig.wait(15)
    park(rig)
    rig.wait(30)
    rig.command("read_back")
    tl = rig.timeline
    rig.check(v.record_count_matches_read_back(tl), v.record_numbers_go_up(tl))
