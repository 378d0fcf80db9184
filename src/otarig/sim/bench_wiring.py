"""The bench companion's wires to one simulated Electron.

The tester board's functions (firmware/bench/bench_pins.json names them) act on the simulated
bench as the hardware does on a real one (docs/protocol.md, "The bench companion"):

| function | on a real bench | here |
|---|---|---|
| `vin` | MOSFET in series with the PSU's VIN | `PowerInputs.vin_switch` |
| `vbus` | USB VBUS power switch | `PowerInputs.vbus_switch` |
| `antenna` | RF switch on the u.FL antenna | `CellularLink.antenna_connected` (coverage lost) |
| `wkp` | wire to the Electron's WKP (A7) | `ElectronPins.drive_input(WKP)` (docs/reference/particle-ota.md §3.2) |
| `status` | input from the Electron's D6 | the level the companion firmware drives (`DownloadSignal`) |
| `mode` | open drain to the Electron's MODE button (active low) | `ModeButton.line` (docs/reference/particle-ota.md §2.11) |
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Callable

from . import deviceos as dos

if TYPE_CHECKING:
    from .electron import Electron
    from .power_inputs import PowerInputs

#: Electron pins: the companion's download status line (OTARIG_STATUS_PIN) and WKP.
STATUS_PIN = dos.D6
WKP_PIN = dos.WKP


class BenchWiring:
    """Outputs of the tester go to the Electron's inputs; the status line comes back as an input."""

    def __init__(self, dev: "Electron", inputs: "PowerInputs", *, status_pin: int = STATUS_PIN,
                 wkp_pin: int = WKP_PIN) -> None:
        self.dev = dev
        self.inputs = inputs
        self.status_pin = status_pin
        self.wkp_pin = wkp_pin
        #: the tester's input stand-in: called (function, level) at the instant an input changes
        self.on_input: Callable[[str, int], None] | None = None
        dev.pins.listeners.append(self._electron_output)

    def switch(self, function: str, closed: bool) -> None:
        """A tester switch changed (`closed` = conducting). Acts at this virtual instant, on the
        scheduler's stack: the tester's program runs in its own greenlet, which must never be the
        one that stops the Electron's app (a power cut) or wakes it."""
        if function not in ("vin", "vbus", "antenna"):
            raise KeyError(f"bench wiring: {function!r} is not a switch")
        self.dev.sched.after(0, lambda: self._switch_now(function, closed))

    def _switch_now(self, function: str, closed: bool) -> None:
        dev = self.dev
        if function == "vin":
            self.inputs.vin_switch = closed
            self.inputs.apply()
        elif function == "vbus":
            self.inputs.vbus_switch = closed
            self.inputs.apply()
        elif function == "antenna":
            dev.link.antenna_connected = closed
            dev.net.antenna_changed()  # docs/reference/instruments-and-faults.md A.3 #6: connectivity loss

    def drive(self, function: str, level: int) -> None:
        """A plain tester output (not a switch) changed level (deferred like `switch`)."""
        if function == "wkp":
            self.dev.sched.after(0, lambda: self.dev.pins.drive_input(self.wkp_pin, level))
        elif function == "mode":  # open drain: 1 = released (the Electron's pull-up), 0 = pressed
            self.dev.sched.after(0, lambda: self.dev.mode_button.line(level))
        # other outputs (the board's LED) are not wired to the Electron

    def read(self, function: str) -> int:
        if function == "status":
            return self.dev.pins.level(self.status_pin) if self.dev.powered else 0
        return 0

    def _electron_output(self, pin: int, level: int) -> None:
        # Called on the Electron's stack (inside its firmware): hand the edge to the tester at this
        # same virtual instant, once the current step is over (ElectronPins: listeners defer).
        if pin == self.status_pin and self.on_input is not None:
            fn = self.on_input
            self.dev.sched.after(0, lambda: fn("status", level))
