"""Deliberately bad firmware images, for the rejection scenarios (docs/reference/particle-ota.md §2.5).

HAL_FLASH_End checks range, platform and CRC; each defect here fails exactly one check.
"""
from __future__ import annotations

import struct
import zlib

DEFECTS = ("wrong_platform", "bad_crc", "truncated")


def _recrc(body: bytes) -> bytes:
    return body + struct.pack(">I", zlib.crc32(body) & 0xFFFFFFFF)


def apply(defect: str, image: bytes) -> bytes:
    """Return `image` with one defect; the other checks still pass."""
    if defect == "wrong_platform":
        body = bytearray(image[:-4])
        struct.pack_into("<H", body, 12, 12)  # module_info_t.platform_id → Argon (12)
        return _recrc(bytes(body))            # a valid CRC: only the platform check fails
    if defect == "bad_crc":
        data = bytearray(image)
        data[len(data) // 2] ^= 0xFF          # corrupted in transit or storage
        return bytes(data)
    if defect == "truncated":
        return image[: len(image) * 2 // 3]
    raise ValueError(f"unknown defect {defect!r}; expected one of {', '.join(DEFECTS)}")
