"""The bench companion (tester board) in the simulated bench: firmware/bench/ on its own pty.

The same MicroPython program as on a real RP2040 board (`micropython_host`), its `machine` wired to
one simulated Electron (`bench_machine`, `bench_wiring`), its USB serial a pty behind a stable link
(`serial_port`), so the rig drives it with the same driver and the same bytes as on a real bench.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

from .bench_machine import TesterBoard
from .bench_wiring import BenchWiring
from .. import resources
from .micropython_host import MicroPythonHost
from .serial_port import SimSerialPort

if TYPE_CHECKING:
    from .electron import Electron
    from .power_inputs import PowerInputs
    from .world import World


def bench_program_dir() -> Path:
    """firmware/bench/: the tester board's MicroPython sources and pin map (otarig.resources)."""
    return resources.bench_program_dir()


class SimBenchCompanion:
    """One tester board beside one simulated Electron. `start()` plugs its USB in and boots it."""

    def __init__(self, world: "World", port: SimSerialPort, dev: "Electron", inputs: "PowerInputs",
                 program_dir: Path | None = None) -> None:
        self.world = world
        self.port = port
        self.program_dir = program_dir or bench_program_dir()
        pin_map = json.loads((self.program_dir / "bench_pins.json").read_text())
        self.wiring = BenchWiring(dev, inputs)
        self.board = TesterBoard(world.sched, self.wiring, pin_map, kick=self._kick)
        self.host = MicroPythonHost(self.program_dir, world.sched, self.board.module(), self._write)

    def start(self) -> None:
        self.world.port_appear(self.port)  # the tester is fed by the host's USB: always enumerated
        self.host.start()

    def serial_input(self, data: bytes) -> None:
        """Bytes the rig wrote to the tester's port (SimBench hands them over)."""
        self.host.feed(data)

    def _kick(self) -> None:
        self.host.kick()

    def _write(self, data: bytes) -> None:
        if self.world.port_present(self.port):
            self.world.port_write(self.port, data)

    def shutdown(self) -> None:
        if self.port.present:
            self.port.vanish()
        self.host.stop()
