"""Device side of the legacy OTA transfer (docs/reference/particle-ota.md §7.4, §2.3–2.5).

Pure state: it decides, the `Electron` acts (events, replies, resets).
"""
from __future__ import annotations

import enum
import zlib
from dataclasses import dataclass, field

from .messages import Chunk, UpdateBegin

#: docs/reference/particle-ota.md §2.4: MISSED_CHUNKS_TO_SEND = 40 on the Electron (protocol_defs.h).
MISSED_CHUNKS_TO_SEND = 40


class OtaState(enum.Enum):
    IDLE = "idle"
    RECEIVING = "receiving"


@dataclass
class OtaReceiver:
    """The chunk bitmap and OTA scratch region of one transfer."""

    state: OtaState = OtaState.IDLE
    transfer_id: int = -1
    chunk_size: int = 512
    file_length: int = 0
    fast: bool = True
    region: bytearray = field(default_factory=bytearray)
    received: list[bool] = field(default_factory=list)
    received_this_round: int = 0
    chunks_received: int = 0
    bad_crc: int = 0
    duplicates: int = 0

    @property
    def chunk_count(self) -> int:
        return -(-self.file_length // self.chunk_size) if self.chunk_size else 0

    def begin(self, msg: UpdateBegin) -> None:
        """docs/reference/particle-ota.md §2.3 step 4-5: erase the region; fast OTA starts with an all-missing bitmap."""
        self.state = OtaState.RECEIVING
        self.transfer_id = msg.transfer_id
        self.chunk_size = msg.chunk_size or 512
        self.file_length = msg.file_length
        self.fast = msg.fast
        self.region = bytearray(b"\xff" * msg.file_length)  # erased flash reads 0xFF
        self.received = [not msg.fast] * self.chunk_count
        self.received_this_round = 0
        self.chunks_received = 0
        self.bad_crc = 0
        self.duplicates = 0

    def classify(self, chunk: Chunk) -> str:
        """What ChunkedTransfer::handle_chunk makes of a chunk, before anything is written
        (docs/reference/particle-ota.md §2.4, §7.4; device-os v2.3.1 communication/src/chunked_transfer.cpp
        ~187-201): "out_of_range" (ignored), "duplicate" (fast OTA only: dropped before the CRC is even
        computed), "bad_crc" (not written; fast OTA asks for it again later) or "good"."""
        if not 0 <= chunk.index < self.chunk_count:
            return "out_of_range"
        if self.fast and self.received[chunk.index]:
            return "duplicate"
        if zlib.crc32(chunk.data) != chunk.crc:
            return "bad_crc"
        return "good"

    def accept_chunk(self, chunk: Chunk) -> str:
        """docs/reference/particle-ota.md §2.4: write the chunk only if `classify` says it is good; returns the class."""
        kind = self.classify(chunk)
        if kind == "bad_crc":
            self.bad_crc += 1
        elif kind == "duplicate":
            self.duplicates += 1
        if kind != "good":
            return kind
        start = chunk.index * self.chunk_size
        self.region[start:start + len(chunk.data)] = chunk.data
        self.received[chunk.index] = True
        self.received_this_round += 1
        self.chunks_received += 1
        return kind

    def missing_request(self) -> tuple[int, ...]:
        """docs/reference/particle-ota.md §2.4 handle_update_done: request up to
        min(received_last_round + max(20%·received_last_round, 2), MISSED_CHUNKS_TO_SEND) chunks."""
        missing = [i for i, ok in enumerate(self.received) if not ok]
        if not missing:
            return ()
        got = self.received_this_round
        n = min(got + max(got // 5, 2), MISSED_CHUNKS_TO_SEND)
        self.received_this_round = 0
        return tuple(missing[:n])

    def image(self) -> bytes:
        return bytes(self.region)

    def reset(self) -> None:
        """Transfer over (finished or cancelled); the region's content is never applied unless registered."""
        self.state = OtaState.IDLE
        self.received = []
        self.region = bytearray()
