"""The device's pending flag across a reconnection, under both readings of the cloud's
`updates/pending=false` (docs/reference/particle-ota.md §2.1, §7.8.7, §8.3; CloudParams.pending_false_on_every_connect)."""
from __future__ import annotations

import pytest

from sim_helpers import OTA_SIZE, ImageFactory, RigFactory, SimRig

from otarig.sim import deviceos as dos
from otarig.sim.params import CloudParams


def _busy_with_a_pending_release(rig: SimRig, companion_image: ImageFactory) -> None:
    """Connected and busy (updates disabled), then an Intelligent release: the cloud tells the device
    (pending=true, §7.8.2) and the app sees `firmware_update_pending` (§2.2)."""
    rig.connected()
    rig.run(5)
    assert rig.board is not None
    rig.board.command("workload", state="busy")
    rig.run(2)
    rig.release(companion_image(2, size=OTA_SIZE), 2, intelligent=True)
    rig.until_event(dos.FIRMWARE_UPDATE_PENDING, timeout=60)
    assert rig.dev.flags.updates_pending


def _resume_after_lost_coverage(rig: SimRig) -> None:
    """Coverage lost for 2 min: the modem reports it, the cloud disconnects; the session is resumed."""
    dev = rig.dev
    dev.link.antenna_connected = False
    dev.net.antenna_changed()
    rig.until_kind("network_lost", 60)
    rig.run(120)
    dev.link.antenna_connected = True
    session = rig.until_kind("cloud_session", 120)
    assert session.data["resumed"]
    rig.run(10)  # past the cloud's post-connect events (about 1 s, §2.1)


@pytest.mark.parametrize("every_connect", [False, True])
def test_a_resume_clears_the_pending_flag_only_when_the_cloud_clears_it_at_every_connection(
        companion_image: ImageFactory, sim_rig: RigFactory, every_connect: bool) -> None:
    """Default (§7.8.7): pending=false only when nothing waits, so the flag outlives a resume. With
    `pending_false_on_every_connect` and no renotify (§8.3), the resume clears the flag although the
    update still waits: no second `firmware_update_pending`, and enabling updates still brings the
    update (§7.8.3: the device was told)."""
    params = CloudParams(pending_false_on_every_connect=every_connect, renotify_pending_on_connect=not every_connect)
    rig = sim_rig(companion_image(1), bench_kw={"cloud_params": params})
    _busy_with_a_pending_release(rig, companion_image)
    since = rig.now_ms + 1  # after the event the release caused
    _resume_after_lost_coverage(rig)
    assert rig.dev.flags.updates_pending is not every_connect
    assert not rig.events(dos.FIRMWARE_UPDATE_PENDING, since_ms=since), "no 0->1 edge: no event"
    assert rig.rec.pending_notified, "the cloud still holds the update for the device"
    rig.board.command("workload", state="idle")  # the companion latched the event and lets it in
    rig.until_event(dos.FIRMWARE_UPDATE, dos.FIRMWARE_UPDATE_BEGIN, timeout=120)
