"""Faults during an OTA: lost coverage, a silent cloud, power cuts, bad binaries."""
from __future__ import annotations

import pytest

from otarig import verdicts as v
from otarig.cloud import CloudError

from conftest import (APP_SIZE, connected, drive, needs_threaded_app, ota_verdicts, park,
                      pending_intelligent_release)

CHUNKS = APP_SIZE // 512


def _progress_after(rig, t0: float) -> int:
    return len(rig.timeline.select(kind="sys", start=t0, where=lambda e: e.get("param") == "progress"))


def _cut_download_by_lost_coverage(rig, *, after_chunks: int) -> None:
    """A parked device starts a 100 KB update; coverage goes for 180 s after `after_chunks` chunks
    and the system disconnects the cloud."""
    connected(rig)
    park(rig)
    rig.upload(rig.firmware(2, size=APP_SIZE))
    rig.release(2, intelligent=True)
    rig.expect_sys("firmware_update", "begin", 300)
    for _ in range(after_chunks):
        rig.expect_sys("firmware_update", "progress", 60)
    rig.link_outage(180)
    rig.expect_sys("cloud_status", "disconnected", 300)


@pytest.mark.requires("antenna_switch")
@pytest.mark.budget(1800)
def test_connectivity_lost_mid_download_is_retried_from_chunk_0(rig):
    """Coverage lost mid-download: the modem reports the loss and the system disconnects the cloud,
    which ends the transfer WITHOUT `firmware_update failed` (docs/reference/particle-ota.md §2.2,
    §2.4, corrected); the old app keeps running, and the next attempt starts again from chunk 0 —
    the legacy protocol cannot resume (§2.4, §7.9). What shows the interrupted download is what a
    real bench sees: the board's `cloud_status disconnected` during the transfer, the cloud's
    `spark/flash/status` `failed` then `started` again, and a new `begin` with no `complete` before it."""
    _cut_download_by_lost_coverage(rig, after_chunks=60)
    rig.expect_sys("firmware_update", "begin", 1800)
    rig.expect_sys("firmware_update", "complete", 600)
    rig.expect_version(2, 600)
    rig.wait(30)
    tl = rig.timeline
    begins = tl.select(kind="sys", where=lambda e: e.get("event") == "firmware_update" and e.get("param") == "begin")
    assert len(begins) == 2
    board = tl.select(source="board")
    i0, i1 = (board.index(b) for b in begins)
    cut = board[i0 + 1:i1]
    assert not [e for e in cut if e.is_sys("firmware_update", "complete")], "the first transfer never completed"
    assert [e for e in cut if e.is_sys("cloud_status", "disconnected")], "the loss showed as a cloud disconnect"
    assert not [e for e in cut if e.is_sys("firmware_update", "failed")], \
        "a modem-reported loss ends a transfer without `failed` (docs/reference/particle-ota.md §2.2)"
    flash = [e.get("data", "").strip() for e in tl.select(source="cloud", kind="spark/flash/status")]
    # how often the cloud tries again before the device is back depends on when it learns of a loss
    # that sent nothing (docs/reference/particle-ota.md §8.14): one `failed` or more
    assert flash[-3:] == ["failed", "started", "success"] and flash.count("success") == 1, flash
    assert _progress_after(rig, begins[1].t) >= CHUNKS, "the retry did not send every chunk again (from chunk 0)"
    rig.check(*ota_verdicts(rig, 2))


@pytest.mark.requires("antenna_switch")
@pytest.mark.budget(2400)
def test_driving_after_a_cut_download_waits_for_the_next_idle_window(rig):
    """A transfer cut by lost coverage is over, without `failed` (docs/reference/particle-ota.md
    §2.2, §2.4): the app must treat it as lost, hold updates again and go back to work. When the
    vehicle drives off before coverage returns, the retry waits for the next idle window instead of
    landing mid-drive (§2.1, §3.1). A guard that misses the silent end (keeps counting the transfer
    as running) leaves updates enabled, and the retry begins while the app is busy; one that keeps
    the app shut down takes no record on the drive (`app_resumes_after_a_lost_transfer`, judged
    against the short drive before the update). A non-threaded app is told of the drive at its first
    loop() once the cloud is back (Device OS runs none before, §3.1), still before the retry (3-8 s
    after the connection, §2.2)."""
    connected(rig)
    drive(rig)
    rig.wait(10)  # the app's own cadence while busy, for the verdict to compare with
    _cut_download_by_lost_coverage(rig, after_chunks=30)
    # the app decides what that does to its window (it may be closed already); a non-threaded one
    # answers once the cloud is back
    rig.command("workload", state="busy", timeout=900)
    rig.expect_sys("cloud_status", "connected", 900)
    rig.wait(300)
    park(rig)
    rig.expect_version(2, 1800)
    rig.wait(30)
    rig.check(*ota_verdicts(rig, 2))


@pytest.mark.requires("antenna_switch")
@pytest.mark.budget(2400)
def test_driving_off_before_a_let_in_update_begins_takes_it_back(rig):
    """A pending Intelligent release; parked, the app lets it in (enableUpdates), but the transfer
    has not begun when the vehicle drives off (here coverage is lost just then, so the cloud
    cannot start it). Work that starts before any transfer began must take the release back
    (disableUpdates), so that the update waits for the next idle window (docs/reference/particle-ota.md
    §2.1, §3.1): a guard that leaves updates enabled has the transfer begin mid-drive as soon as
    coverage returns (`update began only inside an idle window`)."""
    needs_threaded_app(rig, "the vehicle parks and drives off again while out of coverage, which the app must be "
                            "told before the cloud is back")
    connected(rig)
    drive(rig)
    pending_intelligent_release(rig, 2)
    rig.link_outage(300)
    rig.expect_sys("cloud_status", "disconnected", 120)
    park(rig)
    rig.wait(5)  # a few idle loops: the app opens its window and lets the pending update in
    drive(rig)
    connected(rig, 900)  # its status also shows whether updates were taken back (reports_agree_with_status)
    rig.wait(120)
    park(rig)
    rig.expect_version(2, 1800)
    rig.wait(30)
    rig.check(*ota_verdicts(rig, 2))


@pytest.mark.sim_only
@pytest.mark.budget(3600)
def test_no_chunk_for_300_s_resets_with_update_timeout_and_recovers(rig):
    """A cloud that stops sending mid-transfer: after 300 s without a chunk the update watchdog
    hard-resets the device (`update_timeout`, docs/reference/particle-ota.md §2.4); it reconnects and the update lands."""
    connected(rig)
    park(rig)
    rig.sim.cloud_blackhole(after_chunks=50)
    rig.upload(rig.firmware(2, size=APP_SIZE))
    rig.release(2, intelligent=True)
    rig.expect_sys("firmware_update", "begin", 300)
    rig.expect(lambda e: e.name == "boot" and e.get("reset_reason") == "update_timeout", 900)
    rig.expect_version(2, 1800)
    rig.wait(30)
    tl = rig.timeline
    rig.check(v.no_record_lost(tl), v.new_version_runs(tl, 2, device_id=rig.dut_id), v.shutdown_before_reset(tl))


@pytest.mark.sim_only
@pytest.mark.requires("power_cut")
@pytest.mark.parametrize("phase, first_version", [("download", 1), ("complete", 2), ("copy", 2)])
@pytest.mark.budget(1800)
def test_power_cut_during_ota(rig, phase, first_version):
    """Power lost during the download keeps the old app (no slot registered); after `complete`
    the slot is applied at the next boot; during the bootloader copy the copy runs again
    (docs/reference/particle-ota.md §2.6, §7.2, §7.10 power-cut assertions). Nothing persisted is lost."""
    connected(rig)
    park(rig)
    rig.sim.cut_power_at(phase, chunk=CHUNKS // 2)
    rig.upload(rig.firmware(2, size=APP_SIZE))
    rig.release(2, intelligent=True)
    rig.expect(lambda e: e.name == "hello" and rig.timeline.select(source="fault", kind="power_restore"), 1800)
    first = rig.timeline.select(kind="hello")[-1]
    assert first.get("product_version") == first_version
    if first_version != 2:
        rig.expect_version(2, 3600)
    rig.wait(30)
    tl = rig.timeline
    rig.check(v.no_record_lost(tl), v.new_version_runs(tl, 2, device_id=rig.dut_id),
              v.update_began_in_idle_window(tl))


@pytest.mark.sim_only
@pytest.mark.budget(1800)
def test_corrupted_binary_is_rejected_and_the_old_app_keeps_running(rig):
    """A module with a bad CRC reaches the device (cloud flash does not check the CRC): HAL_FLASH_End
    rejects it, `firmware_update failed`, the v2.3.1 reset still happens, the old app runs
    (docs/reference/particle-ota.md §2.5, §8.7)."""
    connected(rig)
    park(rig)
    rig.flash(rig.sim.firmware(2, size=APP_SIZE, defect="bad_crc"))
    rig.expect_sys("firmware_update", "failed", 900)
    hello = rig.expect(lambda e: e.name == "hello", 300)
    assert hello.get("product_version") == 1
    assert rig.command("status")["product_version"] == 1
    rig.wait(600)
    tl = rig.timeline
    assert tl.select(source="cloud", kind="spark/flash/status", where=lambda e: e.get("data", "").startswith("failed"))
    assert not tl.select(kind="sys", where=lambda e: e.get("param") == "complete")
    rig.check(v.no_record_lost(tl), v.shutdown_before_reset(tl), v.no_update_loop(tl, max_downloads=0))


@pytest.mark.sim_only
@pytest.mark.budget(900)
def test_wrong_platform_binary_is_rejected_before_it_reaches_the_device(rig):
    """A binary built for another platform is refused by the cloud with an error naming the
    platform; the device never downloads it and keeps running (docs/reference/particle-ota.md §2.5 platform check, §4.1)."""
    connected(rig)
    park(rig)
    bad = rig.sim.firmware(2, size=APP_SIZE, defect="wrong_platform")
    with pytest.raises(CloudError) as err:
        rig.flash(bad)
    assert "platform" in str(err.value)
    with pytest.raises(CloudError):
        rig.upload(bad)
    rig.wait(600)
    assert not rig.timeline.select(kind="sys", where=lambda e: e.get("event") == "firmware_update")
    assert rig.command("status")["product_version"] == 1
