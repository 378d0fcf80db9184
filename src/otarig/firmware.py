"""Particle module binaries: parse, validate, build.

A Particle firmware image is a *module*: a 24-byte prefix (``module_info_t``), the code, a suffix
(``module_info_suffix_t`` preceded by the product ID and version), and a CRC-32 over everything
before it. Device OS checks range, platform and CRC before it accepts an OTA image
(``docs/reference/particle-ota.md`` §2.5), so the simulated Electron must run the same checks on the
same bytes; this module is where those checks live.

Layout (all little-endian except the CRC), from ``dynalib/inc/module_info.h`` of
particle-iot/device-os (the ``STATIC_ASSERT_MODULE_INFO_OFFSET`` offsets) and checked against the
real tinker binaries shipped inside particle-cli 3.51.0::

    prefix, at offset 0 (user parts) or after the vector table (0x184 Gen 2 system parts,
    0x200 Gen 3, 0x10C Core):
      0  u32 module_start_address      first byte of the module in flash
      4  u32 module_end_address        exclusive end; the 4-byte CRC starts here
      8  u8  reserved                  (platform specific)
      9  u8  flags                     (``reserved2`` in Device OS 2.x; module flags later)
     10  u16 module_version
     12  u16 platform_id
     14  u8  module_function           5 = user part, 4 = system part, ...
     15  u8  module_index
     16  u8,u8,u16 dependency          function, index, version
     20  u8,u8,u16 dependency2
    suffix, counted back from the end of the file:
    -44  u16 product_id                ``.modinfo.product_id`` (docs/reference/particle-ota.md §4.2)
    -42  u16 product_version
    -40  u16 reserved
    -38  32  SHA-256 of every byte before this field
     -6  u16 suffix size               40 = product fields + module_info_suffix_t
     -4  u32 CRC-32 (IEEE, zlib), **big-endian**, of every byte before it
"""

from __future__ import annotations

import hashlib
import json
import struct
import zlib
from dataclasses import asdict, dataclass, field
from typing import Any

PREFIX_SIZE = 24
"""``sizeof(module_info_t)`` on a 32-bit MCU."""
SUFFIX_SIZE = 40
"""product_id + product_version + ``module_info_suffix_t`` (reserved, sha[32], size)."""
BASE_SUFFIX_SIZE = 36
"""``sizeof(module_info_suffix_t)`` without the product fields (older modules)."""
CRC_SIZE = 4

ELECTRON_PLATFORM_ID = 10
USER_PART_MAX_SIZE = 128 * 1024
"""Electron user-app slot: 0x8080000, 128 KB (docs/reference/particle-ota.md §2.6 flash map)."""

# Device OS 2.3.0 is system module version 2301 (device-os system/system-versions.md); 2.3.1, the
# Electron LTS release this rig targets, follows as 2302.
DEVICE_OS_2_3_1_MODULE_VERSION = 2302
# USER_PART_MODULE_VERSION of 2.x user builds (the 1.5+ tinker binaries carry 6).
USER_PART_MODULE_VERSION = 6

PLATFORM_NAMES: dict[int, str] = {
    0: "core",
    3: "gcc",
    6: "photon",
    8: "p1",
    10: "electron",
    12: "argon",
    13: "boron",
    14: "xenon",
    15: "esomx",
    22: "asom",
    23: "bsom",
    25: "b5som",
    26: "tracker",
    28: "trackerm",
    32: "p2",
    35: "msom",
}
"""Platform IDs (docs/reference/particle-ota.md §4.1, ``hal/shared/platforms.h``) plus the ones seen in CLI tinker binaries."""

MODULE_FUNCTIONS: dict[int, str] = {
    0: "none",
    1: "resource",
    2: "bootloader",
    3: "monolithic",
    4: "system-part",
    5: "user-part",
    6: "settings",
    7: "ncp-firmware",
    8: "radio-stack",
    9: "asset",
}
FUNCTION_SYSTEM_PART = 4
FUNCTION_USER_PART = 5

USER_PART_SLOTS: dict[int, tuple[int, int]] = {
    10: (0x8080000, 128 * 1024),  # docs/reference/particle-ota.md §2.6; modules/electron/modular.mk
}
"""Known user-part slots (start address, size) whose range validate() checks."""

_DEFAULT_USER_START: dict[int, int] = {
    6: 0x80A0000,
    8: 0x80A0000,
    10: 0x8080000,
    12: 0xD4000,
    13: 0xD4000,
    23: 0xD4000,
    25: 0xD4000,
    26: 0xD4000,
}

# Where a prefix can sit: user parts at 0; Gen 2 system parts after the 0x184-byte vector table,
# Gen 3 after 0x200, Core monolithic after 0x10C.
_PREFIX_OFFSETS = (0, 0x184, 0x200, 0x10C, 0xC0)
_MAX_PLAUSIBLE_MODULE = 16 * 1024 * 1024
_PREFIX = struct.Struct("<IIBBHHBBBBHBBH")


def platform_name(platform_id: int) -> str:
    """Human name of a platform ID, or ``platform N`` when unknown."""
    return PLATFORM_NAMES.get(platform_id, f"platform {platform_id}")


class FirmwareError(ValueError):
    """A module binary failed a check; ``check`` names which one."""

    check = "firmware"

    def __init__(self, message: str) -> None:
        super().__init__(f"{self.check}: {message}")


class Truncated(FirmwareError):
    """Shorter than a module, or than its own header says."""

    check = "truncated"


class NotAModule(FirmwareError):
    """No plausible module prefix, or bytes beyond the module's end."""

    check = "not-a-module"


class WrongPlatform(FirmwareError):
    """Built for another platform (Device OS: SYSTEM_ERROR_OTA_INVALID_PLATFORM, §2.5)."""

    check = "wrong-platform"

    def __init__(self, found: int, expected: int) -> None:
        self.found = found
        self.expected = expected
        super().__init__(
            f"module is for platform {found} ({platform_name(found)}), "
            f"expected {expected} ({platform_name(expected)})"
        )


class BadCrc(FirmwareError):
    """Stored CRC-32 does not match (Device OS: OTA_INTEGRITY_CHECK_FAILED, §2.5)."""

    check = "bad-crc"

    def __init__(self, stored: int, computed: int) -> None:
        self.stored = stored
        self.computed = computed
        super().__init__(f"stored CRC-32 {stored:08x} != computed {computed:08x}")


class TooLarge(FirmwareError):
    """Bigger than the destination slot."""

    check = "too-large"

    def __init__(self, size: int, max_size: int) -> None:
        self.size = size
        self.max_size = max_size
        super().__init__(f"module is {size} bytes, the limit is {max_size} bytes")


class BadRange(FirmwareError):
    """Start/end address outside the platform's user slot (Device OS: OTA_INVALID_ADDRESS, §2.5)."""

    check = "bad-range"


@dataclass(frozen=True)
class Dependency:
    """One ``module_dependency_t``."""

    module_function: int
    module_index: int
    module_version: int

    @property
    def module_function_name(self) -> str:
        return MODULE_FUNCTIONS.get(self.module_function, f"function {self.module_function}")


@dataclass(frozen=True)
class ModuleInfo:
    """Everything the prefix, suffix and CRC of a module say."""

    size: int
    prefix_offset: int
    start_address: int
    end_address: int
    reserved: int
    flags: int
    module_version: int
    platform_id: int
    module_function: int
    module_index: int
    dependencies: tuple[Dependency, ...]
    product_id: int | None
    product_version: int | None
    suffix_size: int
    sha256: str
    sha256_computed: str
    crc_stored: int
    crc_computed: int
    payload_offset: int = field(repr=False)
    payload_end: int = field(repr=False)

    @property
    def platform_name(self) -> str:
        return platform_name(self.platform_id)

    @property
    def module_function_name(self) -> str:
        return MODULE_FUNCTIONS.get(self.module_function, f"function {self.module_function}")

    @property
    def crc_ok(self) -> bool:
        return self.crc_stored == self.crc_computed

    @property
    def sha256_ok(self) -> bool:
        return self.sha256 == self.sha256_computed

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready view (addresses and CRCs as hex strings, names included)."""
        d = asdict(self)
        d.pop("payload_offset")
        d.pop("payload_end")
        d["start_address"] = f"0x{self.start_address:08x}"
        d["end_address"] = f"0x{self.end_address:08x}"
        d["crc_stored"] = f"{self.crc_stored:08x}"
        d["crc_computed"] = f"{self.crc_computed:08x}"
        d["crc_ok"] = self.crc_ok
        d["sha256_ok"] = self.sha256_ok
        d["platform_name"] = self.platform_name
        d["module_function_name"] = self.module_function_name
        d["dependencies"] = [
            {**asdict(dep), "module_function_name": dep.module_function_name}
            for dep in self.dependencies
        ]
        return d


def _plausible_prefix(data: bytes, offset: int) -> tuple[int, ...] | None:
    """Fields of a prefix at ``offset`` if they look like a module (not checking the length)."""
    if len(data) < offset + PREFIX_SIZE:
        return None
    fields = _PREFIX.unpack_from(data, offset)
    start, end, _res, _flags, _ver, _plat, func, _idx, d1f, d1i, d1v, d2f, d2i, d2v = fields
    if end <= start or end - start + CRC_SIZE > _MAX_PLAUSIBLE_MODULE:
        return None
    if not 1 <= func <= max(MODULE_FUNCTIONS):
        return None
    for dfunc, didx, dver in ((d1f, d1i, d1v), (d2f, d2i, d2v)):
        if dfunc > max(MODULE_FUNCTIONS):
            return None
        if dfunc == 0 and (didx or dver):
            return None
    # A module's header length must at least hold its own prefix and suffix.
    if end - start + CRC_SIZE < offset + PREFIX_SIZE + BASE_SUFFIX_SIZE + CRC_SIZE:
        return None
    return fields


def _find_prefix(data: bytes) -> tuple[int, tuple[int, ...]]:
    """Locate the prefix: prefer one whose length matches the file exactly, then any plausible."""
    candidates = [(off, f) for off in _PREFIX_OFFSETS if (f := _plausible_prefix(data, off))]
    for off, f in candidates:
        if f[1] - f[0] + CRC_SIZE == len(data):
            return off, f
    if candidates:
        return candidates[0]
    if len(data) < PREFIX_SIZE + BASE_SUFFIX_SIZE + CRC_SIZE:
        raise Truncated(
            f"{len(data)} bytes is shorter than the smallest module "
            f"({PREFIX_SIZE + BASE_SUFFIX_SIZE + CRC_SIZE} bytes)"
        )
    raise NotAModule(
        f"no module prefix (module_info_t) at offsets "
        f"{', '.join(hex(o) for o in _PREFIX_OFFSETS)}"
    )


def parse(data: bytes) -> ModuleInfo:
    """Read a module's prefix, suffix and CRC. Raises only Truncated / NotAModule.

    Parsing never judges platform, size or CRC: those are ``validate``'s job, so ``inspect`` can
    still show a broken image.
    """
    data = bytes(data)
    offset, f = _find_prefix(data)
    start, end, reserved, flags, version, plat, func, idx, d1f, d1i, d1v, d2f, d2i, d2v = f
    expected = end - start + CRC_SIZE
    if expected > len(data):
        raise Truncated(f"header says {expected} bytes, file has {len(data)}")
    if expected < len(data):
        raise NotAModule(
            f"header says {expected} bytes but the file has {len(data)} "
            f"({len(data) - expected} bytes after the module's CRC)"
        )
    n = len(data)
    suffix_size = struct.unpack_from("<H", data, n - 6)[0]
    sha_stored = data[n - 38 : n - 6].hex()
    sha_computed = hashlib.sha256(data[: n - 38]).hexdigest()
    product_id: int | None = None
    product_version: int | None = None
    # Suffix size >= 40 means the product fields are there (docs/reference/particle-ota.md §4.2); 0xffff-filled padding in
    # some bootloaders reads as a huge size, which we treat the same way.
    if suffix_size >= SUFFIX_SIZE and n >= offset + PREFIX_SIZE + SUFFIX_SIZE + CRC_SIZE:
        product_id, product_version = struct.unpack_from("<HH", data, n - 44)
    deps = tuple(
        Dependency(df, di, dv) for df, di, dv in ((d1f, d1i, d1v), (d2f, d2i, d2v)) if df != 0
    )
    tail = suffix_size if BASE_SUFFIX_SIZE <= suffix_size <= n - offset - PREFIX_SIZE - CRC_SIZE else SUFFIX_SIZE
    return ModuleInfo(
        size=n,
        prefix_offset=offset,
        start_address=start,
        end_address=end,
        reserved=reserved,
        flags=flags,
        module_version=version,
        platform_id=plat,
        module_function=func,
        module_index=idx,
        dependencies=deps,
        product_id=product_id,
        product_version=product_version,
        suffix_size=suffix_size,
        sha256=sha_stored,
        sha256_computed=sha_computed,
        crc_stored=struct.unpack_from(">I", data, n - CRC_SIZE)[0],
        crc_computed=zlib.crc32(data[: n - CRC_SIZE]) & 0xFFFFFFFF,
        payload_offset=offset + PREFIX_SIZE,
        payload_end=n - CRC_SIZE - tail,
    )


def validate(
    data: bytes,
    *,
    platform_id: int = ELECTRON_PLATFORM_ID,
    max_size: int = USER_PART_MAX_SIZE,
) -> ModuleInfo:
    """Run the checks an Electron runs on an OTA image; return the parsed info or raise.

    Order: structure (Truncated/NotAModule) → size (TooLarge; the file size is known when the
    transfer begins, §2.3) → platform → address range → CRC-32 (HAL_FLASH_End's checks, §2.5).
    Dependencies are not checked: user-part dependencies are optional at OTA time and an unmet one
    leads to safe mode after reset, which is the simulator's business (§2.5 item 2, §2.7).
    """
    if len(data) > max_size:
        # Still tell Truncated/NotAModule apart from a large valid-looking file.
        parse(data)
        raise TooLarge(len(data), max_size)
    info = parse(data)
    if info.platform_id != platform_id:
        raise WrongPlatform(info.platform_id, platform_id)
    slot = USER_PART_SLOTS.get(platform_id)
    if slot and info.module_function == FUNCTION_USER_PART:
        slot_start, slot_size = slot
        if info.start_address != slot_start or info.end_address + CRC_SIZE > slot_start + slot_size:
            raise BadRange(
                f"module spans 0x{info.start_address:08x}..0x{info.end_address + CRC_SIZE:08x}, "
                f"the {platform_name(platform_id)} user slot is "
                f"0x{slot_start:08x}..0x{slot_start + slot_size:08x}"
            )
    if not info.crc_ok:
        raise BadCrc(info.crc_stored, info.crc_computed)
    return info


def payload(data: bytes) -> bytes:
    """The bytes between the prefix and the suffix (for a built module: payload plus padding)."""
    info = parse(data)
    return bytes(data[info.payload_offset : info.payload_end])


def build_module(
    payload: bytes,
    *,
    product_id: int,
    product_version: int,
    platform_id: int = ELECTRON_PLATFORM_ID,
    module_version: int = USER_PART_MODULE_VERSION,
    module_index: int = 1,
    system_part_index: int = 2,
    system_module_version: int = DEVICE_OS_2_3_1_MODULE_VERSION,
    start_address: int | None = None,
    size: int | None = None,
    pad: bytes = b"\x00",
    flags: int = 0,
    module_function: int = FUNCTION_USER_PART,
    dependencies: tuple[Dependency, ...] | None = None,
) -> bytes:
    """A valid user-part module around arbitrary ``payload`` bytes.

    The dependency defaults mirror a Device OS 2.3.1 Electron user build: one dependency on
    system part 2 (``modules/shared/stm32f2xx/user_build.mk``: ``MODULE_DEPENDENCY=4,2,…``,
    ``MODULE_DEPENDENCY2=0,0,0``); other functions default to none. ``dependencies`` (at most two)
    replaces the defaults, e.g. for a system part (``otarig.sim.electron_modules``). ``size`` pads the image to exactly that many bytes with ``pad``
    so tests can make large images; the payload stays small (the simulator's build manifest).
    """
    if not 0 <= product_id <= 0xFFFF or not 0 <= product_version <= 0xFFFF:
        raise ValueError("product_id and product_version are 16-bit (docs/reference/particle-ota.md §4.2)")
    if len(pad) != 1:
        raise ValueError("pad must be one byte")
    overhead = PREFIX_SIZE + SUFFIX_SIZE + CRC_SIZE
    body = bytes(payload)
    if size is not None:
        if size < overhead + len(body):
            raise ValueError(f"size {size} cannot hold {len(body)} payload bytes + {overhead} overhead")
        body += pad * (size - overhead - len(body))
    total = overhead + len(body)
    start = start_address if start_address is not None else _DEFAULT_USER_START.get(platform_id, 0x8080000)
    end = start + total - CRC_SIZE
    if dependencies is None:
        deps = [(FUNCTION_SYSTEM_PART, system_part_index, system_module_version)] \
            if module_function == FUNCTION_USER_PART else []
    else:
        if len(dependencies) > 2:
            raise ValueError("a module has at most two dependencies (dependency, dependency2)")
        deps = [(d.module_function, d.module_index, d.module_version) for d in dependencies]
    deps += [(0, 0, 0)] * (2 - len(deps))
    prefix = _PREFIX.pack(
        start, end, 0, flags, module_version, platform_id, module_function, module_index, *deps[0], *deps[1],
    )
    head = prefix + body + struct.pack("<HHH", product_id, product_version, 0)
    head += hashlib.sha256(head).digest() + struct.pack("<H", SUFFIX_SIZE)
    return head + struct.pack(">I", zlib.crc32(head) & 0xFFFFFFFF)


def with_product(data: bytes, *, product_id: int, product_version: int) -> bytes:
    """The same module with its suffix's product ID and version rewritten, SHA-256 and CRC-32
    recomputed. Device OS reports these suffix fields at the handshake, and the cloud checks an
    upload's version against them (docs/reference/particle-ota.md §4.2), so this is how one build serves a run whose
    product versions are allocated above those the product already has."""
    info = parse(data)
    if info.product_id is None or info.suffix_size < SUFFIX_SIZE:
        raise NotAModule("module has no product fields in its suffix (built without PRODUCT_ID/PRODUCT_VERSION?)")
    if not 0 <= product_id <= 0xFFFF or not 0 <= product_version <= 0xFFFF:
        raise ValueError("product_id and product_version are 16-bit (docs/reference/particle-ota.md §4.2)")
    if (info.product_id, info.product_version) == (product_id, product_version):
        return bytes(data)
    n = len(data)
    head = bytearray(data[: n - 38])
    struct.pack_into("<HH", head, n - 44, product_id, product_version)
    head += hashlib.sha256(head).digest() + data[n - 6 : n - 4]
    return bytes(head) + struct.pack(">I", zlib.crc32(head) & 0xFFFFFFFF)


def build_manifest_module(manifest: dict[str, Any], **kwargs: Any) -> bytes:
    """``build_module`` with a JSON manifest as payload, NUL-padded (JSON never contains NUL)."""
    kwargs.setdefault("pad", b"\x00")
    if kwargs["pad"] != b"\x00":
        raise ValueError("manifest modules are NUL-padded so read_manifest can find the end")
    return build_module(json.dumps(manifest, sort_keys=True).encode(), **kwargs)


def read_manifest(data: bytes) -> dict[str, Any]:
    """The JSON manifest of a module made by ``build_manifest_module``."""
    raw = payload(data).rstrip(b"\x00")
    try:
        value = json.loads(raw.decode())
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise NotAModule(f"payload is not a JSON manifest ({exc})") from None
    if not isinstance(value, dict):
        raise NotAModule("payload JSON is not an object")
    return value
