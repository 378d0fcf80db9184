"""A bench power supply over PyVISA (SCPI), with the dialects of the models the rig supports.

Why this module and not pymeasure: pymeasure has a Keysight E36312A driver (channel-list commands
`VOLT %g, (@ch)`, `MEAS:VOLT? (@ch)`, `OUTP %d, (@ch)`, which this driver also uses) and an E3631A
one, but no Rigol DP8xx driver, and what the rig needs most is not in it: read-back verification
of every set, an `*IDN?` handshake that picks the dialect, a defined safe state on close and on
exceptions, `clear()` after a timeout (a late reply otherwise desynchronises the stream,
docs/reference/instruments-and-faults.md B.3), and one error type naming resource, command and fix. Those would wrap every
pymeasure call, and the dependency (numpy, pandas, pint) would not pay for three SCPI strings per
family, so the command tables live here.

Failure behaviour handled (docs/reference/instruments-and-faults.md B.3/B.4): an open on a port with no listener
"succeeds" and the first I/O raises a raw `ConnectionRefusedError`; a dead peer shows up as
`BrokenPipeError` or as a timeout; a timeout leaves a late reply in the stream. Every one of these
becomes a `PsuError` subclass within the configured timeout.
"""
from __future__ import annotations

import logging
import math
import re
import socket
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Callable, Literal, TypeVar

import pyvisa
from pyvisa.errors import VisaIOError

log = logging.getLogger(__name__)

T = TypeVar("T")
SafeState = Literal["off", "restore"]


# -- errors -----------------------------------------------------------------------------------


class PsuError(Exception):
    """A PSU operation failed. The message names the resource, the command and the fix."""

    def __init__(self, resource: str, command: str | None, problem: str, fix: str) -> None:
        self.resource = resource
        self.command = command
        self.problem = problem
        self.fix = fix
        where = f" (command {command!r})" if command else ""
        super().__init__(f"PSU {resource}: {problem}{where}. Fix: {fix}")


class PsuTimeoutError(PsuError):
    """No (complete) reply within the timeout."""


class PsuConnectionError(PsuError):
    """The connection could not be made or was lost."""


class PsuProtocolError(PsuError):
    """The instrument answered something that is not the expected reply (garbage, wrong type)."""


class PsuReadbackError(PsuError):
    """A set point read back differs from what was set, beyond tolerance."""


class PsuUnsupportedModelError(PsuError):
    """`*IDN?` names a model that has no dialect here."""


# -- identity and dialects ----------------------------------------------------------------------


@dataclass(frozen=True)
class Identity:
    """The four fields of `*IDN?`."""

    manufacturer: str
    model: str
    serial: str
    firmware: str

    @classmethod
    def parse(cls, reply: str) -> "Identity":
        fields = [f.strip() for f in reply.strip().split(",")]
        if len(fields) < 4 or not fields[1] or not all(f.isprintable() for f in fields):
            raise ValueError(f"not an *IDN? reply: {reply!r}")
        return cls(fields[0], fields[1], fields[2], ",".join(fields[3:]))


_NUMBER_RE = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$")


def _parse_number(reply: str) -> float:
    text = reply.strip().strip('"')
    if not _NUMBER_RE.match(text):
        raise ValueError(f"not a number: {reply!r}")
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"not a finite number: {reply!r}")
    return value


class Dialect:
    """How one family spells the handful of commands the rig needs. One instance per channel."""

    family = "generic"
    #: Commands to send after the identity check (clear status, remote mode...).
    init_commands: tuple[str, ...] = ("*CLS",)

    def __init__(self, channel: int) -> None:
        self.channel = channel

    def select(self) -> tuple[str, ...]:
        """Commands that must precede a channel operation (none when commands name the channel)."""
        return ()

    def set_voltage(self, volts: float) -> str:
        raise NotImplementedError

    def get_voltage(self) -> str:
        raise NotImplementedError

    def set_current(self, amps: float) -> str:
        raise NotImplementedError

    def get_current(self) -> str:
        raise NotImplementedError

    def set_output(self, on: bool) -> str:
        raise NotImplementedError

    def get_output(self) -> str:
        raise NotImplementedError

    def measure_voltage(self) -> str:
        raise NotImplementedError

    def measure_current(self) -> str:
        raise NotImplementedError

    def parse_output(self, reply: str) -> bool:
        text = reply.strip().upper()
        if text in ("1", "ON"):
            return True
        if text in ("0", "OFF"):
            return False
        raise ValueError(f"not an output state: {reply!r}")

    parse_number = staticmethod(_parse_number)


class KeysightE36300Dialect(Dialect):
    """Keysight E36311A/E36312A/E36313A: channel lists on every command, `OUTP?` -> 1/0."""

    family = "keysight"

    def _ch(self) -> str:
        return f"(@{self.channel})"

    def set_voltage(self, volts: float) -> str:
        return f"VOLT {volts:.4f},{self._ch()}"

    def get_voltage(self) -> str:
        return f"VOLT? {self._ch()}"

    def set_current(self, amps: float) -> str:
        return f"CURR {amps:.4f},{self._ch()}"

    def get_current(self) -> str:
        return f"CURR? {self._ch()}"

    def set_output(self, on: bool) -> str:
        return f"OUTP {'ON' if on else 'OFF'},{self._ch()}"

    def get_output(self) -> str:
        return f"OUTP? {self._ch()}"

    def measure_voltage(self) -> str:
        return f"MEAS:VOLT? {self._ch()}"

    def measure_current(self) -> str:
        return f"MEAS:CURR? {self._ch()}"


class KeysightE3631ADialect(Dialect):
    """Agilent/Keysight E3631A: `INST:NSEL n` selects, `OUTP` switches all three outputs."""

    family = "keysight"
    _NAMES = {1: "P6V", 2: "P25V", 3: "N25V"}

    def select(self) -> tuple[str, ...]:
        return (f"INST:NSEL {self.channel}",)

    def set_voltage(self, volts: float) -> str:
        return f"VOLT {volts:.4f}"

    def get_voltage(self) -> str:
        return "VOLT?"

    def set_current(self, amps: float) -> str:
        return f"CURR {amps:.4f}"

    def get_current(self) -> str:
        return "CURR?"

    def set_output(self, on: bool) -> str:
        return f"OUTP {'ON' if on else 'OFF'}"

    def get_output(self) -> str:
        return "OUTP?"

    def measure_voltage(self) -> str:
        return f"MEAS:VOLT? {self._NAMES[self.channel]}"

    def measure_current(self) -> str:
        return f"MEAS:CURR? {self._NAMES[self.channel]}"


class RigolDP800Dialect(Dialect):
    """Rigol DP811/DP821/DP831/DP832: `:SOURn:VOLT`, `:OUTP CHn,ON`, `:MEAS:VOLT? CHn`."""

    family = "rigol"

    def set_voltage(self, volts: float) -> str:
        return f":SOUR{self.channel}:VOLT {volts:.3f}"

    def get_voltage(self) -> str:
        return f":SOUR{self.channel}:VOLT?"

    def set_current(self, amps: float) -> str:
        return f":SOUR{self.channel}:CURR {amps:.3f}"

    def get_current(self) -> str:
        return f":SOUR{self.channel}:CURR?"

    def set_output(self, on: bool) -> str:
        return f":OUTP CH{self.channel},{'ON' if on else 'OFF'}"

    def get_output(self) -> str:
        return f":OUTP? CH{self.channel}"

    def measure_voltage(self) -> str:
        return f":MEAS:VOLT? CH{self.channel}"

    def measure_current(self) -> str:
        return f":MEAS:CURR? CH{self.channel}"


#: Supported models: IDN model field -> (dialect class, number of channels).
SUPPORTED_MODELS: dict[str, tuple[type[Dialect], int]] = {
    "E36311A": (KeysightE36300Dialect, 3),
    "E36312A": (KeysightE36300Dialect, 3),
    "E36313A": (KeysightE36300Dialect, 3),
    "E3631A": (KeysightE3631ADialect, 3),
    "DP811": (RigolDP800Dialect, 1),
    "DP811A": (RigolDP800Dialect, 1),
    "DP821": (RigolDP800Dialect, 2),
    "DP821A": (RigolDP800Dialect, 2),
    "DP831": (RigolDP800Dialect, 3),
    "DP831A": (RigolDP800Dialect, 3),
    "DP832": (RigolDP800Dialect, 3),
    "DP832A": (RigolDP800Dialect, 3),
}


def dialect_for(model: str, channel: int) -> Dialect:
    """The dialect object for `model` (IDN model field, case-insensitive) and `channel`."""
    entry = SUPPORTED_MODELS.get(model.strip().upper())
    if entry is None:
        raise KeyError(model)
    cls, channels = entry
    if not 1 <= channel <= channels:
        raise ValueError(f"{model} has channels 1..{channels}, not {channel}")
    return cls(channel)


# -- the driver ---------------------------------------------------------------------------------


_FIX_TIMEOUT = (
    "check that the supply is on and reachable, that the resource string and port are right, "
    "and that it answers this command; the session was cleared so the next command starts clean"
)
_FIX_CONNECTION = (
    "check that the supply (or the simulated bench) is running and listening on that address; "
    "reopen the PowerSupply"
)
_FIX_GARBAGE = (
    "the reply is not what this dialect expects: check the model/dialect (model=...), the line "
    "terminations (\\n) and for a second client on the same instrument; the session was cleared"
)


class PowerSupply:
    """One channel of a bench PSU. Open with `PowerSupply.open(...)`; use as a context manager.

    Every set is read back and compared. On `close()` and on leaving a `with` block (normally or
    by any exception, KeyboardInterrupt included) the safe state is applied: "off" switches the
    output off; "restore" puts back the set points and output state found at open.
    """

    def __init__(
        self,
        resource: Any,
        resource_name: str,
        identity: Identity,
        dialect: Dialect,
        timeout_s: float,
        safe_state: SafeState,
        reopen: Callable[[], Any],
        volt_tolerance: float,
        amp_tolerance: float,
    ) -> None:
        self._res = resource
        self.resource_name = resource_name
        self.identity = identity
        self.dialect = dialect
        self.timeout_s = timeout_s
        self.safe_state_mode: SafeState = safe_state
        self._reopen = reopen
        self.volt_tolerance = volt_tolerance
        self.amp_tolerance = amp_tolerance
        self._broken = False
        self._unresponsive = False  # last query timed out: do not wait again to verify
        self._closed = False
        self._found: tuple[float, float, bool] | None = None

    @property
    def model(self) -> str:
        return self.identity.model

    @property
    def channel(self) -> int:
        return self.dialect.channel

    # -- opening --------------------------------------------------------------------------------

    @classmethod
    def open(
        cls,
        resource: str,
        model: str | None = None,
        channel: int = 1,
        timeout_s: float = 2.0,
        safe_state: SafeState = "off",
        resource_manager: str | pyvisa.ResourceManager = "@py",
        volt_tolerance: float = 0.01,
        amp_tolerance: float = 0.005,
    ) -> "PowerSupply":
        """Open `resource`, check `*IDN?`, pick the dialect (from IDN, or `model` if given).

        `resource_manager` is a PyVISA backend string ("@py", "path.yaml@sim") or a
        `ResourceManager`. Raises `PsuConnectionError`, `PsuTimeoutError`,
        `PsuProtocolError` or `PsuUnsupportedModelError`.
        """
        if safe_state not in ("off", "restore"):
            raise ValueError(f"safe_state must be 'off' or 'restore', not {safe_state!r}")
        rm = (
            resource_manager
            if isinstance(resource_manager, pyvisa.ResourceManager)
            else pyvisa.ResourceManager(resource_manager)
        )
        timeout_ms = max(1, int(timeout_s * 1000))

        def do_open() -> Any:
            res = rm.open_resource(
                resource,
                read_termination="\n",
                write_termination="\n",
                timeout=timeout_ms,
                open_timeout=timeout_ms,
            )
            return res

        try:
            res = do_open()
        except (VisaIOError, OSError, ValueError) as exc:
            raise PsuConnectionError(resource, None, f"cannot open the resource ({exc})",
                                     _FIX_CONNECTION) from exc
        ident = cls._identify(res, resource)
        dialect = cls._choose_dialect(ident, model, channel, resource, res)
        psu = cls(res, resource, ident, dialect, timeout_s, safe_state, do_open,
                  volt_tolerance, amp_tolerance)
        try:
            for command in dialect.init_commands:
                psu._write(command)
            if safe_state == "restore":
                psu._found = (psu.voltage_setpoint(), psu.current_limit(), psu.output_state())
        except BaseException:
            psu._close_session()
            raise
        log.info("PSU %s: %s %s channel %d", resource, ident.manufacturer, ident.model, channel)
        return psu

    @staticmethod
    def _identify(res: Any, resource: str) -> Identity:
        command = "*IDN?"
        try:
            reply = res.query(command)
        except VisaIOError as exc:
            _safe_close(res)
            if exc.abbreviation == "VI_ERROR_TMO":
                raise PsuTimeoutError(resource, command, "no answer to the identity query",
                                      _FIX_TIMEOUT) from exc
            raise PsuConnectionError(resource, command, f"VISA error {exc.abbreviation}",
                                     _FIX_CONNECTION) from exc
        except OSError as exc:
            _safe_close(res)
            raise PsuConnectionError(resource, command, f"connection failed ({exc!r})",
                                     _FIX_CONNECTION) from exc
        try:
            return Identity.parse(reply)
        except ValueError as exc:
            _safe_close(res)
            raise PsuProtocolError(resource, command, f"garbled identity reply {reply!r}",
                                   _FIX_GARBAGE) from exc

    @staticmethod
    def _choose_dialect(
        ident: Identity, model: str | None, channel: int, resource: str, res: Any
    ) -> Dialect:
        supported = ", ".join(sorted(SUPPORTED_MODELS))
        idn_model = ident.model.upper()
        if model is not None:
            want = model.strip().upper()
            if want not in SUPPORTED_MODELS:
                _safe_close(res)
                raise PsuUnsupportedModelError(
                    resource, "*IDN?", f"model={model!r} has no dialect",
                    f"use one of: {supported}")
            if idn_model in SUPPORTED_MODELS and idn_model != want:
                _safe_close(res)
                raise PsuUnsupportedModelError(
                    resource, "*IDN?",
                    f"model={model!r} was requested but the instrument says {ident.model!r}",
                    "drop model= to auto-detect, or fix the bench config")
            chosen = want
        else:
            chosen = idn_model
            if chosen not in SUPPORTED_MODELS:
                _safe_close(res)
                raise PsuUnsupportedModelError(
                    resource, "*IDN?",
                    f"{ident.manufacturer} {ident.model!r} is not a supported model",
                    f"use one of: {supported}, or pass model= naming a compatible dialect")
        try:
            return dialect_for(chosen, channel)
        except ValueError as exc:
            _safe_close(res)
            raise PsuError(resource, None, str(exc), "pick an existing channel") from exc

    # -- public operations ----------------------------------------------------------------------

    def set_voltage(self, volts: float) -> float:
        """Set the output voltage; return the read-back set point."""
        return self._set_and_verify(self.dialect.set_voltage(volts), self.dialect.get_voltage(),
                                    volts, self.volt_tolerance, "V")

    def set_current_limit(self, amps: float) -> float:
        """Set the current limit; return the read-back limit."""
        return self._set_and_verify(self.dialect.set_current(amps), self.dialect.get_current(),
                                    amps, self.amp_tolerance, "A")

    def output(self, on: bool) -> bool:
        """Switch the output; return the read-back state (raises if it did not follow)."""
        self._select()
        command = self.dialect.set_output(on)
        self._write(command)
        state = self.output_state()
        if state != on:
            raise PsuReadbackError(
                self.resource_name, command,
                f"output reads back {'ON' if state else 'OFF'} after switching it "
                f"{'ON' if on else 'OFF'}{self._instrument_errors_suffix()}",
                "check for a protection trip (OVP/OCP) or front-panel lock on the supply")
        return state

    def output_state(self) -> bool:
        self._select()
        return self._query(self.dialect.get_output(), self.dialect.parse_output)

    def voltage_setpoint(self) -> float:
        self._select()
        return self._query(self.dialect.get_voltage(), self.dialect.parse_number)

    def current_limit(self) -> float:
        self._select()
        return self._query(self.dialect.get_current(), self.dialect.parse_number)

    def measure_voltage(self) -> float:
        """Measured output voltage (V)."""
        self._select()
        return self._query(self.dialect.measure_voltage(), self.dialect.parse_number)

    def measure_current(self) -> float:
        """Measured output current (A)."""
        self._select()
        return self._query(self.dialect.measure_current(), self.dialect.parse_number)

    def errors(self, limit: int = 20) -> list[tuple[int, str]]:
        """Drain the instrument's error queue (`SYST:ERR?`) until it says 0."""
        out: list[tuple[int, str]] = []
        for _ in range(limit):
            code, msg = self._query("SYST:ERR?", _parse_error)
            if code == 0:
                break
            out.append((code, msg))
        return out

    def clear(self) -> None:
        """Device clear: discard pending replies so the next query gets its own answer.

        pyvisa-py's socket `clear()` loops for ever once the peer has closed (select reports
        the socket readable, recv returns b""), so a closed peer is detected first and the
        session is marked for reopening instead.
        """
        if self._peer_closed():
            self._broken = True
            return
        try:
            self._res.clear()
        except NotImplementedError:  # some backends (pyvisa-sim) have no clear
            pass
        except (VisaIOError, OSError) as exc:
            log.warning("PSU %s: clear failed: %r", self.resource_name, exc)
            self._broken = True

    def _peer_closed(self) -> bool:
        """True when the session is a raw TCP socket whose peer has closed it."""
        try:
            sess = self._res.visalib.sessions[self._res.session]
        except Exception:  # not pyvisa-py, or no session: nothing to detect
            return False
        sock = getattr(sess, "interface", None)
        if not isinstance(sock, socket.socket):
            return False
        try:
            return sock.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT) == b""
        except BlockingIOError:
            return False
        except OSError:
            return True

    def safe_state(self) -> None:
        """Apply the configured safe state. Best effort: logs instead of raising.

        Over a lost connection it reopens the session once (bounded by the timeout) so the
        output can still be switched off when the instrument is reachable at all.
        """
        # A timeout explained by a closed connection says nothing about the instrument: after
        # the reopen it is worth one verified attempt. A plain timeout is not waited on twice.
        unresponsive = self._unresponsive and not self._broken
        if self._broken or unresponsive:
            # A lost or desynchronised socket session is reopened (B.3: reopening fixes a
            # session whose peer went away while a reply was awaited).
            if not self._try_reopen():
                return
        try:
            if unresponsive:
                # One timeout already spent: send the safe state, do not wait on read-backs.
                self._select()
                for command in self._safe_commands():
                    self._write(command)
                log.error("PSU %s: safe state %r sent but not confirmed (instrument not "
                          "answering)", self.resource_name, self.safe_state_mode)
            elif self.safe_state_mode == "restore" and self._found is not None:
                volts, amps, on = self._found
                if not on:
                    self.output(False)
                self.set_voltage(volts)
                self.set_current_limit(amps)
                if on:
                    self.output(True)
            else:
                self._select()
                self._write(self.dialect.set_output(False))
                if self.output_state():
                    log.error("PSU %s: output still ON after the safe-state switch-off",
                              self.resource_name)
        except PsuError as exc:
            log.error("PSU %s: safe state %r not confirmed: %s", self.resource_name,
                      self.safe_state_mode, exc)

    def _safe_commands(self) -> list[str]:
        if self.safe_state_mode == "restore" and self._found is not None:
            volts, amps, on = self._found
            return [self.dialect.set_output(False), self.dialect.set_voltage(volts),
                    self.dialect.set_current(amps), self.dialect.set_output(on)]
        return [self.dialect.set_output(False)]

    def close(self) -> None:
        """Apply the safe state, then close the session (idempotent)."""
        if self._closed:
            return
        try:
            self.safe_state()
        finally:
            self._close_session()

    def __enter__(self) -> "PowerSupply":
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<PowerSupply {self.model} ch{self.channel} at {self.resource_name}>"

    # -- internals ------------------------------------------------------------------------------

    def _close_session(self) -> None:
        self._closed = True
        _safe_close(self._res)

    def _try_reopen(self) -> bool:
        _safe_close(self._res)
        try:
            self._res = self._reopen()
        except (VisaIOError, OSError, ValueError) as exc:
            log.error("PSU %s: reopen for safe state failed, safe state NOT applied: %r",
                      self.resource_name, exc)
            return False
        self._broken = False
        return True

    def _select(self) -> None:
        for command in self.dialect.select():
            self._write(command)

    def _set_and_verify(
        self, set_cmd: str, get_cmd: str, wanted: float, tolerance: float, unit: str
    ) -> float:
        self._select()
        self._write(set_cmd)
        got = self._query(get_cmd, self.dialect.parse_number)
        if abs(got - wanted) > tolerance:
            raise PsuReadbackError(
                self.resource_name, set_cmd,
                f"set {wanted:g} {unit} but it reads back {got:g} {unit} "
                f"(tolerance {tolerance:g} {unit}){self._instrument_errors_suffix()}",
                "check the value is within the channel's range and that the front panel is "
                "not locked; see the instrument's error queue")
        return got

    def _instrument_errors_suffix(self) -> str:
        try:
            errs = self.errors(limit=5)
        except PsuError:
            return ""
        return f"; instrument errors: {errs}" if errs else ""

    def _guard(self, command: str, fn: Callable[[], T]) -> T:
        if self._closed:
            raise PsuConnectionError(self.resource_name, command, "the session is closed",
                                     "open the PowerSupply again")
        try:
            result = fn()
        except VisaIOError as exc:
            if exc.abbreviation == "VI_ERROR_TMO":
                self._unresponsive = True
                self.clear()
                if self._broken:
                    raise PsuConnectionError(
                        self.resource_name, command,
                        "the instrument closed the connection while a reply was awaited",
                        _FIX_CONNECTION) from exc
                raise PsuTimeoutError(
                    self.resource_name, command, f"no reply within {self.timeout_s:g} s",
                    _FIX_TIMEOUT) from exc
            self._broken = True
            raise PsuConnectionError(self.resource_name, command,
                                     f"VISA error {exc.abbreviation}", _FIX_CONNECTION) from exc
        except OSError as exc:
            self._broken = True
            raise PsuConnectionError(self.resource_name, command,
                                     f"connection lost ({exc!r})", _FIX_CONNECTION) from exc
        return result

    def _write(self, command: str) -> None:
        self._guard(command, lambda: self._res.write(command))

    def _query(self, command: str, parse: Callable[[str], T]) -> T:
        reply = self._guard(command, lambda: self._res.query(command))
        self._unresponsive = False
        try:
            return parse(reply)
        except ValueError as exc:
            self.clear()
            raise PsuProtocolError(self.resource_name, command,
                                   f"unexpected reply {reply!r}", _FIX_GARBAGE) from exc


def _parse_error(reply: str) -> tuple[int, str]:
    code, _, msg = reply.strip().partition(",")
    try:
        return int(code), msg.strip().strip('"')
    except ValueError:
        raise ValueError(f"not an SCPI error: {reply!r}") from None


def _safe_close(res: Any) -> None:
    try:
        res.close()
    except Exception:  # closing a dead session must never mask the real error
        pass
