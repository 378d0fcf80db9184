"""The cloud's side of one OTA transfer: DELIVER(binary) of docs/reference/particle-ota.md §7.9.

UpdateBegin (fast, 512 B chunks) → on 5.03 mark pending; on ACK send flights of ≤ 40 chunks,
each followed by UpdateDone; resend what the device reports missing; finish on its result.
A device that stops answering fails the transfer; the cloud retries later from chunk 0
(legacy protocol: no resume, §2.4).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Callable

from .messages import BeginReply, Chunk, DoneReply, UpdateBegin, UpdateDone

if TYPE_CHECKING:
    from .cloud import SimCloud, DeviceRecord


@dataclass
class CloudFaults:
    """Cloud-side faults to inject (issue: blackhole, corrupted chunk)."""

    #: stop sending anything after this many chunks of a transfer (the device's watchdog fires)
    blackhole_after_chunks: int | None = None
    #: chunk indices sent corrupted once (the device requests them again)
    corrupt_chunks: set[int] = field(default_factory=set)
    #: apply the blackhole only to this many transfers (None = all)
    blackhole_transfers: int | None = 1
    #: chunk indices sent twice in a row once (the device drops the copy: a fast-OTA duplicate)
    duplicate_chunks: set[int] = field(default_factory=set)


class Delivery:
    """One transfer of one binary to one device."""

    def __init__(self, cloud: "SimCloud", rec: "DeviceRecord", version: int, binary: bytes,
                 transfer_id: int, on_end: Callable[["Delivery", str], None]) -> None:
        self.cloud = cloud
        self.rec = rec
        self.version = version
        self.binary = binary
        self.transfer_id = transfer_id
        self.on_end = on_end
        p = cloud.params
        self.chunk_size = p.chunk_size
        self.chunk_count = -(-len(binary) // self.chunk_size)
        self.chunks_sent = 0
        self.rounds = 0
        self.state = "begin"
        self._timeout = None
        self._corrupted: set[int] = set()
        self._duplicated: set[int] = set()
        self.duplicated_sent: list[int] = []
        #: chunk indices in the order sent (resends included): the evidence for "retried from chunk 0"
        self.sent_indices: list[int] = []
        self.resent: list[int] = []
        self.corrupted_sent: list[int] = []
        self.started_ms = cloud.sched.now_ms

    # -- sending -----------------------------------------------------------------------------
    def start(self) -> None:
        msg = UpdateBegin(self.transfer_id, len(self.binary), self.chunk_size, fast=True)
        self.cloud.send_to_device(self.rec, msg, msg.wire_bytes, "ota", reliable=True)
        self._arm_timeout()

    def _blackholed(self) -> bool:
        f = self.cloud.faults
        if f.blackhole_after_chunks is None:
            return False
        if f.blackhole_transfers is not None and self.cloud.blackholed_transfers >= f.blackhole_transfers \
                and self.transfer_id not in self.cloud.blackholed_ids:
            return False
        if self.chunks_sent >= f.blackhole_after_chunks:
            if self.transfer_id not in self.cloud.blackholed_ids:
                self.cloud.blackholed_ids.add(self.transfer_id)
                self.cloud.blackholed_transfers += 1
            return True
        return False

    def _send_flight(self, indices: list[int]) -> None:
        self.rounds += 1
        faults = self.cloud.faults
        for idx in indices:
            if self._blackholed():
                self.state = "blackholed"
                self._arm_timeout()
                return
            data = self.binary[idx * self.chunk_size:(idx + 1) * self.chunk_size]
            corrupt = idx in faults.corrupt_chunks and idx not in self._corrupted
            if corrupt:
                self._corrupted.add(idx)
                self.corrupted_sent.append(idx)
            if idx in self.sent_indices:
                self.resent.append(idx)
            self.sent_indices.append(idx)
            chunk = Chunk.make(self.transfer_id, idx, data, corrupt=corrupt)
            self.cloud.send_to_device(self.rec, chunk, chunk.wire_bytes, "ota")
            self.chunks_sent += 1
            if idx in faults.duplicate_chunks and idx not in self._duplicated and not corrupt:
                self._duplicated.add(idx)
                self.duplicated_sent.append(idx)
                self.cloud.send_to_device(self.rec, chunk, chunk.wire_bytes, "ota")
        done = UpdateDone(self.transfer_id)
        self.cloud.send_to_device(self.rec, done, done.wire_bytes, "ota", reliable=True)
        self._arm_timeout()

    def _arm_timeout(self) -> None:
        if self._timeout is not None:
            self._timeout.cancel()
        self._timeout = self.cloud.sched.after(self.cloud.params.update_done_timeout_ms, self._timed_out)

    def _timed_out(self) -> None:
        self._timeout = None
        if self.state in ("done", "failed", "blackholed"):
            return  # a blackholed transfer stays in limbo until the device goes away (PR #1558)
        self._end("failed")

    # -- device replies -----------------------------------------------------------------------
    def begin_reply(self, reply: BeginReply) -> None:
        if self.state != "begin":
            return
        if not reply.accepted:
            self._end("refused")  # docs/reference/particle-ota.md §7.9: on 5.03 mark pending_notified, send pending=true
            return
        self.state = "sending"
        self.cloud.stream_event(self.rec, "spark/flash/status", "started ")
        first = list(range(min(self.cloud.params.flight_chunks, self.chunk_count)))
        self._send_flight(first)

    def done_reply(self, reply: DoneReply) -> None:
        if self.state != "sending":
            return
        if reply.missing:
            self._send_flight(list(reply.missing))
            return
        self._end("success" if reply.ok else "invalid")

    def device_gone(self) -> None:
        """docs/reference/particle-ota.md §7.9: device disconnect mid-transfer → spark/flash/status failed."""
        if self.state not in ("done", "failed"):
            self._end("failed")

    def log(self, outcome: str) -> dict:
        """What happened in this transfer, for `SimCloud.transfer_log`."""
        return {"transfer_id": self.transfer_id, "device_id": self.rec.device_id, "version": self.version,
                "size": len(self.binary), "chunk_count": self.chunk_count, "outcome": outcome,
                "first_chunk": self.sent_indices[0] if self.sent_indices else None,
                "chunks_sent": self.chunks_sent, "rounds": self.rounds, "resent": list(self.resent),
                "corrupted": list(self.corrupted_sent), "started_ms": self.started_ms,
                "ended_ms": self.cloud.sched.now_ms}

    def _end(self, outcome: str) -> None:
        if self._timeout is not None:
            self._timeout.cancel()
            self._timeout = None
        self.state = "done" if outcome == "success" else "failed"
        self.on_end(self, outcome)
