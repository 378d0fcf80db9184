"""Boot paths of the simulated Electron: one test per path of docs/reference/particle-ota.md §7.2.

POWER_ON / RESET / WAKE → BOOTLOADER (copy DCT slots) → VALIDATE_USER (run, factory restore, safe
mode) → session handling → system mode. The companion's serial lines come through the board's pty;
the model's trace gives the ground truth (copy start/end, power cuts).
"""
from __future__ import annotations

import pytest

from otarig.sim import deviceos as dos
from otarig.sim.cloud_peer import HELLO_FLAG_OTA_UPGRADE_SUCCESSFUL
from otarig.sim.electron import SystemFlags
from otarig.sim.images import ImageError, read_image
from otarig.sim.params import DeviceOsParams

from sim_helpers import OTA_SIZE, PRODUCT_ID, ImageFactory, RigFactory, SimRig


def _flip(image: bytes) -> bytes:
    """A user module whose CRC no longer matches (a half-written or rotten app slot)."""
    b = bytearray(image)
    b[len(b) // 2] ^= 0x01
    return bytes(b)


def _first_hello(rig: SimRig, timeout: float = 60) -> dict:
    return dict(rig.board.expect(lambda e: e.name == "hello", timeout).fields)


def test_normal_boot_runs_the_user_app(companion_image: ImageFactory, sim_rig: RigFactory) -> None:
    """§7.2: no slot → no copy; valid user module → RUN; cold power-up reads `power_down`."""
    rig = sim_rig(companion_image(1))
    hello = _first_hello(rig)
    boot = rig.board.expect(lambda e: e.name == "boot", 5)
    assert hello["product_version"] == 1 and hello["proto"] == 1
    assert boot.get("reset_reason") == "power_down" and boot.get("reset_reason_code") == 40
    assert rig.trace("bootloader_copy_start") == [] and rig.trace("factory_restore") == []
    [booted] = rig.trace("booted")
    assert booted.data == {"version": 1, "safe_mode": False, "reason": "power_down"}
    p = rig.dev.params  # the boot takes its time plus a seeded draw within its declared spread
    assert p.boot_ms <= booted.t_ms <= p.boot_ms + p.boot_spread_ms


def test_bootloader_copies_a_pending_slot(companion_image: ImageFactory, sim_rig: RigFactory) -> None:
    """§7.2 / §2.6: at the next boot the bootloader copies each DCT slot, then clears it; the first
    HELLO after the update carries OTA_UPGRADE_SUCCESSFUL (§1.1)."""
    v1, v2 = companion_image(1), companion_image(2, size=OTA_SIZE)
    rig = sim_rig(v1)
    rig.connected()
    rig.dev.flash.register_slot(v2, "user")  # as HAL_FLASH_End leaves it (§2.5)
    rig.board.command("reset")
    start = rig.until_kind("bootloader_copy_start", 5)
    done = rig.until_kind("bootloader_copy_done", 5)
    p = rig.dev.params
    assert p.bootloader_copy_ms <= done.t_ms - start.t_ms <= p.bootloader_copy_ms + p.bootloader_copy_spread_ms
    assert rig.dev.flash.slots == [] and rig.dev.flash.user == v2
    assert rig.board.expect(lambda e: e.name == "hello", 30).get("product_version") == 2
    assert rig.board.expect(lambda e: e.name == "boot", 5).get("reset_reason") == "user"
    rig.connected()
    assert rig.dev.net.last_hello.flags & HELLO_FLAG_OTA_UPGRADE_SUCCESSFUL
    assert rig.rec.running_version == 2


def test_power_loss_during_download_keeps_old_app_and_no_slot(companion_image: ImageFactory,
                                                              sim_rig: RigFactory) -> None:
    """§7.2 / §2.6: a cut while RECEIVING leaves the running app untouched and registers nothing."""
    v1, v2 = companion_image(1), companion_image(2, size=OTA_SIZE)
    rig = sim_rig(v1)
    rig.connected()
    rig.release(v2, 2)
    rig.until_kind("ota_begin", 60)
    for _ in range(50):
        rig.until_event(dos.FIRMWARE_UPDATE, dos.FIRMWARE_UPDATE_PROGRESS, 10)
    rig.dev.power_off()
    assert rig.trace("power_off")[-1].data["ota"] is True
    rig.run(10)
    assert rig.dev.flash.slots == [] and rig.dev.flash.user == v1
    rig.dev.power_on()
    booted = rig.until_kind("booted", 10)
    assert booted.data["version"] == 1 and booted.data["reason"] == "power_down"
    assert rig.trace("bootloader_copy_start") == []
    assert rig.board.expect(lambda e: e.name == "boot", 30).get("reset_reason") == "power_down"


@pytest.mark.parametrize("cut_at", ["first_ms", "middle", "last_ms"])
def test_power_loss_during_slot_copy_copies_again(companion_image: ImageFactory, sim_rig: RigFactory,
                                                  cut_at: str) -> None:
    """§7.2 / §2.6: a cut during the bootloader copy leaves the slot (cleared only after the copy)
    and a half-written app; the next power-up copies again and the new app runs (MCUboot-style:
    the cut is placed at the first, middle and last millisecond of the copy)."""
    v1, v2 = companion_image(1), companion_image(2, size=OTA_SIZE)
    rig = sim_rig(v1)
    rig.connected()
    rig.release(v2, 2)
    start = rig.until_kind("bootloader_copy_start", 400)  # the real OTA (~1 chunk/s: §2.2 queue), then the reset
    # the copy's real duration (docs/reference/particle-ota.md §2.10): erase, word programs, DCT write
    copy_ms = rig.dev.flash.journal.busy_until_us // 1000 - start.t_ms
    assert 1_300 < copy_ms < 2_000
    offset = {"first_ms": 1, "middle": copy_ms // 2, "last_ms": copy_ms - 1}[cut_at]
    rig.bench.world.sched.at(start.t_ms + offset, rig.dev.power_off)
    cut = rig.until_kind("power_off", 5)
    assert cut.t_ms == start.t_ms + offset and cut.data["copying"] is True
    assert rig.trace("bootloader_copy_done") == []
    assert len(rig.dev.flash.slots) == 1, "the slot survives the cut"
    [torn] = rig.trace("flash_torn", since_ms=start.t_ms)
    if torn.data["region"] == "user":  # first ms, middle: the destination partly erased or programmed
        with pytest.raises(ImageError):
            read_image(rig.dev.flash.user or b"")
    else:  # last ms: the app is in, the DCT write that clears the slot was cut (dcd.h: CRC last)
        assert torn.data["region"] == "dct" and cut_at == "last_ms"
    rig.run(5)
    rig.dev.power_on()
    [again] = rig.trace("bootloader_copy_start", since_ms=cut.t_ms)
    rig.until_kind("bootloader_copy_done", 5)
    booted = rig.until_kind("booted", 5)
    assert again.t_ms > cut.t_ms and booted.data["version"] == 2
    assert rig.board.expect(lambda e: e.name == "hello" and e.get("product_version") == 2, 30)


def test_invalid_user_with_valid_factory_restores_factory(companion_image: ImageFactory,
                                                          sim_rig: RigFactory) -> None:
    """§7.2 / §2.6: user header invalid and factory image valid → FACTORY_RESTORE → reset."""
    factory = companion_image(7)
    rig = sim_rig(None, power_on=False, factory=factory)
    rig.dev.flash.user = _flip(companion_image(1))
    rig.power_on()
    assert rig.trace("factory_restore") and rig.dev.flash.user == factory
    hello = _first_hello(rig)
    assert hello["product_version"] == 7
    assert rig.board.expect(lambda e: e.name == "boot", 5).get("reset_reason") == "factory_reset"
    assert [e.data["reason"] for e in rig.trace("boot_start")] == ["power_down", "factory_reset"]


@pytest.mark.parametrize("defect", ["invalid_user", "deps_unmet"])
def test_safe_mode_when_user_invalid_without_factory_or_deps_unmet(companion_image: ImageFactory,
                                                                   sim_rig: RigFactory, defect: str) -> None:
    """§7.2 / §2.7: no runnable app (invalid and no factory image, or it needs a newer Device OS) →
    SAFE_MODE: the app never runs, the system connects and publishes spark/device/safemode; for unmet
    dependencies the cloud's healer sends the modules one per OTA and reset, then the app runs. The
    app needs Device OS 3.3.1 (module 3302, §2.9): the bootloader first, then system parts 3, 1, 2."""
    newer = 3302
    needy = companion_image(1, required_system_version=newer)
    rig = sim_rig(None, power_on=False)
    if defect == "invalid_user":
        rig.dev.flash.user = _flip(companion_image(1))
    else:
        rig.dev.flash.user = needy
        rig.bench.cloud.upload_firmware(PRODUCT_ID, 1, needy)
    rig.power_on()
    [booted] = rig.trace("booted")
    assert booted.data["safe_mode"] is True
    rig.until_kind("cloud_session", 60)
    rig.run(2)
    assert rig.board.events() == [], "safe mode: setup()/loop() never run, so no companion line"
    assert rig.dev.app is None and rig.dev.flags.updates_enabled
    assert rig.cloud_events("spark/device/safemode")
    if defect == "deps_unmet":
        hello = rig.board.expect(lambda e: e.name == "hello", 600)
        assert hello.get("product_version") == 1
        assert set(rig.dev.flash.system_parts.values()) == {newer} and rig.dev.flash.bootloader == 1100
        assert len([b for b in rig.trace("booted") if b.data["safe_mode"]]) == 4, "one module per OTA and reset"


def test_ram_flags_reset_at_boot(companion_image: ImageFactory, sim_rig: RigFactory) -> None:
    """§7.2 / §2.1: the flags are RAM: every boot starts enabled=1, forced=0, pending=0,
    reset_pending=0, reset_enabled=1, whatever they were before the reset."""
    rig = sim_rig(companion_image(1))
    rig.connected()
    rig.run(5)  # past the cloud's post-connect pending=false (§2.1)
    rig.board.command("workload", state="busy")
    rig.bench.cloud.update_device(None, rig.dev.device_id, firmware_updates_forced=True)
    rig.bench.cloud.send_event(rig.rec, "particle/device/updates/pending", "true")
    rig.run(5)
    f = rig.dev.flags
    assert (f.updates_enabled, f.updates_forced, f.updates_pending, f.reset_enabled) == (False, True, True, False)
    rig.board.write(b'{"cmd":"reset","id":77}\n')
    rig.until_kind("boot_start", 10)
    assert rig.dev.flags == SystemFlags(), "defaults at boot, before setup() runs"
    assert rig.dev.flags == SystemFlags(True, False, False, False, True)
    rig.until_kind("booted", 5)
    assert rig.dev.flags == SystemFlags()


@pytest.mark.parametrize("survives", [False, True], ids=["default", "vbat-backed"])
def test_retained_session_lost_on_power_off_kept_across_reset(companion_image: ImageFactory,
                                                              sim_rig: RigFactory, survives: bool) -> None:
    """§7.2 / §1.2: the session lives in retained RAM: a reset resumes it, a cold power-up makes a full
    handshake (§8.6 parameter `session_survives_power_loss`)."""
    rig = sim_rig(companion_image(1), params=DeviceOsParams(session_survives_power_loss=survives))
    rig.expect_sys("cloud_status", "handshake")
    rig.connected()
    rig.board.command("reset")
    rig.expect_sys("cloud_status", "session_resume", 60)
    rig.connected()
    rig.dev.power_off()
    rig.run(5)
    rig.dev.power_on()
    status = rig.board.expect(lambda e: e.name == "sys" and e.get("param") in ("handshake", "session_resume"), 90)
    assert status.get("param") == ("session_resume" if survives else "handshake")
    assert rig.dev.net.full_handshakes == (1 if survives else 2)


@pytest.mark.parametrize("mode,threaded", [("AUTOMATIC", False), ("AUTOMATIC", True),
                                           ("SEMI_AUTOMATIC", False), ("MANUAL", False)])
def test_system_mode_decides_when_setup_runs(companion_image: ImageFactory, sim_rig: RigFactory,
                                             mode: str, threaded: bool) -> None:
    """§7.2 / §3.1: AUTOMATIC connects at boot and, non-threaded, runs setup() only once the cloud is
    connected — so the device first reports updates enabled and cannot refuse an update at boot;
    SEMI_AUTOMATIC/MANUAL (and threaded AUTOMATIC) run setup() at once, before any connection; a
    non-threaded SEMI_AUTOMATIC app then gets no loop() call until the cloud is connected."""
    rig = sim_rig(companion_image(1, threaded=threaded, mode=mode))
    hello = _first_hello(rig, 90)
    assert hello["mode"] == mode and hello["threaded"] is threaded
    rig.run(30)
    [session] = rig.trace("cloud_session")
    booted = rig.trace("booted")[0]
    # the hello goes out from setup()/the first loop(): its device time tells when the app started
    app_started_ms = booted.t_ms + hello_t(rig)
    enabled = [e["data"] for e in rig.cloud_events("particle/device/updates/enabled")]
    if mode == "AUTOMATIC" and not threaded:
        assert app_started_ms >= session.t_ms, "setup() ran only after the cloud connected"
        assert enabled == ["true", "false"], "connected with updates enabled, then the app disabled them"
    elif mode == "SEMI_AUTOMATIC" and not threaded:
        # setup() at once (updates disabled before connecting), but no loop() while connecting
        # (device-os v2.3.1 system/src/main.cpp ~450-452, ~478-480): the agent's hello waits
        assert app_started_ms >= session.t_ms, "the first loop() ran while the cloud was connecting"
        assert enabled == ["false"], "updates were disabled before the first connection"
    else:
        assert app_started_ms < session.t_ms - 5_000, "setup() ran at once"
        assert enabled == ["false"], "updates were disabled before the first connection"


def hello_t(rig: SimRig) -> int:
    return int(rig.board.events("hello")[0].t)
