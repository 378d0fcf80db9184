"""A pending update outlives the flag that announced it (docs/reference/particle-ota.md §2.1, §2.2, §8.3)."""
from __future__ import annotations

import pytest

from otarig import verdicts as v

from conftest import APP_SIZE, connected, drive, ota_verdicts, park, pending_intelligent_release

#: how soon after parking a pending update must begin (as for an Intelligent release while busy)
HONOURED_WITHIN_S = 60


@pytest.mark.sim_only
@pytest.mark.requires("antenna_switch")
@pytest.mark.budget(2400)
def test_pending_update_cleared_by_a_reconnection_still_lands_at_the_next_idle_window(rig):
    """An Intelligent release reaches a busy device: `firmware_update_pending`, and the flag
    `System.updatesPending()` is set (§1.5). The event marks the 0->1 edge; the flag is the cloud's
    to clear (`particle/device/updates/pending=false`, system_cloud_internal.cpp:97-98), and the
    event log shows that false about 1 s after every connection (§2.1). Whether the cloud then tells
    a device again about an update that still waits is not public (§8.3): here it does not
    (`rig.sim.cloud_clears_pending_at_connect`). Coverage is lost for 2 min while driving; the
    device resumes its session and its flag is cleared, but the update still waits for it (the cloud
    delivers once updates are enabled, §7.8.3). A firmware that took the event must let it in at
    the next idle window; one that reads only the flag waits for the next full handshake
    (`pending_honoured_within`, judged when the vehicle drives off again)."""
    rig.sim.cloud_clears_pending_at_connect()
    connected(rig)
    drive(rig)
    pending_intelligent_release(rig, 2)
    rig.wait(30)
    rig.link_outage(120)
    rig.expect_sys("cloud_status", "disconnected", 300)
    connected(rig, 900)
    rig.wait(60)  # the cloud's pending=false has reached the device
    status = rig.command("status")
    assert status.get("updates_pending") is False, \
        f"the reconnection left System.updatesPending() set, so this scenario tests nothing: {status}"
    parked = rig.now()
    park(rig)
    rig.wait(HONOURED_WITHIN_S + 30)
    if not rig.timeline.select(kind="sys", start=parked, where=lambda e: e.is_sys("firmware_update", "begin")):
        drive(rig)  # the window the update was not let into ends here
        rig.check(v.pending_honoured_within(rig.timeline, HONOURED_WITHIN_S))
    rig.expect_version(2, 900)
    rig.wait(30)
    rig.check(*ota_verdicts(rig, 2), v.pending_honoured_within(rig.timeline, HONOURED_WITHIN_S))


@pytest.mark.requires("antenna_switch")
@pytest.mark.budget(2400)
def test_a_release_withdrawn_after_its_download_was_cut_leaves_the_parked_app_at_work(rig):
    """The vehicle drives, parks, and an Intelligent release is let in (the app shuts down for it,
    docs/reference/particle-ota.md §1.5, §2.1). Coverage is lost mid-download, which ends the transfer
    without `failed` (§2.2, §2.4), and while the device is offline the product team withdraws the
    release: the fleet goes back to version 1, which the board runs, so nothing waits for it any
    more (§7.7). The app must go back to work and stay at it: after the next drive, parked, it
    publishes what it took (`publishing keeps up`, which excuses a shutdown only while an update is
    in view). A guard that still believes an update is pending (a latch the `begin` should have
    cleared, §2.3) shuts the app down at every idle window for the rest of the boot, and what the
    drive took waits unpublished while it is parked."""
    connected(rig)
    drive(rig)
    rig.wait(20)
    park(rig)
    rig.wait(30)
    rig.upload(rig.firmware(1))
    rig.upload(rig.firmware(2, size=APP_SIZE))
    rig.release(2, intelligent=True)
    rig.expect_sys("firmware_update", "begin", 300)
    for _ in range(5):
        rig.expect_sys("firmware_update", "progress", 60)
    rig.link_outage(120)
    rig.expect_sys("cloud_status", "disconnected", 300)
    rig.release(1, intelligent=True)  # withdrawn: the fleet goes back to the version the board runs
    rig.expect_sys("cloud_status", "connected", 900)
    rig.wait(30)
    drive(rig)
    rig.wait(30)
    park(rig)
    rig.wait(120)
    tl = rig.timeline
    rig.check(v.publishing_keeps_up(tl), v.app_resumes_after_a_lost_transfer(tl), v.no_record_lost(tl),
              v.update_began_in_idle_window(tl), v.reports_agree_with_status(tl),
              v.published_records_reach_the_cloud(tl, device_id=rig.dut_id))
    assert not tl.select(kind="hello"), "the device reset: the withdrawn release still landed"
