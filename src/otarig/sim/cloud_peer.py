"""The narrow seam between a simulated device and whatever plays the cloud.

The device only ever talks to a `CloudPeer` through its `CellularLink`; the in-process
stand-in (`cloud_stub`) and the full simulated cloud implement the same three calls.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from .electron import Electron

#: HELLO flags (communication/src/protocol.cpp, docs/reference/particle-ota.md §1.1, §1.5)
HELLO_FLAG_OTA_UPGRADE_SUCCESSFUL = 0x01
HELLO_FLAG_IMMEDIATE_UPDATES_SUPPORT = 0x04


@dataclass(frozen=True)
class Hello:
    """What the device presents when it connects (docs/reference/particle-ota.md §7.3)."""

    device_id: str
    session_id: str | None      # a session to resume, or None for a full handshake
    hello_sent: bool            # False only for a resume whose describe CRC is unchanged
    product_id: int
    product_version: int
    platform_id: int
    flags: int
    system_version: int
    safe_mode: bool
    app_hash: str
    #: the system describe that follows HELLO: one `electron_modules.Module.describe()` dict per
    #: module (docs/reference/particle-ota.md §1.6 `m` list, §4.2)
    modules: tuple = ()


@dataclass(frozen=True)
class SessionReply:
    """Cloud → device: the DTLS session is up; `resumed` tells which kind (docs/reference/particle-ota.md §1.2)."""

    session_id: str
    resumed: bool


@dataclass(frozen=True)
class SessionDiscard:
    """Cloud → device key change asking to discard the session (docs/reference/particle-ota.md §1.2 handle_key_change)."""

    session_id: str


@dataclass(frozen=True)
class SessionAlert:
    """Cloud → device: a DTLS alert for a record of a session the cloud no longer has
    (docs/reference/particle-ota.md §1.2, §8.13); the device resets its session."""

    session_id: str


@dataclass(frozen=True)
class Ping:
    """Device → cloud keep-alive, a confirmable CoAP ping (docs/reference/particle-ota.md §1.2)."""


@dataclass(frozen=True)
class PingAck:
    """Cloud → device: the ping's acknowledgement."""


@dataclass(frozen=True)
class Confirmable:
    """Device → cloud: a confirmable CoAP message (`inner`) the device keeps until the cloud
    acknowledges `token`, retransmitting it meanwhile (device-os v2.3.1
    communication/src/coap_channel.h ~161-164, ~225-240, ~265-269; docs/reference/particle-ota.md §7.3)."""

    token: int
    inner: object


@dataclass(frozen=True)
class Ack:
    """Cloud → device: the acknowledgement of the confirmable message `token`."""

    token: int


class CloudPeer(Protocol):
    def device_hello(self, device: "Electron", hello: Hello) -> None: ...
    def device_message(self, device: "Electron", msg: object) -> None: ...
    def device_disconnected(self, device: "Electron", graceful: bool) -> None: ...
