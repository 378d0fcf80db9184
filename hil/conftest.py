"""Helpers shared by the certification scenarios (the `rig` fixture comes from otarig.plugin)."""
from __future__ import annotations

import pytest

from otarig import verdicts as v
from otarig.board import NOT_SUPPORTED, CommandFailed, NotSupported
from otarig.plugin import SKIP_NOT_APPLICABLE
from otarig.rig import Rig
from otarig.strategy import BaselineStrategy
from otarig.timeline import Timeline

#: A 100 KB application, the size docs/reference/particle-ota.md §5 uses for its data and time estimates.
APP_SIZE = 100 * 1024


def connected(rig: Rig, timeout: float = 120) -> None:
    """Wait until the companion reports the cloud connected (docs/reference/particle-ota.md §2.2
    cloud_status) — a state, asked of the board: on a real bench it may have connected long ago."""
    BaselineStrategy.wait_connected(rig, timeout)


def app_threaded(rig: Rig) -> bool:
    """Whether the board's firmware runs its app on a thread of its own (SYSTEM_THREAD(ENABLED)), as
    its agent said (`threaded` in its hello and `ping` reply, asked by the baseline). Only then does
    loop() run during a download (docs/reference/particle-ota.md §2.8) and while the cloud
    connection is being made (§3.1): a non-threaded app cannot be told anything meanwhile."""
    said = rig.parts.board_threaded
    return True if said is None else bool(said)


def needs_threaded_app(rig: Rig, premise: str) -> None:
    """Skip, as not applicable to this firmware, a scenario whose premise is that the app takes
    work while Device OS holds a non-threaded one (`premise` names it)."""
    if not app_threaded(rig):
        pytest.skip(f"{SKIP_NOT_APPLICABLE}{premise}; a non-threaded app runs no loop() during a download or "
                    "while its cloud connection is being made (docs/reference/particle-ota.md §2.8, §3.1), "
                    "so the scenario's premise needs SYSTEM_THREAD(ENABLED)")


def needs_non_threaded_app(rig: Rig, premise: str) -> None:
    """Skip, as not applicable to this firmware, a scenario whose premise is that Device OS holds
    the app (`premise` names it): a threaded app's loop() runs on through a download and while its
    cloud connection is being made, so it has no such stall to get wrong."""
    if app_threaded(rig):
        pytest.skip(f"{SKIP_NOT_APPLICABLE}{premise}; a threaded app (SYSTEM_THREAD(ENABLED)) runs loop() during "
                    "a download and while its cloud connection is being made (docs/reference/particle-ota.md "
                    "§2.8, §3.1), so only a non-threaded one is held")


def declared_period_ms(rig: Rig) -> int | None:
    """The record period the firmware declares (hello and `ping` `record_period_ms`), or None."""
    said = rig.command("ping").get("record_period_ms")
    return int(said) if isinstance(said, (int, float)) and not isinstance(said, bool) and said > 0 else None


def long_loop_pass(rig: Rig, seconds: float) -> float:
    """The app's current loop() pass lasts `seconds` (the agent's `delay` command, docs/protocol.md), as
    a long delay() in a product's loop does: a threaded app takes its queued system events inside it,
    so several reach its handlers before its next loop() (docs/reference/particle-ota.md §2.2, §8.16).
    Returns when the pass's delay began (the agent replies first). Not applicable to an agent
    older than the command."""
    try:
        rig.command("delay", ms=round(seconds * 1000))
    except CommandFailed as exc:
        if "unknown cmd" not in str(exc):
            raise
        raise NotSupported(f"{NOT_SUPPORTED}: its test agent has no `delay` command (an older TestAgent: "
                           "`otarig firmware add-agent` brings the current one)", exc.reply) from None
    return rig.now()


def long_loop_pass_ended(rig: Rig, timeout: float) -> float:
    """Wait for the agent's `delay_end` (docs/protocol.md `delay`): the long pass is over and the app's
    next loop() runs. Returns when."""
    rig.expect(lambda e: e.name == "log" and e.get("msg") == "delay_end", timeout)
    return rig.now()


def drive(rig: Rig) -> None:
    """The vehicle starts driving: the app is busy and the guard closes the idle window."""
    rig.command("workload", state="busy")
    rig.expect_guard("window_close", 30)


def park(rig: Rig) -> None:
    rig.command("workload", state="idle")


def pending_intelligent_release(rig: Rig, version: int) -> None:
    """Upload `version` (APP_SIZE) and release it Intelligent; the device is told an update is
    pending (docs/reference/particle-ota.md §1.5, §2.2 firmware_update_pending)."""
    rig.upload(rig.firmware(version, size=APP_SIZE))
    rig.release(version, intelligent=True)
    rig.expect_sys("firmware_update_pending", timeout=120)


def update_completed_under_reset_hold(rig: Rig, version: int = 2) -> float:
    """A parked device whose app holds the reset (`reset_hold`) takes an Intelligent release of
    `version` to `complete`; the reset stays held (docs/reference/particle-ota.md §2.5). Returns
    when the release was made."""
    connected(rig)
    park(rig)
    rig.command("reset_hold", hold=True)
    rig.upload(rig.firmware(version, size=APP_SIZE))
    since = rig.now()
    rig.release(version, intelligent=True)
    rig.expect_sys("firmware_update", "complete", 900)
    return since


def ota_verdicts(rig: Rig, version: int, *, allow_forced: bool = False, since: float | None = None) -> list[v.Verdict]:
    """The checks every OTA scenario ends with (docs/reference/particle-ota.md §7.10); `since` (a
    `rig.note_state()` time) judges only from there, for a scenario whose own setup ran an update
    (the fleet's release coming onto the board) that is not the one under test."""
    tl = rig.timeline if since is None else judged_since(rig.timeline, since)
    return [
        v.app_saw_every_update(tl),
        v.update_began_in_idle_window(tl, allow_forced=allow_forced),
        v.shutdown_before_reset(tl),
        v.shutdown_persists_every_record_taken(tl),
        v.no_record_lost(tl),
        v.record_count_never_drops(tl),
        v.record_numbers_go_up(tl),
        v.startup_does_not_grow(tl),
        v.records_published_once(tl),
        v.publishes_within_rate_limit(tl),
        v.publishing_keeps_up(tl),
        v.records_keep_declared_cadence(tl),
        v.cloud_copy_names_published_records(tl, device_id=rig.dut_id),
        v.published_records_reach_the_cloud(tl, device_id=rig.dut_id),
        v.app_resumes_after_a_lost_transfer(tl),
        v.reports_agree_with_status(tl),
        v.reported_threading_holds(tl),
        v.no_sleep_or_disconnect_during_download(tl),
        v.no_forced_handshake_during_update(tl),
        v.forced_handshakes_take_effect(tl),
        v.new_version_runs(tl, version, device_id=rig.dut_id),
        v.no_update_loop(tl),
    ]


def judged_since(timeline: Timeline, t: float) -> Timeline:
    """The stretch of `timeline` from bench time `t` on, as a timeline of its own for verdicts."""
    part = Timeline()
    for e in timeline.entries:
        if e.t >= t:
            part.add(e.t, e.source, e.kind, e.data, e.device_t)
    return part
