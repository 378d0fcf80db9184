"""An image the device rejects while the app holds the reset (docs/reference/particle-ota.md §2.2, §2.5, §8.7)."""
from __future__ import annotations

import pytest

from otarig import verdicts as v

from conftest import APP_SIZE, connected, drive, ota_verdicts, park


@pytest.mark.sim_only
@pytest.mark.budget(2400)
def test_a_rejected_image_under_a_held_reset_lets_no_release_in_while_busy(rig):
    """A parked device takes an image with a bad CRC while its app holds the reset (a critical
    section, System.disableReset()). HAL_FLASH_End rejects it: `firmware_update failed`, and v2.3.1
    still pends a reset (system_update.cpp:407-415, §2.5, §8.7), which the hold keeps back. The
    transfer is over without an update, and that `failed` is the only sign of it: no disconnect
    follows. The vehicle drives off while the critical section lasts, and the product team
    releases a good build: it must wait for the next idle window (`update_began_in_idle_window`).
    A firmware that missed the `failed` still counts the transfer as running and has left updates
    enabled since it let the bad image in, so the release begins mid-drive (Device OS accepts OTAs
    while a reset is held, §2.5 `multiple_ota_no_reset`). The hold then ends, the device resets
    into the old app, and the release lands when it parks."""
    connected(rig)
    park(rig)
    rig.command("reset_hold", hold=True)
    rig.flash(rig.sim.firmware(2, size=APP_SIZE, defect="bad_crc"))
    rig.expect_sys("firmware_update", "failed", 900)
    rig.expect_sys("reset_pending", timeout=60)
    rig.wait(5)
    drive(rig)
    rig.upload(rig.firmware(3, size=APP_SIZE))
    rig.release(3, intelligent=True)
    rig.wait(30)  # the cloud delivers an Intelligent release within seconds to a device that allows it (§7.8.2)
    assert not rig.timeline.select(kind="hello"), "the device reset while the app held the reset"
    rig.check(v.update_began_in_idle_window(rig.timeline))  # first: a failure says what to change
    rig.command("reset_hold", hold=False)
    hello = rig.expect(lambda e: e.name == "hello", 300)
    assert hello.get("product_version") == 1, "the rejected image must not run"
    park(rig)
    rig.expect_version(3, 1800)
    rig.wait(30)
    rig.check(*ota_verdicts(rig, 3))
