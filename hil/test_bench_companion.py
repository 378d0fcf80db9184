"""Faults and wake-ups done by the bench companion (firmware/bench/), the same commands on any bench.

On a real bench the tester board switches the Electron's VIN, USB VBUS and antenna and pulses WKP;
on the simulated bench the same MicroPython program does it to the simulated Electron. A power cut
"at byte N" is timed by the companion on the DUT's download status line, with no host round trip
(docs/reference/instruments-and-faults.md B.1, recommendation 6).
"""
from __future__ import annotations

import pytest

from otarig import verdicts as v

from conftest import APP_SIZE, connected, ota_verdicts, park

CHUNK = 512
#: Device OS's application queue (docs/reference/particle-ota.md §2.2): a threaded app's handlers, and so
#: the status line, run up to this many events behind the system, plus the one it waits to post.
APP_QUEUE = 20
#: the last cut the status line can still place before the download ends
NEAR_THE_END = APP_SIZE - (APP_QUEUE + 2) * CHUNK


def boot_entry(rig):
    return rig.timeline.select(kind="boot")[-1]


def _fw(e, param: str) -> bool:
    return e.kind == "sys" and e.get("event") == "firmware_update" and e.get("param") == param


@pytest.mark.spec("docs/reference/particle-ota.md §2.4, §2.6, §7.10")
@pytest.mark.requires("power_switch", "vbus_switch")
@pytest.mark.parametrize("byte", [50 * 1024, NEAR_THE_END], ids=["at-50KB", "near-the-end"])
@pytest.mark.budget(900)
def test_power_cut_at_a_chosen_byte_keeps_the_old_app_then_the_update_lands(rig, byte):
    """VIN and VBUS cut once the app has seen `byte` bytes of a 100 KB download arrive (a threaded
    app sees them from its event queue, so the flash may hold up to a queue's worth more, §2.2): no
    DCT slot was registered, so the old app boots (docs/reference/particle-ota.md §2.6); nothing persisted is lost; the cloud sends the
    update again from chunk 0 (no resume, §2.4) and it lands."""
    connected(rig)
    park(rig)
    edges = rig.cut_power_at_byte(byte, off_s=5)
    rig.upload(rig.firmware(2, size=APP_SIZE))
    rig.release(2, intelligent=True)
    rig.expect_sys("firmware_update", "begin", 300)
    rig.require_status_line()
    boot = rig.expect(lambda e: e.name == "boot", 1800)
    assert boot.get("reset_reason") == "power_down"
    hello = rig.timeline.select(kind="hello")[-1]
    assert hello.get("product_version") == 1, "a cut during the download must keep the old app"
    cut = rig.timeline.select(source="fault", kind="power_cut")
    assert len(cut) == 1 and cut[0].get("edges") == edges and cut[0].get("byte") == byte // CHUNK * CHUNK
    begin = rig.timeline.select(kind="sys", where=lambda e: _fw(e, "begin"))[0]
    # counted in the DUT's own order (begin … the boot after the cut): the tester's port and the
    # DUT's are read separately, so arrival times across the two do not order them on hardware
    progress = rig.timeline.select(kind="sys", start=begin.t, end=boot_entry(rig).t, where=lambda e: _fw(e, "progress"))
    # Edge k+1 follows the k-th chunk's progress event; on a real bench the last line may die with
    # the power (the USB serial goes with it), on the simulated one every line arrives.
    expected = edges - 1
    assert len(progress) == expected if rig.simulated else expected - 1 <= len(progress) <= expected
    rig.expect_version(2, 3600)
    rig.wait(30)
    rig.check(*ota_verdicts(rig, 2), v.update_began_in_idle_window(rig.timeline))


@pytest.mark.spec("docs/reference/particle-ota.md §3.2")
@pytest.mark.requires("wake_pin")
@pytest.mark.budget(4500)
def test_wake_from_hibernate_by_wkp(rig):
    """HIBERNATE without a timer: the Electron stays down until a rising edge on WKP, then boots
    through reset (docs/reference/particle-ota.md §3.2, legacy SLEEP_MODE_DEEP); the app starts again and reconnects."""
    connected(rig)
    park(rig)
    rig.command("sleep", mode="hibernate", seconds=0)
    rig.wait(3600)
    slept = rig.timeline.select(source="rig", kind="command", where=lambda e: e.get("cmd") == "sleep")[-1]
    assert not rig.timeline.select(kind="hello", start=slept.t), "woke before the WKP pulse"
    rig.wake()
    pulse = rig.timeline.select(source="rig", kind="wake_pulse")[-1]
    hello = rig.expect(lambda e: e.name == "hello", 60)
    boot = rig.expect(lambda e: e.name == "boot", 60)
    assert hello.get("product_version") == 1
    assert boot.get("reset_reason") == "power_management", "a HIBERNATE wake boots through reset (§3.2)"
    connected(rig)
    if rig.psu is not None:  # asleep seen three ways: the port gone, no hello, and the supply current
        asleep = rig.timeline.select(source="psu", kind="sample", start=slept.t + 10 + rig.clock_tolerance_s,
                                     end=pulse.t - rig.clock_tolerance_s)
        assert asleep and max(e.get("amps") for e in asleep) < 0.001, "HIBERNATE should draw well under 1 mA"
    woke = rig.timeline.select(kind="hello", start=pulse.t)
    # when it booted: the hello's arrival less the device's uptime in it (an app that connects before
    # its first loop(), e.g. non-threaded SEMI_AUTOMATIC, says hello only once connected)
    booted = woke[0].t - woke[0].device_t / 1000 if woke and woke[0].device_t is not None else None
    assert booted is not None and booted - pulse.t < 5 + rig.clock_tolerance_s, \
        "the board did not start within 5 s of the WKP edge"
    rig.check(v.no_record_lost(rig.timeline))


@pytest.mark.spec("docs/reference/instruments-and-faults.md A.3")
@pytest.mark.requires("antenna_switch")
@pytest.mark.budget(1200)
def test_antenna_off_drops_the_cloud_and_it_comes_back(rig):
    """The antenna disconnected for 10 minutes: the device notices the lost coverage and drops the
    cloud; when the antenna is back it reconnects on its own; the app loses nothing."""
    connected(rig)
    park(rig)
    rig.link_outage(600)
    off = rig.timeline.select(source="fault", kind="antenna_off")[-1]
    rig.expect_sys("cloud_status", "disconnected", 120)
    rig.wait(600)
    on = [rig.await_entry("fault", "antenna_on", 60, start=off.t)]
    assert abs(on[-1].t - off.t - 600) <= rig.clock_tolerance_s, "the companion restores the antenna after 600 s"
    rig.expect_sys("cloud_status", "connected", 300)
    back = rig.timeline.select(kind="sys", start=on[-1].t,
                               where=lambda e: e.get("event") == "cloud_status" and e.get("param") == "connected")
    assert back, "the device did not reconnect after the antenna came back"
    rig.check(v.no_record_lost(rig.timeline))
