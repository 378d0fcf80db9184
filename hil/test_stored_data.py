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


def _reports_records(rig) -> None:
    """The scenario needs the records hook (docs/your-firmware.md "Hooks"); without it, or when
    the app persisted nothing while busy, it is not applicable to this firmware."""
    hello = rig.command("ping")
    hooks = hello.get("hooks")
    if isinstance(hooks, list) and "records" not in hooks:
        raise NotSupported(f"{NOT_SUPPORTED}: its test agent reports no records (TestAgentApp.records/lastSeq)",
                           Event("reply", 0, dict(hello)))


def _persisted(rig) -> list:
    return rig.timeline.select(kind="app", where=lambda e: e.get("action") == "record" and e.get("persisted"))


def _boot(rig):
    """Power off and on (the tester board cuts VIN and VBUS); the board's next `boot` event."""
    rig.power_cycle()
    boot = rig.expect(lambda e: e.name == "boot", 120)
    connected(rig)
    return boot


@pytest.mark.sim_only
@pytest.mark.spec("docs/reference/particle-ota.md §2.10")
@pytest.mark.requires("power_switch", "vbus_switch")
@pytest.mark.budget(1800)
def test_a_persisted_record_survives_the_loss_of_either_copy(rig):
    """The app persists records while busy and parks. The newest EEPROM put it made then reads as
    never made (its first record reads invalid: what a cut inside it before its commit leaves,
    §2.10) and the device boots; then the put before that one reads wrong (a bit of each of its
    bytes) and the device boots again, then works a little. For an app that writes each record
    twice that is one copy of the newest record, then the other, with a boot in between to write
    the first one again: every record acknowledged or recovered before must still be there at each
    boot (`no persisted record lost`), the count it holds must not drop, and its numbers go on."""
    connected(rig)
    _reports_records(rig)
    drive(rig)
    rig.wait(DRIVE_S)
    park(rig)
    rig.wait(30)  # parked: what the app writes on parking is in
    if not _persisted(rig):
        raise NotSupported(f"{NOT_SUPPORTED}: it persisted no record in {DRIVE_S} s of work",
                           Event("reply", 0, {}))
    before_faults = rig.now()
    rig.sim.damage_eeprom(1, reads="invalid")
    _boot(rig)
    rig.wait(30)
    rig.sim.damage_eeprom(2, before=before_faults, reads="wrong")
    _boot(rig)
    drive(rig)
    rig.wait(15)
    park(rig)
    rig.wait(30)
    tl = rig.timeline
    rig.check(v.no_record_lost(tl), v.record_count_never_drops(tl), v.record_numbers_go_up(tl))
