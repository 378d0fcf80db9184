"""The simulated Electron's GPIO (otarig.sim.electron_pins) with the real companion on it.

The companion drives the download status line (D6, docs/protocol.md "The download status line"):
rising edge #1 at firmware_update begin, one more after each progress event, LOW at complete,
failed or cloud_status disconnected. The bench pulses WKP (A7) to wake a sleeping Electron (docs/reference/particle-ota.md §3.2). Virtual
time only; the serial side is read through the board's pty, the model's ground truth from the trace.
"""
from __future__ import annotations

import pytest

from otarig.sim import deviceos as dos
from otarig.sim.electron import AppState, TraceEntry

from sim_helpers import ImageFactory, RigFactory, SimRig

OTA_20K = 20 * 1024
CHUNKS_20K = OTA_20K // 512


class LineProbe:
    """Records the status line: every change the firmware drives, and its level at each
    firmware_update event as the model emits it (before the app's handler runs)."""

    def __init__(self, rig: SimRig, pin: int = dos.D6) -> None:
        self.rig, self.pin = rig, pin
        self.changes: list[tuple[int, int]] = []   # (t_ms, level)
        self.at_event: list[tuple[int, int]] = []  # (firmware_update param, level before the handler)
        rig.dev.pins.listeners.append(self._change)
        rig.dev.listeners.append(self._note)

    def _change(self, pin: int, level: int) -> None:
        if pin == self.pin:
            self.changes.append((self.rig.dev.sched.now_ms, level))

    def _note(self, entry: TraceEntry) -> None:
        if entry.kind == "system_event_handled" and entry.data["event"] == dos.FIRMWARE_UPDATE:
            self.at_event.append((entry.data["param"], self.rig.dev.pins.level(self.pin)))

    def rising(self) -> list[int]:
        return [t for t, level in self.changes if level == 1]


def _idle_connected(rig: SimRig) -> None:
    rig.connected()
    rig.run(5)  # past the cloud's post-connect pending=false (§2.1, §7.8.7)


def _asleep(rig: SimRig, mode: str, seconds: int) -> tuple[int, int]:
    """The connected, idle companion told to sleep (the agent always adds a WKP rising-edge wake
    source); returns (hello lines so far, the instant the command was sent)."""
    _idle_connected(rig)
    hellos = len(rig.board.events("hello"))
    t0 = rig.now_ms
    rig.board.command("sleep", mode=mode, seconds=seconds)
    return hellos, t0


def _ota_rig(companion_image: ImageFactory, sim_rig: RigFactory) -> tuple[SimRig, LineProbe]:
    rig = sim_rig(companion_image(1))
    probe = LineProbe(rig)
    _idle_connected(rig)
    assert rig.dev.pins.modes[dos.D6] == dos.OUTPUT and rig.dev.pins.level(dos.D6) == 0, "setup(): OUTPUT LOW"
    rig.release(companion_image(2, size=OTA_20K), 2)
    return rig, probe


# -- the download status line -------------------------------------------------------------------
def test_status_line_counts_progress_and_falls_at_complete(companion_image: ImageFactory,
                                                           sim_rig: RigFactory) -> None:
    """1 + N rising edges for N progress events (edge K+1 at the K-th progress, docs/reference/particle-ota.md §2.2); HIGH from
    begin to complete; LOW from complete on, before the update's reset."""
    rig, probe = _ota_rig(companion_image, sim_rig)
    end = rig.until_kind("ota_end", 120)
    assert end.data["ok"] and end.data["chunks"] == CHUNKS_20K
    rig.expect_sys("firmware_update", "complete")
    # the edges follow the handlers, which a threaded app runs from its queue (docs/reference/particle-ota.md §2.2)
    [begin] = rig.handled(dos.FIRMWARE_UPDATE, dos.FIRMWARE_UPDATE_BEGIN)
    [complete] = rig.handled(dos.FIRMWARE_UPDATE, dos.FIRMWARE_UPDATE_COMPLETE)
    progress = [e.t_ms for e in rig.handled(dos.FIRMWARE_UPDATE, dos.FIRMWARE_UPDATE_PROGRESS)]
    assert len(progress) == CHUNKS_20K
    rising = probe.rising()
    assert len(rising) == 1 + len(progress)
    assert rising == [begin.t_ms, *progress]
    # the level the line has when each event arrives: LOW before begin, HIGH through to complete
    assert probe.at_event[0] == (dos.FIRMWARE_UPDATE_BEGIN, 0)
    assert {level for _, level in probe.at_event[1:]} == {1}
    assert probe.at_event[-1][0] == dos.FIRMWARE_UPDATE_COMPLETE
    assert probe.changes[-1] == (complete.t_ms, 0)
    assert rig.dev.pins.level(dos.D6) == 0
    hello = rig.board.expect(lambda e: e.name == "hello", 120)  # the update's reset, then v2 boots
    assert hello.get("product_version") == 2
    assert rig.trace("reset")[-1].t_ms >= complete.t_ms and len(probe.rising()) == len(rising)
    assert rig.dev.pins.modes[dos.D6] == dos.OUTPUT and rig.dev.pins.level(dos.D6) == 0


def test_status_line_ends_low_when_a_disconnect_cuts_the_transfer(companion_image: ImageFactory,
                                                                  sim_rig: RigFactory) -> None:
    """A disconnect mid-transfer ends it WITHOUT firmware_update failed (docs/reference/particle-ota.md
    §2.2, corrected: device-os v2.3.1 `system/src/system_task.cpp` ~628-640 clears SPARK_FLASH_UPDATE
    and emits cloud_status disconnected) → the line goes LOW at `disconnected`, and stays LOW."""
    rig, probe = _ota_rig(companion_image, sim_rig)
    rig.expect_sys("firmware_update", "begin")
    for _ in range(10):
        rig.expect_sys("firmware_update", "progress")
    rig.board.command("cloud", action="disconnect")
    rig.expect_sys("cloud_status", "disconnected")
    assert rig.events(dos.FIRMWARE_UPDATE, dos.FIRMWARE_UPDATE_FAILED) == []
    [gone] = rig.handled(dos.CLOUD_STATUS, dos.CLOUD_STATUS_DISCONNECTED)
    progress = rig.handled(dos.FIRMWARE_UPDATE, dos.FIRMWARE_UPDATE_PROGRESS)
    assert 10 <= len(progress) < CHUNKS_20K
    assert len(probe.rising()) == 1 + len(progress)
    assert probe.changes[-1] == (gone.t_ms, 0)
    rig.run(60)
    assert rig.dev.pins.level(dos.D6) == 0 and probe.changes[-1] == (gone.t_ms, 0)
    assert rig.trace("reset") == [], "a cut transfer keeps the old app running"


def test_status_line_ends_low_when_the_transfer_fails(companion_image: ImageFactory,
                                                      sim_rig: RigFactory) -> None:
    """An error in the protocol's event loop (here the cloud's key change, DISCARD_SESSION) cancels the
    transfer → firmware_update failed (device-os v2.3.1 `communication/src/protocol.cpp` ~487-492,
    `communication/src/chunked_transfer.cpp` ~361-369) → LOW at `failed`, before the disconnect."""
    rig, probe = _ota_rig(companion_image, sim_rig)
    rig.expect_sys("firmware_update", "begin")
    for _ in range(10):
        rig.expect_sys("firmware_update", "progress")
    rig.bench.world.sched.after(0, rig.dev.net.discard_session)
    rig.expect_sys("firmware_update", "failed")
    [failed] = rig.handled(dos.FIRMWARE_UPDATE, dos.FIRMWARE_UPDATE_FAILED)
    progress = rig.handled(dos.FIRMWARE_UPDATE, dos.FIRMWARE_UPDATE_PROGRESS)
    assert len(probe.rising()) == 1 + len(progress)
    assert (failed.t_ms, 0) in probe.changes and probe.changes[-1][1] == 0
    assert rig.trace("reset") == [], "a failed transfer keeps the old app running"


def test_power_loss_mid_download_drops_the_line(companion_image: ImageFactory, sim_rig: RigFactory) -> None:
    """The MCU's pins lose their drive with the power: the listener sees the falling edge at the cut,
    and the pin has no mode until the next boot's setup()."""
    rig, probe = _ota_rig(companion_image, sim_rig)
    rig.until(lambda e: len(rig.handled(dos.FIRMWARE_UPDATE, dos.FIRMWARE_UPDATE_PROGRESS)) >= 5, 120, "5 chunks")
    assert rig.dev.pins.level(dos.D6) == 1
    rig.dev.power_off()
    assert probe.changes[-1] == (rig.dev.sched.now_ms, 0)
    assert rig.dev.pins.modes == {} and rig.dev.pins.level(dos.D6) == 0


# -- WKP wakes a sleeping Electron (docs/reference/particle-ota.md §3.2) --------------------------
def test_hibernate_without_timer_sleeps_until_a_wkp_rising_edge(companion_image: ImageFactory,
                                                                sim_rig: RigFactory) -> None:
    """HIBERNATE with seconds=0 has no RTC wake: an hour later it still sleeps; a WKP rising edge
    wakes it through reset (setup() again, reset reason power_management, wake reason gpio)."""
    rig = sim_rig(companion_image(1))
    hellos, t0 = _asleep(rig, "hibernate", 0)
    rig.until_kind("hibernate", 5)
    assert rig.dev.sleeper.wake_pin == dos.WKP
    rig.run(3600)
    assert rig.dev.sleeper.hibernating and rig.dev.app_state == AppState.OFF
    assert rig.trace("wake", since_ms=t0) == [] and rig.trace("boot_start", since_ms=t0) == []
    t_edge = rig.now_ms
    rig.dev.pins.drive_input(dos.WKP, 1)
    rig.dev.pins.drive_input(dos.WKP, 0)  # the bench's pulse
    [wake] = rig.trace("wake", since_ms=t0)
    assert wake.t_ms == t_edge and wake.data["reason"] == dos.WAKEUP_BY_GPIO
    [boot] = rig.trace("boot_start", since_ms=t0)
    assert boot.t_ms == t_edge and boot.data["reason"] == "power_management"
    assert [e.data for e in rig.trace("gpio", since_ms=t0)] == [{"pin": dos.WKP, "level": 1},
                                                                {"pin": dos.WKP, "level": 0}]
    hello = rig.board.expect(lambda e: e.name == "hello", 120)
    boot_line = rig.board.expect(lambda e: e.name == "boot", 5)
    assert len(rig.board.events("hello")) == hellos + 1 and hello.get("product_version") == 1
    assert boot_line.get("reset_reason") == "power_management"
    assert not rig.dev.sleeper.hibernating and rig.dev.sleeper.wake_pin is None
    rig.connected(120)


@pytest.mark.parametrize("mode", ["stop", "ulp"])
def test_stop_woken_by_wkp_reports_gpio(companion_image: ImageFactory, sim_rig: RigFactory, mode: str) -> None:
    """STOP/ULP with a long duration: an edge on another pin does nothing, a WKP rising edge wakes
    the app where it slept, and System.sleep() returns BY_GPIO."""
    rig = sim_rig(companion_image(1))
    hellos, t0 = _asleep(rig, mode, 3600)
    rig.run(60)
    assert rig.dev.sleeper.asleep and rig.dev.sleeper.wake_pin == dos.WKP
    rig.dev.pins.drive_input(dos.D6, 1)  # not the wake source
    rig.run(5)
    assert rig.dev.sleeper.asleep and rig.trace("wake", since_ms=t0) == []
    t_edge = rig.now_ms
    rig.dev.pins.drive_input(dos.WKP, 1)
    wake = rig.board.expect(lambda e: e.name == "log" and e.get("msg") == "wake", 10)
    assert wake.get("reason") == "gpio" and wake.get("reason_code") == dos.WAKEUP_BY_GPIO
    [woke] = rig.trace("wake", since_ms=t0)
    assert woke.t_ms == t_edge and woke.data["reason"] == dos.WAKEUP_BY_GPIO
    assert rig.now_ms - t0 < 120_000, "woken long before the RTC's hour"
    assert len(rig.board.events("hello")) == hellos, "STOP/ULP continue after the sleep call, no reset"
    rig.expect_sys("cloud_status", "session_resume", 60)


def test_wkp_edge_on_an_awake_or_unpowered_board_only_records_the_level(companion_image: ImageFactory,
                                                                       sim_rig: RigFactory) -> None:
    """An edge while awake (or with no power) changes nothing but the recorded level."""
    rig = sim_rig(companion_image(1))
    _idle_connected(rig)
    dev = rig.dev
    boots, t0 = dev.boot_count, rig.now_ms
    dev.pins.drive_input(dos.WKP, 1)
    rig.run(30)
    assert dev.pins.level(dos.WKP) == 1 and dev.app_state == AppState.RUNNING
    assert dev.boot_count == boots and rig.trace("wake", since_ms=t0) == [] and rig.trace("reset") == []
    assert rig.board.command("status")["cloud_connected"] is True
    dev.pins.drive_input(dos.WKP, 0)
    dev.power_off()
    dev.pins.drive_input(dos.WKP, 1)
    rig.run(30)
    assert not dev.powered and dev.boot_count == boots and dev.pins.level(dos.WKP) == 1
    assert rig.trace("wake", since_ms=t0) == []
    dev.power_on()
    assert rig.trace("boot_start")[-1].data["reason"] == "power_down", "the bench's level does not boot it"
