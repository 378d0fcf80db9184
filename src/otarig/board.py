"""A board on the bench: its serial link, one continuous log, expect-style waits and commands.

The link is a path (a stable symlink such as `/dev/serial/by-id/...` or a simulated board's pty
link) or any pyserial URL (`rfc2217://`, `socket://`, `loop://`). USB CDC vanishes when the board
resets; the board treats that as normal: it marks the gap in the log, reopens the link when it is
back, and keeps one log and one history across it (docs/reference/hil-anchors.md §10 rec. 4).

Every wait goes through the bench clock (docs/design.md principle 4), so the same code waits in wall time
on a real bench and in virtual time on a simulated one. The one exception is `drain_to`, the
simulated bench's catch-up with the kernel: bytes already written to a pty take a moment of wall
time to come out the other side, and virtual time must not move on before they have.
"""

from __future__ import annotations

import os
import re
import select
import time
from collections import deque
from collections.abc import Callable, Iterable
from pathlib import Path
from types import TracebackType
from typing import IO, Any, TypeAlias

import serial

from otarig.clock import BenchClock
from otarig.protocol import Entry, Event, LineDecoder, Noise, encode_command, escape_bytes

__all__ = [
    "Board",
    "BoardError",
    "PortUnavailable",
    "ExpectTimeout",
    "UnexpectedOutput",
    "CommandFailed",
    "Pattern",
]

Pattern: TypeAlias = str | re.Pattern[str] | Callable[[Event], bool]

_READ_CHUNK = 4096
_TAIL_LINES = 20
_WRITE_TIMEOUT = 5.0  # wall seconds; a command line never fills a healthy port's buffer


class BoardError(Exception):
    """A board-level failure (the port, the link, the synchronisation with the simulator)."""


class PortUnavailable(BoardError):
    """The board's port cannot be opened or written now."""


class ExpectTimeout(BoardError, TimeoutError):
    """Nothing matched in time; the message carries the last lines and the full log's path."""


class UnexpectedOutput(BoardError):
    """A `not_matching` pattern showed up while waiting."""


class CommandFailed(BoardError):
    """The device answered a command with `ok: false`."""

    def __init__(self, message: str, reply: Event) -> None:
        super().__init__(message)
        self.reply = reply


class NotSupported(CommandFailed):
    """The firmware's test agent has no hook for this command (docs/your-firmware.md "Hooks"):
    a scenario that needs it is not applicable to this firmware."""


#: how the agent begins the error of a command whose hook the app did not give (docs/protocol.md)
NOT_SUPPORTED = "not supported by this firmware"


class _KeepInputSerial(serial.Serial):  # type: ignore[misc,valid-type]
    """pyserial's Serial without the input flush in `open()`.

    pyserial discards pending input when it opens a port; on a re-enumerated board that is exactly
    the boot output we need (the `hello` line), so a path-based link keeps it. (Relies on pyserial
    3.5 calling `_reset_input_buffer` from `open`; the public `reset_input_buffer` still flushes.)
    """

    _opening = False

    def open(self) -> None:
        self._opening = True
        try:
            super().open()
        finally:
            self._opening = False

    def _reset_input_buffer(self) -> None:
        if not self._opening:
            super()._reset_input_buffer()


def _escape_text(data: bytes) -> str:
    """A line for the log: UTF-8 text with control characters escaped, else escaped bytes."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return escape_bytes(data)
    return "".join(c if c >= " " and c != "\x7f" else f"\\x{ord(c):02x}" for c in text)


def _describe(pattern: Pattern) -> str:
    if isinstance(pattern, re.Pattern):
        return repr(pattern.pattern)
    if isinstance(pattern, str):
        return repr(pattern)
    return getattr(pattern, "__name__", repr(pattern))


def _matcher(pattern: Pattern, *, noise: bool) -> Callable[[Entry], bool]:
    """Regexes search an event's raw line (and, for `not_matching`, noise as logged)."""
    if isinstance(pattern, (str, re.Pattern)):
        rx = re.compile(pattern)

        def match(entry: Entry) -> bool:
            if isinstance(entry, Event):
                return rx.search(entry.raw) is not None
            return noise and rx.search(escape_bytes(entry.raw)) is not None

        return match
    if callable(pattern):
        fn = pattern
        return lambda entry: isinstance(entry, Event) and bool(fn(entry))
    raise TypeError(f"pattern must be a str, a compiled regex or a callable, got {pattern!r}")


class Board:
    """One board: a serial link that survives re-enumeration, a log, a history of entries.

    `generation` is the simulated port's generation the board has open. The board cannot see it
    by itself: it learns it from the caller of `drain_to` (the simulated bench). It is None on a
    real bench, and after `open()`, a lost port or a reconnection in `poll()` until the next
    `drain_to`. `tx_count` / `rx_count` count the bytes written / read on that generation's port:
    they restart at 0 when the port is (re)opened, and a board closed and reopened within one
    generation resumes them at its next `drain_to`.

    Open a Board once per bench session: its log is one continuous file.
    """

    def __init__(
        self,
        board_id: str,
        url: str | Path,
        *,
        clock: BenchClock,
        log_path: str | Path,
        baudrate: int = 115200,
    ) -> None:
        self.board_id = board_id
        self.url = str(url)
        self.clock = clock
        self.log_path = Path(log_path)
        self.baudrate = baudrate
        self.generation: int | None = None
        self.tx_count = 0
        self.rx_count = 0
        self._is_path = "://" not in self.url
        self._ser: serial.SerialBase | None = None
        self._log: IO[bytes] | None = None
        self._log_started = False
        self._lost = False
        # (generation, rx, tx) of the port at close(): a board reopened within the same
        # generation resumes its counts, since that generation's pty kept what it had not read.
        self._resume: tuple[int, int, int] | None = None
        self._decoder = LineDecoder()
        self._history: list[tuple[float, Entry]] = []
        self._cursor = 0
        self._next_id = 1
        self._tail: deque[str] = deque(maxlen=_TAIL_LINES)

    # -- lifecycle -------------------------------------------------------------------------

    def open(self, *, required: bool = True) -> Board:
        """Start the log and open the port; with `required=False` an absent port is not an error
        (the board connects in a later `poll`/`drain_to`)."""
        if self._log is None:
            self.log_path.parent.mkdir(parents=True, exist_ok=True)
            # One log per Board object: truncated when it starts, appended across close/open.
            self._log = open(self.log_path, "ab" if self._log_started else "wb")
            self._log_started = True
        if self._ser is None and not self._reopen() and required:
            self._log.close()
            self._log = None
            raise PortUnavailable(f"{self.board_id}: cannot open serial port {self.url!r}")
        return self

    def close(self) -> None:
        """Close the port (a held partial line is logged as noise) and the log.

        `generation`, `rx_count` and `tx_count` keep describing the last port until it is reopened.
        """
        if self._ser is not None:
            if self.generation is not None:
                self._resume = (self.generation, self.rx_count, self.tx_count)
            self._record(self._decoder.flush())
            self._close_port()
            self._mark("-- port closed --")
        if self._log is not None:
            self._log.close()
            self._log = None

    def __enter__(self) -> Board:
        return self.open()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    @property
    def connected(self) -> bool:
        """True while the port is open (False in a re-enumeration gap)."""
        return self._ser is not None

    # -- reading ---------------------------------------------------------------------------

    def poll(self) -> list[Entry]:
        """Read what is there now (non-blocking), decode, log; never raises for a vanished port."""
        self._require_open()
        start = len(self._history)
        for _ in range(2):  # a lost port is reopened and read once more
            if self._ser is None and not self._reopen():
                break
            try:
                self._read_nonblocking()
                break
            except (serial.SerialException, OSError):
                self._port_lost()
        return [entry for _, entry in self._history[start:]]

    def drain_to(self, generation: int, count: int, timeout_wall: float = 5.0) -> list[Entry]:
        """Simulated bench: receive exactly `count` bytes of port generation `generation`.

        `count` is the number of bytes the simulated port has handed to the kernel since it
        appeared as `generation`. A generation other than the one open means the port vanished
        and came back: the board marks the gap and reopens the link. If the link is absent the
        board marks the gap and returns (`count` must then be 0). Blocks in wall time (at most
        `timeout_wall`) only for bytes already written; raises BoardError if they never come.
        Returns the entries decoded. On a closed board it does nothing (the bytes wait in the
        kernel for the next `open()`).
        """
        if self._log is None:
            return []
        start = len(self._history)
        if self._is_path and not os.path.exists(self.url):
            if self._ser is not None:
                self._port_lost()
            if count:
                raise PortUnavailable(
                    f"{self.board_id}: link {self.url!r} is absent, cannot receive {count} bytes "
                    f"of generation {generation}"
                )
            return []
        if self._ser is not None and self.generation is None and self._on_current_link():
            self.generation = generation  # opened (or reconnected) on this generation already
            if self._resume is not None and self._resume[0] == generation:
                self.rx_count += self._resume[1]
                self.tx_count += self._resume[2]
            self._resume = None
        elif self._ser is None or self.generation != generation:
            if self._ser is not None:
                self._port_lost()
            if not self._reopen():
                raise PortUnavailable(
                    f"{self.board_id}: cannot reopen {self.url!r} for generation {generation}"
                )
            self.generation = generation
            self._resume = None
        deadline = time.monotonic() + timeout_wall
        while self.rx_count < count:
            assert self._ser is not None
            try:
                data = self._ser.read(count - self.rx_count)
            except (serial.SerialException, OSError) as exc:
                got = self.rx_count
                self._port_lost()
                raise BoardError(
                    f"{self.board_id}: port vanished while receiving generation {generation} "
                    f"({got} of {count} bytes): {exc}"
                ) from exc
            if data:
                self._ingest(data)
                continue
            left = deadline - time.monotonic()
            if left <= 0:
                raise BoardError(
                    f"{self.board_id}: expected {count} bytes in generation {generation}, received "
                    f"{self.rx_count} within {timeout_wall} s of wall time"
                )
            self._wait_readable(min(left, 0.05))
        if self.rx_count > count:
            raise BoardError(
                f"{self.board_id}: received {self.rx_count} bytes in generation {generation}, "
                f"but the port reports only {count} written"
            )
        return [entry for _, entry in self._history[start:]]

    # -- waiting ---------------------------------------------------------------------------

    def expect(
        self,
        pattern: Pattern,
        timeout: float,
        *,
        not_matching: Iterable[Pattern] = (),
    ) -> Event:
        """Wait (bench time) for an event after the previous match; returns it.

        A regex searches the event's raw JSON line; a callable gets the Event. `not_matching`
        patterns raise UnexpectedOutput as soon as one appears (regexes there also see noise).
        On timeout raises ExpectTimeout with the last lines and the log's path; nothing is
        consumed then, so a later expect still sees the same lines.
        """
        match = _matcher(pattern, noise=False)
        bad = [(p, _matcher(p, noise=True)) for p in not_matching]
        deadline = self.clock.now() + timeout
        index = self._cursor
        while True:
            self.poll()
            while index < len(self._history):
                _, entry = self._history[index]
                index += 1
                for p, is_bad in bad:
                    if is_bad(entry):
                        self._cursor = index
                        raise UnexpectedOutput(
                            self._failure(f"saw output matching not_matching pattern {_describe(p)}")
                        )
                if match(entry):
                    self._cursor = index
                    assert isinstance(entry, Event)
                    return entry
            now = self.clock.now()
            if now >= deadline:
                raise ExpectTimeout(
                    self._failure(f"no output matching {_describe(pattern)} within {timeout:.3f} s")
                )
            self.clock.wait(deadline - now)

    def expect_from_now(self) -> None:
        """Later `expect`s see only what arrives from now on (a scenario starting on a board that
        has been running: what it printed before is the previous scenario's business)."""
        self.poll()
        self._cursor = len(self._history)

    def command(self, cmd: str, timeout: float = 10.0, **keys: Any) -> dict[str, Any]:
        """Send a command and wait (bench time) for its reply; returns the reply's fields.

        Does not move the expect cursor: events printed before the reply stay visible to the
        next `expect`. Raises CommandFailed on `ok: false`, ExpectTimeout without a reply.
        """
        cid = self._next_id
        self._next_id += 1
        line = encode_command(cmd, cid, **keys)
        self.poll()
        index = len(self._history)
        self.write(line)
        deadline = self.clock.now() + timeout
        while True:
            self.poll()
            while index < len(self._history):
                _, entry = self._history[index]
                index += 1
                if isinstance(entry, Event) and entry.name == "reply" and entry.get("id") == cid:
                    if entry.get("ok") is not True:
                        error = str(entry.get("error", ""))
                        raise (NotSupported if error.startswith(NOT_SUPPORTED) else CommandFailed)(
                            f"{self.board_id}: command {cmd!r} (id {cid}) failed: "
                            f"{entry.get('error', 'no error given')}",
                            entry,
                        )
                    return dict(entry.fields)
            now = self.clock.now()
            if now >= deadline:
                raise ExpectTimeout(
                    self._failure(f"no reply to command {cmd!r} (id {cid}) within {timeout:.3f} s")
                )
            self.clock.wait(deadline - now)

    def write(self, data: bytes) -> None:
        """Write raw bytes to the board (logged as `>> ...`); raises PortUnavailable if gone."""
        self._require_open()
        if self._ser is None:
            self.poll()
        if self._ser is None:
            raise PortUnavailable(f"{self.board_id}: port {self.url!r} is not connected")
        self._mark(">> " + _escape_text(data.rstrip(b"\n").removesuffix(b"\r")))
        try:
            written = self._ser.write(data)
        except (serial.SerialException, OSError) as exc:
            self._port_lost()
            raise PortUnavailable(f"{self.board_id}: port lost while writing: {exc}") from exc
        self.tx_count += len(data) if written is None else written

    # -- history ---------------------------------------------------------------------------

    def events(self, name: str | None = None) -> list[Event]:
        """Every event received so far (optionally only those named `name`), oldest first."""
        return [e for _, e in self._history if isinstance(e, Event) and (name is None or e.name == name)]

    @property
    def history(self) -> list[tuple[float, Entry]]:
        """Every entry received, with the bench time at which it was decoded."""
        return list(self._history)

    def history_since(self, index: int) -> list[tuple[float, Entry]]:
        """Entries received after the first `index` ones (cheap incremental reads for a timeline)."""
        return self._history[index:]

    @property
    def tail(self) -> list[str]:
        """The last log lines (what an ExpectTimeout shows)."""
        return list(self._tail)

    # -- internals -------------------------------------------------------------------------

    def _require_open(self) -> None:
        if self._log is None:
            raise BoardError(f"{self.board_id}: board is not open (call open() first)")

    def _open_port(self) -> serial.SerialBase:
        if self._is_path:
            ser = _KeepInputSerial(
                port=None, baudrate=self.baudrate, timeout=0, write_timeout=_WRITE_TIMEOUT
            )
            ser.port = self.url
            ser.open()
            return ser
        # pyserial's RFC 2217 client refuses any write_timeout ("not supported") at open: a
        # remote port (ser2net, a labgrid exporter) is opened without one.
        write_timeout = None if self.url.startswith("rfc2217://") else _WRITE_TIMEOUT
        return serial.serial_for_url(self.url, baudrate=self.baudrate, timeout=0, write_timeout=write_timeout)

    def _reopen(self) -> bool:
        """Try to open the port once; on success log the reconnection and restart the counts."""
        if self._is_path and not os.path.exists(self.url):
            return False
        try:
            self._ser = self._open_port()
        except (serial.SerialException, OSError, ValueError):
            return False
        self._decoder = LineDecoder()
        self.rx_count = 0
        self.tx_count = 0
        self.generation = None
        self._mark(f"-- port back at {self.clock.now():.3f} --" if self._lost else "-- port open --")
        self._lost = False
        return True

    def _port_lost(self) -> None:
        """The port went away: log what was held, close our side, mark the gap."""
        self._record(self._decoder.flush())
        self._close_port()
        self._lost = True
        self._resume = None
        self.generation = None
        self._mark(f"-- port lost at {self.clock.now():.3f} --")

    def _close_port(self) -> None:
        ser, self._ser = self._ser, None
        if ser is not None:
            try:
                ser.close()
            except (serial.SerialException, OSError):
                pass

    def _on_current_link(self) -> bool:
        """Is the open fd the pty the link points at now? (A pty number is not reused while we
        hold it open, so equal device numbers mean the same pty.)"""
        if not self._is_path or self._ser is None:
            return True
        try:
            mine = os.fstat(self._ser.fileno()).st_rdev
            current = os.stat(self.url).st_rdev
        except (OSError, AttributeError, serial.SerialException):
            return False
        return mine != 0 and mine == current

    def _read_nonblocking(self) -> None:
        assert self._ser is not None
        while True:
            data = self._ser.read(_READ_CHUNK)
            if not data:
                return
            self._ingest(data)

    def _wait_readable(self, seconds: float) -> None:
        """Wall-time wait for input, only for drain_to's kernel catch-up."""
        assert self._ser is not None
        try:
            fd = self._ser.fileno()
        except (AttributeError, NotImplementedError, serial.SerialException, OSError):
            fd = None
        if isinstance(fd, int):
            select.select([fd], [], [], seconds)
            return
        old = self._ser.timeout
        self._ser.timeout = seconds
        try:
            data = self._ser.read(1)
        finally:
            self._ser.timeout = old
        if data:
            self._ingest(data)

    def _ingest(self, data: bytes) -> None:
        self.rx_count += len(data)
        self._record(self._decoder.feed(data))

    def _record(self, entries: list[Entry]) -> None:
        now = self.clock.now()
        for entry in entries:
            self._history.append((now, entry))
            if isinstance(entry, Noise):
                self._mark(f"!! noise({entry.reason}) {escape_bytes(entry.raw)}", now)
            else:
                self._mark(_escape_text(entry.raw.encode("utf-8")), now)

    def _mark(self, text: str, now: float | None = None) -> None:
        line = f"[{self.clock.now() if now is None else now:12.3f}] {text}"
        self._tail.append(line)
        if self._log is not None:
            self._log.write(line.encode("utf-8") + b"\n")
            self._log.flush()

    def _failure(self, what: str) -> str:
        lines = "\n".join("  " + line for line in self._tail) or "  (nothing received)"
        return (
            f"{self.board_id}: {what}\n"
            f"last {len(self._tail)} lines:\n{lines}\n"
            f"full log: {self.log_path}"
        )

    def __repr__(self) -> str:
        state = "connected" if self.connected else "disconnected"
        return f"Board({self.board_id!r}, {self.url!r}, {state}, generation={self.generation})"
