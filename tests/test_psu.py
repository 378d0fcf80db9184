"""The PSU driver against the simulated SCPI server (real TCP via pyvisa-py) and pyvisa-sim.

No wall-clock sleeps: simulated time is a counter the test advances. The only waits are the real
timeouts of the "PSU does not answer" cases, kept at 0.5 s.
"""
from __future__ import annotations

import dataclasses
import socket
import time
from pathlib import Path
from typing import Iterator

import pytest

from otarig.psu import (
    KeysightE3631ADialect,
    KeysightE36300Dialect,
    PowerSupply,
    PsuConnectionError,
    PsuError,
    PsuProtocolError,
    PsuReadbackError,
    PsuTimeoutError,
    PsuUnsupportedModelError,
    RigolDP800Dialect,
)
from otarig.sim.power_model import (
    DEFAULT_FIGURES,
    ELECTRON_3G,
    VIN_MIN_V,
    LoadModel,
    PowerRail,
    PowerState,
    SupplyMode,
    current_for,
    operating_point,
)
from otarig.sim.psu_server import PsuServer, SimulatedPsu, DIALECTS

SIM_DIR = Path(__file__).parent / "psu_sim"
FAULT_TIMEOUT_S = 0.5
MARGIN_S = 0.4  # scheduling slack on top of the configured timeout


class Clock:
    """Virtual time for the server's `time_source`: advanced by the test, never by the wall."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class ScriptedLoad:
    """A tiny LoadModel: the power state is a function of a counter (the virtual time)."""

    def __init__(self, script: dict[float, PowerState]) -> None:
        self.script = sorted(script.items())
        self.supply_events: list[tuple[bool, float]] = []
        self.brownouts: list[float] = []

    def power_state(self, t: float) -> PowerState:
        state = PowerState.OFF
        for start, s in self.script:
            if t >= start:
                state = s
        return state

    def supply_changed(self, on: bool, volts: float) -> None:
        self.supply_events.append((on, volts))

    def brownout(self, t: float) -> None:
        self.brownouts.append(t)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture(params=["E36312A", "DP832", "E3631A"])
def server(request: pytest.FixtureRequest, clock: Clock) -> Iterator[PsuServer]:
    srv = PsuServer(request.param, time_source=clock)
    srv.start()
    yield srv
    srv.stop()


# -- power model ------------------------------------------------------------------------------


def test_current_for_uses_datasheet_figures() -> None:
    assert current_for(PowerState.OFF) == 0.0
    assert current_for(PowerState.CONNECTED_IDLE) == pytest.approx(0.037)
    assert current_for(PowerState.MODEM_OFF) == pytest.approx(0.0333)
    assert current_for(PowerState.TRANSMIT) == pytest.approx(1.8)
    assert current_for(PowerState.TRANSMIT, ELECTRON_3G) == pytest.approx(0.8)
    assert current_for(PowerState.STOP) == pytest.approx(0.0024)
    assert current_for(PowerState.ULTRA_LOW_POWER) == pytest.approx(0.00242)
    assert current_for(PowerState.HIBERNATE) == pytest.approx(114e-6)
    assert VIN_MIN_V == pytest.approx(3.88)
    assert all(current_for(s) >= 0 for s in PowerState)


def test_operating_point_cv_and_cc() -> None:
    assert operating_point(False, 5.0, 1.0, 1.8).mode is SupplyMode.OFF
    cv = operating_point(True, 5.0, 2.0, 1.8)
    assert (cv.volts, cv.amps, cv.mode) == (5.0, 1.8, SupplyMode.CV)
    cc = operating_point(True, 5.0, 1.0, 1.8)
    assert cc.mode is SupplyMode.CC
    assert cc.amps == 1.0
    assert cc.volts == pytest.approx(5.0 * 1.0 / 1.8)  # V = I_limit x (V_set / I_demand)


def test_rail_brownout_fires_once_per_sag_and_rearms() -> None:
    load = ScriptedLoad({0: PowerState.CONNECTED_IDLE, 10: PowerState.TRANSMIT,
                         11: PowerState.BOOTING, 20: PowerState.TRANSMIT})
    rail = PowerRail(load=load)
    rail.set_current_limit(1.0, 0)
    rail.set_voltage(5.0, 0)
    rail.set_output(True, 0)
    for t in (0, 5, 10, 10.5, 11, 15, 20, 20.5):
        rail.evaluate(t)
    assert load.brownouts == [10, 20]


# -- simulated server over real TCP with the real driver ----------------------------------------


def test_driver_against_sim_server_both_dialects(server: PsuServer) -> None:
    with PowerSupply.open(server.resource, timeout_s=2.0) as psu:
        assert psu.model == server.model
        expected = {"E36312A": KeysightE36300Dialect, "DP832": RigolDP800Dialect,
                    "E3631A": KeysightE3631ADialect}[server.model]
        assert isinstance(psu.dialect, expected)
        assert psu.set_voltage(4.2) == pytest.approx(4.2)
        assert psu.set_current_limit(1.5) == pytest.approx(1.5)
        assert psu.output(True) is True
        assert server.rail(1).on and server.rail(1).v_set == pytest.approx(4.2)
        assert psu.measure_voltage() == pytest.approx(4.2)
        assert psu.measure_current() == 0.0  # nothing attached
        assert psu.errors() == []
        # out of range: the instrument refuses, the read-back catches it, the message says why
        with pytest.raises(PsuReadbackError) as info:
            psu.set_voltage(99.0)
        assert "-222" in str(info.value) and server.resource in str(info.value)
        assert psu.voltage_setpoint() == pytest.approx(4.2)
    assert server.rail(1).on is False  # safe state on close


def test_unknown_command_queues_113_and_no_error_when_empty(clock: Clock) -> None:
    psu = SimulatedPsu(DIALECTS["E36312A"], clock)
    assert psu.handle_line("BOGus:COMMand 1") == []
    assert psu.handle_line("SYST:ERR?") == ['-113,"Undefined header"']
    assert psu.handle_line("syst:err?") == ['0,"No error"']
    assert psu.handle_line("*CLS;*OPC?") == ["1"]


def test_scpi_long_short_forms_case_and_compound(clock: Clock) -> None:
    ks = SimulatedPsu(DIALECTS["E36312A"], clock)
    ks.handle_line("instrument:nselect 2")
    ks.handle_line("SOURce:VOLTage:LEVel:IMMediate:AMPLitude 3.3")
    ks.handle_line("SOUR:VOLT 3.3;CURRent 0.25")  # SCPI relative path: SOUR:CURR
    assert ks.rails[2].v_set == pytest.approx(3.3) and ks.rails[2].i_limit == pytest.approx(0.25)
    ks.handle_line("APPLy CH1,5.0,2.0;:OUTPut:STATe ON,(@1:2)")
    assert ks.rails[1].on and ks.rails[2].on and not ks.rails[3].on
    assert ks.handle_line("OUTP? (@1,3)") == ["1,0"]
    rg = SimulatedPsu(DIALECTS["DP832"], clock)
    rg.handle_line(":APPL CH2,12,0.5")
    rg.handle_line(":outp ch2,on")
    assert rg.handle_line(":OUTP? CH2") == ["ON"]
    assert rg.handle_line(":APPL? CH2") == ["CH2:30V/3A,12.000,0.5000"]
    assert rg.handle_line(":INST:NSEL 3;:INST?") == ["CH3"]


def test_measure_current_follows_the_load_model(clock: Clock) -> None:
    load = ScriptedLoad({0: PowerState.BOOTING, 1: PowerState.MODEM_OFF,
                         2: PowerState.CONNECTED_IDLE, 3: PowerState.STOP,
                         4: PowerState.HIBERNATE, 5: PowerState.OFF})
    with PsuServer("DP832", time_source=clock, loads=load) as srv, \
            PowerSupply.open(srv.resource) as psu:
        psu.set_voltage(5.0)
        psu.set_current_limit(3.0)
        psu.output(True)
        seen = []
        for t in range(6):
            clock.now = float(t)
            seen.append(psu.measure_current())
        assert seen == pytest.approx(
            [current_for(s) for s in (PowerState.BOOTING, PowerState.MODEM_OFF,
                                      PowerState.CONNECTED_IDLE, PowerState.STOP,
                                      PowerState.HIBERNATE, PowerState.OFF)], abs=1e-4)
        assert load.supply_events[0] == (False, 0.0)  # told the state at attach
        assert (True, 5.0) in load.supply_events
        psu.output(False)
        assert load.supply_events[-1] == (False, 5.0)
        assert load.brownouts == []


def test_current_limit_below_burst_sags_and_browns_out(clock: Clock) -> None:
    load = ScriptedLoad({0: PowerState.CONNECTED_IDLE, 10: PowerState.TRANSMIT})
    with PsuServer("E36312A", time_source=clock, loads={1: load}) as srv, \
            PowerSupply.open(srv.resource) as psu:
        psu.set_voltage(5.0)
        psu.set_current_limit(1.0)  # below the 1.8 A 2G burst
        psu.output(True)
        assert psu.measure_voltage() == pytest.approx(5.0)
        clock.now = 10.0
        sagged = psu.measure_voltage()
        assert sagged == pytest.approx(5.0 * 1.0 / 1.8, rel=1e-6) and sagged < VIN_MIN_V
        assert psu.measure_current() == pytest.approx(1.0)
        assert load.brownouts == [10.0]


def test_burst_browns_out_without_anyone_reading_the_psu(clock: Clock) -> None:
    load = ScriptedLoad({0: PowerState.CONNECTED_IDLE, 7: PowerState.TRANSMIT})
    with PsuServer("DP832", time_source=clock, loads=load) as srv:
        rail = srv.rail(1)
        rail.set_voltage(5.0, 0)
        rail.set_current_limit(2.5, 0)  # above the burst: no sag
        rail.set_output(True, 0)
        srv.load_changed(7.0)
        assert load.brownouts == []
        rail.set_current_limit(0.5, 8.0)  # the limit drops under a transmit burst
        assert load.brownouts == [8.0]


# -- the same driver against pyvisa-sim -----------------------------------------------------------


@pytest.mark.parametrize(
    "yaml_name,resource,model",
    [("keysight_e36312a.yaml", "TCPIP::192.0.2.10::5025::SOCKET", "E36312A"),
     ("rigol_dp832.yaml", "TCPIP::192.0.2.20::5555::SOCKET", "DP832")],
)
def test_same_driver_against_pyvisa_sim(yaml_name: str, resource: str, model: str) -> None:
    backend = f"{SIM_DIR / yaml_name}@sim"
    with PowerSupply.open(resource, channel=2, resource_manager=backend, timeout_s=0.5) as psu:
        assert psu.model == model
        assert psu.set_voltage(4.2) == pytest.approx(4.2)
        assert psu.set_current_limit(1.0) == pytest.approx(1.0)
        assert psu.output(True) is True
        assert psu.measure_voltage() == pytest.approx(5.0)  # canned in the YAML
        assert psu.measure_current() == pytest.approx(0.037)
        with pytest.raises(PsuReadbackError):
            psu.set_voltage(99.0)  # out of spec: pyvisa-sim ignores it and queues an error
        assert psu.output_state() is True
    with PowerSupply.open(resource, channel=2, resource_manager=backend) as again:
        assert again.output_state() is False  # safe state "off" reached the simulated device


# -- identity --------------------------------------------------------------------------------


def test_unsupported_idn_is_a_clear_error(clock: Clock) -> None:
    with PsuServer("E36312A", time_source=clock) as srv:
        srv.instrument.dialect = dataclasses.replace(srv.instrument.dialect,
                                                     idn="ACME Instruments,PS-9000,42,1.0")
        with pytest.raises(PsuUnsupportedModelError) as info:
            PowerSupply.open(srv.resource)
        msg = str(info.value)
        assert "PS-9000" in msg and "E36312A" in msg and "DP832" in msg and srv.resource in msg
        with pytest.raises(PsuUnsupportedModelError, match="requested"):
            srv.instrument.dialect = DIALECTS["E36312A"]
            PowerSupply.open(srv.resource, model="DP832")


def test_explicit_model_is_accepted_when_it_matches(clock: Clock) -> None:
    with PsuServer("DP832", time_source=clock) as srv:
        with PowerSupply.open(srv.resource, model="dp832", channel=3) as psu:
            assert psu.channel == 3
            assert psu.set_voltage(3.3) == pytest.approx(3.3)
        assert srv.rail(3).v_set == pytest.approx(3.3)


def test_many_servers_on_ephemeral_ports(clock: Clock) -> None:
    servers = [PsuServer("DP832" if i % 2 else "E36312A", time_source=clock) for i in range(8)]
    try:
        resources = [s.start() for s in servers]
        assert len(set(resources)) == len(servers)
        for srv in servers:
            with PowerSupply.open(srv.resource) as psu:
                assert psu.model == srv.model
    finally:
        for srv in servers:
            srv.stop()


# -- faults: a clear PsuError within the timeout, then the safe state -----------------------------


def test_mute_server_times_out_and_output_goes_off(clock: Clock) -> None:
    with PsuServer("E36312A", time_source=clock) as srv:
        psu = PowerSupply.open(srv.resource, timeout_s=FAULT_TIMEOUT_S)
        psu.set_voltage(5.0)
        psu.output(True)
        srv.mute = True
        start = time.monotonic()
        with pytest.raises(PsuTimeoutError) as info:
            with psu:
                psu.measure_current()
        elapsed = time.monotonic() - start
        assert elapsed < FAULT_TIMEOUT_S + MARGIN_S  # error + safe state, not two timeouts
        msg = str(info.value)
        assert srv.resource in msg and "MEAS:CURR? (@1)" in msg and "Fix:" in msg
        # Nothing answers, so nothing synchronises: wait (bounded) for the server to act on it.
        assert srv.wait_for_command(lambda c: c.startswith("OUTP OFF"), timeout_s=1.0)
        assert srv.rail(1).on is False  # OUTP OFF reached the instrument


def test_garbage_reply_is_a_protocol_error_and_output_goes_off(clock: Clock) -> None:
    with PsuServer("DP832", time_source=clock) as srv:
        with pytest.raises(PsuProtocolError) as info:
            with PowerSupply.open(srv.resource, timeout_s=FAULT_TIMEOUT_S) as psu:
                psu.set_voltage(5.0)
                psu.output(True)
                srv.garbage = True
                psu.measure_voltage()
        assert ":MEAS:VOLT? CH1" in str(info.value) and srv.resource in str(info.value)
        assert srv.rail(1).on is False


def test_garbage_identity_at_open(clock: Clock) -> None:
    with PsuServer("DP832", time_source=clock) as srv:
        srv.garbage = True
        with pytest.raises(PsuProtocolError, match=r"\*IDN\?"):
            PowerSupply.open(srv.resource, timeout_s=FAULT_TIMEOUT_S)


def test_dropped_connection_is_a_psu_error_and_safe_state_reconnects(clock: Clock) -> None:
    with PsuServer("E36312A", time_source=clock) as srv:
        psu = PowerSupply.open(srv.resource, timeout_s=FAULT_TIMEOUT_S)
        psu.set_voltage(5.0)
        psu.output(True)
        srv.drop_connections = 1
        start = time.monotonic()
        with pytest.raises(PsuError) as info:
            with psu:
                psu.measure_voltage()
        assert time.monotonic() - start < FAULT_TIMEOUT_S + MARGIN_S + FAULT_TIMEOUT_S
        assert isinstance(info.value, PsuConnectionError)
        assert "closed the connection" in str(info.value)
        assert srv.resource in str(info.value)
        assert srv.rail(1).on is False  # the safe state reopened the session and switched off


def test_nobody_listening_is_a_connection_error_within_timeout() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    resource = f"TCPIP::127.0.0.1::{port}::SOCKET"
    start = time.monotonic()
    with pytest.raises(PsuConnectionError) as info:
        PowerSupply.open(resource, timeout_s=FAULT_TIMEOUT_S)
    assert time.monotonic() - start < FAULT_TIMEOUT_S + MARGIN_S
    assert resource in str(info.value) and "*IDN?" in str(info.value)


def test_keyboard_interrupt_still_applies_safe_state(clock: Clock) -> None:
    with PsuServer("DP832", time_source=clock) as srv:
        with pytest.raises(KeyboardInterrupt):
            with PowerSupply.open(srv.resource) as psu:
                psu.set_voltage(5.0)
                psu.output(True)
                raise KeyboardInterrupt
        assert srv.rail(1).on is False


def test_restore_safe_state_puts_back_what_was_found(clock: Clock) -> None:
    with PsuServer("E36312A", time_source=clock) as srv:
        rail = srv.rail(1)
        rail.set_voltage(3.7, 0)
        rail.set_current_limit(2.0, 0)
        rail.set_output(True, 0)
        with PowerSupply.open(srv.resource, safe_state="restore") as psu:
            psu.output(False)
            psu.set_voltage(5.5)
            psu.set_current_limit(0.3)
        assert (rail.v_set, rail.i_limit, rail.on) == (pytest.approx(3.7), pytest.approx(2.0), True)


def test_e3631a_output_is_global(clock: Clock) -> None:
    with PsuServer("E3631A", time_source=clock) as srv:
        with PowerSupply.open(srv.resource, channel=2) as psu:
            psu.set_voltage(12.0)
            psu.output(True)
            assert srv.rail(1).on and srv.rail(2).on and srv.rail(3).on
            assert srv.rail(2).v_set == pytest.approx(12.0) and srv.rail(1).v_set == 0.0
        assert not any(srv.rail(c).on for c in (1, 2, 3))


def test_default_figures_are_the_2g_worst_case() -> None:
    assert DEFAULT_FIGURES.transmit_a >= ELECTRON_3G.transmit_a
    assert isinstance(ScriptedLoad({}), LoadModel)
