"""The simulated Electron as the load on a simulated bench PSU (`otarig.sim.power_model.LoadModel`).

Why: the simulated PSU must read back a current that follows what the board is doing, and what the
supply does (output off, a current-limit sag) must act on the board — at a deterministic virtual
instant (docs/design.md principle 4). This adapter is the only place where the two meet.

State → `PowerState` (figures and their sources: `power_model.PowerFigures`, docs/power.md §1):

| device state | `PowerState` |
| --- | --- |
| not powered (no VIN, no VBUS, no battery) | OFF |
| `sleeper.hibernating` (docs/reference/particle-ota.md §3.2: powers down, wakes through reset) | HIBERNATE |
| `sleeper.mode` STOP / ULTRA_LOW_POWER (§3.2) | STOP / ULTRA_LOW_POWER |
| powered, app not started yet (bootloader, copy of a DCT slot §2.6, system init §7.2) | BOOTING |
| the radio is moving bytes (the link is busy, either direction) | TRANSMIT |
| modem OFF | MODEM_OFF |
| modem powering / ready / paused | CONNECTED_IDLE |

TRANSMIT is derived from link activity, not from a device flag: every `CellularLink.send` is
observed, and the radio is active for the airtime of each message — uplink from the moment it goes
on air, downlink while it arrives (start + one-way latency). Assumption (documented in
docs/power.md §5): on 2G the module also transmits while receiving a data burst (acknowledgements
and uplink signalling of the packet data session), so a downlink burst (an OTA flight of up to 40
chunks, docs/reference/particle-ota.md §2.4) is modelled at burst current too; the transmit phase is the peak figure.

Threading (docs/power.md §2): `power_state()` is called from the PSU server's thread and only reads.
`supply_changed` / `brownout` never touch the device directly. From the simulator's own thread they
schedule the action at the current virtual instant; from any other thread (the PSU server's) they
post it to the bench, which applies it at the start of its next `advance()` — still the same
virtual instant, since virtual time does not move while the rig waits for the PSU's reply.

Power inputs (docs/power.md §4): a real Electron is also fed by USB VBUS and a LiPo. With
`usb_vbus=True` or `battery=True` the board keeps running when VIN goes away or sags: the PSU then
reads the board's demand, but a cut or a brown-out needs VBUS (and the battery) switched too.
"""
from __future__ import annotations

import threading
from collections import deque
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable

from . import deviceos as dos
from .connectivity import Modem
from .power_inputs import PowerInputs
from .power_model import VIN_MIN_V, PowerState

if TYPE_CHECKING:
    from .electron import Electron

#: [assumption] how long after a brown-out the board starts again when VIN recovers. The BOR
#: releases as soon as VDD is back; with the board off the supply leaves CC mode at once, so the
#: restart is fast. Not measured. A parameter of `ElectronPower`.
BROWNOUT_RECOVERY_MS = 50

#: How much radio history is kept for `power_state(t)` (samples ask about "now").
_HISTORY_MS = 120_000


@dataclass(frozen=True)
class RadioBurst:
    """One interval during which the radio is active, in virtual ms ([start, end))."""

    start_ms: int
    end_ms: int
    direction: str
    category: str


class ElectronPower:
    """`LoadModel` of one simulated Electron; attach it to a `PsuServer` channel.

    `post` hands an action to the simulator thread (the bench's thread-safe queue); `on_change`
    asks the supply to re-evaluate (normally `PsuServer.load_changed`), so a burst or a state
    change can brown the board out even when nobody is reading the PSU.
    """

    def __init__(self, dev: "Electron", *, post: Callable[[Callable[[], None]], None],
                 sim_thread: int | None = None, usb_vbus: bool | None = None, battery: bool | None = None,
                 vin_min_v: float = VIN_MIN_V, brownout_recovery_ms: int = BROWNOUT_RECOVERY_MS,
                 inputs: PowerInputs | None = None) -> None:
        self.dev = dev
        self.post = post
        self.sim_thread = threading.get_ident() if sim_thread is None else sim_thread
        #: docs/power.md §4: a board with USB VBUS (or a LiPo) connected is not cut by VIN.
        self.inputs = inputs if inputs is not None else PowerInputs(dev)
        if usb_vbus is not None:
            self.inputs.vbus_supplied = usb_vbus
        if battery is not None:
            self.inputs.battery = battery
        self.vin_min_v = vin_min_v
        self.brownout_recovery_ms = brownout_recovery_ms
        self.on_change: Callable[[float], None] | None = None
        self._vin_ok = False  # the supply's last word: output on at a set point ≥ VIN min
        self._vin_known = False
        self._bursts: deque[RadioBurst] = deque()
        self._lock = threading.Lock()
        self.events: list[tuple[int, str, dict[str, Any]]] = []  # (ms, what, data): cuts applied
        self._orig_send = None
        self._install()

    # -- hooks into the simulated device ------------------------------------------------------
    def _install(self) -> None:
        """Observe the link's sends (radio activity) and the device's trace (state changes)."""
        link = self.dev.link
        orig = link.send
        self._orig_send = orig

        def send(direction: str, nbytes: int, category: str, deliver: Callable[[], None],
                 *, reliable: bool = False) -> bool:
            ok = orig(direction, nbytes, category, deliver, reliable=reliable)
            self._observe_send(direction, nbytes, category)
            return ok

        link.send = send  # type: ignore[method-assign]  # instance-level observer (see report)
        self.dev.listeners.append(self._on_note)

    def detach(self) -> None:
        """Remove the hooks (the board is no longer on this supply)."""
        if self._orig_send is not None:
            try:
                del self.dev.link.send  # drop the instance attribute; the class method is back
            except AttributeError:
                pass
            self._orig_send = None
        if self._on_note in self.dev.listeners:
            self.dev.listeners.remove(self._on_note)

    def _observe_send(self, direction: str, nbytes: int, category: str) -> None:
        link = self.dev.link
        profile = link.profile
        airtime = (nbytes * 1000) // profile.bytes_per_s
        busy = getattr(link, "_busy_until", {}).get(direction)  # end of this message's airtime
        end = int(busy) if busy is not None else self.dev.sched.now_ms + airtime
        start = end - airtime
        if direction == "down":  # the device's radio works while the burst arrives
            start += profile.one_way_latency_ms
            end += profile.one_way_latency_ms
        if end <= start:
            end = start + 1  # a message always occupies the radio for at least a tick
        burst = RadioBurst(start, end, direction, category)
        with self._lock:
            self._bursts.append(burst)
            horizon = self.dev.sched.now_ms - _HISTORY_MS
            while self._bursts and self._bursts[0].end_ms < horizon:
                self._bursts.popleft()
        # Re-evaluate the supply when the burst starts (sim thread: a timer at that instant).
        self.dev.sched.at(start, self._changed)

    def _on_note(self, entry: Any) -> None:
        self._changed()

    def _changed(self) -> None:
        if self.on_change is not None:
            self.on_change(self.dev.sched.now_ms / 1000.0)

    # -- LoadModel ----------------------------------------------------------------------------
    def radio_active(self, t_ms: int) -> bool:
        with self._lock:
            return any(b.start_ms <= t_ms < b.end_ms for b in self._bursts)

    def bursts(self) -> list[RadioBurst]:
        """Radio intervals seen so far (the last `_HISTORY_MS`), for tests and plots."""
        with self._lock:
            return list(self._bursts)

    def power_state(self, t: float) -> PowerState:
        """Read-only view of the device at virtual time `t` (seconds)."""
        dev = self.dev
        if not dev.powered or not self.inputs.vin_switch:  # VIN switch open: nothing flows from the PSU
            return PowerState.OFF
        sleeper = dev.sleeper
        if sleeper.hibernating:
            return PowerState.HIBERNATE
        if sleeper.mode == dos.SLEEP_STOP:
            return PowerState.STOP
        if sleeper.mode == dos.SLEEP_ULTRA_LOW_POWER:
            return PowerState.ULTRA_LOW_POWER
        if dev.app_state.value in ("off", "not_started"):
            return PowerState.BOOTING
        if dev.net.modem != Modem.OFF and self.radio_active(int(round(t * 1000))):
            return PowerState.TRANSMIT
        if dev.net.modem == Modem.OFF:
            return PowerState.MODEM_OFF
        return PowerState.CONNECTED_IDLE

    def supply_changed(self, on: bool, volts: float) -> None:
        vin_ok = on and volts >= self.vin_min_v
        first = not self._vin_known
        self._vin_known = True
        if vin_ok == self._vin_ok and not first:
            return
        self._vin_ok = vin_ok
        self._act(self._apply_vin)

    def brownout(self, t: float) -> None:
        self._act(self._apply_brownout)

    # -- applying, in the simulator thread ----------------------------------------------------
    @property
    def other_sources(self) -> bool:
        """docs/power.md §4: VBUS or a LiPo keep the board up whatever VIN does."""
        return self.inputs.other_than_vin

    def _act(self, fn: Callable[..., None], *args: Any) -> None:
        if threading.get_ident() == self.sim_thread:
            self.dev.sched.after(0, lambda: fn(*args))  # this very virtual instant, after the event
        else:
            self.post(lambda: fn(*args))  # applied by SimBench.advance at the current instant

    def _apply_vin(self) -> None:
        """Apply the supply's *latest* state: an action queued earlier can never undo a later one."""
        self.inputs.vin_supplied = self._vin_ok
        changed = self.inputs.apply()
        if changed:
            self._record(f"vin_{changed}")

    def _apply_brownout(self) -> None:
        """VIN sagged below the minimum while the board drew current (docs/reference/instruments-and-faults.md A.3 #5)."""
        dev = self.dev
        if not dev.powered or self.other_sources:
            self._record("brownout_ignored", powered=dev.powered, vbus=self.inputs.vbus, battery=self.inputs.battery)
            return
        self._record("brownout")
        dev.power_off(brownout=True)
        dev.sched.after(self.brownout_recovery_ms, self._recover)

    def _recover(self) -> None:
        """The sag ended with the board off; VIN is back, so the board starts again (BOR released)."""
        dev = self.dev
        if dev.powered or not self.inputs.vin:
            return
        self._record("brownout_recovery")
        power_on_after_brownout(dev)

    def _record(self, what: str, **data: Any) -> None:
        self.events.append((self.dev.sched.now_ms, what, data))


def power_on_after_brownout(dev: "Electron") -> None:
    """Power the board on after a brown-out; its reset reason must read `power_brownout`.

    The device model records `next_cold_reason` at `power_off(brownout=True)` and `power_on()`
    boots with it (docs/reference/particle-ota.md §7.1 boot_reason). Should a model ever boot with another reason, the
    reason is corrected before any code can read it (`setup()` runs `boot_ms` later) and the
    correction is noted in the trace, so a test can see it happened.
    """
    want = getattr(dev, "next_cold_reason", None) or "power_brownout"
    dev.power_on()
    if dev.powered and dev.reset_reason != dos.RESET_REASON[want]:
        dev.reset_reason = dos.RESET_REASON[want]
        dev.note("reset_reason_corrected", reason=want, by="electron_power")
