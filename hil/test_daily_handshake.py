"""The periodic forced handshake falls due during a download: it must wait.

A firmware that forces a full handshake now and then (publish `spark/device/session/end`, then
`Particle.disconnect()` and `Particle.connect()`, so that a Standard release is offered:
docs/reference/particle-ota.md §1.1, §1.3, §3.3) reports it as the guard action `handshake_forced`.
Its disconnect drops a transfer in progress without a `failed` (§2.2, §3.3) and the cloud sends
the image again from chunk 0 (§2.4, §7.9). The scenario learns the firmware's period from the
timeline alone (two forced handshakes while parked), then times an Intelligent release so that its
download is in progress when the next one falls due. Not applicable to a firmware that reports no
forced handshake within the first day or so.
"""
from __future__ import annotations

import pytest

from otarig.board import NOT_SUPPORTED, ExpectTimeout, NotSupported
from otarig.protocol import Event
from otarig.timeline import Entry

from conftest import connected, ota_verdicts, park

DAY = 24 * 3600
#: how long to wait, parked, for a forced handshake: "once a day", with room for a firmware that
#: counts from its connection or its setup() rather than its boot
HANDSHAKE_WITHIN_S = DAY + 2 * 3600
#: the image released: near the Electron's 128 KB user-app slot (docs/reference/particle-ota.md §2.6),
#: so that its download lasts long on a cellular link (§5: some 40-50 s on 3G)
IMAGE_SIZE = 120 * 1024
#: the release is made this long before the next forced handshake falls due: the app lets the update
#: in within seconds of the pending notice and the cloud begins a few seconds later (§1.5, §7.8.3),
#: so the download has begun before the due moment and is still running at it
RELEASE_LEAD_S = 30.0


def _next_forced_handshake(rig, within: float, since: float) -> Entry:
    """The next `handshake_forced` the firmware reports within `within` bench seconds (not
    applicable when it reports none: the firmware forces no handshake, or reports none)."""
    try:
        rig.expect_guard("handshake_forced", within)
    except ExpectTimeout:
        raise NotSupported(f"{NOT_SUPPORTED}: it reported no forced handshake (guard `handshake_forced`) in "
                           f"{within / 3600:.0f} h parked with the cloud connected, so no periodic handshake can "
                           "fall due during a download", Event("guard", 0, {})) from None
    return rig.timeline.select(kind="guard", start=since, where=lambda e: e.is_guard("handshake_forced"))[-1]


@pytest.mark.budget(3 * DAY + 6 * 3600)
def test_forced_handshake_falling_due_during_a_download_waits_for_it(rig):
    """Parked with the cloud connected, the firmware forces two handshakes: their interval is its
    period, counted from the last one. An Intelligent release of a near-full-slot image is made
    just before the third falls due; the app lets it in inside its idle window and the download is
    in progress at the due moment. No forced handshake (and no disconnect of the app's own) comes
    between the `begin` and the update's end or while the reset is pending, and the update lands
    with one download (`no_forced_handshake_during_update`, `no_sleep_or_disconnect_during_download`,
    `no_update_loop`)."""
    connected(rig)
    park(rig)
    rig.upload(rig.firmware(2, size=IMAGE_SIZE))
    first = _next_forced_handshake(rig, HANDSHAKE_WITHIN_S, rig.t0)
    second = _next_forced_handshake(rig, HANDSHAKE_WITHIN_S, first.t + 0.001)
    period = second.t - first.t
    due = second.t + period
    rig.wait(max(due - RELEASE_LEAD_S - rig.now(), 0))
    released = rig.now()
    rig.release(2, intelligent=True)
    rig.expect_sys("firmware_update", "begin", 900)
    rig.expect_version(2, 1800)
    rig.wait(30)
    tl = rig.timeline
    rig.check(*ota_verdicts(rig, 2))  # no_forced_handshake_during_update among them
    # the collision the scenario arranged: without it the verdicts above passed proving nothing
    begin = tl.select(kind="sys", start=released, where=lambda e: e.is_sys("firmware_update", "begin"))[0]
    ends = tl.select(kind="sys", start=begin.t, where=lambda e: e.is_sys("firmware_update", "complete") or
                     e.is_sys("firmware_update", "failed") or e.is_sys("cloud_status", "disconnected"))
    assert begin.t < due and ends and ends[0].t > due, (
        f"the download ran {begin.t - due:+.1f} s to {(ends[0].t - due if ends else float('nan')):+.1f} s around "
        f"the moment the next forced handshake fell due (period {period:.0f} s from the one at {second.t:.0f} s): "
        "it did not span it, so the scenario proved nothing; the release lead or the image size needs changing")
