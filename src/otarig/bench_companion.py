"""The rig's driver for the tester board (firmware/bench/); in code it keeps its older name, bench companion.

Same framing as the DUT (JSON lines, docs/protocol.md), so the link is an `otarig.board.Board`
over pyserial — on a real bench the board's USB serial, on the simulated bench its pty. What the
companion reports (switches, cuts, WKP pulses) becomes `fault` entries on the rig's timeline, at the
bench time the line arrived, so verdicts excuse what was injected and plots show the spans.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from .board import Board, BoardError, CommandFailed, ExpectTimeout, PortUnavailable
from .clock import BenchClock, WallClock
from .config import URL_SCHEMES, BenchConfig
from .protocol import Event

AGENT = "otarig-bench"
PROTOCOL_VERSION = 1
#: Device OS sends an OTA in 512-byte chunks (docs/reference/particle-ota.md §2.4); the DUT's status line
#: rises at `begin` and once after each chunk's progress event (firmware/companion DownloadSignal).
OTA_CHUNK = 512
#: a MODE click as Device OS counts one: held 30-499 ms, the next press within 1 s
#: (docs/reference/particle-ota.md §2.11; device-os v2.3.1 system/src/main.cpp ~292-305)
MODE_CLICK_MS = 100
MODE_CLICK_GAP_MS = 200


class BenchCompanionError(Exception):
    """The bench companion is absent, silent, or not what was expected; `str()` says which and how
    to fix it."""


def edges_for_byte(byte: int, chunk: int = OTA_CHUNK) -> int:
    """The status-line rising edge at which `byte` bytes of the download are in flash (rounded down
    to a chunk): edge 1 is `begin` (0 bytes), edge k+1 follows the k-th chunk."""
    if byte < 0:
        raise ValueError(f"byte offset {byte} is negative")
    return byte // chunk + 1


class BenchCompanion:
    """Commands to the tester board; each returns the reply's fields."""

    def __init__(self, board: Board, hello: dict[str, Any], port: str) -> None:
        self.board = board
        self.hello = hello
        self.port = port

    # -- connecting -------------------------------------------------------------------------------
    @classmethod
    def open(cls, port: str, *, clock: BenchClock, log_path: Path, timeout_s: float = 3.0) -> "BenchCompanion":
        """Open the companion's serial port and check it answers as an otarig bench companion."""
        if "://" not in port and not port.startswith(URL_SCHEMES) and not os.path.exists(port):
            raise BenchCompanionError(
                f"tester board: no serial device at {port!r} (bench_companion.port); expected the tester "
                "board running firmware/bench/ — is it plugged in? `ls /dev/serial/by-id/` lists what is there")
        board = Board("bench-companion", port, clock=clock, log_path=log_path)
        try:
            board.open()
        except (PortUnavailable, OSError) as exc:
            raise BenchCompanionError(f"tester board: cannot open {port!r}: {exc}") from None
        clock.attach(board)  # a virtual clock keeps the port in step; a wall clock has nothing to do
        return cls.connect(board, port, timeout_s=timeout_s)

    @classmethod
    def connect(cls, board: Board, port: str, *, timeout_s: float = 3.0) -> "BenchCompanion":
        """Ping an opened board; raise BenchCompanionError naming the port when it is silent or wrong."""
        try:
            reply = board.command("ping", timeout=timeout_s)
        except ExpectTimeout:
            message = cls._silent(board, port, timeout_s)
            board.close()
            raise BenchCompanionError(message) from None
        except CommandFailed as exc:
            board.close()
            raise BenchCompanionError(f"tester board on {port!r} refused ping: {exc}") from None
        except BoardError as exc:
            board.close()
            raise BenchCompanionError(f"tester board on {port!r}: {exc}") from None
        if reply.get("agent") != AGENT or reply.get("proto") != PROTOCOL_VERSION:
            board.close()
            raise BenchCompanionError(
                f"tester board on {port!r} answered as agent {reply.get('agent')!r} protocol "
                f"{reply.get('proto')!r}; expected agent {AGENT!r} protocol {PROTOCOL_VERSION} — flash "
                "firmware/bench/ (README, 'Hardware: the tester board')")
        return cls(board, reply, port)

    @staticmethod
    def _silent(board: Board, port: str, timeout_s: float) -> str:
        said = [line for line in board.tail if not line.lstrip("[ 0123456789.]").startswith(("--", ">>"))]
        heard = "; it printed: " + " | ".join(s[-80:] for s in said[-3:]) if said else "; it printed nothing"
        hint = ("the board is at the MicroPython REPL: main.py is missing or stopped"
                if any(">>>" in s or "Traceback" in s for s in said) else
                "is firmware/bench/ on the board, and is no other program (mpremote, a terminal) holding the port?")
        return (f"tester board on {port!r} is silent: no reply to ping within {timeout_s:.1f} s (expected a "
                f"hello from agent {AGENT!r}, protocol {PROTOCOL_VERSION}){heard}. {hint} "
                "(README, 'Hardware: the tester board')")

    # -- commands (docs/protocol.md, "The tester board") ----------------------------------------
    def command(self, cmd: str, **keys: Any) -> dict[str, Any]:
        return self.board.command(cmd, timeout=5.0, **keys)

    def status(self) -> dict[str, Any]:
        return self.command("status")

    def switch(self, **states: bool) -> dict[str, Any]:
        """Set any of vin / vbus / antenna (True = on / connected) now."""
        return self.command("switch", **states)

    def power_off(self, ms: int = 0) -> dict[str, Any]:
        """VIN and VBUS off now, back on after `ms` (0: until `switch(vin=True, vbus=True)`)."""
        return self.command("power_off", ms=int(ms))

    def antenna_off(self, ms: int = 0) -> dict[str, Any]:
        return self.command("antenna_off", ms=int(ms))

    def arm_cut(self, edges: int, off_ms: int = 0) -> dict[str, Any]:
        """Cut VIN and VBUS at the `edges`-th rising edge of the DUT's status line, for `off_ms`."""
        return self.command("arm_cut", edges=int(edges), off_ms=int(off_ms))

    def disarm(self) -> dict[str, Any]:
        return self.command("disarm")

    def wake(self, ms: int = 10) -> dict[str, Any]:
        """A pulse on the DUT's WKP pin (a rising edge wakes it from HIBERNATE, docs/reference/particle-ota.md §3.2)."""
        return self.command("wake", ms=int(ms))

    def press_mode(self, ms: int = 100, *, count: int = 1, gap_ms: int = 250) -> dict[str, Any]:
        """Press the DUT's MODE button `count` times for `ms` each, `gap_ms` apart (timed on the tester)."""
        return self.command("press_mode", ms=int(ms), count=int(count), gap_ms=int(gap_ms))

    def double_click_mode(self) -> dict[str, Any]:
        """Two clicks of the MODE button: on an Electron, a power-off that `reset_pending` announces
        (docs/reference/particle-ota.md §2.11: each press 30-499 ms, the next within 1 s)."""
        return self.press_mode(MODE_CLICK_MS, count=2, gap_ms=MODE_CLICK_GAP_MS)

    def release(self) -> None:
        """Disarm any cut and switch everything on (the Electron powered, its antenna connected).

        A real tester keeps its state between runs (an armed cut, a rail left off): the rig calls
        this when it starts and when it closes."""
        self.disarm()
        self.hello["switches"] = self.switch(vin=True, vbus=True, antenna=True)["switches"]

    def close(self) -> None:
        self.board.close()


def check_at_start(cfg: BenchConfig, log_path: Path) -> dict[str, Any] | None:
    """Bench start on a real bench that declares a companion: it must be there and answer now, not
    halfway through a scenario. Returns its hello; raises BenchCompanionError naming the port."""
    if cfg.simulated or cfg.bench_companion is None:
        return None
    comp = BenchCompanion.open(cfg.bench_companion.port, clock=WallClock(), log_path=log_path,
                               timeout_s=cfg.bench_companion.timeout_s)
    comp.close()
    return comp.hello


class CompanionTimeline:
    """Turns the companion's events into timeline entries (`fault` spans, the rig's wake pulses).

    Power is off for the DUT when both VIN and VBUS are open (docs/power.md §4).
    """

    def __init__(self, dut: str, switches: dict[str, bool] | None = None) -> None:
        self.dut = dut
        self.closed = {"vin": True, "vbus": True, "antenna": True, **(switches or {})}
        self.wkp = 0

    def entries(self, ev: Event) -> list[tuple[str, str, dict[str, Any]]]:
        """(source, kind, data) for one event of the companion."""
        base = {"board": self.dut, "via": "bench_companion"}
        if ev.name == "hello":
            self.closed.update(ev.get("switches") or {})
            return []
        if ev.name == "cut":
            self.closed["vin"] = self.closed["vbus"] = False
            edges = int(ev.get("edges", 0))
            return [("fault", "power_cut", {**base, "by": "status_edge", "edges": edges,
                                            "byte": (edges - 1) * OTA_CHUNK, "off_ms": ev.get("off_ms")})]
        if ev.name == "switch":
            name, closed = ev.get("name"), bool(ev.get("closed"))
            if name not in self.closed or self.closed[name] == closed:
                return []
            powered_before = self.closed["vin"] or self.closed["vbus"]
            self.closed[name] = closed
            by = {**base, "by": ev.get("by")}
            if name == "antenna":
                return [("fault", "antenna_on" if closed else "antenna_off", by)]
            powered = self.closed["vin"] or self.closed["vbus"]
            if powered_before and not powered:
                return [("fault", "power_cut", by)]
            if powered and not powered_before:
                return [("fault", "power_restore", by)]
            return []
        if ev.name == "mode":
            return [("rig", "mode_button", {**base, "pressed": bool(ev.get("pressed"))})]
        if ev.name == "wkp":
            rising = ev.get("level") == 1 and self.wkp == 0
            self.wkp = 1 if ev.get("level") == 1 else 0
            return [("rig", "wake_pulse", base)] if rising else []
        return []
