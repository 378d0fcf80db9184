"""What feeds one simulated Electron: VIN, USB VBUS and a LiPo, each through its bench switch.

Why one place: a real Electron runs while *any* input feeds it (docs/power.md §4; docs/reference/instruments-and-faults.md
B.1: "USB VBUS also powers the Electron"), so a PSU that turns VIN off, the bench companion's MOSFET
in series with VIN, and its USB VBUS switch must all be combined before the board goes off or on.
The PSU adapter (`electron_power.ElectronPower`) sets `vin_supplied`; the bench companion's wiring
(`bench_wiring.BenchWiring`) sets the switches; `apply()` powers the board on or off accordingly.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .electron import Electron


class PowerInputs:
    """The Electron's power inputs. Defaults: VIN supplied (no PSU modelled), a data-only USB cable
    (no VBUS), no LiPo, every switch closed."""

    def __init__(self, dev: "Electron") -> None:
        self.dev = dev
        self.vin_supplied = True    # the bench supply's output is on at a workable voltage
        self.vin_switch = True      # the bench companion's MOSFET in series with VIN
        self.vbus_supplied = False  # the USB cable carries VBUS (a data-only cable does not)
        self.vbus_switch = True     # the bench companion's VBUS switch
        self.battery = False        # a charged LiPo on the JST connector

    @property
    def vin(self) -> bool:
        return self.vin_supplied and self.vin_switch

    @property
    def vbus(self) -> bool:
        return self.vbus_supplied and self.vbus_switch

    @property
    def other_than_vin(self) -> bool:
        """docs/power.md §4: VBUS or a LiPo keep the board up whatever VIN does."""
        return self.vbus or self.battery

    @property
    def any(self) -> bool:
        return self.vin or self.other_than_vin

    def apply(self) -> str | None:
        """Power the board on or off to match the inputs now; returns "on"/"off" when it changed."""
        dev = self.dev
        if self.any and not dev.powered:
            dev.power_on()
            return "on"
        if not self.any and dev.powered:
            dev.power_off()
            return "off"
        return None
