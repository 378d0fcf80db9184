"""Startup: the app starts as quickly after a long history as on its first day.

What an app does at boot before it works (load its log, repair a copy) is timed by its test agent:
`boot` begun_ms is millis() when the app called agent.begin() (docs/protocol.md). On an Electron
every emulated EEPROM read walks its whole page (docs/reference/particle-ota.md §2.10), so a start
that reads once per record ever taken, instead of once per slot the log holds, grows without bound.
"""
from __future__ import annotations

import pytest
from conftest import connected, drive, park

from otarig import verdicts as v

#: hours of work between the two boots: thousands of records, as a few weeks of a fleet's driving
HISTORY_S = 3 * 3600


def _reset(rig) -> None:
    """The app resets itself on the rig's word (`reset`: System.reset()); wait for its boot."""
    rig.command("reset")
    rig.expect(lambda e: e.name == "boot", 120)
    connected(rig)


@pytest.mark.spec("docs/reference/particle-ota.md §2.10")
@pytest.mark.budget(4 * 3600)
def test_startup_does_not_grow_with_the_records_taken(rig):
    """The device boots, works for three hours (a record a second for the companion: about 10,800),
    parks and boots again. Its second start must take about as long as its first (`startup does not
    grow`: no more than the quickest plus 2 s, or twice it), and no record it persisted may be lost
    across the boot."""
    connected(rig)
    _reset(rig)
    drive(rig)
    rig.wait(HISTORY_S)
    park(rig)
    rig.wait(30)  # parked: what the app writes on parking is in
    _reset(rig)
    tl = rig.timeline
    rig.check(v.startup_does_not_grow(tl), v.no_record_lost(tl), v.record_numbers_go_up(tl))
