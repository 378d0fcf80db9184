"""Publishing: what the app persisted reaches the cloud, a publish Device OS refused included.

`Particle.publish()` returns false when Device OS does not send the event: not connected
(`CloudClass::publish_event`, INVALID_STATE), a transfer in progress (BUSY), the user-event rate
limit, or a send the channel could not make (`Protocol::send_event`; docs/reference/particle-ota.md
§2.8). An app that counts such a record as sent never sends it: the product's data has a hole though
the record is persisted. A vehicle loses coverage many times a drive, and until the modem reports
the loss the device still believes it is connected (§2.2), so its publishes in those seconds fail.
"""
from __future__ import annotations

import pytest
from conftest import connected, drive, park

from otarig import verdicts as v

#: seconds without coverage: longer than the modem takes to report the loss and the cloud to drop
#: (docs/reference/particle-ota.md §2.2, ~20 s), short enough for a tunnel or a car park
OUTAGE_S = 90
#: seconds of driving once the cloud is back: the waiting records go out at the app's own pace
CATCH_UP_S = 60


@pytest.mark.spec("docs/reference/particle-ota.md §2.8")
@pytest.mark.requires("antenna_switch")
@pytest.mark.budget(1200)
def test_publishes_refused_as_coverage_goes_are_sent_once_it_is_back(rig):
    """The vehicle drives, its records persisted and published as they come; coverage goes just as
    a record is persisted, while the device still believes the cloud connected, and comes back
    after `OUTAGE_S` while it still drives. The publishes tried in between are refused; each
    refused record must go out once the cloud is back, before any later one
    (`a refused publish reaches the cloud`), once (`each record published once`), and publishing
    must keep up with the declared pace."""
    connected(rig)
    drive(rig)
    rig.wait(12)
    rig.expect(lambda e: e.name == "app" and e.get("action") == "record" and bool(e.get("persisted")), 60)
    rig.link_outage(OUTAGE_S)
    rig.expect_sys("cloud_status", "disconnected", 300)
    rig.expect_sys("cloud_status", "connected", 900)
    rig.wait(CATCH_UP_S)
    park(rig)
    rig.wait(30)
    tl = rig.timeline
    rig.check(v.refused_publishes_reach_the_cloud(tl), v.records_published_once(tl), v.publishing_keeps_up(tl),
              v.cloud_copy_names_published_records(tl), v.record_numbers_go_up(tl))
