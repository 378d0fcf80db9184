"""Device OS flags, cloud system events and sleep: one test per rule of docs/reference/particle-ota.md §7.5.

The companion runs on a simulated Electron; its serial lines come through the board's pty, the
model's ground truth through `Electron.trace`. Where a rule is about a Device OS call the companion
never makes in that form (e.g. enableUpdates() twice in a row), the test calls the bridge entry
point the firmware's `System.*` call goes through (`Electron.fw_system`, ABI of
docs/dev/architecture.md), so the model code under test is exactly the firmware's path.
"""
from __future__ import annotations

import pytest

from otarig.sim import deviceos as dos
from otarig.sim.params import DeviceOsParams

from sim_helpers import ImageFactory, RigFactory, SimRig


def _idle_connected(rig: SimRig) -> None:
    rig.connected()
    rig.run(5)  # past the cloud's post-connect pending=false (§2.1, §7.8.7)


def _wake_line(rig: SimRig, timeout: float) -> dict:
    ev = rig.board.expect(lambda e: e.name == "log" and e.get("msg") == "wake", timeout)
    return dict(ev.fields)


# -- flags and cloud events ----------------------------------------------------------------------
def test_pending_event_sets_flag_once_and_false_clears_it(companion_image: ImageFactory,
                                                          sim_rig: RigFactory) -> None:
    """§7.5: updates/pending=true sets the flag and emits firmware_update_pending only on the 0→1
    edge; updates/pending=false clears the flag without an event."""
    rig = sim_rig(companion_image(1))
    _idle_connected(rig)
    rig.board.command("workload", state="busy")  # keep the guard from acting on the pending flag
    cloud = rig.bench.cloud
    assert rig.board.command("status")["updates_pending"] is False
    cloud.send_event(rig.rec, "particle/device/updates/pending", "true")
    rig.expect_sys("firmware_update_pending", timeout=5)
    cloud.send_event(rig.rec, "particle/device/updates/pending", "true")
    rig.run(5)
    assert len(rig.events(dos.FIRMWARE_UPDATE_PENDING)) == 1, "no second event while the flag is set"
    assert rig.board.command("status")["updates_pending"] is True
    cloud.send_event(rig.rec, "particle/device/updates/pending", "false")
    rig.run(5)
    assert rig.board.command("status")["updates_pending"] is False
    assert len(rig.events(dos.FIRMWARE_UPDATE_PENDING)) == 1
    cloud.send_event(rig.rec, "particle/device/updates/pending", "true")
    rig.expect_sys("firmware_update_pending", timeout=5)  # a new 0→1 edge
    assert len(rig.events(dos.FIRMWARE_UPDATE_PENDING)) == 2


def test_forced_event_sets_flag_and_is_echoed(companion_image: ImageFactory, sim_rig: RigFactory) -> None:
    """§7.5 / §1.5: updates/forced=v sets `updates_forced` and the device publishes forced=v back."""
    rig = sim_rig(companion_image(1))
    _idle_connected(rig)
    before = len(rig.cloud_events("particle/device/updates/forced", "true"))
    rig.bench.cloud.update_device(None, rig.dev.device_id, firmware_updates_forced=True)
    rig.run(3)
    assert rig.board.command("status")["updates_forced"] is True
    assert len(rig.cloud_events("particle/device/updates/forced", "true")) == before + 1
    rig.bench.cloud.update_device(None, rig.dev.device_id, firmware_updates_forced=False)
    rig.run(3)
    assert rig.board.command("status")["updates_forced"] is False
    assert rig.cloud_events("particle/device/updates/forced", "false")[-1]["t_ms"] > rig.now_ms - 3000


def test_enable_disable_updates_publish_only_on_change(companion_image: ImageFactory,
                                                       sim_rig: RigFactory) -> None:
    """§7.5 / §2.1: enableUpdates()/disableUpdates() publish particle/device/updates/enabled only when
    the flag changes ("safe, and doesn't use any data" otherwise)."""
    rig = sim_rig(companion_image(1))
    _idle_connected(rig)
    dev = rig.dev
    assert not dev.flags.updates_enabled  # the companion's guard disabled updates before connecting

    def published() -> list[str]:
        return [e["data"] for e in rig.cloud_events("particle/device/updates/enabled")]

    base = published()
    assert base == ["false"], "at connect the device reports its flag once (§7.3)"
    up_before = dict(dev.link.stats.up)
    dev.fw_system(dos.SYS_DISABLE_UPDATES, 0)
    rig.run(2)
    assert published() == base and dict(dev.link.stats.up) == up_before, "no change, nothing sent"
    dev.fw_system(dos.SYS_ENABLE_UPDATES, 0)
    dev.fw_system(dos.SYS_ENABLE_UPDATES, 0)
    rig.run(2)
    assert published() == base + ["true"]
    dev.fw_system(dos.SYS_DISABLE_UPDATES, 0)
    dev.fw_system(dos.SYS_DISABLE_UPDATES, 0)
    rig.run(2)
    assert published() == base + ["true", "false"]


def test_enable_reset_with_reset_pending_resets_on_next_idle_pass(companion_image: ImageFactory,
                                                                  sim_rig: RigFactory) -> None:
    """§7.5 / §2.5: with disableReset() a pending reset waits; enableReset() alone does nothing when no
    reset is pending; with one pending the device resets on the next idle pass."""
    rig = sim_rig(companion_image(1))
    _idle_connected(rig)
    dev = rig.dev
    assert not dev.flags.reset_enabled  # the guard holds resets from setup() on
    dev.fw_system(dos.SYS_ENABLE_RESET, 0)
    rig.run(10)
    assert rig.trace("reset") == [], "enableReset() without a pending reset does nothing"
    dev.fw_system(dos.SYS_DISABLE_RESET, 0)
    t_pend = rig.now_ms
    dev.pend_reset("update")  # system_pending_shutdown(RESET_REASON_UPDATE), as after an OTA
    rig.expect_sys("reset_pending", timeout=5)
    reset = rig.until_kind("reset", 10)
    released = [e for e in rig.trace("flag", since_ms=t_pend) if e.data.get("reset_enabled") is True]
    assert released and released[0].t_ms > t_pend, "held until the app called enableReset()"
    emitted = rig.events(dos.RESET)[-1]
    assert emitted.t_ms - released[0].t_ms <= 1, "`reset` emitted on the next idle pass"
    # threaded companion: the handlers run at its next loop() boundary, then the reset (§2.2, §2.5)
    [handled] = rig.handled(dos.RESET, since_ms=emitted.t_ms)
    assert reset.t_ms - handled.t_ms <= 1 and handled.t_ms - emitted.t_ms <= 1_100
    assert [e.kind for e in rig.trace(since_ms=t_pend) if e.kind == "reset"] == ["reset"]
    boot = rig.board.expect(lambda e: e.name == "boot", 10)
    assert boot.get("reset_reason") == "update"


def test_session_end_makes_next_connect_a_full_handshake(companion_image: ImageFactory,
                                                         sim_rig: RigFactory) -> None:
    """§7.5 / §1.3: a plain disconnect/connect resumes the session; publishing
    spark/device/session/end first (the guard's forced handshake) makes the next connect FULL."""
    image = companion_image(1, defines={"OTARIG_HANDSHAKE_INTERVAL_MS": 120_000})
    rig = sim_rig(image)
    rig.expect_sys("cloud_status", "handshake", 90)  # cold boot: full handshake
    _idle_connected(rig)
    rig.board.command("cloud", action="disconnect")
    rig.board.command("cloud", action="connect")
    rig.expect_sys("cloud_status", "session_resume", 60)
    assert rig.dev.net.full_handshakes == 1 and rig.dev.net.resumes == 1
    rig.board.expect(lambda e: e.name == "guard" and e.get("action") == "handshake_forced", 180)
    rig.expect_sys("cloud_status", "handshake", 60)
    assert rig.cloud_events("spark/device/session/end")
    assert rig.dev.net.full_handshakes == 2 and rig.dev.net.resumes == 1


# -- sleep (docs/reference/particle-ota.md §3.2) -----------------------------------------------------
def test_hibernate_wakes_through_reset_keeps_retained_and_applies_pending_slot(
        companion_image: ImageFactory, sim_rig: RigFactory) -> None:
    """§7.5 / §3.2: HIBERNATE disconnects the cloud and powers down; the wake is the reset path
    (setup() again, bootloader applies a registered slot), retained RAM (the session) is kept."""
    v1, v2 = companion_image(1), companion_image(2)
    rig = sim_rig(v1)
    _idle_connected(rig)
    # Test-only: a slot as HAL_FLASH_End leaves it after a good OTA (§2.5), with its reset not yet done.
    rig.dev.flash.register_slot(v2, "user")
    t0 = rig.now_ms
    rig.board.command("sleep", mode="hibernate", seconds=60)
    rig.until_kind("hibernate", 5)
    assert rig.trace("cloud_disconnected", since_ms=t0, reason="sleep")
    rig.run(5)
    assert not rig.rec.online and rig.dev.sleeper.hibernating
    hello = rig.board.expect(lambda e: e.name == "hello", 120)
    boot = rig.board.expect(lambda e: e.name == "boot", 5)
    assert hello.get("product_version") == 2, "the wake is a reset: the pending slot was applied"
    assert boot.get("reset_reason") == "power_management"
    wake = rig.trace("wake", since_ms=t0)
    assert wake and wake[0].t_ms - t0 >= 60_000
    rig.expect_sys("cloud_status", "session_resume", 60)  # the retained session survived
    assert rig.dev.net.full_handshakes == 1


@pytest.mark.parametrize("mode", ["stop", "ulp"])
def test_stop_or_ulp_without_cellular_wake_disconnects_then_resumes(companion_image: ImageFactory,
                                                                    sim_rig: RigFactory, mode: str) -> None:
    """§7.5 / §3.2: STOP/ULP without a cellular wake source disconnect the cloud (modem off); after the
    wake the app continues where it was and the reconnect is a session resume."""
    rig = sim_rig(companion_image(1))
    _idle_connected(rig)
    hellos = len(rig.board.events("hello"))
    t0 = rig.now_ms
    rig.board.command("sleep", mode=mode, seconds=120)
    rig.run(30)
    assert not rig.rec.online and not rig.dev.net.cloud_connected
    assert rig.dev.net.modem.value == "off"
    wake = _wake_line(rig, 200)
    assert wake["reason"] == "rtc"
    rig.expect_sys("cloud_status", "session_resume", 60)
    rig.connected(30)
    assert len(rig.board.events("hello")) == hellos, "STOP/ULP continue after the sleep call, no reset"
    assert rig.trace("wake", since_ms=t0)[0].t_ms - t0 >= 120_000
    assert rig.dev.net.full_handshakes == 1 and rig.dev.net.resumes == 1


def test_stop_with_cellular_wake_stays_connected_and_cloud_traffic_wakes(companion_image: ImageFactory,
                                                                        sim_rig: RigFactory) -> None:
    """§7.5 / §3.2: with `.network(NETWORK_INTERFACE_CELLULAR)` as wake source the cloud stays connected
    during STOP, and a cloud message wakes the device."""
    rig = sim_rig(companion_image(1))
    _idle_connected(rig)
    t0 = rig.now_ms
    rig.board.command("sleep", mode="stop", seconds=3600, cellular_wake=True)
    rig.run(60)
    assert rig.dev.sleeper.asleep and rig.rec.online and rig.dev.net.cloud_connected
    assert rig.trace("cloud_disconnected", since_ms=t0) == []
    rig.bench.cloud.publish_to_devices("otarig/poke", "x")
    wake = _wake_line(rig, 10)
    assert wake["reason_code"] == dos.WAKEUP_BY_NETWORK
    assert rig.now_ms - t0 < 70_000
    assert rig.dev.net.resumes == 0 and rig.dev.net.full_handshakes == 1, "no reconnect was needed"


@pytest.mark.parametrize("disconnects", [True, False], ids=["v2.3.1-code", "AN028"])
def test_inactive_standby_follows_section_8_5_parameter(companion_image: ImageFactory, sim_rig: RigFactory,
                                                        disconnects: bool) -> None:
    """§7.5 / §3.2 / §8.5: STOP with INACTIVE_STANDBY keeps the modem powered; whether the cloud is
    disconnected is the parameter `inactive_standby_disconnects_cloud` (v2.3.1 code: yes, a cheap
    resume after wake; AN028: the cloud stays connected)."""
    params = DeviceOsParams(inactive_standby_disconnects_cloud=disconnects)
    rig = sim_rig(companion_image(1), params=params)
    _idle_connected(rig)
    t0 = rig.now_ms
    rig.board.command("sleep", mode="stop", seconds=300, network_standby=True)
    rig.run(60)
    assert rig.dev.sleeper.asleep
    assert rig.dev.net.modem.value in ("paused", "ready"), "the modem stays powered"
    assert rig.rec.online is not disconnects
    wake = _wake_line(rig, 300)
    assert wake["reason"] == "rtc"
    t_wake = rig.trace("wake", since_ms=t0)[0].t_ms
    if disconnects:
        assert rig.trace("cloud_disconnected", since_ms=t0, reason="sleep")
        resumed = rig.expect_sys("cloud_status", "session_resume", 30)
        # modem kept in standby: no 15 s power-up before the resume
        assert resumed.t - (t_wake - rig.dev.boot_ms) < rig.dev.params.modem_power_up_ms
        assert rig.dev.net.resumes == 1
    else:
        rig.run(10)
        assert rig.trace("cloud_disconnected", since_ms=t0) == []
        assert rig.dev.net.resumes == 0 and rig.rec.online
