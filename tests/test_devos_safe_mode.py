"""Safe mode and Device OS (system part) updates on the simulated Electron
(docs/reference/particle-ota.md §2.7, §2.9, §7.8.6; `otarig.sim.electron_modules`).

System parts get the full dependency check when they are installed, unlike a user part; on the
Electron the parts of one release depend on each other 3 -> 1 -> 2, so the cloud's healer sends them
in that order, after the bootloader when the move crosses a major version (§8.12 parameter).
"""
from __future__ import annotations

import json

import pytest
from sim_helpers import DEVICE_ID, PRODUCT_ID, ImageFactory, RigFactory, SimRig

from otarig.sim import deviceos as dos
from otarig.sim.electron_modules import (
    FUNCTION_BOOTLOADER,
    SYSTEM,
    Module,
    heal_step,
    release_for,
    system_part_dependencies,
)
from otarig.sim.images import make_bootloader_image, make_system_image
from otarig.sim.params import CloudParams


def _flash(rig: SimRig, image: bytes) -> dict:
    """One cloud OTA of `image` (`particle flash <device> <file.bin>`), to its end on the device."""
    rig.bench.cloud.flash_device(DEVICE_ID, image)
    return rig.until_kind("ota_end", 120).data


def _updates_enabled_and_idle(rig: SimRig) -> None:
    rig.connected()
    rig.run(5)
    rig.dev.fw_system(dos.SYS_ENABLE_UPDATES, 0)  # the test's own OTAs are not the guard's business
    rig.run(2)


def test_system_part_with_unmet_dependency_is_rejected_on_install(companion_image: ImageFactory,
                                                                  sim_rig: RigFactory) -> None:
    """HAL_FLASH_End validates a system part with MODULE_VALIDATION_DEPENDENCIES_FULL (device-os v2.3.1
    `hal/src/stm32f2xx/ota_flash_hal_stm32f2xx.cpp` ~350-353 → `hal/src/stm32/ota_module.cpp` ~86 →
    `validate_module_dependencies` ~161-200, `validate_module_dependencies_full` ~103-159): system part
    1 of 3.3.1 needs part 3 of 3.3.1 (`modules/electron/system-part2/build.mk`), so sent first it fails
    (SYSTEM_ERROR_OTA_DEPENDENCY_CHECK_FAILED: `failed`, no slot, the v2.3.1 reset anyway); part 3 goes
    in; then part 1 does; and an older part 3 can no longer replace the new one (the `_full` check)."""
    rig = sim_rig(companion_image(1))
    _updates_enabled_and_idle(rig)
    end = _flash(rig, make_system_image(1, 3302))
    assert not end["ok"] and "dependency check failed" in end["error"] and "system-part 3 >= 3302" in end["error"]
    assert rig.dev.flash.slots == []
    rig.expect_sys("firmware_update", "failed")
    rig.board.expect(lambda e: e.name == "hello", 60)  # "always restart for now" (§2.5)
    assert rig.dev.flash.system_parts == {1: 2302, 2: 2302, 3: 2302}

    _updates_enabled_and_idle(rig)
    assert _flash(rig, make_system_image(3, 3302))["ok"]
    rig.board.expect(lambda e: e.name == "hello", 60)
    assert rig.dev.flash.system_parts == {1: 2302, 2: 2302, 3: 3302}
    _updates_enabled_and_idle(rig)
    assert _flash(rig, make_system_image(1, 3302))["ok"]
    rig.board.expect(lambda e: e.name == "hello", 60)
    assert rig.dev.flash.system_parts == {1: 3302, 2: 2302, 3: 3302}

    _updates_enabled_and_idle(rig)
    back = _flash(rig, make_system_image(3, 2302))
    assert not back["ok"] and "system part 1 (3302) needs system part 3 >= 3302" in back["error"]
    rig.board.expect(lambda e: e.name == "hello", 60)
    assert rig.dev.flash.system_parts == {1: 3302, 2: 2302, 3: 3302}
    assert [b.data["safe_mode"] for b in rig.trace("booted")] == [False] * 5, "a 2.3.1 app runs on each mix"


def test_bootloader_dependency_is_checked_at_boot_not_at_install(companion_image: ImageFactory,
                                                                 sim_rig: RigFactory) -> None:
    """HAL_FLASH_End runs with userDepsOptional, which also skips a system part's bootloader
    dependency2 (`ota_flash_hal_stm32f2xx.cpp` ~183-186); at start-up nothing is optional, so part 2
    with an older bootloader than it needs (>= 1003, `modules/shared/system_module_version.mk`) is
    installed and the device then boots into safe mode (device-os PR #1850)."""
    rig = sim_rig(companion_image(1))
    rig.dev.flash.bootloader = 1002
    rig.dev.flash.system_parts.update({1: 3302, 3: 3302})
    _updates_enabled_and_idle(rig)
    assert _flash(rig, make_system_image(2, 3302))["ok"], "dependency2 (bootloader) is skipped at install"
    rig.until_kind("booted", 60)
    [unmet] = rig.trace("dependencies_unmet")
    assert "bootloader 0 >= 1003" in unmet.data["why"]
    assert rig.trace("booted")[-1].data["safe_mode"] is True
    # the healer reads the describe (part 2 wants bootloader >= 1003) and sends the bootloader of the
    # release the app needs (2.3.1: 1006); the next boot runs the app
    rig.board.expect(lambda e: e.name == "hello", 600)
    assert rig.dev.flash.bootloader == 1006 and rig.trace("booted")[-1].data["safe_mode"] is False


def test_bootloader_is_flashed_at_once_not_through_a_slot(companion_image: ImageFactory,
                                                          sim_rig: RigFactory) -> None:
    """HAL_FLASH_End copies a bootloader module directly (`flash_bootloader`, device-os v2.3.1
    `hal/src/stm32f2xx/ota_flash_hal_stm32f2xx.cpp` ~358-360) instead of registering a DCT slot."""
    rig = sim_rig(companion_image(1))
    _updates_enabled_and_idle(rig)
    assert _flash(rig, make_bootloader_image(1100))["ok"]
    assert rig.dev.flash.bootloader == 1100 and rig.dev.flash.slots == []
    assert rig.trace("bootloader_flashed")[0].data == {"version": 1100}


@pytest.mark.parametrize("bootloader_first", [True, False], ids=["major-move-bootloader", "policy-off"])
def test_safe_mode_heals_bootloader_then_parts_3_1_2(companion_image: ImageFactory, sim_rig: RigFactory,
                                                     bootloader_first: bool) -> None:
    """An app built for Device OS 3.3.1 (module 3302; its dependency names system part 2 >= 3302,
    `modules/shared/stm32f2xx/user_build.mk`) on a 2.3.1 Electron boots into safe mode; the healer,
    reading the device's describe, sends the 3.3.1 bootloader (1100) first — a move across major
    versions, §8.12 parameter — then system parts 3, 1, 2: the order their dependencies force
    (module 1 needs module 3, module 2 needs module 1; `modules/electron/system-part{1,2,3}/build.mk`),
    one per OTA and reset; then the app runs. Each step shows on the cloud's stream as
    `spark/status/safe-mode` with the device's modules, which is how a real bench follows it."""
    needy = companion_image(1, required_system_version=3302)
    rig = sim_rig(None, power_on=False,
                  bench_kw={"cloud_params": CloudParams(heal_bootloader_on_major_move=bootloader_first)})
    rig.dev.flash.user = needy
    rig.bench.cloud.upload_firmware(PRODUCT_ID, 1, needy)
    rig.power_on()
    hello = rig.board.expect(lambda e: e.name == "hello", 900)
    assert hello.get("product_version") == 1
    assert rig.dev.flash.system_parts == {1: 3302, 2: 3302, 3: 3302}
    assert rig.dev.flash.bootloader == (1100 if bootloader_first else 1006)
    steps = [json.loads(e["data"])["m"] for e in rig.cloud_events("spark/status/safe-mode")]
    versions = [{(m["f"], m["n"]): m["v"] for m in step} for step in steps]
    order = []
    for before, after in zip(versions, versions[1:] + [{("b", "0"): rig.dev.flash.bootloader,
                                                         **{("s", str(i)): 3302 for i in (1, 2, 3)}}]):
        order += [k for k in sorted(after) if k[0] in "bs" and after[k] != before.get(k)]
    expected = [("s", "3"), ("s", "1"), ("s", "2")]
    assert order == ([("b", "0")] if bootloader_first else []) + expected, order
    assert len([b for b in rig.trace("booted") if b.data["safe_mode"]]) == len(order)
    assert [b.data["safe_mode"] for b in rig.trace("booted")][-1] is False


def test_heal_step_follows_the_dependency_chain() -> None:
    """The healer's choice on describes alone (docs/reference/particle-ota.md §2.9): the oldest release
    that meets the app's dependency (2303 → 3.0.0, 3005, whose bootloader 1005 is older than 2.3.1's
    1006: not sent), bootloader first on a major move only when newer, parts in the order 3 -> 1 -> 2."""
    def describe(boot: int, parts: dict[int, int]) -> list[dict]:
        return [Module(FUNCTION_BOOTLOADER, 0, boot).describe()] + \
            [Module(SYSTEM, i, v, system_part_dependencies(i, v)).describe() for i, v in sorted(parts.items())]

    assert release_for(2303) == 3005 and release_for(3400) is None
    start = {1: 2302, 2: 2302, 3: 2302}
    step = heal_step(describe(1006, start), 2303, bootloader_on_major_move=True)
    assert (step.function, step.index, step.version) == (SYSTEM, 3, 3005)
    step = heal_step(describe(1006, start), 3302, bootloader_on_major_move=True)
    assert (step.function, step.index, step.version) == (FUNCTION_BOOTLOADER, 0, 1100)
    assert heal_step(describe(1006, start), 3302, bootloader_on_major_move=False).index == 3
    assert heal_step(describe(1100, {1: 2302, 2: 2302, 3: 3302}), 3302, bootloader_on_major_move=True).index == 1
    assert heal_step(describe(1100, {1: 3302, 2: 2302, 3: 3302}), 3302, bootloader_on_major_move=True).index == 2
    assert heal_step(describe(1100, {1: 3302, 2: 3302, 3: 3302}), 3302, bootloader_on_major_move=True) is None
    low = heal_step(describe(1000, {1: 3302, 2: 3302, 3: 3302}), 3302, bootloader_on_major_move=False)
    assert (low.function, low.version) == (FUNCTION_BOOTLOADER, 1100), "part 2 needs a bootloader >= 1003"
    assert heal_step(describe(1006, start), 3400, bootloader_on_major_move=True) is None, "no such Electron release"


def test_resume_after_a_system_part_change_sends_hello(companion_image: ImageFactory, sim_rig: RigFactory) -> None:
    """A resumed session skips HELLO only when the cached system-describe checksum still matches, and
    that checksum covers every module (device-os v2.3.1 `communication/src/protocol.cpp` ~317-343,
    SYSTEM_DESCRIBE_CRC; docs/reference/particle-ota.md §1.1, §1.2): after a new system part the
    resume sends HELLO and the describe, so the cloud learns the new modules."""
    rig = sim_rig(companion_image(1))
    _updates_enabled_and_idle(rig)
    rig.dev.reset("user")
    rig.until_kind("cloud_session", 60)
    assert rig.trace("cloud_session")[-1].data == {"resumed": True, "hello": False}, "nothing changed: no HELLO"
    _updates_enabled_and_idle(rig)
    assert _flash(rig, make_system_image(3, 3302))["ok"]
    rig.until_kind("cloud_session", 120)
    assert rig.trace("cloud_session")[-1].data == {"resumed": True, "hello": True}
    rig.run(5)  # the resume is local (docs/reference/particle-ota.md §1.2): HELLO is still on its way
    part3 = [m for m in rig.rec.modules if (m["f"], m["n"]) == ("s", "3")]
    assert part3 and part3[0]["v"] == 3302
