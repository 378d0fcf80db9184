"""otarig.board over real ptys and pyserial (no mocks), driven by a scripted device.

The scripted device writes into a SimSerialPort at virtual times; the tests' clock runs it from
`wait()`, and after every step synchronises the way the simulated bench does
(`port.deliver(board.drain_to)`, then `port.pull(board.tx_count)`).
"""

from __future__ import annotations

import heapq
import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from otarig.board import (
    Board,
    BoardError,
    CommandFailed,
    ExpectTimeout,
    PortUnavailable,
    UnexpectedOutput,
)
from otarig.clock import BenchClock, WallClock
from otarig.protocol import Event, Noise
from otarig.sim.serial_port import PortSyncError, SimSerialPort


def line(ev: str, t: int, **keys: Any) -> bytes:
    return json.dumps({"ev": ev, "t": t, **keys}, separators=(",", ":")).encode() + b"\n"


HELLO = line("hello", 12, proto=1, agent="otarig-companion", product_id=4242, product_version=1)


class ScriptClock:
    """Virtual time: `wait` runs the device actions due by then (returning early after them) and
    synchronises the port with the board after every step, as the simulated bench does."""

    def __init__(self) -> None:
        self.t = 0.0
        self._actions: list[tuple[float, int, Callable[[], None]]] = []
        self._seq = 0
        self.port: SimSerialPort | None = None
        self.board: Board | None = None
        self.responder: Callable[[bytes], None] | None = None

    def at(self, t: float, action: Callable[[], None]) -> None:
        heapq.heappush(self._actions, (t, self._seq, action))
        self._seq += 1

    time_scale = 0.0
    resolution_s = 0.001

    def now(self) -> float:
        return self.t

    def attach(self, endpoint: object) -> None:
        """The tests wire `self.board` themselves."""

    def event_time(self, published_at: str) -> float:
        return self.t

    def run_external(self, fn: Callable[[], object], timeout: float) -> object:
        return fn()

    def wait(self, seconds: float) -> None:
        self.sync()
        target = self.t + max(seconds, 0.0)
        if self._actions and self._actions[0][0] <= target:
            self.t = max(self.t, self._actions[0][0])
            while self._actions and self._actions[0][0] <= self.t:
                heapq.heappop(self._actions)[2]()
        else:
            self.t = target
        self.sync()

    def run_until(self, t: float) -> None:
        while self.t < t:
            self.wait(t - self.t)

    def sync(self) -> None:
        if self.port is None or self.board is None:
            return
        self.port.deliver(self.board.drain_to)
        if self.port.present and self.board.generation == self.port.generation:
            data = self.port.pull(self.board.tx_count)
            if data and self.responder:
                self.responder(data)


def test_clocks_satisfy_the_protocol() -> None:
    assert isinstance(ScriptClock(), BenchClock)
    assert isinstance(WallClock(), BenchClock)


@pytest.fixture
def bench(tmp_path: Path):
    clock = ScriptClock()
    port = SimSerialPort(tmp_path / "ttyELECTRON0")
    board = Board("e0", port.link, clock=clock, log_path=tmp_path / "logs" / "e0.log")
    clock.port, clock.board = port, board
    yield clock, port, board
    board.close()
    port.close()


# -- SimSerialPort --------------------------------------------------------------------------------


def test_port_appears_behind_a_stable_link_and_vanishes(tmp_path: Path) -> None:
    port = SimSerialPort(tmp_path / "tty0")
    assert not port.present and port.write(b"lost\n") == 0
    port.appear()
    try:
        assert port.present and port.generation == 1
        assert port.link.is_symlink() and str(port.link.resolve()) == port.tty_path
        port.write(b"abc")
        assert port.tx_count == 3 and port.delivered == 3
        port.appear()  # re-enumerate: a new generation, counts restart
        assert port.generation == 2 and port.tx_count == 0 and port.rx_count == 0
        port.vanish()
        assert not port.present and not port.link.exists() and not port.link.is_symlink()
        assert port.read_available() == b""
    finally:
        port.close()


def test_pull_raises_when_the_rig_bytes_never_come(tmp_path: Path) -> None:
    port = SimSerialPort(tmp_path / "tty0")
    port.appear()
    try:
        with pytest.raises(PortSyncError, match="expected 5 bytes"):
            port.pull(5, timeout_wall=0.1)
    finally:
        port.close()


# -- decoding and the log -------------------------------------------------------------------------


def test_output_written_before_the_rig_opens_is_kept(bench) -> None:
    clock, port, board = bench
    port.appear()
    port.write(HELLO + line("boot", 13, reset_reason="power_down"))
    board.open()
    hello = board.expect("hello", timeout=1.0)
    assert hello.get("proto") == 1
    assert board.expect(lambda e: e.name == "boot", timeout=1.0)["reset_reason"] == "power_down"
    assert [e.name for e in board.events()] == ["hello", "boot"]
    port.deliver(board.drain_to)  # the board adopts the generation it opened
    assert board.generation == port.generation == 1 and board.rx_count == port.tx_count


def test_events_and_noise_through_the_pty(bench) -> None:
    clock, port, board = bench
    port.appear()
    board.open()
    clock.at(0.5, lambda: port.write(HELLO))
    clock.at(0.7, lambda: port.write(b"\x00\xffDevice OS \\ panic\r\nplain text\n[1]\n" + b"x" * 700 + b"\n"))
    clock.at(0.9, lambda: port.write(line("log", 900, msg="after noise")))
    ev = board.expect(r'"msg":"after noise"', timeout=5.0)
    assert ev.name == "log" and clock.now() == pytest.approx(0.9)
    noise = [e for _, e in board.history if isinstance(e, Noise)]
    assert [n.reason for n in noise] == ["not_utf8", "not_json", "not_object", "too_long"]
    log = board.log_path.read_text()
    assert "[       0.500] " + HELLO.decode().strip() in log
    assert "[       0.700] !! noise(not_utf8) \\x00\\xffDevice OS \\\\ panic" in log
    assert "!! noise(not_json) plain text" in log
    assert "!! noise(too_long) " + "x" * 512 + "\n" in log


def test_expect_timeout_carries_last_lines_and_log_path(bench) -> None:
    clock, port, board = bench
    port.appear()
    board.open()
    for i in range(30):
        clock.at(0.1 * i, lambda i=i: port.write(line("log", i, msg=f"line {i}")))
    with pytest.raises(ExpectTimeout) as info:
        board.expect("never", timeout=5.0)
    msg = str(info.value)
    assert clock.now() == pytest.approx(5.0)
    assert "no output matching 'never' within 5.000 s" in msg
    assert '"msg":"line 29"' in msg and '"msg":"line 10"' in msg and '"msg":"line 9"' not in msg
    assert f"full log: {board.log_path}" in msg
    # a timeout consumes nothing
    assert board.expect('"line 0"', timeout=0)["msg"] == "line 0"
    # a named wait (the rig's expect_sys/expect_guard/expect_version) says what it waited for
    from otarig.rig import _named
    with pytest.raises(ExpectTimeout, match="no output matching the app's `firmware_update begin` system event"):
        board.expect(_named(lambda e: False, "the app's `firmware_update begin` system event"), timeout=1.0)


def test_expect_cursor_and_not_matching(bench) -> None:
    clock, port, board = bench
    port.appear()
    board.open()
    clock.at(1.0, lambda: port.write(line("app", 1, n=1) + line("app", 2, n=2)))
    clock.at(2.0, lambda: port.write(b"SOS panic\n" + line("app", 3, n=3)))
    assert board.expect("app", 5.0)["n"] == 1
    assert board.expect("app", 5.0)["n"] == 2
    with pytest.raises(UnexpectedOutput, match="SOS"):
        board.expect("app", 5.0, not_matching=[re.compile("SOS")])
    assert board.expect("app", 5.0)["n"] == 3


# -- commands -------------------------------------------------------------------------------------


def make_device(clock: ScriptClock, port: SimSerialPort) -> list[dict[str, Any]]:
    """A scripted companion: answers each command 5 ms later; `workload` also prints an event."""
    seen: list[dict[str, Any]] = []
    buf = bytearray()

    def on_bytes(data: bytes) -> None:
        buf.extend(data)
        while b"\n" in buf:
            raw, _, rest = bytes(buf).partition(b"\n")
            buf[:] = rest
            cmd = json.loads(raw)
            seen.append(cmd)
            ms = int(clock.now() * 1000)
            if cmd["cmd"] == "workload":
                out = line("app", ms, action="workload", state=cmd["state"])
                out += line("reply", ms + 5, id=cmd["id"], cmd="workload", ok=True, state=cmd["state"])
            else:
                out = line("reply", ms + 5, id=cmd["id"], cmd=cmd["cmd"], ok=False, error="unknown cmd")
            clock.at(clock.now() + 0.005, lambda out=out: port.write(out))

    clock.responder = on_bytes
    return seen


def test_command_round_trip(bench) -> None:
    clock, port, board = bench
    port.appear()
    board.open()
    seen = make_device(clock, port)
    reply = board.command("workload", state="busy")
    assert reply == {"id": 1, "cmd": "workload", "ok": True, "state": "busy"}
    assert seen == [{"cmd": "workload", "id": 1, "state": "busy"}]
    assert clock.now() == pytest.approx(0.005)
    # the event printed before the reply is still there for expect
    assert board.expect("workload", 1.0)["state"] == "busy"
    with pytest.raises(CommandFailed, match="'bogus' \\(id 2\\) failed: unknown cmd") as info:
        board.command("bogus")
    assert info.value.reply.get("id") == 2
    log = board.log_path.read_text()
    assert '>> {"cmd":"workload","id":1,"state":"busy"}' in log


def test_command_without_reply_times_out(bench) -> None:
    clock, port, board = bench
    port.appear()
    board.open()
    with pytest.raises(ExpectTimeout, match=r"no reply to command 'ping' \(id 1\) within 2.000 s"):
        board.command("ping", timeout=2.0)
    assert port.rx_count == board.tx_count > 0


# -- reconnection ---------------------------------------------------------------------------------


def reset_scenario(tmp_path: Path) -> tuple[Board, ScriptClock]:
    """Boot, noise, a command, a partial line cut by a reset, re-enumeration, boot again."""
    clock = ScriptClock()
    port = SimSerialPort(tmp_path / "ttyE")
    board = Board("e0", port.link, clock=clock, log_path=tmp_path / "e0.log")
    clock.port, clock.board = port, board
    make_device(clock, port)
    board.open(required=False)  # before power-on: the port is not there yet
    clock.at(0.25, lambda: (port.appear(), port.write(HELLO + line("boot", 13, reset_reason="power_down"))))
    clock.at(0.5, lambda: port.write(b"\xfe\xff garbage\n"))
    clock.at(1.0, lambda: port.write(b'{"ev":"app","t":1000,"act'))  # cut by the reset
    clock.at(1.2, port.vanish)
    clock.at(3.0, lambda: (port.appear(), port.write(HELLO)))
    clock.at(3.0, lambda: port.write(line("boot", 14, reset_reason="user")))
    for i in range(5):
        clock.at(3.5 + i, lambda i=i: port.write(line("app", 500 + i, action="record", seq=i)))
    try:
        board.expect("hello", 2.0)
        assert board.command("workload", state="idle")["state"] == "idle"
        board.expect(lambda e: e.name == "boot" and e["reset_reason"] == "user", 10.0)
        clock.run_until(10.0)
    finally:
        board.close()
        port.close()
    return board, clock


def test_reset_mid_stream_loses_nothing_written_after_the_port_came_back(tmp_path: Path) -> None:
    board, _ = reset_scenario(tmp_path)
    after = [e for t, e in board.history if t >= 3.0 and isinstance(e, Event)]
    assert [e.name for e in after] == ["hello", "boot"] + ["app"] * 5
    assert [e["seq"] for e in after[2:]] == [0, 1, 2, 3, 4]
    assert board.events("hello")[0].t == 12 and len(board.events("hello")) == 2


def test_reset_gap_is_marked_in_the_log(tmp_path: Path) -> None:
    board, _ = reset_scenario(tmp_path)
    log = (tmp_path / "e0.log").read_text()
    expected_order = [
        "[       0.250] -- port open --",
        "[       0.250] " + HELLO.decode().strip(),
        "[       0.500] !! noise(not_utf8) \\xfe\\xff garbage",
        '[       1.200] !! noise(partial) {"ev":"app","t":1000,"act',
        "[       1.200] -- port lost at 1.200 --",
        "[       3.000] -- port back at 3.000 --",
        "[       3.000] " + HELLO.decode().strip(),
        "[       7.500] " + line("app", 504, action="record", seq=4).decode().strip(),
        "[      10.000] -- port closed --",
    ]
    positions = [log.index(text) for text in expected_order]
    assert positions == sorted(positions)


def test_logs_are_byte_identical_across_runs(tmp_path: Path) -> None:
    reset_scenario(tmp_path / "a")
    reset_scenario(tmp_path / "b")
    first = (tmp_path / "a" / "e0.log").read_bytes()
    assert first == (tmp_path / "b" / "e0.log").read_bytes()
    assert b"-- port lost at" in first


def test_poll_reconnects_on_a_real_clock(tmp_path: Path) -> None:
    """Real-bench style: no drain_to, the board notices the vanished port by itself."""
    port = SimSerialPort(tmp_path / "ttyW")
    port.appear()
    board = Board("w0", port.link, clock=WallClock(), log_path=tmp_path / "w0.log")
    try:
        board.open()
        port.write(line("app", 1, seq=1) + b'{"ev":"app","t":2,')
        board.expect('"seq":1', timeout=5.0)
        board.drain_to(port.generation, port.delivered)  # the partial line is in the decoder
        port.vanish()
        assert board.poll() == [Noise("partial", b'{"ev":"app","t":2,')]
        assert not board.connected
        port.appear()
        port.write(HELLO + line("app", 3, seq=3))
        assert board.expect('"seq":3', timeout=5.0)["seq"] == 3
        assert board.connected and board.generation is None
        assert [e.name for e in board.events()] == ["app", "hello", "app"]
        board.drain_to(port.generation, port.delivered)  # adopts the reopened port's generation
        assert board.generation == port.generation == 2
    finally:
        board.close()
        port.close()
    log = (tmp_path / "w0.log").read_text()
    assert "-- port lost at" in log and "-- port back at" in log


def test_board_closed_and_reopened_within_a_generation_resumes(bench) -> None:
    clock, port, board = bench
    port.appear()
    board.open()
    make_device(clock, port)
    assert board.command("workload", state="busy")["ok"] is True
    board.close()
    clock.at(1.0, lambda: port.write(line("app", 1000, seq=1)))
    clock.run_until(2.0)  # the bench keeps draining: a closed board receives nothing
    assert board.drain_to(port.generation, port.delivered) == []
    board.open()
    assert board.expect('"seq":1', 1.0).t == 1000
    clock.sync()  # the next bench step: the board adopts generation 1 and resumes its counts
    assert board.rx_count == port.tx_count and board.tx_count == port.rx_count
    assert board.command("workload", state="idle")["id"] == 2
    assert (board.log_path.read_text().count("-- port open --"), board.generation) == (2, 1)


def test_drain_pushes_a_backlog_larger_than_the_kernel_buffer(bench) -> None:
    clock, port, board = bench
    port.appear()
    board.open()
    lines = b"".join(line("app", i, action="record", seq=i, pad="p" * 200) for i in range(1000))
    port.write(lines)
    assert port.pending > 0  # the pty took only part of it
    port.deliver(board.drain_to)
    assert port.pending == 0 and board.rx_count == port.tx_count == len(lines)
    assert [e["seq"] for e in board.events("app")] == list(range(1000))


def test_drain_to_reports_bytes_that_never_arrive(bench) -> None:
    clock, port, board = bench
    port.appear()
    board.open()
    port.write(b"12345")
    with pytest.raises(BoardError, match="expected 10 bytes in generation 1, received 5"):
        board.drain_to(port.generation, 10, timeout_wall=0.2)


def test_open_requires_the_port_unless_told_otherwise(bench) -> None:
    clock, port, board = bench
    with pytest.raises(PortUnavailable, match="cannot open serial port"):
        board.open()
    board.open(required=False)
    assert not board.connected and board.poll() == []
    with pytest.raises(PortUnavailable):
        board.write(b"x\n")


# -- other transports -----------------------------------------------------------------------------


def test_loop_url_works(tmp_path: Path) -> None:
    clock = ScriptClock()
    with Board("loop", "loop://", clock=clock, log_path=tmp_path / "loop.log") as board:
        board.write(line("hello", 1, proto=1))
        assert board.expect("hello", timeout=1.0)["proto"] == 1
        board.write(b"\x00junk\n")
        board.drain_to(0, board.tx_count)
        assert board.history[-1][1] == Noise("not_json", b"\x00junk")  # NUL is valid UTF-8
    log = (tmp_path / "loop.log").read_text()
    assert ">> " in log and "-- port closed --" in log


def test_a_command_timeout_names_what_holds_a_non_threaded_app() -> None:
    """The rig adds why a command went unanswered when the board's last hello said non-threaded and
    Device OS runs no loop(): a download in progress (docs/reference/particle-ota.md §2.8), or a
    cloud connection being made after a disconnect (§3.1); not for a threaded app, not once the
    transfer ended (a disconnect ends it too, §2.2) and not once the cloud is connected again."""
    from otarig.rig import held_by_device_os
    from otarig.timeline import Timeline

    def story(threaded: bool, *steps: str) -> list:
        tl = Timeline()
        tl.add(0.0, "board:x", "hello", {"threaded": threaded})
        for i, step in enumerate(steps, start=1):
            event = "cloud_status" if step in ("disconnected", "connected") else "firmware_update"
            tl.add(float(i), "board:x", "sys", {"event": event, "param": step})
        return tl.entries

    assert "download" in (held_by_device_os(story(False, "begin", "progress")) or "")
    assert held_by_device_os(story(True, "begin", "progress")) is None
    assert held_by_device_os(story(False, "begin", "complete")) is None
    assert held_by_device_os(story(False, "begin", "failed")) is None
    assert held_by_device_os(story(False)) is None
    assert "cloud connection" in (held_by_device_os(story(False, "begin", "progress", "disconnected")) or "")
    assert held_by_device_os(story(True, "disconnected")) is None
    assert held_by_device_os(story(False, "disconnected", "connected")) is None
