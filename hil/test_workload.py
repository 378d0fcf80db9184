"""The workload the app is told of: a command that comes twice changes nothing.

A fleet's backend delivers its commands at least once (a retry after a lost acknowledgement, two
operators, the rig and the cloud function): an app told `busy` while it is busy is still in the
same busy stretch, so its record grid goes on from the moment it turned busy (docs/your-firmware.md
"Record cadence"), and its idle window stays as it was.
"""
from __future__ import annotations

import pytest
from conftest import connected, declared_period_ms, drive, park

from otarig import verdicts as v

#: the repeat comes this far into a record period after a whole number of them (a grid restarted
#: there would put the next record half a period late, past the lateness the verdict allows)
PHASE = 0.5


@pytest.mark.spec("docs/reference/particle-ota.md §3.1")
@pytest.mark.budget(600)
def test_a_repeated_workload_command_changes_nothing(rig):
    """The app is told `busy`, and `busy` again half a record period after its tenth record was due;
    later `idle`, and `idle` again. Its records keep the grid of the stretch that began at the first
    `busy` (`records keep the declared cadence` judges a repeated `busy` as no new stretch), its
    numbers go on, and what it reports agrees with its status."""
    connected(rig)
    period = (declared_period_ms(rig) or 1000) / 1000
    drive(rig)
    rig.wait(10 * period + PHASE * period)
    rig.command("workload", state="busy")
    rig.wait(10 * period)
    park(rig)
    rig.wait(5)
    park(rig)
    rig.wait(5)
    tl = rig.timeline
    rig.check(v.records_keep_declared_cadence(tl), v.record_numbers_go_up(tl), v.reports_agree_with_status(tl))
