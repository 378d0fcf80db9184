"""The device's keep-alive ping to the cloud (docs/reference/particle-ota.md §1.2, §7.3).

device-os v2.3.1: the Electron pings once the cloud has been silent for the provider's keep-alive,
23 min on every Particle SIM (hal/inc/cellular_hal_utilities.h ~15-18, set by
system/src/system_task.cpp ~301-307; communication/src/dtls_protocol.cpp ~17-18 gives the same
23 min and the 30 s acknowledgement). The silence counts from the last message **received**, or
the last ping (communication/inc/protocol.h ~197-211, ~233-248; protocol.cpp ~61-65); no ping is
sent while an update is in progress (protocol.h ~235-238). A ping with no message back within
30 s is PING_TIMEOUT (communication/src/ping.h ~55-76), an error of the protocol's event loop: the
connection ends and is made again.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .electron import Electron
    from .scheduler import Timer


class KeepAlive:
    """The Pinger of one connection: armed while the cloud is connected."""

    def __init__(self, dev: Electron, send_ping: Callable[[], None], timed_out: Callable[[], None]) -> None:
        self.dev = dev
        self._send_ping = send_ping
        self._timed_out = timed_out
        self._timer: Timer | None = None
        self.last_message_ms = 0
        self.expecting_ack = False
        self.pings = 0
        self._due_at_wake = False

    def start(self) -> None:
        self.message_received()

    def stop(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self.expecting_ack = False
        self._due_at_wake = False

    def woke(self) -> None:
        """The MCU runs again: a ping that fell due during the sleep goes out now."""
        if self._due_at_wake:
            self._due_at_wake = False
            self._due()

    def message_received(self) -> None:
        """Any message from the cloud (Protocol::handle_received_message → pinger.message_received())."""
        self.last_message_ms = self.dev.sched.now_ms
        self.expecting_ack = False
        self._arm(self.dev.params.keepalive_ms)

    def _arm(self, after_ms: int) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._timer = self.dev.sched.at(self.last_message_ms + after_ms + 1, self._due)

    def _due(self) -> None:
        self._timer = None
        p = self.dev.params
        if self.expecting_ack:
            self.dev.note("ping_timeout", silent_ms=self.dev.sched.now_ms - self.last_message_ms)
            self.expecting_ack = False
            self._timed_out()
            return
        if self.dev.ota.receiving:
            self._arm(p.keepalive_ms)  # no pings during an update; its chunks keep the silence short
            return
        if self.dev.sleeper.asleep:
            self._due_at_wake = True  # STOP with the cellular wake source: the MCU is halted
            return
        self.expecting_ack = True
        self.pings += 1
        self.last_message_ms = self.dev.sched.now_ms  # ping() restarts the count (protocol.h ~208)
        self.dev.note("ping")
        self._send_ping()
        self._arm(p.ping_ack_timeout_ms)
