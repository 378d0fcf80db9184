"""A simulated bench power supply: an SCPI server on a loopback TCP port.

Why: docs/design.md principle 1 ("real channels, always"). The rig's PSU driver opens this server exactly
as it opens a LAN supply, `TCPIP::127.0.0.1::PORT::SOCKET` through PyVISA/pyvisa-py with `\\n`
terminations, so the driver code that runs on the simulated bench is the code that runs on the
real one. Readings come from `otarig.sim.power_model.PowerRail`, i.e. from the simulated Electron's
power state at the *simulated* time given by `time_source`.

Dialects (`DIALECTS`): Keysight E36312A/E36313A/E36311A (channel lists `(@1)`), Keysight/Agilent
E3631A (P6V/P25V/N25V, `INST:NSEL`, global `OUTP`), Rigol DP832/DP831/DP821/DP811
(`:APPL CH1,5,1`, `:OUTP CH1,ON`, `:MEAS:VOLT? CH1`, `:SOUR1:VOLT`). Command spelling follows the
docs/reference/instruments-and-faults.md B.1 and the programming conventions of each family; fine details (exact number
formats) are plausible, not copied from a manual.

SCPI handling: `;`-separated units with the SCPI relative-path rule, short/long mnemonics in any
case, optional nodes (`SOUR`, `LEV`, `IMM`, `AMPL`, `DC`, `STAT`, `NEXT`), numeric suffixes
(`SOUR1`), `MIN`/`MAX`/`DEF`, an error queue read by `SYST:ERR?` (`-113,"Undefined header"` for
unknown commands, `-222,"Data out of range"`, `0,"No error"` when empty). Unknown queries get no
reply, as on a real instrument (the client times out and finds -113 in the queue).

Hostile input (a client is not trusted to be sane): a program message is at most `MAX_LINE` bytes;
a longer one is discarded up to its newline while it streams in (memory stays bounded, the
instrument lock never sees it) and queues `-363,"Input buffer overrun"`. Numbers follow SCPI's
decimal syntax: an overflow (`1e400`) or `INF` is `-222`, `NAN` is `-224`, anything else that is not
a number `-104`. Channel lists are checked before they are expanded (`-222` for a channel that does
not exist, `-224` for a malformed list, `-223` past `MAX_CHANNEL_LIST` entries). The error queue
holds `ERROR_QUEUE` entries; past that the last becomes `-350,"Queue overflow"`. A command is never
answered by dropping the connection or printing a traceback.

Fault knobs for tests (plain attributes, safe to flip while serving):
`mute` (queries get no reply; set commands still act, like a stuck reply path),
`garbage` (every reply is replaced by junk), `drop_connections` (n: the next n commands make the
server close that connection instead of answering), `frozen` (ignore everything).
"""
from __future__ import annotations

import logging
import math
import re
import socket
import socketserver
import threading
from collections import deque
from dataclasses import dataclass
from typing import Callable, Iterable, Mapping

from otarig.sim.power_model import (
    DEFAULT_FIGURES,
    VIN_MIN_V,
    LoadModel,
    NoLoad,
    PowerFigures,
    PowerRail,
)

TimeSource = Callable[[], float]

log = logging.getLogger("otarig.sim.psu_server")

#: longest program message, terminator included (a real SCPI input buffer is a few KB)
MAX_LINE = 4096
#: channel-list entries one command may name after expansion (an instrument has at most a few outputs)
MAX_CHANNEL_LIST = 64
#: SCPI error queue depth; the last slot reports -350 when more errors arrive
ERROR_QUEUE = 20
#: digits a header suffix may have (`SOUR1`); more is -114, never a huge int
MAX_SUFFIX_DIGITS = 3
#: executed lines kept for `wait_for_command` (a long `otarig sim` session must not grow forever)
COMMANDS_KEPT = 10_000


@dataclass(frozen=True)
class ChannelSpec:
    """One output: its names in the dialect and its ranges."""

    number: int
    names: tuple[str, ...]  # e.g. ("CH1",) or ("P6V", "OUT1")
    v_max: float
    i_max: float
    label: str = ""  # Rigol `:APPL?` prefix, e.g. "CH1:30V/3A"


@dataclass(frozen=True)
class DialectSpec:
    """What a simulated model answers to `*IDN?` and how its commands are spelled."""

    family: str  # "keysight" | "rigol"
    idn: str
    channels: tuple[ChannelSpec, ...]
    channel_lists: bool = True  # Keysight E363xx `(@1)`; False on E3631A
    global_output: bool = False  # E3631A: OUTP switches all outputs


def _ks_e363x(model: str, serial: str) -> DialectSpec:
    return DialectSpec(
        family="keysight",
        idn=f"Keysight Technologies,{model},{serial},2.1.0-1.0.4-1.12",
        channels=(
            ChannelSpec(1, ("CH1", "OUT1", "OUTP1", "P6V"), 6.18, 5.15),
            ChannelSpec(2, ("CH2", "OUT2", "OUTP2", "P25V"), 25.75, 1.03),
            ChannelSpec(3, ("CH3", "OUT3", "OUTP3", "N25V"), 25.75, 1.03),
        ),
    )


DIALECTS: dict[str, DialectSpec] = {
    "E36312A": _ks_e363x("E36312A", "MY59000001"),
    "E36313A": _ks_e363x("E36313A", "MY59000002"),
    "E36311A": _ks_e363x("E36311A", "MY59000003"),
    "E3631A": DialectSpec(
        family="keysight",
        idn="HEWLETT-PACKARD,E3631A,0,3.2-6.0-2.0",
        channels=(
            ChannelSpec(1, ("P6V",), 6.18, 5.15),
            ChannelSpec(2, ("P25V",), 25.75, 1.03),
            ChannelSpec(3, ("N25V",), 25.75, 1.03),  # magnitude; the sign is not modelled
        ),
        channel_lists=False,
        global_output=True,
    ),
    "DP832": DialectSpec(
        family="rigol",
        idn="RIGOL TECHNOLOGIES,DP832,DP8SIM000001,00.01.14",
        channels=(
            ChannelSpec(1, ("CH1",), 32.0, 3.2, "CH1:30V/3A"),
            ChannelSpec(2, ("CH2",), 32.0, 3.2, "CH2:30V/3A"),
            ChannelSpec(3, ("CH3",), 5.3, 3.2, "CH3:5V/3A"),
        ),
    ),
    "DP831": DialectSpec(
        family="rigol",
        idn="RIGOL TECHNOLOGIES,DP831,DP8SIM000002,00.01.14",
        channels=(
            ChannelSpec(1, ("CH1",), 8.4, 5.3, "CH1:8V/5A"),
            ChannelSpec(2, ("CH2",), 32.0, 2.1, "CH2:30V/2A"),
            ChannelSpec(3, ("CH3",), 32.0, 2.1, "CH3:-30V/2A"),
        ),
    ),
    "DP811": DialectSpec(
        family="rigol",
        idn="RIGOL TECHNOLOGIES,DP811,DP8SIM000003,00.01.14",
        channels=(ChannelSpec(1, ("CH1",), 21.0, 10.5, "CH1:20V/10A"),),
    ),
}

# Long form -> short form. A header node matches when it equals either (case-insensitive).
_MNEMONICS: dict[str, str] = {
    "APPLY": "APPL", "VOLTAGE": "VOLT", "CURRENT": "CURR", "OUTPUT": "OUTP", "MEASURE": "MEAS",
    "INSTRUMENT": "INST", "NSELECT": "NSEL", "SELECT": "SEL", "SYSTEM": "SYST", "ERROR": "ERR",
    "SOURCE": "SOUR", "LEVEL": "LEV", "IMMEDIATE": "IMM", "AMPLITUDE": "AMPL", "STATE": "STAT",
    "DC": "DC", "NEXT": "NEXT", "REMOTE": "REM", "LOCAL": "LOC", "POWER": "POW", "MODE": "MODE",
    "SCALAR": "SCAL", "VERSION": "VERS", "ALL": "ALL", "RWLOCK": "RWL", "PROTECTION": "PROT",
    "CLEAR": "CLE",
}
_SHORT_TO_CANON = {short: short for short in _MNEMONICS.values()}
_LONG_TO_CANON = dict(_MNEMONICS)
_OPTIONAL = {"LEV", "IMM", "AMPL", "DC", "SCAL", "NEXT"}
_NODE_RE = re.compile(r"^([A-Za-z]+?)(\d*)$")
_CHANLIST_RE = re.compile(r"^\(@\s*([0-9,:\s]+)\)$")
#: SCPI decimal numeric program data (IEEE 488.2 §7.7.2): no `0x`, `_`, `nan` or `inf` spellings
_DECIMAL_RE = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)(E[+-]?\d+)?$")
_INFINITIES = {"INF", "+INF", "NINF", "-INF", "INFINITY", "+INFINITY", "-INFINITY"}


class ScpiError(Exception):
    """An SCPI error to queue: code and message as `SYST:ERR?` reports them."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(f'{code},"{message}"')
        self.code = code
        self.message = message


UNDEFINED_HEADER = (-113, "Undefined header")
DATA_TYPE_ERROR = (-104, "Data type error")
DATA_OUT_OF_RANGE = (-222, "Data out of range")
TOO_MUCH_DATA = (-223, "Too much data")
ILLEGAL_PARAMETER = (-224, "Illegal parameter value")
INPUT_BUFFER_OVERRUN = (-363, "Input buffer overrun")
QUEUE_OVERFLOW = (-350, "Queue overflow")
DEVICE_SPECIFIC = (-300, "Device-specific error")


def _canon_node(token: str) -> tuple[str, int | None]:
    m = _NODE_RE.match(token)
    if not m:
        raise ScpiError(*UNDEFINED_HEADER)
    word, suffix = m.group(1).upper(), m.group(2)
    canon = _LONG_TO_CANON.get(word) or _SHORT_TO_CANON.get(word)
    if canon is None:
        raise ScpiError(*UNDEFINED_HEADER)
    if len(suffix) > MAX_SUFFIX_DIGITS:
        raise ScpiError(-114, "Header suffix out of range")  # before int(): thousands of digits are slow
    return canon, (int(suffix) if suffix else None)


def _decimal(token: str) -> float:
    """SCPI numeric data as a finite float; the SCPI error for anything else.

    Why not plain `float()`: it accepts `nan`, `inf`, `1_0` and overflows `1e400` to infinity, all
    of which would reach a set point or `int()` (OverflowError) unchecked.
    """
    tok = token.strip().upper()
    if tok == "NAN":
        raise ScpiError(*ILLEGAL_PARAMETER)
    if tok in _INFINITIES:
        raise ScpiError(*DATA_OUT_OF_RANGE)
    if not _DECIMAL_RE.match(tok):
        raise ScpiError(*DATA_TYPE_ERROR)
    value = float(tok)
    if not math.isfinite(value):
        raise ScpiError(*DATA_OUT_OF_RANGE)  # syntactically a number, beyond any float
    return value


def _split_params(text: str) -> list[str]:
    """Split on commas outside parentheses: `5,(@1,2)` -> ['5', '(@1,2)']."""
    out, depth, cur = [], 0, []
    for ch in text:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        if ch == "," and depth == 0:
            out.append("".join(cur).strip())
            cur = []
        else:
            cur.append(ch)
    if "".join(cur).strip() or out:
        out.append("".join(cur).strip())
    return out


class SimulatedPsu:
    """The instrument: dialect, channels (each a `PowerRail`), selection and error queue.

    Transport-free so it can be unit-tested; `PsuServer` wraps it in TCP.
    """

    def __init__(
        self,
        dialect: DialectSpec,
        time_source: TimeSource,
        loads: Mapping[int, LoadModel] | None = None,
        figures: PowerFigures = DEFAULT_FIGURES,
        vin_min_v: float = VIN_MIN_V,
    ) -> None:
        self.dialect = dialect
        self.time_source = time_source
        self.rails: dict[int, PowerRail] = {
            ch.number: PowerRail(figures=figures, vin_min_v=vin_min_v) for ch in dialect.channels
        }
        self._specs = {ch.number: ch for ch in dialect.channels}
        self.selected = dialect.channels[0].number
        self.errors: deque[tuple[int, str]] = deque()
        self.lock = threading.RLock()
        for number, load in (loads or {}).items():
            self.rails[number].attach(load)

    # -- public -----------------------------------------------------------------------------

    def handle_line(self, line: str) -> list[str]:
        """Execute one program message (one line); return the replies to send, in order."""
        replies: list[str] = []
        with self.lock:
            prev_path: list[str] = []
            for unit in line.strip().split(";"):
                unit = unit.strip()
                if not unit:
                    continue
                try:
                    reply, prev_path = self._execute(unit, prev_path)
                except ScpiError as err:
                    self._queue_error(err.code, err.message)
                    continue
                except Exception as exc:  # noqa: BLE001 - a simulator bug must not cost the client its link
                    log.error("simulated PSU: %r raised %r (queued -300)", unit[:80], exc)
                    self._queue_error(*DEVICE_SPECIFIC)
                    continue
                if reply is not None:
                    replies.append(reply)
        return replies

    def report(self, code: int, message: str) -> None:
        """Queue an error found outside a command (the transport's -363), under the lock."""
        with self.lock:
            self._queue_error(code, message)

    def _queue_error(self, code: int, message: str) -> None:
        """SCPI queue semantics: the oldest errors are kept; when full, the last says -350."""
        if len(self.errors) < ERROR_QUEUE - 1:
            self.errors.append((code, message))
        elif len(self.errors) == ERROR_QUEUE - 1:
            self.errors.append(QUEUE_OVERFLOW)

    def reset(self) -> None:
        """`*RST`: outputs off, set points to defaults (0 V, maximum-ish limit)."""
        t = self.time_source()
        for number, rail in self.rails.items():
            rail.set_output(False, t)
            rail.set_voltage(0.0, t)
            rail.set_current_limit(min(self._specs[number].i_max, 1.0), t)
        self.selected = self.dialect.channels[0].number

    # -- parsing ----------------------------------------------------------------------------

    def _execute(self, unit: str, prev_path: list[str]) -> tuple[str | None, list[str]]:
        if unit.startswith("*"):
            header, _, params = unit.partition(" ")
            return self._common(header.upper(), params.strip()), []
        header, _, params = unit.partition(" ")
        query = header.endswith("?")
        header = header.rstrip("?")
        absolute = header.startswith(":")
        tokens = [tok for tok in header.strip(":").split(":") if tok]
        if not tokens:
            raise ScpiError(*UNDEFINED_HEADER)
        nodes = [_canon_node(tok) for tok in tokens]
        if not absolute and prev_path:
            # SCPI: a unit after ';' continues at the level of the previous unit's last node.
            nodes = [(n, None) for n in prev_path[:-1]] + nodes
        suffix = next((s for _, s in nodes if s is not None), None)
        path = [n for n, _ in nodes if n not in _OPTIONAL]
        full_path = [n for n, _ in nodes]
        if path and path[0] == "SOUR":
            path = path[1:]
        if path[-2:] == ["OUTP", "STAT"] or path[-2:] == ["OUTP", "STATE"]:
            path = path[:-1]
        reply = self._dispatch(":".join(path), query, _split_params(params.strip()), suffix)
        return reply, full_path

    def _common(self, header: str, params: str) -> str | None:
        if header == "*IDN?":
            return self.dialect.idn
        if header == "*RST":
            self.reset()
            return None
        if header == "*CLS":
            self.errors.clear()
            return None
        if header == "*OPC?":
            return "1"
        if header in ("*OPC", "*WAI", "*SRE", "*ESE"):
            return None
        if header in ("*ESR?", "*STB?", "*TST?", "*SRE?", "*ESE?"):
            return "0"
        raise ScpiError(*UNDEFINED_HEADER)

    # -- commands ---------------------------------------------------------------------------

    def _channel(self, token: str | None, suffix: int | None = None) -> int:
        if token:
            tok = token.strip().upper()
            for spec in self.dialect.channels:
                if tok in spec.names:
                    return spec.number
            m = _CHANLIST_RE.match(tok)
            if m and self.dialect.channel_lists:
                chans = self._chanlist(m.group(1))
                if len(chans) != 1:
                    raise ScpiError(-108, "Parameter not allowed")
                return chans[0]
            raise ScpiError(*ILLEGAL_PARAMETER)
        if suffix is not None:
            if suffix not in self._specs:
                raise ScpiError(-114, "Header suffix out of range")
            return suffix
        return self.selected

    def _chanlist(self, body: str) -> list[int]:
        """`1,2:3` → [1, 2, 3]. Each entry is checked before a range is expanded, so a list can
        never name more channels than exist (`(@1:30000000)` is -222, not 30 million ints)."""
        chans: list[int] = []
        for part in body.split(","):
            ends = [self._list_channel(x) for x in part.split(":")]
            if len(ends) > 2:
                raise ScpiError(*ILLEGAL_PARAMETER)  # `1:2:3`
            first, last = ends[0], ends[-1]
            step = 1 if last >= first else -1
            chans.extend(range(first, last + step, step))
            if len(chans) > MAX_CHANNEL_LIST:
                raise ScpiError(*TOO_MUCH_DATA)
        return chans

    def _list_channel(self, text: str) -> int:
        """One channel number of a channel list, naming an output of this model."""
        text = text.strip()
        if not text.isdecimal() or not text.isascii():
            raise ScpiError(*ILLEGAL_PARAMETER)  # empty: `1,,2`, `(@:)`
        if len(text) > MAX_SUFFIX_DIGITS or int(text) not in self._specs:
            raise ScpiError(*DATA_OUT_OF_RANGE)  # a channel this model does not have
        return int(text)

    def _targets(self, token: str | None) -> list[int]:
        """Channels named by an optional trailing channel list or channel name."""
        if token is None:
            return [self.selected]
        m = _CHANLIST_RE.match(token.strip())
        if m and self.dialect.channel_lists:
            return self._chanlist(m.group(1))
        return [self._channel(token)]

    @staticmethod
    def _number(token: str, lo: float, hi: float, default: float) -> float:
        tok = token.strip().upper()
        if tok in ("MIN", "MINIMUM"):
            return lo
        if tok in ("MAX", "MAXIMUM"):
            return hi
        if tok in ("DEF", "DEFAULT"):
            return default
        value = _decimal(tok.rstrip("VA") if tok.endswith(("V", "A")) and tok[:-1] else tok)
        if not lo <= value <= hi:
            raise ScpiError(*DATA_OUT_OF_RANGE)
        return value

    @staticmethod
    def _bool(token: str) -> bool:
        tok = token.strip().upper()
        if tok in ("ON", "1"):
            return True
        if tok in ("OFF", "0"):
            return False
        raise ScpiError(-224, "Illegal parameter value")

    def _fmt(self, value: float) -> str:
        if self.dialect.family == "keysight":
            return f"{value:+.8E}"
        return f"{value:.4f}"

    def _dispatch(self, path: str, query: bool, params: list[str], suffix: int | None) -> str | None:
        t = self.time_source()
        keysight = self.dialect.family == "keysight"
        if path == "SYST:ERR" and query:
            if self.errors:
                code, msg = self.errors.popleft()
                return f'{code},"{msg}"'
            return '0,"No error"' if keysight else '0,"No error"'
        if path in ("SYST:REM", "SYST:LOC", "SYST:RWL") and not query:
            return None
        if path == "SYST:VERS" and query:
            return "1999.0"
        if path in ("INST:NSEL", "INST:SEL", "INST"):
            if query:
                if path == "INST:NSEL":
                    return str(self.selected)
                return self._specs[self.selected].names[0]
            if not params:
                raise ScpiError(-109, "Missing parameter")
            if path == "INST:NSEL":
                first, last = min(self._specs), max(self._specs)
                n = int(self._number(params[0], first, last, first))  # finite and in range: int() is safe
                if n not in self._specs:
                    raise ScpiError(*DATA_OUT_OF_RANGE)
                self.selected = n
            else:
                self.selected = self._channel(params[0])
            return None
        if path == "APPL":
            return self._apply(query, params, t)
        if path in ("VOLT", "CURR"):
            return self._setpoint(path, query, params, suffix, t)
        if path == "OUTP":
            return self._output(query, params, t)
        if path == "OUTP:MODE" and query:
            ch = self._channel(params[0] if params else None)
            return self.rails[ch].evaluate(t).mode.value
        if path.startswith("MEAS"):
            return self._measure(path, query, params, t)
        raise ScpiError(*UNDEFINED_HEADER)

    def _apply(self, query: bool, params: list[str], t: float) -> str | None:
        if query:
            ch = self._channel(params[0] if params else None)
            rail, spec = self.rails[ch], self._specs[ch]
            if self.dialect.family == "rigol":
                return f"{spec.label},{rail.v_set:.3f},{rail.i_limit:.4f}"
            return f'"{rail.v_set:+.6E},{rail.i_limit:+.6E}"'
        if not params:
            raise ScpiError(-109, "Missing parameter")
        ch = self.selected
        first = params[0].strip().upper()
        if any(first in spec.names for spec in self.dialect.channels) or _CHANLIST_RE.match(first):
            ch = self._channel(first)
            params = params[1:]
        spec, rail = self._specs[ch], self.rails[ch]
        if not params or len(params) > 2:
            raise ScpiError(-109, "Missing parameter") if not params else ScpiError(
                -108, "Parameter not allowed")
        volts = self._number(params[0], 0.0, spec.v_max, 0.0)
        amps = self._number(params[1], 0.0, spec.i_max, rail.i_limit) if len(params) > 1 else None
        rail.set_voltage(volts, t)
        if amps is not None:
            rail.set_current_limit(amps, t)
        return None

    def _setpoint(
        self, what: str, query: bool, params: list[str], suffix: int | None, t: float
    ) -> str | None:
        if query:
            chans = self._targets(params[0] if params else None) if suffix is None else [
                self._channel(None, suffix)]
            values = [self.rails[c].v_set if what == "VOLT" else self.rails[c].i_limit for c in chans]
            return ",".join(self._fmt(v) for v in values)
        if not params:
            raise ScpiError(-109, "Missing parameter")
        if suffix is not None:
            chans = [self._channel(None, suffix)]
        else:
            chans = self._targets(params[1] if len(params) > 1 else None)
        # every channel's value is checked before any is applied: a -222 on one leaves all unchanged
        if what == "VOLT":
            volts = {c: self._number(params[0], 0.0, self._specs[c].v_max, 0.0) for c in chans}
            for c, v in volts.items():
                self.rails[c].set_voltage(v, t)
        else:
            amps = {c: self._number(params[0], 0.0, self._specs[c].i_max, 1.0) for c in chans}
            for c, a in amps.items():
                self.rails[c].set_current_limit(a, t)
        return None

    def _output(self, query: bool, params: list[str], t: float) -> str | None:
        rigol = self.dialect.family == "rigol"
        if query:
            if self.dialect.global_output:
                chans = [self.dialect.channels[0].number]
            else:
                chans = self._targets(params[0] if params else None)
            states = [self.rails[c].on for c in chans]
            if rigol:
                return ",".join("ON" if s else "OFF" for s in states)
            return ",".join("1" if s else "0" for s in states)
        if not params:
            raise ScpiError(-109, "Missing parameter")
        if rigol and len(params) == 2:  # :OUTP CH1,ON
            chans, state = [self._channel(params[0])], self._bool(params[1])
        elif self.dialect.global_output:
            if len(params) != 1:
                raise ScpiError(-108, "Parameter not allowed")
            chans, state = list(self.rails), self._bool(params[0])
        else:
            state = self._bool(params[0])
            chans = self._targets(params[1] if len(params) > 1 else None)
        for c in chans:
            self.rails[c].set_output(state, t)
        return None

    def _measure(self, path: str, query: bool, params: list[str], t: float) -> str:
        if not query:
            raise ScpiError(*UNDEFINED_HEADER)
        quantity = path.split(":")[1] if ":" in path else "ALL"
        chans = self._targets(params[0] if params else None)
        points = [self.rails[c].evaluate(t) for c in chans]
        if quantity == "VOLT":
            return ",".join(self._fmt(p.volts) for p in points)
        if quantity == "CURR":
            return ",".join(self._fmt(p.amps) for p in points)
        if quantity == "POW":
            return ",".join(self._fmt(p.volts * p.amps) for p in points)
        if quantity == "ALL":
            p = points[0]
            return f"{self._fmt(p.volts)},{self._fmt(p.amps)},{self._fmt(p.volts * p.amps)}"
        raise ScpiError(*UNDEFINED_HEADER)


GARBAGE_REPLY = "\x15#?~garbled\x7f%!"


_OVERLONG = b"<overlong>"  # sentinel from `_Handler._read_line` (compared by identity)


class _Handler(socketserver.StreamRequestHandler):
    """One client connection: read `\\n`-terminated lines, answer them."""

    server: "_TcpServer"

    def _read_line(self) -> bytes | None:
        """The next program message, None at end of stream, or `_OVERLONG` for one longer than
        `MAX_LINE`: that one is reported (-363) as soon as it is known and skipped in `MAX_LINE`
        pieces up to its newline, so a 200 MB line costs 4 KB of memory and no lock time."""
        raw = self.rfile.readline(MAX_LINE + 1)
        if len(raw) <= MAX_LINE:
            return raw or None
        if not self.server.owner.frozen:  # a frozen instrument ignores everything, overruns included
            self.server.owner.instrument.report(*INPUT_BUFFER_OVERRUN)
        while not raw.endswith(b"\n"):
            raw = self.rfile.readline(MAX_LINE)
            if not raw:
                return None
        return _OVERLONG

    def handle(self) -> None:
        owner = self.server.owner
        owner._register(self.connection)
        try:
            while True:
                try:
                    raw = self._read_line()
                except OSError:
                    return
                if raw is None:
                    return
                if raw is _OVERLONG:
                    continue
                line = raw.decode("ascii", errors="replace").strip("\r\n")
                if owner.frozen:
                    continue
                if owner._take_drop():
                    self.connection.shutdown(socket.SHUT_RDWR)
                    return
                replies = owner.instrument.handle_line(line)
                owner._record(line)
                if owner.mute or not replies:
                    continue
                if owner.garbage:
                    replies = [GARBAGE_REPLY for _ in replies]
                # Several queries in one message share one reply line, joined by ';' (SCPI).
                try:
                    self.wfile.write((";".join(replies) + "\n").encode("ascii", errors="replace"))
                    self.wfile.flush()
                except OSError:
                    return
        finally:
            owner._unregister(self.connection)


class _TcpServer(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True
    block_on_close = False

    def __init__(self, owner: "PsuServer", address: tuple[str, int]) -> None:
        self.owner = owner
        super().__init__(address, _Handler)


class PsuServer:
    """A simulated PSU listening on 127.0.0.1 (ephemeral port by default).

    `start()` returns the VISA resource string; `stop()` closes the listener and every client
    connection. Many servers can run at once; each has its own port and thread.
    """

    def __init__(
        self,
        model: str = "E36312A",
        time_source: TimeSource = lambda: 0.0,
        loads: Mapping[int, LoadModel] | LoadModel | None = None,
        figures: PowerFigures = DEFAULT_FIGURES,
        vin_min_v: float = VIN_MIN_V,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        key = model.upper()
        if key not in DIALECTS:
            raise ValueError(f"unknown simulated PSU model {model!r}; known: {sorted(DIALECTS)}")
        if loads is not None and not isinstance(loads, Mapping):
            loads = {1: loads}
        self.instrument = SimulatedPsu(DIALECTS[key], time_source, loads, figures, vin_min_v)
        self.model = key
        self._address = (host, port)
        self._server: _TcpServer | None = None
        self._thread: threading.Thread | None = None
        self._conns: set[socket.socket] = set()
        self._conns_lock = threading.Lock()
        self.commands_seen: deque[str] = deque(maxlen=COMMANDS_KEPT)
        self._seen_cond = threading.Condition()
        # fault knobs
        self.mute = False
        self.garbage = False
        self.frozen = False
        self.drop_connections = 0

    # -- lifecycle --------------------------------------------------------------------------

    def start(self) -> str:
        """Start listening; return `TCPIP::127.0.0.1::PORT::SOCKET`."""
        if self._server is None:
            self._server = _TcpServer(self, self._address)
            self._thread = threading.Thread(
                target=self._server.serve_forever,
                kwargs={"poll_interval": 0.05},
                name=f"sim-psu-{self.model}-{self.port}",
                daemon=True,
            )
            self._thread.start()
        return self.resource

    def stop(self) -> None:
        """Stop listening and drop every client (idempotent)."""
        server, self._server = self._server, None
        if server is None:
            return
        server.shutdown()
        server.server_close()
        with self._conns_lock:
            conns = list(self._conns)
        for conn in conns:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        if self._thread is not None:
            self._thread.join(timeout=2.0)

    def __enter__(self) -> "PsuServer":
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        if self._server is None:
            return self._address[1]
        return int(self._server.server_address[1])

    @property
    def resource(self) -> str:
        return f"TCPIP::{self._address[0]}::{self.port}::SOCKET"

    # -- simulator side ---------------------------------------------------------------------

    def rail(self, channel: int = 1) -> PowerRail:
        """The output `channel`, for the bench to attach a board and to poke `evaluate(t)`."""
        return self.instrument.rails[channel]

    def attach(self, load: LoadModel, channel: int = 1) -> None:
        """Wire a board to `channel` (it is told the present supply state)."""
        with self.instrument.lock:
            self.instrument.rails[channel].attach(load)

    def detach(self, channel: int = 1) -> None:
        with self.instrument.lock:
            self.instrument.rails[channel].attach(NoLoad())

    def load_changed(self, t: float | None = None, channels: Iterable[int] | None = None) -> None:
        """Re-evaluate outputs after the board changed state, so a burst can brown it out."""
        with self.instrument.lock:
            when = self.instrument.time_source() if t is None else t
            for c in channels or self.instrument.rails:
                self.instrument.rails[c].evaluate(when)

    def wait_for_command(self, predicate: Callable[[str], bool], timeout_s: float = 2.0) -> bool:
        """Block until a command matching `predicate` has been executed (tests of writes that
        get no reply, e.g. on a muted server). Event-driven, bounded by `timeout_s`."""
        with self._seen_cond:
            return self._seen_cond.wait_for(
                lambda: any(predicate(c) for c in self.commands_seen), timeout=timeout_s)

    # -- internals --------------------------------------------------------------------------

    def _record(self, line: str) -> None:
        with self._seen_cond:
            self.commands_seen.append(line)
            self._seen_cond.notify_all()

    def _take_drop(self) -> bool:
        with self._conns_lock:
            if self.drop_connections > 0:
                self.drop_connections -= 1
                return True
            return False

    def _register(self, conn: socket.socket) -> None:
        with self._conns_lock:
            self._conns.add(conn)

    def _unregister(self, conn: socket.socket) -> None:
        with self._conns_lock:
            self._conns.discard(conn)
