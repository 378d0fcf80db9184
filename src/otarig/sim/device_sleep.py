"""Sleep of a simulated Electron (docs/reference/particle-ota.md §3.2, §7.5).

HIBERNATE powers down and wakes through the reset path (retained RAM kept, pending slots
applied). STOP / ULTRA_LOW_POWER continue after the sleep call; the cloud is disconnected
unless cellular is a wake source (without INACTIVE_STANDBY), in which case cloud traffic
(an OTA included) wakes the device. A rising edge on the request's GPIO pin (the bench pulses
WKP) wakes either kind (`electron_pins.ElectronPins.drive_input`).
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from . import deviceos as dos
from .connectivity import Modem

if TYPE_CHECKING:
    from .electron import Electron
    from .host_runtime import SleepRequest


#: system/src/system_sleep.cpp ~242: waitFor(spark_cloud_flag_connected, 60000)
WAKE_CLOUD_WAIT_MS = 60_000


class DeviceSleep:
    def __init__(self, dev: "Electron") -> None:
        self.dev = dev
        self.mode: int = dos.SLEEP_NONE
        self.network_wake = False
        self.wake_reason = dos.WAKEUP_UNKNOWN
        self._timer = None
        self.hibernating = False
        #: the GPIO wake source of the current sleep (WKP = 17), None when awake or without one
        self.wake_pin: int | None = None

    @property
    def asleep(self) -> bool:
        return self.mode != dos.SLEEP_NONE

    def cancel(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self.mode = dos.SLEEP_NONE
        self.hibernating = False
        self.wake_pin = None

    def sleep(self, req: "SleepRequest") -> int:
        dev = self.dev
        if dev.app is None or not dev.app.current:
            return dos.WAKEUP_UNKNOWN  # only the application thread may sleep
        # Copied now: `req` lives on the app's stack, which unwinds before a HIBERNATE takes effect.
        mode, duration_ms = req.mode, req.duration_ms
        wake_pin = req.wake_gpio or None  # ABI: 0 = no GPIO wake source
        standby = bool(req.network_flags & dos.SLEEP_NETWORK_FLAG_INACTIVE_STANDBY)
        refused = self._refusal(mode, bool(req.wake_network), standby)
        if refused:
            # checked before anything is disconnected: the call returns at once, nothing changes
            dev.note("sleep_refused", mode=dos.SLEEP_MODE_NAME.get(mode, str(mode)), why=refused)
            return dos.WAKEUP_UNKNOWN
        dev.note("sleep", mode=dos.SLEEP_MODE_NAME.get(mode, str(mode)), ms=duration_ms,
                 network_wake=bool(req.wake_network), standby=standby, ota=dev.ota.receiving)
        if mode == dos.SLEEP_HIBERNATE:
            dev.net.drop_for_sleep()
            dev.sched.after(0, lambda: self._hibernate(duration_ms, wake_pin))
            return -1  # the app does not continue: HIBERNATE wakes through reset
        if mode not in (dos.SLEEP_STOP, dos.SLEEP_ULTRA_LOW_POWER):
            return dos.WAKEUP_UNKNOWN
        # docs/reference/particle-ota.md §3.2: cellular is a wake source only without INACTIVE_STANDBY (the flag keeps the modem
        # powered but not listening for wake-ups).
        self.network_wake = bool(req.wake_network) and not standby
        if standby:
            # docs/reference/particle-ota.md §8.5: v2.3.1 code disconnects the cloud (cheap resume on wake); AN028 says it stays.
            cloud_stays = not dev.params.inactive_standby_disconnects_cloud
        else:
            cloud_stays = self.network_wake  # SystemSleepConfigurationHelper::cloudDisconnectRequested
        if not cloud_stays:
            dev.net.drop_for_sleep()
            if standby or self.network_wake:
                dev.net.modem_pause()  # the modem stays registered (docs/reference/particle-ota.md §3.2 cellular_pause)
            else:
                dev.net.modem_off()
        self.mode = mode
        self.wake_pin = wake_pin
        dev.app_state_before_sleep = dev.app_state
        from .electron import AppState
        dev.app_state = AppState.SLEEPING
        if duration_ms:
            self._timer = dev.sched.after(duration_ms, lambda: self.wake(dos.WAKEUP_BY_RTC))
        if dev.app.yield_to_scheduler():
            return -1
        reason = self.wake_reason
        reconnect = not cloud_stays and dev.net.auto_connect
        dev.net.reconnect_after_wake()
        app = dev.app
        if reconnect and app is not None and not app.threaded and \
                app.system_mode in (dos.AUTOMATIC, dos.SEMI_AUTOMATIC):
            # docs/reference/particle-ota.md §3.2: a non-threaded AUTOMATIC/SEMI_AUTOMATIC app's sleep() returns
            # only once the cloud is back, or after 60 s (device-os v2.3.1 system/src/system_sleep.cpp ~235-243)
            if dev.wait_for_cloud(app, WAKE_CLOUD_WAIT_MS):
                return -1
        return reason

    def _refusal(self, mode: int, wake_network: bool, standby: bool) -> str | None:
        """hal_sleep_validate_config before anything changes (device-os v2.3.1 system/src/system_sleep.cpp
        ~125-127): on Gen 2 the cellular interface is a wake source only in STOP, and only with the modem
        on (hal/src/stm32f2xx/sleep_hal.cpp ~451-460); with INACTIVE_STANDBY it is not checked."""
        if not wake_network or standby:
            return None
        if self.dev.net.modem == Modem.OFF:
            return "invalid_state"  # SYSTEM_ERROR_INVALID_STATE: the modem's UART is off
        if mode != dos.SLEEP_STOP:
            return "not_supported"  # SYSTEM_ERROR_NOT_SUPPORTED: ULP or HIBERNATE with a network wake
        return None

    def wake(self, reason: int) -> None:
        """End STOP/ULP sleep (RTC, WKP pin, or network traffic)."""
        dev = self.dev
        if self.mode in (dos.SLEEP_STOP, dos.SLEEP_ULTRA_LOW_POWER):
            from .electron import AppState
            self.cancel()
            self.wake_reason = reason
            dev.app_state = AppState.RUNNING
            dev.note("wake", reason=reason)
            dev.sched.after(0, dev._resume_app)
            dev.net.keepalive.woke()
        elif self.hibernating:
            self.cancel()
            dev.note("wake", reason=reason)
            dev.powered = True
            dev._boot(dos.RESET_REASON["power_management"])

    def hibernate_now(self, duration_ms: int, wake_pin: int | None) -> None:
        """HIBERNATE entered by the system itself (the MODE double click's soft power-off)."""
        self._hibernate(duration_ms, wake_pin)

    def _hibernate(self, duration_ms: int, wake_pin: int | None) -> None:
        dev = self.dev
        dev._halt(graceful_cloud=True)
        from .electron import AppState
        dev.app_state = AppState.OFF
        self.hibernating = True
        self.mode = dos.SLEEP_NONE
        self.wake_pin = wake_pin  # docs/reference/particle-ota.md §3.2: HIBERNATE wakes on a WKP rising edge
        dev.note("hibernate")
        if duration_ms:
            self._timer = dev.sched.after(duration_ms, lambda: self.wake(dos.WAKEUP_BY_RTC))
