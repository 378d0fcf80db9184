"""Cloud events Device OS handles itself, not the app (docs/reference/particle-ota.md §7.5).

device-os v2.3.1 system/src/system_cloud_internal.cpp ~90-126 `systemEventHandler`:
`particle/device/updates/forced|pending` set a system flag; `spark/device/reset` acts on exactly
four values — `safe mode`, `dfu`, `reboot`, `network` — and ignores any other (an empty one too).
"""
from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .electron import Electron

UPDATES_PREFIX = "particle/device/updates/"
RESET_EVENT = "spark/device/reset"


def data_to_flag(data: str) -> bool:
    """`dataToFlag` (system_cloud_internal.cpp ~83-85): strncmp(data, "true", strlen(data)) — true for any
    prefix of "true", the empty string included."""
    return "true".startswith(data)


def handle(dev: Electron, name: str, data: str) -> bool:
    """Act on a system cloud event; False when it is not one (the app's subscriptions get it)."""
    if name.startswith(UPDATES_PREFIX):
        suffix = name[len(UPDATES_PREFIX):]
        if suffix == "forced":
            dev.set_forced(data_to_flag(data))
        elif suffix == "pending":
            dev.set_pending(data_to_flag(data))
        return True
    if name == RESET_EVENT:
        _reset_command(dev, data)
        return True
    return False


def _reset_command(dev: Electron, data: str) -> None:
    """system_cloud_internal.cpp ~105-126."""
    if data == "reboot":
        dev.sched.after(0, lambda: dev.reset("user"))  # System.reset()
    elif data == "safe mode":
        dev.boot_request = "safe_mode"  # HAL_Core_Enter_Safe_Mode: RTC backup register, then reset
        dev.sched.after(0, lambda: dev.reset("safe_mode"))
    elif data == "dfu":
        dev.boot_request = "dfu"  # System.dfu(false) → HAL_Core_Enter_Bootloader: reset into DFU mode
        dev.sched.after(0, lambda: dev.reset("dfu_mode"))
    elif data == "network":
        dev.sched.after(0, dev.net.reset_network)  # resetNetworkInterfaces (system_network_internal.cpp ~37-59)
    else:
        dev.note("reset_command_ignored", data=data)
