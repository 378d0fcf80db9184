"""Hostile SCPI to the simulated PSU, over its real channel (TCP socket and PyVISA/pyvisa-py).

Every bad command ends up in `SYST:ERR?` with the SCPI code for what is wrong, changes nothing,
prints no traceback, and leaves the connection answering the next command. An over-long line is
discarded as it streams in (bounded memory, reported before its newline even arrives), so other
clients keep being served meanwhile. Virtual time is a constant: nothing here waits on the clock;
socket timeouts only turn a missing answer into a failure instead of a hang.
"""
from __future__ import annotations

import socket
import tracemalloc
from collections.abc import Iterator

import pyvisa
import pytest

from otarig.sim.psu_server import ERROR_QUEUE, MAX_LINE, PsuServer

NO_ERROR = '0,"No error"'
GUARD_S = 5.0  # a missing reply fails the test after this long; it never measures speed


class ScpiSocket:
    """A raw SCPI-over-TCP client: `\\n` terminated lines, as a LAN instrument is spoken to."""

    def __init__(self, server: PsuServer) -> None:
        self.sock = socket.create_connection(("127.0.0.1", server.port), timeout=GUARD_S)
        self._buf = b""

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def write(self, line: str) -> None:
        self.send(line.encode("ascii") + b"\n")

    def query(self, line: str) -> str:
        self.write(line)
        while b"\n" not in self._buf:
            chunk = self.sock.recv(65536)
            assert chunk, f"the server closed the connection after {line!r}"
            self._buf += chunk
        reply, _, self._buf = self._buf.partition(b"\n")
        return reply.decode("ascii")

    def errors(self) -> list[str]:
        """Drain the instrument's error queue."""
        out = []
        while (err := self.query("SYST:ERR?")) != NO_ERROR:
            out.append(err)
            assert len(out) <= ERROR_QUEUE, "the queue never empties"
        return out

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def server() -> Iterator[PsuServer]:
    srv = PsuServer("E36312A", time_source=lambda: 0.0)
    srv.start()
    yield srv
    srv.stop()


@pytest.fixture
def client(server: PsuServer) -> Iterator[ScpiSocket]:
    c = ScpiSocket(server)
    yield c
    c.close()


def _state(client: ScpiSocket) -> tuple[str, str, str, str]:
    """Set points, outputs and selection: what a rejected command must leave alone."""
    return (client.query("VOLT? (@1:3)"), client.query("CURR? (@1:3)"), client.query("OUTP? (@1:3)"),
            client.query("INST:NSEL?"))


BAD_COMMANDS = [
    ("VOLT 5,(@1:30000000)", -222),   # a channel that does not exist, not 30 million list entries
    ("VOLT 5,(@1:2:3)", -224),
    ("VOLT 5,(@:)", -224),
    ("VOLT 5,(@1,,2)", -224),
    ("MEAS:VOLT? (@1:2:3)", -224),
    ("OUTP ON,(@" + ",".join(["1:3"] * 30) + ")", -223),  # too many entries
    ("INST:NSEL 1e400", -222),
    ("INST:NSEL -1e400", -222),
    ("INST:NSEL nan", -224),
    ("INST:NSEL 7", -222),
    ("VOLT 1e400", -222),
    ("VOLT inf", -222),
    ("VOLT nan", -224),
    ("APPL CH1,4,nan", -224),
    ("CURR 1e999,(@1)", -222),
    ("VOLT 5_0", -104),
    ("VOLT 0x5", -104),
    ("VOLT" + "1" * 4000 + " 5", -114),  # a header suffix of 4000 digits
    ("VOLT 10,(@2,1)", -222),  # fine for channel 2, out of range for channel 1: neither is changed
]


@pytest.mark.parametrize("command, code", BAD_COMMANDS, ids=[c[:30] for c, _ in BAD_COMMANDS])
def test_bad_command_is_a_queued_scpi_error_that_changes_nothing(client, capfd, command, code):
    client.write("APPL CH1,4.2,1.5;:OUTP ON,(@1)")
    before = _state(client)
    client.write(command)
    assert [int(e.split(",")[0]) for e in client.errors()] == [code]
    assert _state(client) == before
    assert client.query("*IDN?").startswith("Keysight Technologies,E36312A"), "the same connection still answers"
    assert "Traceback" not in capfd.readouterr().err


def test_the_reported_cases_over_pyvisa(server, capfd):
    """`VOLT 5,(@1:2:3)` and `INST:NSEL 1e400` used to drop the connection with a traceback."""
    rm = pyvisa.ResourceManager("@py")
    inst = rm.open_resource(server.resource, read_termination="\n", write_termination="\n",
                            timeout=int(GUARD_S * 1000))
    try:
        inst.write("VOLT 5,(@1:2:3)")
        assert inst.query("SYST:ERR?") == '-224,"Illegal parameter value"'
        inst.write("INST:NSEL 1e400")
        assert inst.query("SYST:ERR?") == '-222,"Data out of range"'
        inst.write("VOLT 5,(@1:30000000)")
        assert inst.query("SYST:ERR?") == '-222,"Data out of range"'
        assert inst.query("SYST:ERR?") == NO_ERROR
        assert inst.query("INST:NSEL?") == "1"
        assert inst.query("*IDN?").startswith("Keysight Technologies")
    finally:
        inst.close()
        rm.close()
    assert "Traceback" not in capfd.readouterr().err


def test_huge_channel_list_costs_no_memory(client):
    """`(@1:30000000)` is refused from its end points: no list is built (it used to take +1.1 GB)."""
    tracemalloc.start()
    try:
        client.write("VOLT 5,(@1:30000000)")
        assert client.query("SYST:ERR?") == '-222,"Data out of range"'
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 1_000_000


def test_200_mb_line_without_newline_is_discarded_as_it_streams(server, client):
    """The -363 is queued before the newline arrives, another client is served meanwhile, memory
    stays bounded, and after the newline the same connection answers its next command at once."""
    other = ScpiSocket(server)
    chunk = memoryview(b"VOLT 5;" * 9362)  # 64 KB of plausible-looking SCPI, never a newline
    tracemalloc.start()
    try:
        for _ in range(200 * 1024 * 1024 // len(chunk)):
            client.send(chunk)
        _, peak = tracemalloc.get_traced_memory()
        assert other.query("SYST:ERR?") == '-363,"Input buffer overrun"'  # known while the line is still open
        assert other.query("*IDN?").startswith("Keysight"), "the instrument lock is free meanwhile"
    finally:
        tracemalloc.stop()
        other.close()
    assert peak < 4 * 1024 * 1024, f"the server held {peak} bytes of one line"
    client.send(b"\n")
    assert client.query("*IDN?").startswith("Keysight"), "the line ended: the connection carries on"
    assert client.errors() == [], "one line, one error"
    assert client.query("VOLT? (@1)") == "+0.00000000E+00", "nothing of the discarded line was executed"


@pytest.mark.parametrize("length", [MAX_LINE - 1, MAX_LINE, MAX_LINE + 1])
def test_line_length_limit_includes_the_newline(client, length):
    """Up to MAX_LINE bytes with the newline is a command; one byte more is -363 and not executed."""
    command = b"VOLT 2" + b" " * (length - len(b"VOLT 2") - 1) + b"\n"
    assert len(command) == length
    client.send(command)
    fits = length <= MAX_LINE
    assert client.errors() == ([] if fits else ['-363,"Input buffer overrun"'])
    assert client.query("VOLT? (@1)") == ("+2.00000000E+00" if fits else "+0.00000000E+00")


def test_error_queue_keeps_the_oldest_and_reports_overflow(client):
    for i in range(ERROR_QUEUE + 5):
        client.write(f"VOLT {i}e400")
    assert client.errors() == ['-222,"Data out of range"'] * (ERROR_QUEUE - 1) + ['-350,"Queue overflow"']
