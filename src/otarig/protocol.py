"""The companion's serial protocol, version 1 (docs/protocol.md).

One JSON object per line. This module only turns bytes into typed entries and commands into
bytes; it knows nothing about ports or time, so the same decoder serves a real USB CDC port, a pty
of the simulated bench, or a recorded log.

The decoder never raises on input: whatever a board prints (boot garbage from Device OS, a stray
binary dump, a line cut by a reset) becomes a `Noise` entry, because a rig that crashes on noisy
output cannot report what the device did.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Literal, TypeAlias

__all__ = [
    "PROTOCOL_VERSION",
    "AGENT",
    "MAX_LINE",
    "NoiseReason",
    "Event",
    "Noise",
    "Entry",
    "LineDecoder",
    "ProtocolError",
    "encode_command",
    "check_hello",
    "escape_bytes",
]

PROTOCOL_VERSION = 1
"""The version this rig speaks (`hello`'s `proto`)."""

AGENT = "otarig-companion"
"""`hello`'s `agent` for the otarig device companion."""

MAX_LINE = 512
"""Longest valid line in bytes, counting its terminator (`\\n`, or `\\r\\n`)."""

NoiseReason = Literal["not_utf8", "not_json", "not_object", "missing_keys", "too_long", "partial"]


class ProtocolError(Exception):
    """The peer does not speak this protocol (wrong version, not a companion, bad command)."""


@dataclass(frozen=True)
class Event:
    """One device → rig line: `ev` name, device `millis()` `t`, the other keys in `fields`."""

    name: str
    t: int | float
    fields: dict[str, Any] = field(default_factory=dict)
    raw: str = ""

    def get(self, key: str, default: Any = None) -> Any:
        """A field's value, or `default` (events gain keys without a version bump)."""
        return self.fields.get(key, default)

    def __getitem__(self, key: str) -> Any:
        return self.fields[key]


@dataclass(frozen=True)
class Noise:
    """Input that is not a protocol line; kept with its raw bytes so the log shows what came."""

    reason: NoiseReason
    raw: bytes


Entry: TypeAlias = Event | Noise


def escape_bytes(data: bytes) -> str:
    """Printable ASCII as is, everything else as `\\xNN`: one log line, the same on every run."""
    out: list[str] = []
    for b in data:
        if b == 0x5C:
            out.append("\\\\")
        elif 0x20 <= b < 0x7F:
            out.append(chr(b))
        else:
            out.append(f"\\x{b:02x}")
    return "".join(out)


def _parse_line(line: bytes) -> Entry:
    """One complete line (terminator removed) → an entry; never raises."""
    if line.endswith(b"\r"):
        line = line[:-1]
    try:
        text = line.decode("utf-8")
    except UnicodeDecodeError:
        return Noise("not_utf8", line)
    try:
        obj = json.loads(text)
    except (ValueError, RecursionError):
        return Noise("not_json", line)
    if not isinstance(obj, dict):
        return Noise("not_object", line)
    name = obj.get("ev")
    t = obj.get("t")
    # A wrongly typed required key is as useless as a missing one.
    if not isinstance(name, str) or isinstance(t, bool) or not isinstance(t, (int, float)):
        return Noise("missing_keys", line)
    fields = {k: v for k, v in obj.items() if k not in ("ev", "t")}
    return Event(name=name, t=t, fields=fields, raw=text)


class LineDecoder:
    """Incremental decoder: feed arbitrary byte chunks, get the entries they complete.

    Memory is bounded by `MAX_LINE`: a line that grows past it is reported as `too_long` noise as
    soon as that is known, and the rest of it is discarded up to the next newline. The result does
    not depend on how the input was chunked.
    """

    def __init__(self, max_line: int = MAX_LINE) -> None:
        self.max_line = max_line
        self._buf = bytearray()
        self._skipping = False

    def feed(self, data: bytes) -> list[Entry]:
        """Entries completed by `data` (possibly none); partial input is held for later."""
        out: list[Entry] = []
        start = 0
        n = len(data)
        while start < n:
            nl = data.find(b"\n", start)
            end = n if nl < 0 else nl
            if self._skipping:
                if nl >= 0:
                    self._skipping = False
            else:
                room = self.max_line - len(self._buf)
                self._buf += data[start : min(end, start + room)]
                # A line holding max_line bytes before its newline is over the limit already.
                if len(self._buf) >= self.max_line:
                    out.append(Noise("too_long", bytes(self._buf[: self.max_line])))
                    self._buf.clear()
                    self._skipping = nl < 0
                elif nl >= 0:
                    out.append(_parse_line(bytes(self._buf)))
                    self._buf.clear()
            if nl < 0:
                break
            start = nl + 1
        return out

    def flush(self) -> list[Entry]:
        """End of input (port gone): a held partial line becomes `partial` noise."""
        self._skipping = False
        if not self._buf:
            return []
        raw = bytes(self._buf)
        self._buf.clear()
        return [Noise("partial", raw)]

    @property
    def pending(self) -> int:
        """Bytes of an unfinished line being held."""
        return len(self._buf)


def encode_command(cmd: str, id: int, **keys: Any) -> bytes:  # noqa: A002 - protocol key name
    """A rig → device command line (compact ASCII JSON + `\\n`); raises ValueError if invalid."""
    if not isinstance(cmd, str) or not cmd:
        raise ValueError(f"command name must be a non-empty string, got {cmd!r}")
    if isinstance(id, bool) or not isinstance(id, int):
        raise ValueError(f"command id must be an integer, got {id!r}")
    obj = {"cmd": cmd, "id": id, **keys}
    try:
        text = json.dumps(obj, separators=(",", ":"), ensure_ascii=True, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"command {cmd!r}: keys are not JSON-serialisable: {exc}") from exc
    line = text.encode("ascii") + b"\n"
    if len(line) > MAX_LINE:
        raise ValueError(f"command {cmd!r} encodes to {len(line)} bytes, over the {MAX_LINE}-byte line limit")
    return line


def check_hello(entry: Entry, agent: str = AGENT) -> Event:
    """Check a `hello` (first line after boot, answer to `ping`); returns it.

    Raises ProtocolError naming both versions when the device speaks another protocol version,
    and "not an otarig companion" when the line is not a companion's hello at all.
    """
    if not isinstance(entry, Event) or entry.name != "hello":
        shown = entry.raw if isinstance(entry, Event) else escape_bytes(entry.raw)
        raise ProtocolError(f"not an otarig companion: expected a hello event, got {shown[:120]!r}")
    seen = entry.get("agent")
    if seen is not None and seen != agent:
        raise ProtocolError(f"not an otarig companion: hello from agent {seen!r}, expected {agent!r}")
    proto = entry.get("proto")
    if proto is None:
        raise ProtocolError("not an otarig companion: hello without 'proto'")
    if proto != PROTOCOL_VERSION:
        raise ProtocolError(
            f"device speaks otarig protocol version {proto!r}; this rig speaks version {PROTOCOL_VERSION}"
        )
    return entry
