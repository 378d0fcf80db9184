"""Messages of the legacy ChunkedTransfer OTA protocol and cloud events (docs/reference/particle-ota.md §2.3–2.4).

They travel over the `CellularLink` as Python objects; the link accounts for their on-air size.
"""
from __future__ import annotations

import zlib
from dataclasses import dataclass, field

from .link import CHUNK_OVERHEAD_BYTES, MESSAGE_OVERHEAD_BYTES


@dataclass(frozen=True)
class UpdateBegin:
    """Cloud → device. `fast` is flags bit0 (docs/reference/particle-ota.md §2.3 step 1)."""

    transfer_id: int
    file_length: int
    chunk_size: int = 512
    fast: bool = True

    @property
    def wire_bytes(self) -> int:
        return MESSAGE_OVERHEAD_BYTES + 12


@dataclass(frozen=True)
class Chunk:
    """Cloud → device. Carries a CRC-32 of its data and, in fast mode, its index (docs/reference/particle-ota.md §2.4)."""

    transfer_id: int
    index: int
    data: bytes
    crc: int

    @staticmethod
    def make(transfer_id: int, index: int, data: bytes, *, corrupt: bool = False) -> "Chunk":
        crc = zlib.crc32(data)
        if corrupt:  # a bit flipped on the air: the CRC option no longer matches
            data = bytes([data[0] ^ 0x01]) + data[1:] if data else data
        return Chunk(transfer_id, index, data, crc)

    @property
    def wire_bytes(self) -> int:
        return CHUNK_OVERHEAD_BYTES + len(self.data)


@dataclass(frozen=True)
class UpdateDone:
    transfer_id: int

    @property
    def wire_bytes(self) -> int:
        return MESSAGE_OVERHEAD_BYTES


@dataclass(frozen=True)
class BeginReply:
    """Device → cloud: ACK + UpdateReady, or the coded ACK 5.03 when updates are disabled (§1.5)."""

    transfer_id: int
    accepted: bool

    @property
    def wire_bytes(self) -> int:
        return MESSAGE_OVERHEAD_BYTES


@dataclass(frozen=True)
class DoneReply:
    """Device → cloud: BAD + ChunkMissed(indices), or the validation result (§2.4)."""

    transfer_id: int
    missing: tuple[int, ...] = ()
    ok: bool = False
    error: str = ""

    @property
    def complete(self) -> bool:
        return not self.missing

    @property
    def wire_bytes(self) -> int:
        return MESSAGE_OVERHEAD_BYTES + 2 * len(self.missing)


@dataclass(frozen=True)
class CloudEvent:
    """An event between device and cloud (publish or cloud → device system event)."""

    name: str
    data: str = ""
    private: bool = True
    extra: dict = field(default_factory=dict)

    @property
    def wire_bytes(self) -> int:
        return MESSAGE_OVERHEAD_BYTES + len(self.name) + len(self.data)
