"""The periodic forced handshake falls due at a bad moment: during a download, just after the app let
a pending update in, while a power-off waits, or with no coverage.

A firmware that forces a full handshake now and then (publish `spark/device/session/end`, then
`Particle.disconnect()` and `Particle.connect()`, so that a Standard release is offered:
docs/reference/particle-ota.md §1.1, §1.3, §3.3) reports it as the guard action `handshake_forced`.
Its disconnect drops a transfer in progress without a `failed` (§2.2, §3.3) and the cloud sends
the image again from chunk 0 (§2.4, §7.9), so it must wait for the download's end. Forced while the
cloud is disconnected (coverage lost), it is no handshake at all: the publish is refused (§2.8) and
the reconnect that follows the outage resumes the session (§1.2, §1.3), so it must wait until
connected. The scenarios learn the firmware's period from the timeline alone (two forced handshakes
while parked), then arrange the next one to fall due at that moment. Not applicable to a firmware
that reports no forced handshake within the first day or so.
"""
from __future__ import annotations

import pytest

from otarig import verdicts as v
from otarig.board import NOT_SUPPORTED, BoardError, ExpectTimeout, NotSupported
from otarig.protocol import Event
from otarig.timeline import Entry

from conftest import (APP_SIZE, connected, drive, long_loop_pass, long_loop_pass_ended, needs_threaded_app,
                      ota_verdicts, park)

DAY = 24 * 3600
#: how long to wait, parked, for a forced handshake: "once a day", with room for a firmware that
#: counts from its connection or its setup() rather than its boot
HANDSHAKE_WITHIN_S = DAY + 2 * 3600
#: the image released: near the Electron's 128 KB user-app slot (docs/reference/particle-ota.md §2.6),
#: so that its download lasts long on a cellular link (§5: some 40-50 s on 3G)
IMAGE_SIZE = 120 * 1024
#: the release is made this long before the next forced handshake falls due: the app lets the update
#: in within a second or so of the pending notice and the cloud begins 3-8 s later (§1.5, §2.2,
#: §7.8.3), so the download has begun before the due moment and is still running at it. It must
#: outlast the lead's rest: a threaded app's download goes at the pace its queue takes `progress`
#: events (minutes, §2.2), a non-threaded one's at the link's (§2.8; some 20 s for this image in
#: the simulator's 3G, 50 s or more on a real one, §5), so the lead stays well under 20 s
RELEASE_LEAD_S = 18.0
#: how long after a forced handshake the release is made: its full handshake is over by then (the
#: reconnection takes seconds, §1.3), so only the next forced handshake can offer the release
SETTLE_S = 10 * 60.0
#: coverage goes this long before the next forced handshake falls due: the modem notices the loss
#: and the system drops the cloud within some 20 s (docs/reference/particle-ota.md §2.2; the
#: scenario checks the disconnect came before the due moment)
OUTAGE_LEAD_S = 5 * 60.0
#: and comes back this long after it
OUTAGE_AFTER_S = 10 * 60.0
#: the vehicle starts driving this long before the next forced handshake falls due, and parks this
#: long after it: the handshake falls due while the app is busy (window closed), so the first idle
#: pass after it both lets the pending update in and finds the handshake due
BUSY_LEAD_S = 10 * 60.0
BUSY_AFTER_S = 10 * 60.0
#: a MODE power-off is announced this long before the next forced handshake falls due, and held
#: (the app's reset hold) until this long after it
HOLD_AROUND_S = 10 * 60.0
#: the release whose download is cut and begun again within one loop() pass is made this long before
#: the next forced handshake falls due: the pass (the rest of the lead, less PASS_ENDS_BEFORE_DUE_S)
#: must hold the cut, its disconnect (the modem notices within some 20 s, §2.2), the reconnection
#: (seconds, §1.3) and the cloud's new `begin` (§2.4, §7.9), while the new download, at the pace the
#: app's queue takes its `progress` events (one a second inside a delay(), §2.2), is still running at
#: the due moment
BATCH_LEAD_S = 200.0
#: the long pass ends this long before the due moment, so that the app's first loop() after it has
#: the events of the pass in hand before the handshake falls due
PASS_ENDS_BEFORE_DUE_S = 5.0
#: the coverage cut inside the pass
BATCH_OUTAGE_S = 30.0
#: what a Standard release may take beyond the firmware's period and the outage: the reconnect, the
#: forced full handshake, the download of a 100 KB image (some 40-50 s on 3G, §5) and the reset
#: (halved for a firmware whose period is shorter than twice this)
RELEASE_MARGIN_S = 30 * 60.0


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


def _learn_forced_handshake_period(rig) -> tuple[Entry, float]:
    """Parked with the cloud connected, the firmware's next two forced handshakes: the last of them
    and their interval, its period (the next falls due that long after the last)."""
    first = _next_forced_handshake(rig, HANDSHAKE_WITHIN_S, rig.t0)
    second = _next_forced_handshake(rig, HANDSHAKE_WITHIN_S, first.t + 0.001)
    return second, second.t - first.t


def _until_before_the_third_handshake(rig, size: int, lead: float) -> tuple[Entry, float, float]:
    """Connected and parked with version 2 (`size` bytes) uploaded, the firmware's period learned
    from two forced handshakes; returns `lead` seconds before the third falls due, with the second
    handshake, the period and the due moment."""
    connected(rig)
    park(rig)
    rig.upload(rig.firmware(2, size=size))
    second, period = _learn_forced_handshake_period(rig)
    due = second.t + period
    rig.wait(max(due - lead - rig.now(), 0))
    return second, period, due


@pytest.mark.budget(3 * DAY + 6 * 3600)
def test_forced_handshake_falling_due_during_a_download_waits_for_it(rig):
    """Parked with the cloud connected, the firmware forces two handshakes: their interval is its
    period, counted from the last one. An Intelligent release of a near-full-slot image is made
    just before the third falls due; the app lets it in inside its idle window and the download is
    in progress at the due moment. No forced handshake (and no disconnect of the app's own) comes
    between the `begin` and the update's end or while the reset is pending, and the update lands
    with one download (`no_forced_handshake_during_update`, `no_sleep_or_disconnect_during_download`,
    `no_update_loop`)."""
    second, period, due = _until_before_the_third_handshake(rig, IMAGE_SIZE, RELEASE_LEAD_S)
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


@pytest.mark.parametrize("ending", [
    pytest.param("lost-coverage", marks=pytest.mark.requires("antenna_switch")),
    pytest.param("renegotiated-session", marks=pytest.mark.sim_only)])
@pytest.mark.budget(3 * DAY + 6 * 3600)
def test_forced_handshake_falling_due_after_a_download_begun_again_within_one_loop_pass_waits_for_it(rig, ending):
    """Parked, the firmware's period is learned from two forced handshakes. An Intelligent release of
    a near-full-slot image is made some minutes before the third falls due; the app lets it in and
    its download begins. Then one of the app's loop() passes lasts minutes (a long delay(), the
    agent's `delay`), and inside it coverage is cut and comes back: the cloud's disconnect, the
    reconnection and the cloud's new `begin` all reach the app's handlers before its next loop()
    (a threaded app takes its queued events inside a delay(), docs/reference/particle-ota.md §2.2).
    A firmware that reads that batch as "the transfer was cut" (the disconnect, without noticing
    the newer `begin`) believes no download runs, and when the handshake falls due soon after the
    pass it forces it in the middle of the new download, which its disconnect drops (§3.3, §2.4)
    (`no_forced_handshake_during_update`). Two cuts: `lost-coverage` ends the download without
    `failed` (§2.2); `renegotiated-session` is the cloud's renegotiation of the 3-day session
    (DISCARD_SESSION, §1.2), an event-loop error that ends it with `failed` before the disconnect,
    so the batch holds a `failed` older than the new `begin` (sim_only: when the cloud renegotiates
    is its choice). Not applicable to a non-threaded app, which runs the whole download inside the
    pass (§2.8), or to an agent without `delay`. `ending` names how the first download ends."""
    needs_threaded_app(rig, "the app takes the cut and the new `begin` in one loop() pass and runs on during the download")
    second, period, due = _until_before_the_third_handshake(rig, IMAGE_SIZE, BATCH_LEAD_S)
    rig.release(2, intelligent=True)
    rig.expect_sys("firmware_update", "begin", 120)
    began = long_loop_pass(rig, max(due - PASS_ENDS_BEFORE_DUE_S - rig.now(), 0))
    if ending == "lost-coverage":
        rig.link_outage(BATCH_OUTAGE_S)
    else:
        rig.wait(5)  # some chunks into the download
        rig.sim.cloud_renegotiates_now()
    ended = long_loop_pass_ended(rig, max(due - rig.now(), 0) + 60)
    rig.expect_version(2, 1800)
    rig.wait(30)
    tl = rig.timeline
    rig.check(*ota_verdicts(rig, 2))  # no_forced_handshake_during_update among them
    # what the scenario arranged: without it the verdicts above passed proving nothing
    cut = tl.select(kind="sys", start=began, end=ended, where=lambda e: e.is_sys("cloud_status", "disconnected"))
    again = tl.select(kind="sys", start=cut[0].t if cut else ended, end=ended,
                      where=lambda e: e.is_sys("firmware_update", "begin"))
    assert cut and again, (
        f"the app's long loop() pass ({began:.0f} s to {ended:.0f} s) did not take both the cut's `cloud_status "
        f"disconnected` ({f'at {cut[0].t:.0f} s' if cut else 'none'}) and a new `firmware_update begin` after it "
        f"({f'at {again[0].t:.0f} s' if again else 'none'}), so the scenario proved nothing; the pass or the "
        "outage needs changing")
    failed = tl.select(kind="sys", start=began, end=again[0].t, where=lambda e: e.is_sys("firmware_update", "failed"))
    assert ending == "lost-coverage" or failed, (
        "the cloud's renegotiation ended the download without a `firmware_update failed` inside the pass, so the "
        "scenario proved nothing about a `failed` older than the new `begin`")
    ends = tl.select(kind="sys", start=again[0].t + 0.001, where=lambda e: e.is_sys("firmware_update", "complete") or
                     e.is_sys("firmware_update", "failed") or e.is_sys("cloud_status", "disconnected"))
    assert ends and ends[0].t > due, (
        f"the download begun again at {again[0].t:.0f} s ended at {(ends[0].t if ends else float('nan')):.0f} s, "
        f"before the next forced handshake fell due ({due:.0f} s, period {period:.0f} s): it did not span it, so "
        "the scenario proved nothing; the lead or the image size needs changing")


@pytest.mark.requires("antenna_switch")
@pytest.mark.budget(3 * DAY + 12 * 3600)
def test_forced_handshake_falling_due_without_coverage_waits_for_the_cloud(rig):
    """Parked, the firmware's period is learned from two forced handshakes; a Standard release is
    made once the second one's reconnection is over, so that only the next forced handshake brings
    it (docs/reference/particle-ota.md §1.1). Coverage goes a few minutes before that one falls due and comes back some minutes after.
    A firmware that forces it anyway while disconnected publishes nothing (Device OS refuses a
    publish when not connected, §2.8), its disconnect and connect change nothing, and the
    reconnect after the outage resumes the session (§1.2, §1.3), which checks no Standard release
    (§8.1): the release waits another period. One that waits until connected, then forces it,
    brings the release within its period and the outage (`release_to_update_within`)."""
    connected(rig)
    park(rig)
    second, period = _learn_forced_handshake_period(rig)
    rig.wait(SETTLE_S)  # the forced handshake's own reconnection, which would offer the release
    connected(rig)
    rig.upload(rig.firmware(2, size=APP_SIZE))
    released = rig.now()
    rig.release(2)
    due = second.t + period
    rig.wait(max(due - OUTAGE_LEAD_S - rig.now(), 0))
    cut = rig.now()
    rig.link_outage(OUTAGE_LEAD_S + OUTAGE_AFTER_S)
    budget = (due - released) + OUTAGE_AFTER_S + min(RELEASE_MARGIN_S, period / 2)
    try:
        rig.expect_version(2, max(released + budget - rig.now(), 0) + 60)
    except BoardError:
        pass  # the verdicts below say why and what to change
    rig.wait(30)
    tl = rig.timeline
    rig.check(v.release_to_update_within(tl, 2, budget), *ota_verdicts(rig, 2))
    # the moment the scenario arranged: without it the verdicts above passed proving nothing
    lost = tl.select(kind="sys", start=cut, where=lambda e: e.is_sys("cloud_status", "disconnected"))
    assert lost and lost[0].t < due, (
        f"the cloud was not disconnected when the next forced handshake fell due ({due:.0f} s, period "
        f"{period:.0f} s): coverage was cut at {cut:.0f} s and the app reported `cloud_status disconnected` "
        f"{f'at {lost[0].t:.0f} s' if lost else 'never'}, so the scenario proved nothing; the outage's lead needs changing")


@pytest.mark.budget(3 * DAY + 6 * 3600)
def test_forced_handshake_falling_due_while_busy_waits_for_the_update_let_in(rig):
    """Parked, the firmware's period is learned from two forced handshakes. The vehicle drives off
    before the third falls due and an Intelligent release is made: Device OS says it is pending
    while the app is busy (docs/reference/particle-ota.md §1.5, §2.1). The vehicle parks after the
    due moment, so the app's first idle pass finds both the pending update and the overdue
    handshake. It lets the update in (`updates_enabled`), and the handshake waits for the update:
    forced before the cloud's `begin`, its disconnect puts the update off to a reconnection where
    the cloud offers it again (§3.3, §7.8.1) (`no_forced_handshake_during_update`)."""
    second, period, due = _until_before_the_third_handshake(rig, APP_SIZE, BUSY_LEAD_S)
    drive(rig)
    rig.release(2, intelligent=True)
    rig.expect_sys("firmware_update_pending", timeout=120)
    rig.wait(max(due + BUSY_AFTER_S - rig.now(), 0))
    parked = rig.now()
    park(rig)
    rig.expect_version(2, 900)
    rig.wait(30)
    tl = rig.timeline
    rig.check(*ota_verdicts(rig, 2))  # no_forced_handshake_during_update among them
    # the moment the scenario arranged: without it the verdicts above passed proving nothing
    forced = tl.select(kind="guard", start=second.t + 0.001, end=parked, where=lambda e: e.is_guard("handshake_forced"))
    let_in = tl.select(kind="guard", start=parked, where=lambda e: e.is_guard("updates_enabled"))
    assert not forced and let_in and let_in[0].t > due, (
        f"the update was not let in with the handshake overdue (due at {due:.0f} s, period {period:.0f} s; parked at "
        f"{parked:.0f} s; forced handshakes while busy: {[round(e.t) for e in forced]}; `updates_enabled` "
        f"{f'at {let_in[0].t:.0f} s' if let_in else 'never'}), so the scenario proved nothing; the lead needs changing")


@pytest.mark.requires("mode_button")
@pytest.mark.budget(3 * DAY + 6 * 3600)
def test_forced_handshake_falling_due_with_a_power_off_held_waits_for_it(rig):
    """Parked, the firmware's period is learned from two forced handshakes. Before the third falls
    due a critical section holds the reset (the app's reset hold) and the user double-clicks MODE:
    Device OS announces the power-off (`reset_pending`, no update involved, docs/reference/particle-ota.md
    §2.11) and waits for the hold to end. The handshake falls due meanwhile, with the app parked and
    shut down: it must wait, as the device is about to power off (`no_forced_handshake_during_update`,
    its `reset_pending` clause). Not applicable to a firmware without the reset-hold hook."""
    second, period, due = _until_before_the_third_handshake(rig, APP_SIZE, HOLD_AROUND_S)
    rig.command("reset_hold", hold=True)
    clicked = rig.now()
    rig.companion("mode_button").double_click_mode()
    rig.collect()
    rig.expect_sys("reset_pending", timeout=30)
    rig.wait(max(due + HOLD_AROUND_S - rig.now(), 0))
    tl = rig.timeline
    rig.check(v.no_forced_handshake_during_update(tl), v.shutdown_persists_every_record_taken(tl),
              v.reports_agree_with_status(tl))
    # the moment the scenario arranged: the power-off was still waiting when the handshake fell due
    pending = tl.select(kind="sys", start=clicked, where=lambda e: e.is_sys("reset_pending"))
    assert pending and pending[0].t < due and not tl.select(kind="hello", start=clicked), (
        f"the power-off was not waiting when the next forced handshake fell due ({due:.0f} s, period {period:.0f} s): "
        f"`reset_pending` {f'at {pending[0].t:.0f} s' if pending else 'never came'}"
        f"{', and the device booted meanwhile' if tl.select(kind='hello', start=clicked) else ''}, so the scenario "
        "proved nothing")
