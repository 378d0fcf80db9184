"""Hostile bytes to a simulated board's serial port: the companion's TestAgent (g++ build) on a
real pty, the bytes written to the pty's /dev/pts side as any terminal program would.

An over-long line is dropped up to its newline as soon as its bytes are there, with one error,
and the next command is answered in the same agent loop (docs/protocol.md "Framing"), not after
one loop per 2048 bytes (a 1 MB line used to hold `ping` back for 513 s). All waiting is in
virtual time; the device's own `t` stamps say when it answered.
"""
from __future__ import annotations

import json
import os
from collections.abc import Iterator

import pytest

from otarig.sim.bench import SimBench
from otarig.sim.electron import Electron

from sim_helpers import DEVICE_ID, RigFactory

MB = 1 << 20
STEP_S = 0.05


class Terminal:
    """The host end of the board's pty, driven from this thread: bytes out, lines in.

    Nobody attached a rig `Board`, so this plays the part `otarig sim` plays for a terminal:
    hand what the kernel holds to the device, keep the device's output flowing.
    """

    def __init__(self, bench: SimBench, dev: Electron) -> None:
        self.bench, self.dev = bench, dev
        self.port = bench.slots[dev.device_id].port
        assert self.port is not None
        self._advance_until(lambda: self.port.present, 30)
        self.fd = os.open(self.port.link, os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK)
        self.out = bytearray()

    def _pump(self) -> None:
        try:
            while chunk := os.read(self.fd, 65536):
                self.out += chunk
        except BlockingIOError:
            pass
        self.port.flush()
        data = self.port.read_available()
        if data:
            self.dev.serial_input(data)

    def write(self, data: bytes) -> None:
        """Write everything (the kernel takes a pty buffer at a time); no virtual time passes."""
        left = memoryview(data)
        while left:
            try:
                left = left[os.write(self.fd, left):]
            except BlockingIOError:
                pass
            self._pump()
        self._pump()

    def events(self) -> list[dict]:
        return [json.loads(line) for line in self.out.decode().splitlines() if line.startswith("{")]

    def _advance_until(self, done, seconds: float) -> bool:
        end = self.bench.world.now_ms + int(seconds * 1000)
        while not done() and self.bench.world.now_ms < end:
            self.bench.advance(STEP_S)
            if hasattr(self, "fd"):
                self._pump()
        return bool(done())

    def run(self, seconds: float) -> None:
        """Let `seconds` of virtual time pass, the pty served all along."""
        self._advance_until(lambda: False, seconds)

    def reply(self, cid: int, seconds: float) -> dict | None:
        """Run virtual time until the reply to command `cid` is read (or `seconds` have passed)."""
        found = lambda: next((e for e in self.events() if e.get("ev") == "reply" and e.get("id") == cid), None)
        self._advance_until(found, seconds)
        return found()

    def close(self) -> None:
        os.close(self.fd)


@pytest.fixture
def terminal(companion_image, sim_rig: RigFactory) -> Iterator[Terminal]:
    rig = sim_rig(companion_image(1), board=False)
    term = Terminal(rig.bench, rig.dev)
    assert term._advance_until(lambda: any(e.get("ev") == "hello" for e in term.events()), 30)
    yield term
    term.close()


def _errors_about_long_lines(term: Terminal) -> list[dict]:
    return [e for e in term.events() if "longer than 512 bytes" in str(e.get("msg", e.get("error", "")))]


def test_one_megabyte_line_is_dropped_at_once_and_the_next_command_answered(terminal: Terminal):
    terminal.write(b"\x07garbage" * (MB // 8) + b"\n" + b'{"cmd":"ping","id":7}\n')
    reply = terminal.reply(7, seconds=5)
    assert reply is not None, "no answer within 5 s of virtual time (it used to take 513 s)"
    assert reply["ok"] is True and reply["proto"] == 1
    (error,) = _errors_about_long_lines(terminal)
    assert error == {"ev": "log", "t": error["t"], "msg": "discarded: line longer than 512 bytes"}
    assert reply["t"] == error["t"], "dropped and answered in the same agent loop"


def test_long_line_with_an_id_gets_one_failed_reply_for_that_id(terminal: Terminal):
    terminal.write(b'{"cmd":"status","id":41,"pad":"' + b"p" * MB + b'"}\n{"cmd":"ping","id":42}\n')
    failed, answered = terminal.reply(41, seconds=5), terminal.reply(42, seconds=5)
    assert failed is not None and failed["ok"] is False and failed["error"] == "line longer than 512 bytes"
    assert answered is not None and answered["ok"] is True and answered["t"] == failed["t"]
    assert len(_errors_about_long_lines(terminal)) == 1


def test_long_line_arriving_in_pieces_is_still_one_error_and_loses_the_next_command_never(terminal: Terminal):
    terminal.write(b"z" * (MB // 2))  # no newline yet: the agent drops what is there and waits
    terminal.run(3)
    assert _errors_about_long_lines(terminal) == [], "the error comes once, with the newline"
    terminal.write(b"z" * (MB // 2) + b"\n")
    terminal.write(b'{"cmd":"ping","id":8}\n')
    reply = terminal.reply(8, seconds=5)
    assert reply is not None and reply["ok"] is True
    (error,) = _errors_about_long_lines(terminal)
    assert reply["t"] - error["t"] <= 1000, "the command after the line waits for no more than one loop"


def test_a_line_of_exactly_512_bytes_is_still_a_command(terminal: Terminal):
    command = b'{"cmd":"ping","id":9,"pad":"'
    command += b"p" * (511 - len(command) - 2) + b'"}\n'
    assert len(command) == 512
    terminal.write(command)
    reply = terminal.reply(9, seconds=5)
    assert reply is not None and reply["ok"] is True and _errors_about_long_lines(terminal) == []
