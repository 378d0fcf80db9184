"""The Electron as an electrical load, and the bench supply that feeds it.

Why this exists: the simulated PSU must read back a current that follows what the simulated
Electron is doing (idle, transmitting, asleep), and a current limit set below a cellular burst must
make VIN sag and brown the board out, exactly the fault a real bench provokes (docs/reference/instruments-and-faults.md
A.3 #5). This module holds the figures (with sources) and the simple supply-side physics; the SCPI
server (`otarig.sim.psu_server`) only translates commands into calls on `PowerRail`.

Sources (cited beside each figure below):

* [DS-PC]  Particle Electron datasheet, "Power consumption" table
  (particle-iot/docs `src/content/reference/datasheets/e-series/electron-datasheet.md`
  @0176b5e3; docs.particle.io/reference/datasheets/e-series/electron-datasheet/). Measured at 3.6 V
  via the battery input; "typ" is the figure to use for consumption over time.
* [DS-ROC] Same datasheet, "Recommended operating conditions" table: VIN 3.88 V (min, software
  selectable 3.88-5.08 V, 4.36 V out of the box) to 12 V; 2G/3G peak current 800 mA (3G) to
  1800 mA (2G).
* [PEL1]   particle-iot/electron-powersupply README: 2G bursts "as high as 2 Amps" (the figure
  docs/reference/instruments-and-faults.md A.3 #5 quotes; the datasheet's own maximum is 1.8 A).
* [SLEEP]  docs.particle.io reference/device-os/api/sleep-sleep (STOP / ULTRA_LOW_POWER /
  HIBERNATE tables, row "Electron"), which agree with [DS-PC].

Assumptions (not sourced; each is a parameter of `PowerFigures` or `PowerRail`):

* The datasheet currents are battery-side at 3.6 V; the model uses them unchanged as the current
  drawn from VIN whatever the VIN voltage (no PMIC efficiency or V_bat/V_in scaling). This
  over-states VIN current at 5 V by roughly 30 %; it errs towards earlier brown-outs.
* BOOTING draws the "cellular on but not connected" typical figure: at boot the modem powers up
  before any connection exists. There is no datasheet row for "booting".
* TRANSMIT is modelled as the burst itself (peak current), not the transmit-phase average
  (114 mA typ), because the burst is what collapses a current-limited supply.
* The load is a constant-current sink per state; the supply is an ideal CV/CC source (no output
  capacitance, no slew, no cable resistance).
"""
from __future__ import annotations

import threading
from dataclasses import dataclass, field
from enum import Enum
from typing import Callable, Protocol, runtime_checkable


class PowerState(Enum):
    """What the Electron is doing, as far as its supply current is concerned."""

    OFF = "off"
    BOOTING = "booting"
    MODEM_OFF = "modem_off"
    CONNECTED_IDLE = "connected_idle"
    TRANSMIT = "transmit"
    STOP = "stop"
    ULTRA_LOW_POWER = "ultra_low_power"
    HIBERNATE = "hibernate"


#: Minimum VIN the Electron's PMIC accepts [DS-ROC] (3.88 V is the lowest selectable input
#: voltage limit; the factory setting is 4.36 V). Below it the board is not powered from VIN.
VIN_MIN_V: float = 3.88
#: Factory input-voltage limit [DS-ROC] note 1. Not used for brown-out by default; kept for
#: benches that want the out-of-the-box threshold (pass it as `vin_min_v`).
VIN_MIN_FACTORY_V: float = 4.36
#: Maximum VIN [DS-ROC].
VIN_MAX_V: float = 12.0
#: 2G burst as quoted by the electron-powersupply README [PEL1].
BURST_2G_QUOTED_A: float = 2.0


@dataclass(frozen=True)
class PowerFigures:
    """Supply current per state, in amps. Replace fields to model another radio or a worse case."""

    off_a: float = 0.0  # definition: no power drawn
    booting_a: float = 0.0426  # ASSUMPTION mapped to [DS-PC] I_cell_idle typ 42.6 mA
    modem_off_a: float = 0.0333  # [DS-PC] I_idle typ 33.3 mA (uC on, peripherals and radio off)
    connected_idle_a: float = 0.0370  # [DS-PC] I_cell_cloud_idle typ 37.0 mA
    transmit_a: float = 1.8  # [DS-ROC] 2G peak 1800 mA max (3G: 800 mA; [PEL1] quotes ~2 A)
    stop_a: float = 0.00240  # [DS-PC]/[SLEEP] STOP, GPIO wake typ 2.40 mA (RTC 2.53, cell 28.1)
    ulp_a: float = 0.00242  # [DS-PC]/[SLEEP] ULP, GPIO wake typ 2.42 mA (RTC 2.55)
    hibernate_a: float = 0.000114  # [DS-PC]/[SLEEP] HIBERNATE typ 114 uA

    def current(self, state: PowerState) -> float:
        """Amps drawn in `state`."""
        return {
            PowerState.OFF: self.off_a,
            PowerState.BOOTING: self.booting_a,
            PowerState.MODEM_OFF: self.modem_off_a,
            PowerState.CONNECTED_IDLE: self.connected_idle_a,
            PowerState.TRANSMIT: self.transmit_a,
            PowerState.STOP: self.stop_a,
            PowerState.ULTRA_LOW_POWER: self.ulp_a,
            PowerState.HIBERNATE: self.hibernate_a,
        }[state]


#: 2G Electron (G350, or U2xx falling back to 2G): the worst case for the supply.
ELECTRON_2G = PowerFigures()
#: 3G Electron (U260/U270): bursts of 800 mA [DS-ROC] note 2.
ELECTRON_3G = PowerFigures(transmit_a=0.8)
DEFAULT_FIGURES = ELECTRON_2G

#: Where each default figure comes from, for docs and reports.
FIGURE_SOURCES: dict[PowerState, str] = {
    PowerState.OFF: "definition (0 A)",
    PowerState.BOOTING: "ASSUMPTION: datasheet 'cellular on but not connected' typ 42.6 mA",
    PowerState.MODEM_OFF: "Electron datasheet, Power consumption, I_idle typ 33.3 mA",
    PowerState.CONNECTED_IDLE: "Electron datasheet, Power consumption, I_cell_cloud_idle typ 37.0 mA",
    PowerState.TRANSMIT: "Electron datasheet, Recommended operating conditions, 2G peak 1800 mA",
    PowerState.STOP: "Electron datasheet / sleep docs, STOP GPIO wake typ 2.40 mA",
    PowerState.ULTRA_LOW_POWER: "Electron datasheet / sleep docs, ULP GPIO wake typ 2.42 mA",
    PowerState.HIBERNATE: "Electron datasheet / sleep docs, HIBERNATE typ 114 uA",
}


def current_for(state: PowerState, figures: PowerFigures = DEFAULT_FIGURES) -> float:
    """Supply current in amps that the Electron draws in `state`."""
    return figures.current(state)


@runtime_checkable
class LoadModel(Protocol):
    """What a simulated board offers its supply. The simulator's Electron implements this.

    `t` is whatever the PSU's `time_source` returns (the bench uses seconds of virtual time).
    The methods are called from the PSU server's thread, one call at a time per server; an
    implementation must only read or record state there (no blocking, no scheduler switching).
    """

    def power_state(self, t: float) -> PowerState:
        """The board's power state at time `t` (OFF when it has no power at all)."""
        ...

    def supply_changed(self, on: bool, volts: float) -> None:
        """The PSU output feeding VIN was switched or re-set: `on`, at set point `volts`.

        The board decides what that means: VIN below its minimum, or off, only cuts power when
        USB VBUS and the LiPo are not feeding it too (docs/power.md).
        """
        ...

    def brownout(self, t: float) -> None:
        """VIN fell below the minimum at `t` while the board was drawing current (a sag)."""
        ...


class NoLoad:
    """An open output: nothing connected. The default load of a simulated PSU channel."""

    def power_state(self, t: float) -> PowerState:
        return PowerState.OFF

    def supply_changed(self, on: bool, volts: float) -> None:
        return None

    def brownout(self, t: float) -> None:
        return None


class SupplyMode(Enum):
    """Regulation mode of a supply channel, as `:OUTP:MODE?` reports it on a Rigol."""

    OFF = "OFF"
    CV = "CV"  # constant voltage: the load takes less than the limit
    CC = "CC"  # constant current: the load wants more; the voltage sags


@dataclass(frozen=True)
class OperatingPoint:
    """Output voltage and current of one channel at one instant."""

    volts: float
    amps: float
    mode: SupplyMode


def operating_point(on: bool, v_set: float, i_limit: float, demand_a: float) -> OperatingPoint:
    """Ideal CV/CC supply into a constant-current load.

    The load is replaced by its equivalent resistance at the set voltage, R = V_set / I_demand.
    If I_demand exceeds the limit the supply goes CC and V = I_limit x R (so V falls in proportion
    to I_limit / I_demand). Good enough to say "a 1 A limit under a 1.8 A burst at 5 V sags to
    2.8 V", which is all the rig needs.
    """
    if not on:
        return OperatingPoint(0.0, 0.0, SupplyMode.OFF)
    v_set = max(v_set, 0.0)
    if demand_a <= 0.0 or v_set == 0.0:
        return OperatingPoint(v_set, 0.0, SupplyMode.CV)
    if demand_a <= i_limit:
        return OperatingPoint(v_set, demand_a, SupplyMode.CV)
    r_load = v_set / demand_a
    return OperatingPoint(i_limit * r_load, i_limit, SupplyMode.CC)


@dataclass
class PowerRail:
    """One PSU output wired to one board's VIN: set points, output switch, load, brown-out edge.

    `evaluate(t)` is the only place physics happens; it is called on every SCPI command of the
    channel and may be called by the simulator whenever the board changes power state (so a burst
    browns the board out even when nobody is reading the PSU). `brownout` fires once per sag: on
    the transition into "VIN below minimum while the board draws current".
    """

    load: LoadModel = field(default_factory=NoLoad)
    figures: PowerFigures = DEFAULT_FIGURES
    vin_min_v: float = VIN_MIN_V
    v_set: float = 0.0
    i_limit: float = 1.0
    on: bool = False
    _sagging: bool = field(default=False, init=False)
    _lock: threading.RLock = field(default_factory=threading.RLock, init=False, repr=False)
    #: Optional observer of every brown-out, e.g. the timeline recorder: fn(t, point).
    on_brownout: Callable[[float, OperatingPoint], None] | None = None

    def attach(self, load: LoadModel) -> None:
        """Connect a board to this output; it is told the current supply state at once."""
        with self._lock:
            self.load = load
            self._sagging = False
            load.supply_changed(self.on, self.v_set)

    def set_voltage(self, volts: float, t: float) -> None:
        with self._lock:
            changed = volts != self.v_set
            self.v_set = volts
            if changed:
                self.load.supply_changed(self.on, self.v_set)
            self.evaluate(t)

    def set_current_limit(self, amps: float, t: float) -> None:
        with self._lock:
            self.i_limit = amps
            self.evaluate(t)

    def set_output(self, on: bool, t: float) -> None:
        with self._lock:
            changed = on != self.on
            self.on = on
            if changed:
                self._sagging = False
                self.load.supply_changed(self.on, self.v_set)
            self.evaluate(t)

    def demand(self, t: float) -> float:
        """Current the board wants at `t` (amps), before the supply limits it."""
        return self.figures.current(self.load.power_state(t))

    def evaluate(self, t: float) -> OperatingPoint:
        """Operating point at `t`; calls `load.brownout(t)` on entering a sag below VIN min."""
        with self._lock:
            state = self.load.power_state(t)
            point = operating_point(self.on, self.v_set, self.i_limit, self.figures.current(state))
            sag = self.on and state is not PowerState.OFF and point.volts < self.vin_min_v
            if sag and not self._sagging:
                self._sagging = True
                self.load.brownout(t)
                if self.on_brownout is not None:
                    self.on_brownout(t, point)
            elif not sag:
                self._sagging = False
            return point
