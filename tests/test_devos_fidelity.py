"""Device OS 2.3.1 behaviours of the issue "Fidelity" (items 4, 6, 7, 9, 10): one test per item, each
named after the behaviour, its docstring citing the device-os v2.3.1 source (file and line) and the
section of docs/reference/particle-ota.md that records the rule.

The companion (threaded, SEMI_AUTOMATIC, parked: `loop()` ends with `delay(1000)`) runs on a simulated
Electron in virtual time; the model's ground truth is `Electron.trace`.
"""
from __future__ import annotations

import itertools

import pytest
from sim_helpers import OTA_SIZE, ImageFactory, RigFactory, SimRig

from otarig.board import CommandFailed
from otarig.protocol import Event
from otarig.sim import deviceos as dos
from otarig.sim.app_thread import PUT_WAIT_MS, QUEUE_DEPTH
from otarig.sim.electron import AppState
from otarig.sim.messages import UpdateBegin
from otarig.sim.params import CloudParams, DeviceOsParams


def _idle_connected(rig: SimRig) -> None:
    rig.connected()
    rig.run(5)  # past the cloud's post-connect pending=false (docs/reference/particle-ota.md §2.1)


def _burst(rig: SimRig, n: int, event: int = dos.TIME_CHANGED) -> int:
    """The system emits `n` events at one instant (scheduler context, as the system thread would)."""
    t = rig.now_ms + 1
    rig.bench.world.sched.at(t, lambda: [rig.dev.emit(event, 0) for _ in range(n)])
    rig.run(0.001)
    return t


# -- item 4: threaded system events go through a queue ----------------------------------------------
def test_threaded_events_queue_20_deep_block_the_system_thread_and_drop_after_5_s(
        companion_image: ImageFactory, sim_rig: RigFactory) -> None:
    """docs/reference/particle-ota.md §2.2 (corrected): with SYSTEM_THREAD(ENABLED) each event is posted
    to the application thread (device-os v2.3.1 system/src/system_event.cpp ~74-78), whose queue holds
    20 and whose put waits 5 s (system/src/main.cpp ~544-547; a failed put deletes the call,
    system/inc/active_object.h ~310-318). The app thread takes one item per loop pass
    (system/src/active_object.cpp ~66-74). While the put waits, the system thread reads no cloud
    message. A sleeping app thread takes nothing, so the overflow is dropped 5 s apart."""
    rig = sim_rig(companion_image(1))
    _idle_connected(rig)
    dev = rig.dev
    # 1. A burst of 25: 20 queued, the system thread stuck on the 21st; a cloud event waits behind it.
    t_burst = _burst(rig, QUEUE_DEPTH + 5)
    assert len(dev.app_queue.items) == QUEUE_DEPTH and len(dev.app_queue.waiting) == 5
    assert dev.system_thread_busy
    rig.bench.cloud.send_event(rig.rec, "particle/device/updates/pending", "true")
    pending = rig.until_event(dos.FIRMWARE_UPDATE_PENDING, timeout=30)
    freed = [e for e in rig.trace("system_event_handled", since_ms=t_burst) if e.t_ms <= pending.t_ms]
    assert len(freed) >= 5, "the cloud event was read only once the five stuck posts had room"
    rig.run(30)
    handled = [e.t_ms for e in rig.handled(dos.TIME_CHANGED, since_ms=t_burst)]
    assert len(handled) == QUEUE_DEPTH + 5 and not rig.trace("system_event_dropped")
    assert handled[0] > t_burst, "no handler runs at the moment of emission"
    gaps = [b - a for a, b in itertools.pairwise(handled)]
    assert min(gaps) >= 1, "one event per pass of the app thread's loop, never two at once"
    # 2. The app thread asleep (STOP, 30 s): the queue fills, the rest are dropped 5 s apart.
    rig.board.command("sleep", mode="stop", seconds=30)
    assert dev.sleeper.asleep
    t_sleep = _burst(rig, QUEUE_DEPTH + 3)
    rig.until_kind("wake", 40)
    dropped = rig.trace("system_event_dropped", since_ms=t_sleep)
    assert len(dropped) >= 3
    blocked = rig.trace("system_thread_blocked", since_ms=t_sleep)[0]
    assert [e.t_ms - blocked.t_ms for e in dropped[:3]] == [PUT_WAIT_MS, 2 * PUT_WAIT_MS, 3 * PUT_WAIT_MS]
    assert not rig.handled(dos.TIME_CHANGED, since_ms=t_sleep + 1), "nothing handled while asleep"
    assert rig.trace("sleep", since_ms=t_sleep) == [] and dev.app_state == AppState.RUNNING


# -- item 10: resets and transfers, odds and ends ---------------------------------------------------
def test_resets_and_restarted_transfers_follow_device_os(companion_image: ImageFactory,
                                                         sim_rig: RigFactory) -> None:
    """docs/reference/particle-ota.md §2.3, §2.5, §7.5:
    - a new UpdateBegin during a transfer restarts it, no `failed` (device-os v2.3.1
      communication/src/chunked_transfer.cpp ~87-117);
    - the forced flag is echoed only when it changes (system/src/system_update.cpp ~154-158, ~123-127);
    - `spark/device/reset` acts on `reboot`, `safe mode`, `dfu`, `network` only
      (system/src/system_cloud_internal.cpp ~105-126);
    - a reset released during a second transfer cuts it, and that transfer's begin had cleared the
      first one's DCT slot, so nothing is applied (system/src/system_update.cpp ~369-391;
      platform/MCU/STM32F2xx/SPARK_Firmware_Driver/src/flash_mal.c ~881-900);
    - the system thread waits `threaded_reset_wait_ms` for a threaded app's `reset` handlers, then
      resets anyway (system/src/system_update.cpp ~377-388)."""
    v1 = companion_image(1)
    rig = sim_rig(v1, bench_kw={"device_params": DeviceOsParams(threaded_reset_wait_ms=5_000)})
    _idle_connected(rig)
    dev, cloud = rig.dev, rig.bench.cloud
    # forced echo only on a change
    for _ in range(2):
        cloud.send_event(rig.rec, "particle/device/updates/forced", "true")
        rig.run(3)
    assert len(rig.cloud_events("particle/device/updates/forced", "true")) == 1
    cloud.send_event(rig.rec, "particle/device/updates/forced", "false")
    rig.run(3)
    # spark/device/reset: other values are ignored; `network` resets the modem, not the MCU
    for value in ("", "bogus", "Reboot"):
        cloud.send_event(rig.rec, "spark/device/reset", value)
        rig.run(3)
    assert rig.trace("reset") == [] and len(rig.trace("reset_command_ignored")) == 3
    cloud.send_event(rig.rec, "spark/device/reset", "network")
    rig.until_kind("modem", 10, state="off")
    rig.until_kind("cloud_session", 60)
    rig.run(5)  # the resume is local: its HELLO/ping is on its way to the cloud (§1.2)
    assert rig.trace("reset") == []
    # a second UpdateBegin restarts the transfer without `failed`
    rig.release(companion_image(2, size=OTA_SIZE), 2)
    begin = rig.until_event(dos.FIRMWARE_UPDATE, dos.FIRMWARE_UPDATE_BEGIN, timeout=60)
    rig.until(lambda e: len(rig.events(dos.FIRMWARE_UPDATE, dos.FIRMWARE_UPDATE_PROGRESS)) >= 10, 60, "10 chunks")
    restart = UpdateBegin(transfer_id=999_999, file_length=OTA_SIZE)
    cloud.send_to_device(rig.rec, restart, restart.wire_bytes, "ota", reliable=True)
    rig.until_kind("ota_begin", 30, transfer=999_999)
    [cut] = rig.trace("ota_cancelled", since_ms=begin.t_ms)
    assert cut.data["reason"] == "superseded" and cut.data["failed_event"] is False
    assert len(rig.events(dos.FIRMWARE_UPDATE, dos.FIRMWARE_UPDATE_BEGIN)) == 2
    assert rig.events(dos.FIRMWARE_UPDATE, dos.FIRMWARE_UPDATE_FAILED) == []
    assert dev.ota.rx.transfer_id == 999_999 and dev.ota.rx.chunks_received == 0
    # `safe mode`: reset with reason safe_mode into safe mode; `reboot`: a plain reset into the app
    cloud.send_event(rig.rec, "spark/device/reset", "safe mode")
    booted = rig.until_kind("booted", 30)
    assert booted.data["safe_mode"] and booted.data["reason"] == "safe_mode"
    assert rig.events(dos.FIRMWARE_UPDATE, dos.FIRMWARE_UPDATE_FAILED) == [], "a reset ends it without `failed`"
    rig.until_kind("cloud_session", 120)
    cloud.send_event(rig.rec, "spark/device/reset", "reboot")
    booted = rig.until_kind("booted", 30)
    assert not booted.data["safe_mode"] and booted.data["reason"] == "user"
    # threaded reset wait: the `reset` handlers are stuck behind 25 queued events; after 5 s the
    # system thread resets anyway (the parameter, 30 s by default)
    rig.connected()
    rig.run(5)
    dev.fw_system(dos.SYS_ENABLE_RESET, 0)
    t = _burst(rig, QUEUE_DEPTH + 5)
    dev.pend_reset("update")
    reset = rig.until_kind("reset", 30)
    [emitted] = rig.events(dos.RESET, since_ms=t)
    assert reset.t_ms - emitted.t_ms == 5_000 and rig.handled(dos.RESET, since_ms=t) == []
    # `dfu`: the bootloader stays in DFU mode, no app, no cloud
    rig.connected()
    cloud.send_event(rig.rec, "spark/device/reset", "dfu")
    rig.until_kind("dfu_mode", 30)
    rig.run(60)
    assert dev.app_state == AppState.DFU and dev.app is None and not dev.net.cloud_connected


def test_reset_released_during_a_second_transfer_cuts_it_and_applies_nothing(
        companion_image: ImageFactory, sim_rig: RigFactory) -> None:
    """docs/reference/particle-ota.md §2.5: system_shutdown_if_needed runs on every idle pass, a transfer
    in progress or not (device-os v2.3.1 system/src/system_update.cpp ~369-391, called from
    system/src/system_task.cpp ~498), and the second transfer's HAL_FLASH_Begin cleared the DCT slot
    the first one registered (platform/MCU/STM32F2xx/SPARK_Firmware_Driver/src/flash_mal.c ~881-900):
    releasing the reset mid-transfer resets at once and the old app keeps running."""
    v1 = companion_image(1)
    rig = sim_rig(v1)
    _idle_connected(rig)
    dev = rig.dev
    rig.board.command("reset_hold", hold=True)
    rig.release(companion_image(2, size=OTA_SIZE), 2)
    rig.until_kind("ota_end", 300)
    assert len(dev.flash.slots) == 1 and dev.flags.reset_pending
    rig.run(10)  # the cloud has the device's answer: the first transfer is over for it too
    rig.release(companion_image(3, size=OTA_SIZE), 3)
    second = rig.until_kind("ota_begin", 600)
    assert dev.flash.slots == [], "FLASH_Begin cleared the first update's slot"
    rig.until(lambda e: len(rig.events(dos.FIRMWARE_UPDATE, dos.FIRMWARE_UPDATE_PROGRESS,
                                       since_ms=second.t_ms)) >= 10, 60, "10 chunks of the second")
    t_release = rig.now_ms
    dev.fw_system(dos.SYS_ENABLE_RESET, 0)  # what the app's enableReset() calls
    reset = rig.until_kind("reset", 60)
    [cut] = rig.trace("ota_cancelled", since_ms=t_release)
    assert cut.data["reason"] == "halt" and cut.data["failed_event"] is False
    assert reset.t_ms - t_release < 30_000
    rig.until_kind("booted", 30)
    assert dev.running_version == 1 and rig.trace("bootloader_copy_start", since_ms=t_release) == []


# -- item 9: sleep on Gen 2 -----------------------------------------------------------------------
def _wake_line(rig: SimRig, timeout: float) -> Event:
    assert rig.board is not None
    return rig.board.expect(lambda e: e.name == "log" and e.get("msg") == "wake", timeout)


def test_gen2_network_wake_is_stop_only_and_a_non_threaded_app_waits_for_the_cloud(
        companion_image: ImageFactory, sim_rig: RigFactory) -> None:
    """docs/reference/particle-ota.md §3.1, §3.2:
    - the cellular interface wakes the Electron only from STOP: ULP or HIBERNATE with it is refused
      before anything is disconnected (device-os v2.3.1 hal/src/stm32f2xx/sleep_hal.cpp ~451-460,
      checked first by system/src/system_sleep.cpp ~125-127);
    - a non-threaded SEMI_AUTOMATIC app gets no loop() call while its cloud connection is being made
      (system/src/main.cpp ~450-452, ~478-480);
    - after a wake its sleep() returns once the cloud is back, or after 60 s
      (system/src/system_sleep.cpp ~235-243)."""
    rig = sim_rig(companion_image(1))  # threaded: the refusal does not depend on threading
    _idle_connected(rig)
    for mode in ("ulp", "hibernate"):
        t0 = rig.now_ms
        rig.board.command("sleep", mode=mode, seconds=30, cellular_wake=True)
        assert _wake_line(rig, 10).get("reason") == "unknown"
        [refused] = [e for e in rig.trace("sleep_refused", since_ms=t0) if e.data["mode"] != "ULTRA_LOW_POWER"
                     or mode == "ulp"]
        assert refused.data["why"] == "not_supported" and rig.trace("sleep", since_ms=t0) == []
        assert rig.dev.net.cloud_connected and rig.trace("cloud_disconnected", since_ms=t0) == []
    # non-threaded SEMI_AUTOMATIC: the first loop() (the agent's hello) only once connected
    rig = sim_rig(companion_image(1, threaded=False, mode="SEMI_AUTOMATIC"))
    hello = rig.board.expect(lambda e: e.name == "hello", 90)
    [session] = rig.trace("cloud_session")
    booted = rig.trace("booted")[0]
    assert booted.t_ms + int(hello.t) >= session.t_ms, "no loop() while the cloud was connecting"
    rig.run(5)
    # STOP without a network wake: the cloud goes; after the wake sleep() waits for it to come back
    rig.board.command("sleep", mode="stop", seconds=20)
    woke = rig.until_kind("wake", 30)
    line = _wake_line(rig, 90)
    [back] = rig.trace("cloud_session", since_ms=woke.t_ms)
    assert booted.t_ms + int(line.t) >= back.t_ms, "sleep() returned before the cloud was back"
    # ... for at most 60 s: no coverage after this wake, so sleep() gives up waiting
    rig.run(5)
    rig.board.command("sleep", mode="stop", seconds=20)
    rig.dev.link.antenna_connected = False
    woke = rig.until_kind("wake", 30)
    line = _wake_line(rig, 120)
    assert booted.t_ms + int(line.t) - woke.t_ms in range(60_000, 60_100)
    assert not rig.dev.net.cloud_connected


# -- item 6: keep-alive ------------------------------------------------------------------------------
def test_keepalive_pings_after_23_min_of_silence_and_an_unanswered_ping_ends_the_connection(
        companion_image: ImageFactory, sim_rig: RigFactory) -> None:
    """docs/reference/particle-ota.md §1.2, §8.14: the Electron pings once nothing has come from the cloud
    for 23 min (device-os v2.3.1 hal/inc/cellular_hal_utilities.h ~15-18, system/src/system_task.cpp
    ~301-307; communication/inc/protocol.h ~233-248) and waits 30 s for an answer
    (communication/src/dtls_protocol.cpp ~18; communication/src/ping.h ~55-76): PING_TIMEOUT ends the
    connection, which is made again. The cloud learns of a device gone without a word only when its
    keep-alive is overdue (CloudParams.offline_after_silence_ms, [inference])."""
    rig = sim_rig(companion_image(1))
    _idle_connected(rig)
    dev, p = rig.dev, rig.dev.params
    rig.run(60)
    quiet_since = dev.net.keepalive.last_message_ms
    first = rig.until_kind("ping", 30 * 60)
    assert first.t_ms - quiet_since == p.keepalive_ms + 1
    # answered: the next ping comes 23 min after the answer, the connection stays
    second = rig.until_kind("ping", 30 * 60)
    assert p.keepalive_ms < second.t_ms - first.t_ms < p.keepalive_ms + 5_000
    assert rig.trace("ping_timeout") == [] and dev.net.cloud_connected
    # a 15 s outage swallows the next ping: the modem never notices (it would after 20 s), the device does
    rig.run(5)  # the answer is in
    next_ping = dev.net.keepalive.last_message_ms + p.keepalive_ms + 1
    dev.link.add_outage(next_ping - 1, 15_000)
    timeout = rig.until_kind("ping_timeout", 30 * 60)
    assert timeout.t_ms - next_ping == p.ping_ack_timeout_ms + 1
    assert rig.trace("cloud_disconnected", since_ms=timeout.t_ms)[0].data["reason"] == "ping_timeout"
    assert rig.trace("network_lost") == []
    rig.until_kind("cloud_session", 60)
    # a power cut says nothing: the cloud shows the device online until its keep-alive is overdue
    rig.run(30)
    heard = rig.rec.last_heard_ms
    dev.power_off()
    offline_at = heard + rig.bench.cloud.params.offline_after_silence_ms
    rig.run((offline_at - rig.now_ms) / 1000 - 1)
    assert rig.rec.online
    rig.run(2)
    assert not rig.rec.online and rig.cloud_events("spark/status", "offline")[-1]["t_ms"] == offline_at


# -- item 7: a resume is local -----------------------------------------------------------------------
def test_resume_is_local_and_falls_back_to_a_full_handshake_when_unanswered_or_used_3_times(
        companion_image: ImageFactory, sim_rig: RigFactory) -> None:
    """docs/reference/particle-ota.md §1.2 (corrected), §8.13: a saved session is restored with no exchange
    (device-os v2.3.1 communication/src/dtls_message_channel.cpp ~366-377), each restore counting a
    use (~101-102); the cloud's first answer clears the count (~463-465, ~488-495). A resumed session
    the cloud no longer has is, with CloudParams.unknown_session_answer="silence", never answered: its
    first confirmable message times out (~60 s of CoAP retransmissions, communication/src/coap_channel.h
    ~161-164) and the CoAP store closes the channel, which clears the saved session
    (communication/src/coap_channel.cpp:57-63 → dtls_message_channel.cpp:545-547, :261-266): the next
    connection is a full handshake. Resumes cut before either (a reset) keep counting uses, and after
    MAXIMUM_SESSION_USES = 3 restores (communication/inc/dtls_session_persist.h ~125-130, has_expired
    in dtls_message_channel.cpp ~94-99) the device does a full handshake."""
    rig = sim_rig(companion_image(1), bench_kw={"cloud_params": CloudParams(unknown_session_answer="silence")})
    _idle_connected(rig)
    dev = rig.dev
    assert dev.net.full_handshakes == 1
    # a plain reconnect: connected the instant the modem is ready, before the cloud hears of it
    rig.board.command("cloud", action="disconnect")
    rig.run(5)
    t_cmd = rig.now_ms
    uses: list[int] = []
    dev.listeners.append(lambda e: uses.append(dev.session.uses) if e.kind == "cloud_session" else None)
    rig.board.command("cloud", action="connect")
    rig.run(30)
    [local] = rig.trace("cloud_session", since_ms=t_cmd, resumed=True)
    online = rig.cloud_events("spark/status", "online")[-1]["t_ms"]
    assert uses == [1] and online > local.t_ms, "connected (one use) before the cloud heard of it"
    assert dev.session.uses == 0 and dev.net.resumes == 1, "the cloud's answer proved the session"
    # the cloud forgets the session: the resume's first message times out, the session is cleared
    rig.board.command("cloud", action="disconnect")
    rig.rec.session.dropped = True
    rig.board.command("cloud", action="connect")
    full = rig.until_kind("cloud_session", 600, resumed=False)
    [tried] = rig.trace("cloud_session", since_ms=local.t_ms + 1, resumed=True)
    [unanswered] = rig.trace("resume_unanswered", since_ms=local.t_ms + 1)
    assert unanswered.data["uses"] == 1
    assert unanswered.t_ms - tried.t_ms == dev.params.resume_answer_timeout_ms
    assert full.t_ms >= unanswered.t_ms and dev.net.full_handshakes == 2
    rig.run(10)
    assert dev.session.uses == 0 and dev.net.cloud_connected and rig.rec.online
    # the cloud forgets it again; each resume is cut by a reset before the timeout: 3 uses, then full
    rig.rec.session.dropped = True
    t_forgot, handshakes = rig.now_ms, dev.net.full_handshakes
    for use in (1, 2, 3):
        rig.board.command("reset")
        rig.until_kind("cloud_session", 120, resumed=True)
        assert dev.session.uses == use
        rig.run(20)
    rig.board.command("reset")
    rig.until_kind("cloud_session", 120, resumed=False)
    assert rig.trace("resume_unanswered", since_ms=t_forgot) == [] and dev.net.full_handshakes == handshakes + 1


def test_a_graceful_reconnect_resumes_a_session_the_cloud_still_has_and_is_answered_before_connected(
        companion_image: ImageFactory, sim_rig: RigFactory) -> None:
    """docs/reference/particle-ota.md §1.2, §3.3: `Particle.disconnect()` keeps the session on both
    sides (device-os v2.3.1 system/src/system_task.cpp:599-623 sends DISCONNECT and clears the session
    only with `clearSession`; the cloud keeps it, AN028's update check by reconnecting, §1.1). Any
    record the device reads on the resumed session proves it (communication/src/dtls_message_channel.cpp
    :462-465 `cancel_move_session` clears the use count), the acknowledgements of the handshake's
    messages included, which come before `connected`. With a Standard release waiting, which a resume
    does not check (§8.1), the cloud has nothing more to send after them: the session must still hold.
    After `spark/device/session/end` (the guard's forced handshake, §1.3) the next connection is a
    full handshake, whose check offers that release."""
    image = companion_image(1, defines={"OTARIG_HANDSHAKE_INTERVAL_MS": 600_000})
    rig = sim_rig(image)
    _idle_connected(rig)
    dev = rig.dev
    rig.release(companion_image(2), 2, intelligent=False)
    session_id = rig.rec.session.session_id
    rig.board.command("cloud", action="disconnect")
    rig.run(5)
    t_cmd = rig.now_ms
    rig.board.command("cloud", action="connect")
    rig.run(300)
    assert rig.trace("cloud_session", since_ms=t_cmd, resumed=True) and dev.net.full_handshakes == 1
    assert rig.trace("resume_unanswered", since_ms=t_cmd) == [], "the cloud had the session: it answered"
    assert dev.session.uses == 0 and dev.net.resumes == 1 and rig.rec.session.session_id == session_id
    assert dev.net.cloud_connected and rig.rec.online
    assert not rig.cloud_events("spark/status", "auto-update"), "a resume is no Standard-release check (§8.1)"
    # the guard's forced handshake: session/end, disconnect, connect -> a full handshake and the check
    forced = rig.board.expect(lambda e: e.name == "guard" and e.get("action") == "handshake_forced", 600)
    rig.expect_sys("cloud_status", "handshake", 60)
    assert dev.net.full_handshakes == 2 and rig.rec.session.session_id != session_id
    rig.expect_sys("firmware_update", "begin", 60)
    assert rig.cloud_events("spark/status", "auto-update") and forced


# -- Particle.disconnect() is a flag the system loop acts on ------------------------------------------
def test_particle_disconnect_takes_effect_at_the_system_loop_and_a_connect_before_it_cancels_it(
        companion_image: ImageFactory, sim_rig: RigFactory) -> None:
    """docs/reference/particle-ota.md §3.3 (checked): Particle.disconnect() only clears the
    auto-connect flag (device-os v2.3.1 system/src/system_cloud.cpp:228-245, system_mode.cpp:68-71);
    `cloud_disconnect` runs at the system loop's next `manage_cloud_connection` pass
    (system/src/system_task.cpp:445-448). Until then the cloud is still connected, and a
    Particle.connect() (system_mode.cpp:59-66) sets the flag again: no disconnect at all."""
    rig = sim_rig(companion_image(1))
    _idle_connected(rig)
    dev = rig.dev
    # 1. disconnect, then connect at the same instant (as one loop pass would): the session stays up
    t = rig.now_ms + 1
    seen: list[bool] = []
    rig.bench.world.sched.at(t, lambda: (dev.fw_cloud(dos.CLOUD_DISCONNECT, None, None, 0),
                                         seen.append(bool(dev.net.cloud_connected)),
                                         dev.fw_cloud(dos.CLOUD_CONNECT, None, None, 0)))
    rig.run(5)
    assert seen == [True], "Particle.connected() is still true right after Particle.disconnect()"
    assert dev.net.cloud_connected and not rig.events(dos.CLOUD_STATUS, since_ms=t)
    # 2. disconnect alone: `disconnecting` then `disconnected` at the system loop's next pass
    t = rig.now_ms + 1
    rig.bench.world.sched.at(t, lambda: dev.fw_cloud(dos.CLOUD_DISCONNECT, None, None, 0))
    rig.run(5)
    params = [e.data["param"] for e in rig.events(dos.CLOUD_STATUS, since_ms=t)]
    assert params == [dos.CLOUD_STATUS_DISCONNECTING, dos.CLOUD_STATUS_DISCONNECTED]
    assert not dev.net.cloud_connected


# -- a connection asked for during an outage --------------------------------------------------------
def test_particle_connect_during_lost_coverage_connects_when_coverage_returns(
        companion_image: ImageFactory, sim_rig: RigFactory) -> None:
    """docs/reference/particle-ota.md §2.2, §3.3: Device OS connects the cloud on any system-loop pass
    where the connection is wanted and the network is ready (device-os v2.3.1
    system/src/system_task.cpp ~443-452 manage_cloud_connection -> ~291-293
    establish_cloud_connection). An app that calls Particle.disconnect() then Particle.connect() while
    the modem registers again after lost coverage (a forced handshake made without coverage) is
    connected once coverage returns, and the session it kept is resumed: nothing ended it."""
    rig = sim_rig(companion_image(1))
    _idle_connected(rig)
    dev = rig.dev
    dev.link.antenna_connected = False
    dev.net.antenna_changed()
    rig.until_kind("network_lost", 60)
    rig.expect_sys("cloud_status", "disconnected")
    rig.board.command("cloud", action="disconnect")
    rig.run(2)
    rig.board.command("cloud", action="connect")
    rig.run(120)
    assert not dev.net.cloud_connected and not rig.trace("cloud_session", since_ms=rig.now_ms - 120_000)
    back = rig.now_ms
    dev.link.antenna_connected = True
    session = rig.until_kind("cloud_session", 60)
    assert session.t_ms - back < 30_000, "connected once the modem registered again"
    assert session.data["resumed"], "the session nobody ended is resumed"
    rig.run(5)
    assert dev.net.cloud_connected


# -- the agent's `delay`: one long loop() pass ------------------------------------------------------
def test_a_threaded_app_takes_queued_events_inside_one_long_loop_pass(
        companion_image: ImageFactory, sim_rig: RigFactory) -> None:
    """docs/protocol.md `delay`: the agent replies, then the app's loop() pass lasts `ms`. A threaded
    app takes one queued event per second of a long delay() (docs/reference/particle-ota.md §2.2;
    device-os v2.3.1 system/src/system_task.cpp ~545-555), so a burst posted inside the pass reaches
    its handlers before its next loop(): the agent, which reads commands only in loop(), answers a
    ping only after `delay_end`. Bad keys are refused with the key named."""
    rig = sim_rig(companion_image(1))
    _idle_connected(rig)
    assert rig.board.command("delay", ms=10_000)["ms"] == 10_000
    begun = rig.now_ms
    t_burst = _burst(rig, 5)
    assert rig.board.command("ping", timeout=30)["ok"] is True
    answered = rig.now_ms
    end = rig.board.expect(lambda e: e.name == "log" and e.get("msg") == "delay_end", 0)
    assert end.get("ms") == 10_000
    handled = [e.t_ms for e in rig.handled(dos.TIME_CHANGED, since_ms=t_burst)]
    assert len(handled) == 5 and all(begun < t < begun + 10_000 for t in handled), (
        f"handled at {[t - begun for t in handled]} ms into the pass")
    assert answered >= begun + 10_000, "the agent answered while its loop() pass was still in its delay"
    with pytest.raises(CommandFailed, match="missing key ms"):
        rig.board.command("delay")
    with pytest.raises(CommandFailed, match="bad key ms"):
        rig.board.command("delay", ms=-1)
