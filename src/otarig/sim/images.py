"""Simulator firmware images: Particle module binaries whose payload names a host build.

docs/design.md principle 2: "A firmware image is a Particle module binary (prefix header with platform
ID 10, module function, version; CRC-32 suffix) whose payload is the host build", so validation
of platform, size and CRC is real. The payload is a small JSON manifest naming the host `.so`
(content-addressed in the build cache), NUL-padded to the requested image size.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from .. import firmware
from .build import declared_product_version
from .deviceos import SYSTEM_MODULE_VERSION
from .electron_modules import FUNCTION_BOOTLOADER, system_part_dependencies

MANIFEST_MAGIC = "otarig-host-build"
#: system parts live at their own addresses (docs/reference/particle-ota.md §2.6 flash map)
SYSTEM_PART_START = {1: 0x8020000, 2: 0x8040000, 3: 0x8060000}
BOOTLOADER_START = 0x8000000


class ImageError(ValueError):
    """An image the simulated bootloader or HAL_FLASH_End would reject; names the failed check."""


@dataclass(frozen=True)
class SimImage:
    """A validated module and the host build it refers to."""

    info: firmware.ModuleInfo
    so_path: Path
    product_id: int
    product_version: int
    module_function: str  # "user" or "system"
    module_version: int
    required_system_version: int


#: what the product version field of a module holds when the app declares no PRODUCT_VERSION: the
#: 0xFFFF the Device OS linker script puts before the product fields (device-os v2.3.1
#: build/arm/linker/module_end.ld:5-6), which binary-version-reader reads as "not a product firmware"
#: (docs/reference/particle-cloud-api.md §5)
NO_PRODUCT_VERSION = 0xFFFF


def make_app_image(so_path: Path, *, product_id: int, product_version: int | None = None, size: int | None = None,
                   required_system_version: int = SYSTEM_MODULE_VERSION, platform_id: int = 10) -> bytes:
    """A user-part module for `so_path`, optionally padded to `size` bytes (e.g. a 100 KB app).

    Its product version is, by default, the one the build itself declares with `PRODUCT_VERSION(x)`
    (`NO_PRODUCT_VERSION` when it declares none), as on Device OS where the macro is what puts it in
    the module: a firmware without the macro must not get a version from whoever asked for the build."""
    if product_version is None:
        declared = declared_product_version(so_path)
        product_version = NO_PRODUCT_VERSION if declared is None else declared
    digest = hashlib.sha256(so_path.read_bytes()).hexdigest()
    manifest = {"magic": MANIFEST_MAGIC, "so": str(so_path.resolve()), "sha256": digest}
    return firmware.build_manifest_module(manifest, product_id=product_id, product_version=product_version,
                                          platform_id=platform_id, size=size,
                                          system_module_version=required_system_version)


def make_system_image(module_index: int, module_version: int, *, size: int = 4096) -> bytes:
    """A system-part module (the safe-mode healer's delivery, docs/reference/particle-ota.md §2.7, §2.9),
    carrying the dependencies that part of that version declares on the Electron."""
    return firmware.build_module(b"otarig system part", product_id=0, product_version=0,
                                 module_function=firmware.FUNCTION_SYSTEM_PART, module_index=module_index,
                                 module_version=module_version, start_address=SYSTEM_PART_START[module_index],
                                 size=size, dependencies=system_part_dependencies(module_index, module_version))


def make_bootloader_image(module_version: int, *, size: int = 4096) -> bytes:
    """A bootloader module (function 2, index 0, at 0x8000000: hal/src/electron/ota_module_bounds.c),
    which the healer sends first when it is needed (docs/reference/particle-ota.md §2.7, §2.9)."""
    return firmware.build_module(b"otarig bootloader", product_id=0, product_version=0,
                                 module_function=FUNCTION_BOOTLOADER, module_index=0,
                                 module_version=module_version, start_address=BOOTLOADER_START,
                                 size=size, dependencies=())


def read_image(data: bytes, *, platform_id: int = 10, max_size: int = 128 * 1024) -> SimImage:
    """Validate like HAL_FLASH_End (docs/reference/particle-ota.md §2.5: range, platform, CRC) and resolve the host build."""
    try:
        info = firmware.validate(data, platform_id=platform_id, max_size=max_size)
    except firmware.FirmwareError as exc:
        raise ImageError(str(exc)) from exc
    if info.module_function == firmware.FUNCTION_SYSTEM_PART:
        return SimImage(info, Path(), 0, 0, "system", info.module_version, 0)
    if info.module_function == FUNCTION_BOOTLOADER:
        return SimImage(info, Path(), 0, 0, "bootloader", info.module_version, 0)
    if info.module_function != firmware.FUNCTION_USER_PART:
        raise ImageError(f"module function {info.module_function_name!r} is not an application")
    required = max((d.module_version for d in info.dependencies
                    if d.module_function == firmware.FUNCTION_SYSTEM_PART), default=0)
    try:
        manifest = firmware.read_manifest(data)
        if manifest.get("magic") != MANIFEST_MAGIC:
            raise firmware.NotAModule("no otarig magic")
    except firmware.FirmwareError as exc:
        raise ImageError("module is valid but its payload is not an otarig host build "
                         "(a real Electron binary cannot run on the simulated bench)") from exc
    so_path = Path(manifest["so"])
    if not so_path.exists():
        raise ImageError(f"host build {so_path} named by the image is missing (rebuild the companion)")
    return SimImage(info, so_path, info.product_id or 0, info.product_version or 0, "user",
                    info.module_version, required)
