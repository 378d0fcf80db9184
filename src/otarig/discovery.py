"""Finding a bench's boards on USB: Particle devices by device ID / USB serial number.

An Electron enumerates as a USB CDC serial port (VID 0x2B04, PID 0xC00A) whose USB serial
number is its device ID; in DFU mode it is PID 0xD00A and has no serial port. udev gives each
serial port a stable `/dev/serial/by-id/` link, which is what the rig opens, so a board keeps its
name across re-enumeration and across other boards being plugged in (docs/real-bench.md).
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

PARTICLE_VID = 0x2B04
ELECTRON_SERIAL_PID = 0xC00A
ELECTRON_DFU_PID = 0xD00A
BY_ID = Path("/dev/serial/by-id")
SYSFS_USB = Path("/sys/bus/usb/devices")


class BoardNotFound(LookupError):
    """The board the bench file names is not on USB (or only in DFU mode); the message says what is."""


@dataclass(frozen=True)
class UsbDevice:
    """One Particle USB device as the host sees it."""

    serial_number: str
    vid: int
    pid: int
    device: str | None  # the tty (/dev/ttyACM0) in serial mode, None in DFU mode
    by_id: str | None = None

    @property
    def mode(self) -> str:
        return "dfu" if self.pid == ELECTRON_DFU_PID else "serial"

    @property
    def port(self) -> str | None:
        """The stable path to open: the by-id link when udev made one, else the tty."""
        return self.by_id or self.device


def _by_id_links(by_id: Path) -> dict[str, str]:
    """Real tty → its /dev/serial/by-id link."""
    out: dict[str, str] = {}
    try:
        for link in by_id.iterdir():
            out[os.path.realpath(link)] = str(link)
    except OSError:
        pass
    return out


def serial_devices(ports: Iterable[object] | None = None, *, by_id: Path = BY_ID) -> list[UsbDevice]:
    """Particle devices with a serial port (pyserial's list of ports; `ports` for a given list)."""
    if ports is None:
        from serial.tools import list_ports

        ports = list_ports.comports()
    links = _by_id_links(by_id)
    out = []
    for p in ports:
        if getattr(p, "vid", None) != PARTICLE_VID:
            continue
        dev = str(getattr(p, "device"))
        out.append(UsbDevice(str(getattr(p, "serial_number", "") or ""), PARTICLE_VID, int(getattr(p, "pid", 0) or 0),
                             dev, links.get(os.path.realpath(dev))))
    return out


def dfu_devices(sysfs: Path = SYSFS_USB) -> list[UsbDevice]:
    """Particle devices in DFU mode, from sysfs (they have no tty for pyserial to list)."""
    out = []
    try:
        entries = list(sysfs.iterdir())
    except OSError:
        return out
    for d in entries:
        try:
            vid = int((d / "idVendor").read_text().strip(), 16)
            pid = int((d / "idProduct").read_text().strip(), 16)
        except (OSError, ValueError):
            continue
        if vid == PARTICLE_VID and pid == ELECTRON_DFU_PID:
            try:
                serial = (d / "serial").read_text().strip()
            except OSError:
                serial = ""
            out.append(UsbDevice(serial, vid, pid, None))
    return out


def find_board(device_id: str, usb_serial: str | None = None, *, serial: list[UsbDevice] | None = None,
               dfu: list[UsbDevice] | None = None) -> str:
    """The serial port of the board with this device ID (or USB serial number); raises
    BoardNotFound naming what is attached instead."""
    wanted = (usb_serial or device_id).lower()
    serial = serial_devices() if serial is None else serial
    for d in serial:
        if d.serial_number.lower() == wanted and d.port:
            return d.port
    dfu = dfu_devices() if dfu is None else dfu
    if any(d.serial_number.lower() == wanted for d in dfu):
        raise BoardNotFound(f"board {device_id} is in DFU mode (USB {PARTICLE_VID:04x}:{ELECTRON_DFU_PID:04x}): it has "
                            "no serial port; reset it (or `particle usb reset`) so it runs its application")
    seen = ", ".join(f"{d.serial_number or '?'} ({d.mode}, {d.port or 'no port'})" for d in [*serial, *dfu]) or "none"
    raise BoardNotFound(f"board {device_id} is not on USB (Particle devices seen: {seen}); plug it in, check the "
                        "cable carries data, or give boards.port (`ls -l /dev/serial/by-id/` lists serial devices)")
