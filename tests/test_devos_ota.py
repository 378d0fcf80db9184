"""Device OS OTA handling on the simulated Electron: one test per rule of docs/reference/particle-ota.md §7.4.

Each test runs the real companion (host build) on a simulated bench and observes it twice: through
the board (the companion's serial lines, read with pyserial from the pty) and through the model's
ground-truth trace (`Electron.trace`), which a real rig cannot see.
"""
from __future__ import annotations

from typing import Any

import pytest

from otarig.protocol import encode_command
from otarig.sim import deviceos as dos
from otarig.sim.cloud import FirmwareRecord
from otarig.sim.cloud_peer import SessionDiscard
from otarig.sim.messages import Chunk
from otarig.sim.ota_receiver import MISSED_CHUNKS_TO_SEND
from otarig.sim.params import CloudParams, DeviceOsParams

from sim_helpers import DEVICE_ID, OTA_SIZE, PRODUCT_ID, ImageFactory, RigFactory, SimRig

CHUNKS = OTA_SIZE // 512


def _v1_v2(companion_image: ImageFactory, **v1: object) -> tuple[bytes, bytes]:
    return companion_image(1, **v1), companion_image(2, size=OTA_SIZE)


def _start_update(rig: SimRig, v2: bytes) -> None:
    """The issue's flow: an Intelligent release reaches the idle companion, whose guard enables updates."""
    if rig.dev.app is not None and rig.dev.app.threaded:
        rig.connected()
    else:  # its first loop() (and hello) follows the connection: the app never prints it (§3.1)
        rig.until_kind("cloud_session", 90)
    rig.release(v2, 2)


def _inject_firmware(rig: SimRig, version: int, binary: bytes) -> None:
    """Test-only: a product binary that the cloud's upload check would reject (bad platform or CRC).

    `SimCloud.upload_firmware` validates like the real API, so the only way a bad image reaches a
    device in the simulation is to place it in the product's store directly, as here.
    """
    rig.bench.cloud.products[PRODUCT_ID].firmwares[version] = FirmwareRecord(
        version, binary, f"bad v{version}", "test-only injection", rig.now_ms)
    rig.bench.cloud.release(PRODUCT_ID, version, product_default=True, intelligent=True)


def test_update_begin_refused_with_503_while_disabled_and_not_forced(companion_image: ImageFactory,
                                                                     sim_rig: RigFactory) -> None:
    """§7.4 / §2.3 steps 2-3: UpdateBegin while updates are disabled and not forced → coded ACK 5.03,
    no begin; the cloud then sends updates/pending=true (§7.9)."""
    v1, v2 = _v1_v2(companion_image)
    rig = sim_rig(v1)
    rig.connected()
    rig.board.command("workload", state="busy")  # the guard keeps updates disabled while busy
    rig.bench.cloud.upload_firmware(PRODUCT_ID, 2, v2)
    # lock + flash starts a delivery whatever the device reported (docs/reference/particle-ota.md §7.8.4)
    rig.bench.cloud.update_device(PRODUCT_ID, DEVICE_ID, desired_firmware_version=2, flash=True)
    refused = rig.until_kind("ota_refused", 30)
    rig.expect_sys("firmware_update_pending", timeout=30)
    rig.run(120)
    assert not rig.dev.flags.updates_enabled and not rig.dev.flags.updates_forced
    assert rig.trace("ota_begin") == []
    assert rig.board.events("sys") and not [e for e in rig.board.events("sys") if e.get("event") == "firmware_update"]
    assert rig.dev.flags.updates_pending
    pend = rig.cloud_events("particle/device/updates/pending", "true")
    assert pend and pend[0]["t_ms"] >= refused.t_ms
    assert rig.dev.running_version == 1


def test_forced_update_overrides_disabled_updates(companion_image: ImageFactory, sim_rig: RigFactory) -> None:
    """§7.4 / §2.1: `updates_forced` lets UpdateBegin through although the app disabled updates."""
    v1, v2 = _v1_v2(companion_image)
    rig = sim_rig(v1)
    rig.connected()
    rig.board.command("workload", state="busy")
    rig.release(v2, 2)
    rig.expect_sys("firmware_update_pending")
    rig.run(30)
    assert rig.trace("ota_begin") == []  # busy: the guard keeps refusing
    rig.bench.cloud.update_device(PRODUCT_ID, DEVICE_ID, firmware_updates_forced=True)
    begin = rig.until_kind("ota_begin", 60)
    assert not rig.dev.flags.updates_enabled and rig.dev.flags.updates_forced
    assert rig.cloud_events("particle/device/updates/forced", "true"), "the device echoes forced=true (§7.5)"
    rig.expect_sys("firmware_update", "begin")
    hello = rig.board.expect(lambda e: e.name == "hello", 300)
    assert hello.get("product_version") == 2
    assert begin.t_ms < rig.now_ms


def test_begin_clears_pending_and_emits_begin(companion_image: ImageFactory, sim_rig: RigFactory) -> None:
    """§7.4 / §2.3 step 4: an accepted UpdateBegin clears `updates_pending` and emits firmware_update begin."""
    v1, v2 = _v1_v2(companion_image)
    rig = sim_rig(v1)
    _start_update(rig, v2)
    pending = rig.until_event(dos.FIRMWARE_UPDATE_PENDING, timeout=30)
    assert rig.dev.flags.updates_pending
    begin = rig.until_event(dos.FIRMWARE_UPDATE, dos.FIRMWARE_UPDATE_BEGIN, timeout=60)
    assert not rig.dev.flags.updates_pending
    assert rig.trace("ota_begin")[-1].t_ms == begin.t_ms > pending.t_ms
    rig.expect_sys("firmware_update", "begin")


@pytest.mark.parametrize("corrupt, duplicate", [(set(), set()), ({3, 77}, set()), (set(), {4, 120})],
                         ids=["clean", "two-bad-crc", "two-duplicates"])
def test_progress_fires_only_for_good_new_chunks(companion_image: ImageFactory, sim_rig: RigFactory,
                                                  corrupt: set[int], duplicate: set[int]) -> None:
    """§7.4 / §2.2 (corrected): firmware_update progress once per good, new chunk — a chunk with a
    bad CRC or a duplicate fires nothing. Device OS v2.3.1 `communication/src/chunked_transfer.cpp`
    ~192-201 drops a fast-OTA duplicate before the CRC and calls `save_firmware_chunk` only for a
    valid CRC; that is `Spark_Save_Firmware_Chunk`, `system/src/system_update.cpp` ~433-437, which
    emits progress before writing."""
    v1, v2 = _v1_v2(companion_image)
    rig = sim_rig(v1)
    rig.bench.cloud.faults.corrupt_chunks = set(corrupt)
    rig.bench.cloud.faults.duplicate_chunks = set(duplicate)
    _start_update(rig, v2)
    begin = rig.until_event(dos.FIRMWARE_UPDATE, dos.FIRMWARE_UPDATE_BEGIN, timeout=60)
    end = rig.until_kind("ota_end", 300)
    assert end.data["ok"] and end.data["chunks"] == CHUNKS
    assert end.data["bad_crc"] == len(corrupt) and end.data["duplicates"] == len(duplicate)
    progress = rig.events(dos.FIRMWARE_UPDATE, dos.FIRMWARE_UPDATE_PROGRESS, since_ms=begin.t_ms)
    assert len(progress) == CHUNKS, "one progress per chunk written, none for a bad or repeated one"
    rig.expect_sys("firmware_update", "complete")
    seen = [e for e in rig.board.events("sys") if e.get("param") == "progress"]
    assert len(seen) == CHUNKS, "the app's handler saw exactly one progress per good chunk"


def test_bad_crc_chunk_is_requested_again(companion_image: ImageFactory, sim_rig: RigFactory) -> None:
    """§7.4 / §2.4: a chunk whose CRC does not match is not written; UpdateDone's ChunkMissed asks for it."""
    v1, v2 = _v1_v2(companion_image)
    rig = sim_rig(v1)
    rig.bench.cloud.faults.corrupt_chunks = {5, 150}
    _start_update(rig, v2)
    end = rig.until_kind("ota_end", 300)
    assert end.data == {**end.data, "ok": True, "bad_crc": 2, "chunks": CHUNKS}
    requested = [i for m in rig.trace("ota_missing") for i in m.data["chunks"]]
    # Fast OTA: the bitmap starts all-missing, so every chunk after the first flight of 40 is asked
    # for once; a bad-CRC chunk is asked for once more (5 was in the first flight, 150 was not).
    assert requested.count(5) == 1 and requested.count(150) == 2
    assert len(requested) == (CHUNKS - 40) + 2
    hello = rig.board.expect(lambda e: e.name == "hello", 60)
    assert hello.get("product_version") == 2, "the image assembled from re-sent chunks validates and runs"


@pytest.mark.parametrize("loss", [0.0, 0.25])
def test_missed_chunk_rounds_request_at_most_40(companion_image: ImageFactory, sim_rig: RigFactory,
                                                loss: float) -> None:
    """§7.4 / §2.4: each ChunkMissed asks for min(got + max(20%·got, 2), MISSED_CHUNKS_TO_SEND=40)
    chunks, `got` being the chunks received in the round before (and never more than are missing)."""
    v1, v2 = _v1_v2(companion_image)
    rig = sim_rig(v1, loss=loss)
    _start_update(rig, v2)
    begin = rig.until_kind("ota_begin", 60)
    end = rig.until_kind("ota_end", 900)
    assert end.data["ok"] and end.data["chunks"] == CHUNKS
    received = 0
    last = begin.t_ms
    rounds = rig.trace("ota_missing")
    assert len(rounds) >= (CHUNKS - 1) // 40
    for r in rounds:
        got = len([p for p in rig.events(dos.FIRMWARE_UPDATE, dos.FIRMWARE_UPDATE_PROGRESS, since_ms=last)
                   if p.t_ms <= r.t_ms])
        received += got
        expected = min(CHUNKS - received, got + max(got // 5, 2), MISSED_CHUNKS_TO_SEND)
        assert len(r.data["chunks"]) == expected <= 40, f"round at {r.t_ms}: got {got}"
        last = r.t_ms + 1
    if loss == 0.0:
        assert {len(r.data["chunks"]) for r in rounds[:-1]} == {40}


@pytest.mark.parametrize("defect", ["wrong_platform", "flipped_byte"])
def test_validation_failure_emits_failed_and_still_pends_reset(companion_image: ImageFactory,
                                                              sim_rig: RigFactory, defect: str) -> None:
    """§7.4 / §2.5: HAL_FLASH_End rejects the image → failed, no slot; v2.3.1 still pends a reset
    ("always restart for now", param `reset_on_failed_validation`) and the old app runs after it."""
    v1 = companion_image(1)
    if defect == "wrong_platform":
        bad = companion_image(3, platform_id=12, size=OTA_SIZE)  # a Boron build (docs/reference/particle-ota.md §4.1)
    else:
        good = bytearray(companion_image(3, size=OTA_SIZE))
        good[len(good) // 2] ^= 0x40
        bad = bytes(good)
    rig = sim_rig(v1)
    rig.connected()
    _inject_firmware(rig, 3, bad)
    end = rig.until_kind("ota_end", 300)
    assert not end.data["ok"] and end.data["error"]
    assert rig.dev.flash.slots == [], "a rejected image is never registered"
    rig.expect_sys("firmware_update", "failed")
    rig.expect_sys("reset_pending")
    reset = rig.until_kind("reset", 30)
    assert reset.data["reason"] == "update"
    boot = rig.board.expect(lambda e: e.name == "boot", 30)
    assert boot.get("reset_reason") == "update"
    assert rig.dev.running_version == 1 and rig.dev.flash.user == v1
    assert rig.cloud_events("spark/flash/status", "failed ")


def test_validation_failure_without_reset_when_param_off(companion_image: ImageFactory,
                                                         sim_rig: RigFactory) -> None:
    """§8.7 parameter: with `reset_on_failed_validation=False` a rejected image pends no reset."""
    v1 = companion_image(1)
    bad = companion_image(3, platform_id=12)
    rig = sim_rig(v1, params=DeviceOsParams(reset_on_failed_validation=False))
    rig.connected()
    _inject_firmware(rig, 3, bad)
    end = rig.until_kind("ota_end", 300)
    assert not end.data["ok"]
    rig.run(60)
    assert rig.trace("reset") == [] and rig.events(dos.RESET_PENDING) == []
    assert not rig.dev.flags.reset_pending and rig.dev.running_version == 1


def _cut(rig: SimRig, how: str) -> None:
    """End the connection mid-transfer the way `how` says (threaded companion: its agent still answers)."""
    if how == "disconnect":
        rig.board.command("cloud", action="disconnect")
    elif how == "cellular_off":
        rig.board.command("cellular", action="off")
    elif how == "sleep":
        rig.board.command("sleep", mode="stop", seconds=30)
    else:  # coverage: the antenna goes; the modem reports the loss (docs/reference/particle-ota.md §2.2)
        rig.dev.link.antenna_connected = False
        rig.dev.net.antenna_changed()


def _thirty_chunks_in(companion_image: ImageFactory, sim_rig: RigFactory) -> tuple[bytes, Any]:
    """A device on v1 with an update to v2 under way, 30 chunks received; (v1, rig)."""
    v1, v2 = _v1_v2(companion_image)
    rig = sim_rig(v1)
    _start_update(rig, v2)
    rig.expect_sys("firmware_update", "begin")
    for _ in range(30):
        rig.expect_sys("firmware_update", "progress")
    return v1, rig


@pytest.mark.parametrize("how", ["disconnect", "cellular_off", "sleep", "coverage"])
def test_transfer_cut_by_a_disconnect_ends_without_failed(companion_image: ImageFactory, sim_rig: RigFactory,
                                                          how: str) -> None:
    """§7.4 / §2.2 / §2.4 / §3.3 (corrected): Particle.disconnect(), Cellular.off(), sleep and a
    modem-reported loss end a transfer WITHOUT `firmware_update failed`; nothing is applied, the old app
    keeps running, and the companion's guard, seeing `cloud_status disconnected`, holds updates again.
    Device OS v2.3.1: `cloud_disconnect()` clears SPARK_FLASH_UPDATE and emits cloud_status
    disconnecting/disconnected only (`system/src/system_task.cpp` ~597-640); the next session resets the
    transfer (`communication/src/protocol.cpp` ~382-383). A GPRS detach arms a 15 s timer
    (`hal/src/electron/modem/mdm_hal.cpp` ~538) after which `HAL_NET_notify_disconnected()` (~479-485)
    reaches `cloud_disconnect()` (`system/src/system_network_internal.h` ~681-684)."""
    v1, rig = _thirty_chunks_in(companion_image, sim_rig)
    t_cut = rig.now_ms
    _cut(rig, how)
    cancelled = (rig.trace("ota_cancelled") or [rig.until_kind("ota_cancelled", 60)])[0]
    assert 0 < cancelled.data["chunks"] < CHUNKS and cancelled.data["failed_event"] is False
    if how == "coverage":
        assert cancelled.t_ms - t_cut == 20_000, "detach URC (5 s, [inference]) + the driver's 15 s timer"
    assert rig.events(dos.CLOUD_STATUS, dos.CLOUD_STATUS_DISCONNECTED, since_ms=t_cut)
    if how == "sleep":
        # The app thread is asleep with its queue full of progress events: the system thread's posts of
        # cloud_status disconnecting/disconnected wait 5 s each and are dropped (§2.2; app_thread).
        rig.until_kind("system_event_dropped", 60, event=dos.CLOUD_STATUS, param=dos.CLOUD_STATUS_DISCONNECTED)
    else:
        rig.expect_sys("cloud_status", "disconnected")
        rig.board.expect(lambda e: e.name == "guard" and e.get("action") == "updates_disabled", 60)
        assert not rig.dev.flags.updates_enabled, "the guard holds updates again without a `failed`"
    assert rig.events(dos.FIRMWARE_UPDATE, dos.FIRMWARE_UPDATE_FAILED) == []
    assert not [e for e in rig.board.events("sys") if e.get("param") == "failed"]
    assert rig.dev.flash.slots == [] and rig.dev.flash.user == v1
    # the cloud sees the cut at once when the device says goodbye; after a loss without a word, when its
    # transfer times out or the device connects again (docs/reference/particle-ota.md §8.14)
    for _ in range(24):
        if rig.cloud_events("spark/flash/status", "failed "):
            break
        rig.run(5)
    assert rig.cloud_events("spark/flash/status", "failed "), "the cloud's stream shows the cut"
    assert rig.trace("reset") == [], "the old app keeps running"
    if how == "coverage":
        rig.dev.link.antenna_connected = True
    elif how in ("disconnect", "cellular_off"):
        rig.board.command("cloud", action="connect")
    end = rig.until_kind("ota_end", 600)
    assert end.data["ok"]
    assert end.data["chunks"] == CHUNKS, "the retry received every chunk anew (no resume, §2.4)"
    assert len(rig.trace("ota_begin")) == 2
    hello = rig.board.expect(lambda e: e.name == "hello", 60)
    assert hello.get("product_version") == 2


def test_event_loop_error_mid_transfer_emits_failed(companion_image: ImageFactory, sim_rig: RigFactory) -> None:
    """§7.4 / §2.2 / §2.4: an error in the protocol's event loop cancels the transfer, which finishes it
    with a failure → `firmware_update failed`, before the system disconnects. Device OS v2.3.1
    `communication/src/protocol.cpp` ~487-492 (event_loop: on error `chunkedTransfer.cancel()`) and
    `communication/src/chunked_transfer.cpp` ~361-369 (`cancel()` → finish_firmware_update(file, 0)
    → failed). The error here is the cloud's key change asking to discard the session, which the DTLS
    channel answers with IO_ERROR_DISCARD_SESSION (`communication/src/dtls_message_channel.cpp`
    ~549-551)."""
    v1, rig = _thirty_chunks_in(companion_image, sim_rig)
    rec = rig.rec
    assert rec.session is not None
    rig.bench.cloud.send_to_device(rec, SessionDiscard(rec.session.session_id), 60, "control", reliable=True)
    cancelled = rig.until_kind("ota_cancelled", 60)
    assert cancelled.data["failed_event"] is True
    failed = rig.expect_sys("firmware_update", "failed")
    gone = rig.expect_sys("cloud_status", "disconnecting")
    board = rig.board.events("sys")
    assert board.index(failed) < board.index(gone), "failed comes from the event loop, before the disconnect"
    assert rig.dev.flash.slots == [] and rig.dev.flash.user == v1
    end = rig.until_kind("ota_end", 600)
    assert end.data["ok"] and len(rig.trace("ota_begin")) == 2


def test_update_watchdog_resets_with_update_timeout(companion_image: ImageFactory, sim_rig: RigFactory) -> None:
    """§7.4 / §2.4: no chunk for TIMING_FLASH_UPDATE_TIMEOUT (300 s on cellular) → hard reset,
    RESET_REASON_UPDATE_TIMEOUT. The cloud is left in limbo for 16 min (PR #1558; §8.3 parameter)."""
    v1, v2 = _v1_v2(companion_image)
    rig = sim_rig(v1, bench_kw={"cloud_params": CloudParams(update_done_timeout_ms=16 * 60_000)})
    rig.bench.cloud.faults.blackhole_after_chunks = 10
    _start_update(rig, v2)
    rig.until_kind("ota_begin", 60)
    last_chunk = rig.until(lambda e: len(rig.events(dos.FIRMWARE_UPDATE, dos.FIRMWARE_UPDATE_PROGRESS)) >= 10,
                           60, "10 chunks")
    wd = rig.until_kind("update_watchdog", 400)
    progress = rig.events(dos.FIRMWARE_UPDATE, dos.FIRMWARE_UPDATE_PROGRESS)
    assert len(progress) == 10
    assert wd.t_ms - progress[-1].t_ms == 300_000 and last_chunk.t_ms <= progress[-1].t_ms
    boot = rig.board.expect(lambda e: e.name == "boot", 30)
    assert boot.get("reset_reason") == "update_timeout" and boot.get("reset_reason_code") == 90
    assert rig.dev.running_version == 1 and rig.dev.flash.slots == []


def test_update_watchdog_restarts_only_on_good_new_chunks(companion_image: ImageFactory,
                                                          sim_rig: RigFactory) -> None:
    """§7.4 / §2.4 (corrected): bad-CRC chunks and duplicates do not restart the 300 s update
    watchdog, so a transfer that only receives those still hard-resets 300 s after its last good
    chunk. Device OS v2.3.1: `TimingFlashUpdateTimeout = 0` only in `Spark_Save_Firmware_Chunk`
    (`system/src/system_update.cpp` ~433-437), reached for a valid, new chunk
    (`communication/src/chunked_transfer.cpp` ~192-201); SysTick counts it up while
    SPARK_FLASH_UPDATE is set and resets with RESET_REASON_UPDATE_TIMEOUT (`system/src/main.cpp`
    ~376-387)."""
    v1, v2 = _v1_v2(companion_image)
    rig = sim_rig(v1, bench_kw={"cloud_params": CloudParams(update_done_timeout_ms=16 * 60_000)})
    rig.bench.cloud.faults.blackhole_after_chunks = 10
    _start_update(rig, v2)
    begin = rig.until_kind("ota_begin", 60)
    transfer = begin.data["transfer"]
    rig.until(lambda e: len(rig.events(dos.FIRMWARE_UPDATE, dos.FIRMWARE_UPDATE_PROGRESS)) >= 10, 60, "10 chunks")
    rig.run(5)  # the blackhole holds: nothing more arrives
    last_good = rig.events(dos.FIRMWARE_UPDATE, dos.FIRMWARE_UPDATE_PROGRESS)[-1]
    data = v2[512:1024]
    # every 25 s up to 275 s: a corrupted chunk 50 and a second copy of chunk 1 (already written)
    for k in range(1, 12):
        rig.bench.world.sched.at(last_good.t_ms + k * 25_000, lambda: (
            rig.dev.on_cloud_message(Chunk.make(transfer, 50, v2[50 * 512:51 * 512], corrupt=True)),
            rig.dev.on_cloud_message(Chunk.make(transfer, 1, data))))
    wd = rig.until_kind("update_watchdog", 400)
    assert (rig.dev.ota.rx.bad_crc, rig.dev.ota.rx.duplicates) == (11, 11), "the device got every one"
    assert wd.t_ms - last_good.t_ms == 300_000, "neither a bad CRC nor a duplicate restarted the watchdog"
    assert len(rig.events(dos.FIRMWARE_UPDATE, dos.FIRMWARE_UPDATE_PROGRESS)) == 10, "and they fired no progress"
    boot = rig.board.expect(lambda e: e.name == "boot", 30)
    assert boot.get("reset_reason") == "update_timeout"


def test_registered_slot_is_applied_at_the_next_reset(companion_image: ImageFactory, sim_rig: RigFactory) -> None:
    """§7.4 / §2.5: HAL_FLASH_End registers a DCT slot; any reset applies it (here a reset-button press
    before the system's own reset), the bootloader copies it, the new app runs."""
    v1, v2 = _v1_v2(companion_image)
    rig = sim_rig(v1)
    _start_update(rig, v2)
    end = rig.until_kind("ota_end", 300)
    assert end.data["ok"]
    assert len(rig.dev.flash.slots) == 1 and rig.dev.flash.user == v1, "registered, not yet copied"
    rig.bench.world.sched.after(0, lambda: rig.dev.reset("pin_reset"))
    rig.until_kind("bootloader_copy_done", 10)
    assert rig.dev.flash.user == v2 and rig.dev.flash.slots == []
    boot = rig.board.expect(lambda e: e.name == "boot", 30)
    assert boot.get("reset_reason") == "pin_reset"
    hello = [e for e in rig.board.events("hello")][-1]
    assert hello.get("product_version") == 2


def test_reset_held_by_disable_reset_until_enable_reset(companion_image: ImageFactory, sim_rig: RigFactory) -> None:
    """§7.4 / §2.5: after complete the reset pends; with disableReset() it waits until enableReset(),
    then happens on the next idle pass. The companion's guard persists its records in between."""
    v1, v2 = _v1_v2(companion_image)
    rig = sim_rig(v1)
    _start_update(rig, v2)
    pending = rig.until_event(dos.RESET_PENDING, timeout=300)
    assert rig.dev.flags.reset_pending and not rig.dev.flags.reset_enabled
    reset = rig.until_kind("reset", 30)
    enabled = [e for e in rig.trace("flag", since_ms=pending.t_ms) if e.data.get("reset_enabled") is True]
    assert enabled, "the reset happened without enableReset()"
    assert pending.t_ms < enabled[0].t_ms, "held for a while"
    [emitted] = rig.events(dos.RESET, since_ms=enabled[0].t_ms)
    assert emitted.t_ms - enabled[0].t_ms <= 1, "`reset` emitted on the next idle pass after enableReset()"
    # threaded: the handlers run on the app thread, then system_shutdown_if_enabled resets (§2.2, §2.5)
    handled = rig.trace("system_event_handled", since_ms=emitted.t_ms, event=dos.RESET)
    assert handled and reset.t_ms - handled[0].t_ms <= 1, "reset once the app thread ran the handlers"
    assert reset.data["reason"] == "update"
    guard = [e.get("action") for e in rig.board.events("guard")]
    assert guard.index("reset_released") > guard.index("shutdown_complete"), "records persisted first"


@pytest.mark.parametrize("threaded", [False, True], ids=["non-threaded", "threaded"])
def test_app_frozen_during_transfer_only_without_threading(companion_image: ImageFactory, sim_rig: RigFactory,
                                                           threaded: bool) -> None:
    """§7.4 / §2.8: without SYSTEM_THREAD loop() and delay() stop during the transfer (no `app` line,
    no command answered between begin and complete); with threading the app keeps running."""
    v1, v2 = _v1_v2(companion_image, threaded=threaded)
    rig = sim_rig(v1)
    _start_update(rig, v2)
    begin = rig.expect_sys("firmware_update", "begin")
    rig.board.write(encode_command("workload", 900, state="busy"))
    complete = rig.expect_sys("firmware_update", "complete", timeout=300)
    between = [e for e in rig.board.events() if begin.t < e.t < complete.t]
    app_lines = [e for e in between if e.name in ("app", "reply")]
    if threaded:
        assert [e.get("action") for e in app_lines if e.name == "app"] == ["workload"]
        assert [e.get("id") for e in app_lines if e.name == "reply"] == [900]
    else:
        assert app_lines == [], f"the app ran during the transfer: {app_lines}"
        reply = rig.board.expect(lambda e: e.name == "reply" and e.get("id") == 900, 30)
        assert reply.t >= complete.t
    assert len([e for e in between if e.get("param") == "progress"]) == CHUNKS, "system events still reach the handler"
