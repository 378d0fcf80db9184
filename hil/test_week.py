"""A week of vehicle life: the long view a release manager certifies against."""
from __future__ import annotations

import pytest

from otarig import verdicts as v

from conftest import APP_SIZE, connected, drive, ota_verdicts, park

DAY = 24 * 3600


@pytest.mark.budget(691200)
def test_week_of_daily_drives_with_a_midweek_standard_release(rig):
    """Seven days: two 15-minute drives a day, parked otherwise. A Standard release on day 3
    lands within a day thanks to the guard's daily forced handshake (docs/reference/particle-ota.md §1.3, §1.1), only in
    an idle window, after a clean shutdown, with every persisted record kept, and exactly one
    download (docs/reference/particle-ota.md §7.10)."""
    connected(rig)
    for day in range(7):
        start = day * DAY
        for hour in (8, 17):
            rig.wait(max(start + hour * 3600 - rig.now(), 0))
            drive(rig)
            rig.wait(15 * 60)
            park(rig)
        if day == 2:
            rig.wait(max(start + 20 * 3600 - rig.now(), 0))
            rig.upload(rig.firmware(2, size=APP_SIZE))
            rig.release(2)
    rig.wait(max(7 * DAY - rig.now(), 0))
    tl = rig.timeline
    rig.check(*ota_verdicts(rig, 2), v.release_to_update_within(tl, 2, DAY + 3600),
              v.pending_honoured_within(tl, 120))
