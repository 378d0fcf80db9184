"""Putting a binary on a board without going through a scenario's OTA (the baseline transition).

Over USB the pinned `particle` CLI flashes the application to the board named by its device ID
(`particle flash --local <device> FILE --application-only`), which works while the board is
offline and leaves Device OS alone. Over the cloud the rig sends the binary as a cloud OTA; it
needs the board online and is the only way on a stand-in bench (which has no USB).
"""
from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from .interfaces import CloudAccess, FirmwareBuild


class UsbFlasher:
    """`particle flash --local <device> FILE --application-only` with the pinned CLI."""

    method = "usb"

    def __init__(self, cli: Any) -> None:
        self.cli = cli

    def flash(self, device_id: str, build: FirmwareBuild) -> None:
        # The file lives only as long as the flash: nothing with a token or a binary outlives the run.
        with tempfile.TemporaryDirectory(prefix="otarig-flash-") as tmp:
            path = Path(tmp) / f"v{build.version}.bin"
            path.write_bytes(build.image)
            self.cli.flash_local_to(device_id, path)


class CloudFlasher:
    """A cloud OTA of the binary (the board must be online; the app's guard still gates it)."""

    method = "cloud"

    def __init__(self, cloud: CloudAccess) -> None:
        self.cloud = cloud

    def flash(self, device_id: str, build: FirmwareBuild) -> None:
        self.cloud.flash(device_id, build.image, build.version)
