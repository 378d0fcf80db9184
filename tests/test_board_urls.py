"""A board reached by a pyserial URL: `rfc2217://` (ser2net, a labgrid exporter) and `socket://`,
over real TCP on loopback. The far end is an RFC 2217 server made of pyserial's own PortManager in
front of a `loop://` port, so every line the rig writes comes back as the board's output."""
from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import serial
import serial.rfc2217

from otarig.board import Board
from otarig.clock import WallClock

HELLO = b'{"ev":"hello","t":5,"agent":"otarig-companion","proto":1}\n'


class _Rfc2217Server:
    """One client at a time: RFC 2217 negotiation by pyserial's PortManager, data through loop://."""

    def __init__(self, *, rfc2217: bool) -> None:
        self.rfc2217 = rfc2217
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        conn, _ = self.listener.accept()
        conn.settimeout(0.05)
        loop = serial.serial_for_url("loop://", timeout=0.05)
        manager = serial.rfc2217.PortManager(loop, _SocketWriter(conn)) if self.rfc2217 else None
        while not self.stop.is_set():
            try:
                data = conn.recv(4096)
                if not data:
                    break
                payload = b"".join(manager.filter(data)) if manager else data
                if payload:
                    loop.write(payload)
            except socket.timeout:
                pass
            out = loop.read(loop.in_waiting or 1)
            if out:
                conn.sendall(b"".join(manager.escape(out)) if manager else out)
        conn.close()

    def close(self) -> None:
        self.stop.set()
        self.listener.close()


class _SocketWriter:
    def __init__(self, conn: socket.socket) -> None:
        self.conn = conn

    def write(self, data: bytes) -> None:
        self.conn.sendall(data)


@pytest.fixture(params=["rfc2217", "socket"])
def remote(request: pytest.FixtureRequest) -> Iterator[str]:
    server = _Rfc2217Server(rfc2217=request.param == "rfc2217")
    yield f"{request.param}://127.0.0.1:{server.port}" + ("?timeout=3" if request.param == "rfc2217" else "")
    server.close()


def test_a_board_over_a_network_serial_url_opens_writes_and_reads(remote: str, tmp_path: Path) -> None:
    """Opening with the rig's write timeout used to raise on rfc2217:// (pyserial's client does not
    support one); the board now opens, writes a line and reads it back as an event."""
    with Board("remote", remote, clock=WallClock(), log_path=tmp_path / "remote.log") as board:
        board.write(HELLO)
        ev = board.expect(lambda e: e.name == "hello", 10)
        assert ev.get("agent") == "otarig-companion"
    assert "hello" in (tmp_path / "remote.log").read_text()
