"""The simulated world: one virtual clock, the devices, the cloud, and their serial ports.

`run_until` advances virtual time and stops early whenever a board wrote to its serial port
or its port vanished/appeared, so the rig can read exactly what was written at that instant
(see `otarig.sim.bench`). The same seed gives the same run, byte for byte.
"""
from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from .randomness import SeedTree
from .scheduler import Scheduler


class World:
    def __init__(self, seed: int = 0, *, workdir: Path | None = None) -> None:
        self.seed = seed
        #: every random choice of this world draws from a named stream of this tree
        self.random = SeedTree(seed)
        self.sched = Scheduler()
        self.devices: dict[str, Any] = {}
        self._tmp = None
        if workdir is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="otarig-world-")
            workdir = Path(self._tmp.name)
        self.workdir = workdir
        self.instance_dir = workdir / "instances"
        #: ports with output or presence changes the rig has not synchronised yet
        self.dirty_ports: set[Any] = set()

    def derive_seed(self, *parts: object) -> int:
        """A 32-bit seed for one random stream of this world (e.g. a device's link loss)."""
        return self.random.derive(*parts)

    def rng(self, *name: object) -> Any:
        """The world's random stream called `name` (`otarig.sim.randomness.SeedTree.stream`)."""
        return self.random.stream(*name)

    @property
    def now_ms(self) -> int:
        return self.sched.now_ms

    def add_device(self, dev: Any) -> Any:
        self.devices[dev.device_id] = dev
        return dev

    # -- serial ports: every change stops the clock so the rig sees it at this instant ---------
    def port_write(self, port: Any, data: bytes) -> None:
        port.write(data)
        self.dirty_ports.add(port)
        self.sched.request_stop()

    def port_appear(self, port: Any) -> None:
        if getattr(port, "vanish_requested", False):  # nobody synchronised the old generation
            port.vanish_requested = False
            port.vanish()
        port.appear()
        self.dirty_ports.add(port)
        self.sched.request_stop()

    def port_vanish(self, port: Any) -> None:
        """Defer the close until the rig has drained what the port already wrote."""
        port.vanish_requested = True
        self.dirty_ports.add(port)
        self.sched.request_stop()

    def port_present(self, port: Any) -> bool:
        """The device side's view: enumerated, and not unplugged by a reset the rig has yet to see.

        `port_vanish` defers the pty's close until the rig has drained it; from that instant the
        firmware must already see its USB port gone (a rebooted app must not print into it).
        """
        return port.present and not getattr(port, "vanish_requested", False)

    def run_until(self, until_ms: int) -> int:
        if self.dirty_ports:
            # A port changed outside a run (a test or another thread reset the device): return at
            # once so the rig sees that instant before time moves on (the scheduler's stop request
            # only covers changes made while it runs).
            return self.sched.now_ms
        return self.sched.run_until(until_ms)

    def run_for(self, ms: int) -> int:
        return self.sched.run_until(self.sched.now_ms + ms)

    def close(self) -> None:
        for dev in list(self.devices.values()):
            shutdown = getattr(dev, "shutdown", None)
            if shutdown:
                shutdown()
        if self._tmp is not None:
            self._tmp.cleanup()
