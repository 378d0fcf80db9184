"""A simulated board's USB CDC port: a pty behind a stable symlink (Linux).

The rig opens `link` with pyserial exactly as it opens `/dev/serial/by-id/...` on a real bench.
On reset the port vanishes (symlink removed, pty closed: the rig's reads fail as with a USB
device that re-enumerates) and later reappears as a new pty, a new *generation*.

Synchronisation with the rig (the simulated bench runs in virtual time, the kernel does not):

* device → rig: `write` counts every byte it accepts in `tx_count`; bytes the kernel would not take
  yet wait in a queue that `flush` retries. `delivered` = bytes handed to the kernel this
  generation. After running the world, the bench calls `deliver(board.drain_to)`, which makes the
  board read exactly `delivered` bytes of generation `generation` before virtual time moves on.
* rig → device: the rig counts what it wrote on this generation (`Board.tx_count`). Before the
  device reads, the bench calls `deliver(board.drain_to)` (which also tells the board the current
  generation) and then, if `board.generation == generation`, `pull(board.tx_count)`, so every
  byte the rig has written is in hand, whatever the kernel's timing. (A board on an older
  generation wrote into a vanished port: those bytes are gone, as on real hardware.)

Bytes still in the kernel when the port vanishes are lost, as on a real USB disconnect: drain
before `vanish` if the rig should see them.
"""

from __future__ import annotations

import errno
import fcntl
import os
import select
import struct
import termios
import time
import tty
from collections.abc import Callable
from pathlib import Path

__all__ = ["SimSerialPort", "PortSyncError"]

_READ_CHUNK = 4096


class PortSyncError(RuntimeError):
    """The rig and the simulated port disagree on how many bytes were exchanged."""


class SimSerialPort:
    """Device side of a simulated USB CDC port (pty master), published at `link`."""

    def __init__(self, link: Path | str) -> None:
        self.link = Path(link)
        self.generation = 0
        self.tx_count = 0
        self.rx_count = 0
        self._master: int | None = None
        self._slave: int | None = None
        self._pending = bytearray()

    # -- lifecycle -------------------------------------------------------------------------

    @property
    def present(self) -> bool:
        """True between `appear` and `vanish` (the USB device is enumerated)."""
        return self._master is not None

    @property
    def tty_path(self) -> str | None:
        """The pty slave the link points at now (changes per generation)."""
        return None if self._slave is None else os.ttyname(self._slave)

    def appear(self) -> None:
        """Enumerate: a fresh pty, published atomically at `link`; a new generation."""
        if self.present:
            self.vanish()
        master, slave = os.openpty()
        try:
            # Raw: no echo of device output back to the device, no newline translation.
            tty.setraw(slave)
            flags = fcntl.fcntl(master, fcntl.F_GETFL)
            fcntl.fcntl(master, fcntl.F_SETFL, flags | os.O_NONBLOCK)
            slave_path = os.ttyname(slave)
            # Keep the slave open: what the device prints before the rig opens the port then
            # waits in the kernel instead of being dropped (a real CDC host buffers it too).
            tmp = self.link.with_name(f".{self.link.name}.{os.getpid()}.tmp")
            if tmp.is_symlink() or tmp.exists():
                tmp.unlink()
            os.symlink(slave_path, tmp)
            os.replace(tmp, self.link)
        except BaseException:
            os.close(master)
            os.close(slave)
            raise
        self._master, self._slave = master, slave
        self.generation += 1
        self.tx_count = 0
        self.rx_count = 0
        self._pending.clear()

    def vanish(self) -> None:
        """Disappear like USB CDC on reset: unlink, close the pty (the rig's reads then fail)."""
        if self.link.is_symlink():
            self.link.unlink()
        for fd in (self._master, self._slave):
            if fd is not None:
                os.close(fd)
        self._master = self._slave = None
        self._pending.clear()

    def drain_out(self, timeout_wall: float = 3.0, stalled_wall: float = 1.0, settle_wall: float = 0.1) -> bool:
        """Before vanishing with a reader in another process (a stand-in bench): hand over what is
        queued and wait, bounded, until that reader has read it. A real Electron's last lines
        before a reset reach the host (Device OS resets a moment after `complete`); a pty closed
        at once would drop them. The kernel moves written bytes to the reader's queue a moment
        later (a work queue), so "nothing waiting" counts only once it has held for `settle_wall`.
        Gives up after `timeout_wall`, or once bytes wait unread for `stalled_wall` (nobody is
        reading). Returns False if the reader did not read it all."""
        start = time.monotonic()
        deadline = start + timeout_wall
        last_change, last_waiting, empty_since = start, -1, None
        while self._master is not None and self._slave is not None:
            self.flush()
            try:
                waiting = struct.unpack("i", fcntl.ioctl(self._slave, termios.FIONREAD, b"\0\0\0\0"))[0]
            except OSError:
                return False
            now = time.monotonic()
            queued = waiting + len(self._pending)
            if queued == 0:
                empty_since = now if empty_since is None else empty_since
                if now - empty_since >= settle_wall:
                    return True
            else:
                empty_since = None
            if queued != last_waiting:
                last_change, last_waiting = now, queued
            if now >= deadline or (queued and now - last_change >= stalled_wall):
                return False
            time.sleep(0.002)  # wall time: the reader is another process
        return False

    def close(self) -> None:
        """Release the pty for good (end of simulation)."""
        if self.present:
            self.vanish()

    # -- device → rig ------------------------------------------------------------------------

    def write(self, data: bytes) -> int:
        """Device output; never blocks. Returns bytes accepted (0 when the port is absent)."""
        if self._master is None:
            return 0  # nobody enumerated us: the bytes go nowhere, as on a real unplugged port
        data = bytes(data)
        self.tx_count += len(data)
        self._pending += data
        self.flush()
        return len(data)

    def flush(self) -> int:
        """Hand queued bytes to the kernel as far as it takes them; returns bytes still queued."""
        while self._pending and self._master is not None:
            try:
                n = os.write(self._master, self._pending)
            except BlockingIOError:
                break
            except OSError as exc:
                if exc.errno in (errno.EAGAIN, errno.EWOULDBLOCK):
                    break
                raise
            del self._pending[:n]
        return len(self._pending)

    @property
    def pending(self) -> int:
        """Accepted bytes the kernel has not taken yet (the rig is not reading)."""
        return len(self._pending)

    @property
    def delivered(self) -> int:
        """Bytes of this generation handed to the kernel: what `Board.drain_to` can receive."""
        return self.tx_count - len(self._pending)

    def deliver(self, drain: Callable[[int, int], object]) -> None:
        """Push everything accepted to the rig: `drain(generation, delivered)` until no backlog.

        `drain` is normally `board.drain_to`; it reads while we refill the kernel buffer, so a
        backlog larger than the pty buffer still goes through without threads. While the port is
        absent it calls `drain(generation, 0)` once, so the rig marks the gap when it happens.
        """
        if not self.present:
            drain(self.generation, 0)  # lets the rig notice (and log) the gap at this instant
            return
        while True:
            left = self.flush()
            drain(self.generation, self.delivered)
            if not left:
                return

    # -- rig → device ------------------------------------------------------------------------

    def read_available(self) -> bytes:
        """What the rig has written and the kernel has delivered so far (non-blocking)."""
        if self._master is None:
            return b""
        chunks: list[bytes] = []
        while True:
            try:
                data = os.read(self._master, _READ_CHUNK)
            except BlockingIOError:
                break
            except OSError as exc:
                if exc.errno == errno.EIO:  # no reader/writer on the slave side: nothing to read
                    break
                raise
            if not data:
                break
            chunks.append(data)
        out = b"".join(chunks)
        self.rx_count += len(out)
        return out

    def pull(self, expected_total: int, timeout_wall: float = 5.0) -> bytes:
        """Read until this generation's `rx_count` reaches `expected_total` (the rig's count).

        Waits in wall time only for the kernel to pass bytes already written; returns them.
        Raises PortSyncError if they do not arrive in time or the rig counts fewer than we have.
        """
        if expected_total < self.rx_count:
            raise PortSyncError(
                f"{self.link}: rig reports {expected_total} bytes written in generation "
                f"{self.generation}, but the device already read {self.rx_count}"
            )
        if self._master is None:
            if expected_total:
                raise PortSyncError(f"{self.link}: port absent, cannot receive {expected_total} bytes")
            return b""
        deadline = time.monotonic() + timeout_wall
        chunks: list[bytes] = []
        while self.rx_count < expected_total:
            try:
                data = os.read(self._master, expected_total - self.rx_count)
            except BlockingIOError:
                data = None
            except OSError as exc:
                if exc.errno != errno.EIO:
                    raise
                data = None
            if data:
                chunks.append(data)
                self.rx_count += len(data)
                continue
            left = deadline - time.monotonic()
            if left <= 0:
                raise PortSyncError(
                    f"{self.link}: expected {expected_total} bytes from the rig in generation "
                    f"{self.generation}, got {self.rx_count} within {timeout_wall} s"
                )
            select.select([self._master], [], [], min(left, 0.05))
        return b"".join(chunks)

    def __repr__(self) -> str:
        state = "present" if self.present else "absent"
        return f"SimSerialPort({str(self.link)!r}, generation={self.generation}, {state})"
