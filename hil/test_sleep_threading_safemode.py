"""Sleep with a pending update, threading during a download, and the safe-mode path."""
from __future__ import annotations

import json

import pytest

from otarig import verdicts as v
from otarig.board import BoardError

from conftest import APP_SIZE, connected, drive, ota_verdicts, park, pending_intelligent_release


@pytest.mark.parametrize("mode", ["stop", "ulp", "hibernate"])
@pytest.mark.budget(2400)
def test_pending_update_survives_sleep(rig, mode):
    """A pending update across STOP, ULTRA_LOW_POWER and HIBERNATE sleep (docs/reference/particle-ota.md §3.2, §7.5): STOP/ULP
    keep the RAM flag; HIBERNATE wakes through reset, the flag is lost and the cloud notifies
    again on reconnect. Either way the update lands in the next idle window."""
    connected(rig)
    drive(rig)
    pending_intelligent_release(rig, 2)
    try:
        rig.command("sleep", mode=mode, seconds=900, network_standby=False)
    except BoardError:  # HIBERNATE takes USB down at once: on a real port the reply can die with it
        if mode != "hibernate":
            raise
    if mode == "hibernate":
        rig.expect(lambda e: e.name == "hello", 1200)
    else:
        rig.expect(lambda e: e.name == "log" and e.get("msg") == "wake", 1200)
        connected(rig, 300)  # a state: a non-threaded app's sleep() returns once the cloud is back (§3.2)
        assert rig.command("status")["updates_pending"] is True
    rig.wait(60)
    if mode != "hibernate":  # HIBERNATE restarts the app, which boots parked (idle)
        assert not rig.timeline.select(kind="sys", where=lambda e: e.get("event") == "firmware_update")
    park(rig)
    rig.expect_version(2, 1800)
    rig.wait(30)
    rig.check(*ota_verdicts(rig, 2))


@pytest.mark.parametrize("threaded", [pytest.param(True, marks=pytest.mark.threaded(True), id="threaded"),
                                      pytest.param(False, marks=pytest.mark.threaded(False), id="non-threaded")])
@pytest.mark.budget(1200)
def test_app_during_a_forced_download(rig, threaded):
    """During a download a non-threaded app is frozen — loop() and delay() do not run, so the
    guard can only shut down after `complete`, and the held reset covers the gap; a threaded app
    keeps running and shuts down at `begin` (docs/reference/particle-ota.md §2.8, §2.5, §3.1)."""
    connected(rig)
    drive(rig)
    rig.wait(7)
    rig.upload(rig.firmware(2, size=APP_SIZE))
    rig.release(2, intelligent=True)
    rig.force(True)
    rig.expect_sys("firmware_update", "begin", 600)
    rig.expect_sys("firmware_update", "complete", 600)
    rig.expect_version(2, 900)
    rig.wait(30)
    tl = rig.timeline
    rig.check(v.shutdown_before_reset(tl), v.no_record_lost(tl), v.new_version_runs(tl, 2, device_id=rig.dut_id))
    # In the DUT's own order (its serial lines), not by arrival time: on hardware a batch of lines
    # read at once shares one bench time, so "between begin and complete" is a position, not a time.
    # The forced download is the last one that completed (on a real bench the baseline may have come
    # back by an OTA of its own just before), and its shutdown is the first one after its begin.
    board = tl.select(source="board")
    i1 = max(i for i, e in enumerate(board) if e.is_sys("firmware_update", "complete"))
    i0 = max(i for i, e in enumerate(board[:i1]) if e.is_sys("firmware_update", "begin"))
    app_during = [e for e in board[i0 + 1:i1] if e.kind in ("app", "guard", "reply")]
    shut = next(i for i, e in enumerate(board) if i > i0 and e.is_guard("shutdown_complete"))
    if threaded:
        assert app_during, "a threaded app should keep running during the download"
        assert i0 < shut < i1, "a threaded app shuts down as soon as the download begins"
        # as soon as: no new work between the begin and the shutdown (the guard acts on `begin` at
        # the top of the next loop(), before the app's work; a shutdown that waits for the reset
        # leaves the app working through the whole download, §2.5)
        worked = [e.get("seq") for e in board[i0 + 1:shut]
                  if e.kind == "app" and e.get("action") == "record" and not e.get("persisted")]
        assert not worked, f"the app took records {worked[:5]} after the download began, before shutting down"
    else:
        assert not app_during, f"a non-threaded app ran during the download: {app_during[:3]}"
        assert shut > i1, "a frozen app cannot shut down before complete"


#: Device OS 3.3.1, the newest release for the Electron: system module version 3302, bootloader 1100
#: (docs/reference/particle-ota.md §2.9)
DEVICE_OS_3_3_1 = 3302


def _module_changes(steps: list[list[dict]]) -> list[str]:
    """Which modules changed version from one `spark/status/safe-mode` report to the next, in order
    (`b0` bootloader, `s1`..`s3` system parts), from the modules JSON the cloud's stream carries."""
    versions = [{m["f"] + m["n"]: m["v"] for m in step} for step in steps]
    return [k for before, after in zip(versions, versions[1:]) for k in sorted(after)
            if k[0] in "bs" and after[k] != before.get(k)]


@pytest.mark.sim_only
@pytest.mark.budget(1800)
def test_app_needing_newer_device_os_goes_through_safe_mode(rig):
    """An app built for Device OS 3.3.1 (it depends on system part 2 >= 3302) is accepted, since user
    dependencies are optional at OTA time, and boots into safe mode; the cloud's safe-mode healer
    then sends one module per OTA and reset — the 3.3.1 bootloader first (a move across major
    versions), then system parts 3, 1, 2, the order their dependencies force (each is checked on
    install) — until the app can run (docs/reference/particle-ota.md §2.5, §2.7, §2.9, §7.8.6). Each
    step is read off the cloud's stream: `spark/status/safe-mode` with the device's modules."""
    connected(rig)
    park(rig)
    rig.upload(rig.sim.firmware(2, size=APP_SIZE, requires_system=DEVICE_OS_3_3_1))
    rig.release(2, intelligent=True)
    rig.expect_sys("firmware_update", "complete", 900)
    rig.expect_version(2, 3600)
    rig.wait(30)
    tl = rig.timeline
    healer = tl.select(source="cloud", kind="spark/status/safe-mode")
    assert healer, "the cloud never saw the device in safe mode"
    steps = [json.loads(e.get("data"))["m"] for e in healer]
    assert _module_changes(steps) == ["b0", "s3", "s1"], "bootloader, then part 3, then part 1 (part 2 last)"
    last = {m["f"] + m["n"]: m["v"] for m in steps[-1]}
    assert last["s2"] < DEVICE_OS_3_3_1 <= min(last["s1"], last["s3"]), "part 2 is the last step"
    assert len(steps) == 4, "one safe-mode connection per module: b0, s3, s1, s2"
    rig.check(v.no_record_lost(tl), v.new_version_runs(tl, 2, device_id=rig.dut_id), v.shutdown_before_reset(tl))
