"""Runs one instance of the companion's host build (a .so) inside the simulator.

The firmware is the real C++ companion compiled against `firmware/host/`; this module loads
it with ctypes, binds the bridge callbacks (docs/dev/architecture.md, ABI 4) to a device
model, and runs `setup()`/`loop()` in a greenlet so that `delay()` yields to the virtual-time
scheduler (docs/design.md principle 4). One OS thread; no wall-clock waits.
"""
from __future__ import annotations

import ctypes
import itertools
import os
import shutil
from pathlib import Path
from typing import Protocol

import greenlet

from . import sanitizer

ABI_VERSION = 4

# otarig_config keys
CFG_SYSTEM_MODE, CFG_THREADED, CFG_PRODUCT_ID, CFG_PRODUCT_VERSION = range(4)

MILLIS = ctypes.CFUNCTYPE(ctypes.c_uint32)
DELAY = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_uint32)
LOOP_DONE = ctypes.CFUNCTYPE(ctypes.c_int)
SERIAL = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_int, ctypes.POINTER(ctypes.c_uint8), ctypes.c_int)
SYSTEM = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_int, ctypes.c_int)
CLOUD = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_int)
GPIO = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_int)
EEPROM_PUT = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_int, ctypes.POINTER(ctypes.c_uint8), ctypes.c_int)
EEPROM_GET = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_int, ctypes.c_int)


class SleepRequest(ctypes.Structure):
    _fields_ = [
        ("mode", ctypes.c_uint8),
        ("duration_ms", ctypes.c_uint32),
        ("wake_gpio", ctypes.c_uint8),
        ("wake_network", ctypes.c_uint8),
        ("network_flags", ctypes.c_uint8),
    ]


SLEEP = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(SleepRequest))


class HostApi(ctypes.Structure):
    _fields_ = [
        ("millis", MILLIS),
        ("delay", DELAY),
        ("loop_done", LOOP_DONE),
        ("serial", SERIAL),
        ("system", SYSTEM),
        ("cloud", CLOUD),
        ("sleep", SLEEP),
        ("eeprom", ctypes.POINTER(ctypes.c_uint8)),
        ("eeprom_len", ctypes.c_uint32),
        ("gpio", GPIO),  # ABI 2
        ("eeprom_put", EEPROM_PUT),  # ABI 3
        ("eeprom_get", EEPROM_GET),  # ABI 4
    ]


class AppHost(Protocol):
    """What the device model offers the firmware (one method per bridge callback)."""

    def fw_millis(self) -> int: ...
    def fw_delay(self, ms: int) -> int: ...
    def fw_loop_done(self) -> int: ...
    def fw_serial(self, op: int, buf: "ctypes._Pointer", length: int) -> int: ...
    def fw_system(self, op: int, arg: int) -> int: ...
    def fw_cloud(self, op: int, a: str | None, b: str | None, flags: int) -> int: ...
    def fw_sleep(self, req: SleepRequest) -> int: ...
    def fw_gpio(self, op: int, pin: int, value: int) -> int: ...
    def fw_eeprom_put(self, index: int, buf: "ctypes._Pointer", length: int) -> int: ...
    def fw_eeprom_get(self, index: int, length: int) -> int: ...


class FirmwareLoadError(RuntimeError):
    """The host build could not be loaded or does not speak this ABI."""


#: boots of sanitized builds in this process: each loads its own copy (AppInstance)
_BOOTS = itertools.count(1)


def _dlclose(handle: int) -> None:
    import _ctypes

    _ctypes.dlclose(handle)


class AppInstance:
    """One boot of the firmware on one device: a private copy of the .so, its globals and greenlet.

    A reset is modelled by `terminate()` then a new `AppInstance`: the library is unloaded and
    loaded again so static constructors run again, as they do on a real reset.
    """

    def __init__(self, so_path: Path, instance_path: Path, host: AppHost, eeprom: ctypes.Array,
                 retained: bytes | None) -> None:
        if sanitizer.enabled():
            # A sanitized build is never unloaded (terminate()): its own copy per boot, so that the
            # next dlopen loads a fresh instance all the same (otarig.sim.sanitizer)
            instance_path = instance_path.with_name(f"{instance_path.stem}-boot{next(_BOOTS)}{instance_path.suffix}")
        instance_path.parent.mkdir(parents=True, exist_ok=True)
        if not instance_path.exists() or instance_path.stat().st_mtime_ns != so_path.stat().st_mtime_ns \
                or instance_path.stat().st_size != so_path.stat().st_size:
            tmp = instance_path.with_suffix(f".{os.getpid()}.tmp")
            shutil.copy2(so_path, tmp)
            os.replace(tmp, instance_path)
        self.path = instance_path
        try:
            sanitizer.check_loadable()  # a sanitized build loads only behind its preloaded runtime
        except sanitizer.SanitizerError as exc:
            raise FirmwareLoadError(str(exc)) from exc
        try:
            self.lib = ctypes.CDLL(str(instance_path), mode=os.RTLD_NOW | os.RTLD_LOCAL)
        except OSError as exc:
            raise FirmwareLoadError(f"cannot load firmware build {so_path}: {exc}") from exc
        lib = self.lib
        lib.otarig_abi_version.restype = ctypes.c_int
        abi = lib.otarig_abi_version()
        if abi != ABI_VERSION:
            raise FirmwareLoadError(f"firmware build {so_path} speaks bridge ABI {abi}, the simulator ABI {ABI_VERSION}")
        lib.otarig_config.restype = ctypes.c_int
        lib.otarig_config.argtypes = [ctypes.c_int]
        lib.otarig_retained.restype = ctypes.c_void_p
        lib.otarig_retained.argtypes = [ctypes.POINTER(ctypes.c_uint32)]
        lib.otarig_system_event.argtypes = [ctypes.c_uint64, ctypes.c_int]
        lib.otarig_call_function.restype = ctypes.c_int
        lib.otarig_call_function.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.POINTER(ctypes.c_int)]
        lib.otarig_get_variable.restype = ctypes.c_int
        lib.otarig_get_variable.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_int]
        lib.otarig_cloud_event.restype = ctypes.c_int
        lib.otarig_cloud_event.argtypes = [ctypes.c_char_p, ctypes.c_char_p]
        lib.otarig_list.restype = ctypes.c_int
        lib.otarig_list.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int]

        self.system_mode = lib.otarig_config(CFG_SYSTEM_MODE)
        self.threaded = bool(lib.otarig_config(CFG_THREADED))
        self.product_id = lib.otarig_config(CFG_PRODUCT_ID)
        self.product_version = lib.otarig_config(CFG_PRODUCT_VERSION)
        if retained is not None:
            self.restore_retained(retained)

        # Keep references: ctypes callbacks die with their Python objects.
        self._callbacks = {
            "millis": MILLIS(lambda: host.fw_millis() & 0xFFFFFFFF),
            "delay": DELAY(host.fw_delay),
            "loop_done": LOOP_DONE(host.fw_loop_done),
            "serial": SERIAL(host.fw_serial),
            "system": SYSTEM(host.fw_system),
            # an empty name stays "" (not None): Device OS registers a cloud variable under it
            "cloud": CLOUD(lambda op, a, b, f: host.fw_cloud(op, a.decode() if a is not None else None,
                                                            b.decode() if b is not None else None, f)),
            "sleep": SLEEP(lambda req: host.fw_sleep(req.contents)),
            "gpio": GPIO(host.fw_gpio),
            "eeprom_put": EEPROM_PUT(host.fw_eeprom_put),
            "eeprom_get": EEPROM_GET(host.fw_eeprom_get),
        }
        self._eeprom = eeprom
        self._api = HostApi(eeprom=ctypes.cast(eeprom, ctypes.POINTER(ctypes.c_uint8)), eeprom_len=len(eeprom),
                            **self._callbacks)
        lib.otarig_bind(ctypes.byref(self._api))
        self.greenlet: greenlet.greenlet | None = None
        self.aborted = False
        self.finished = False

    # -- lifecycle -------------------------------------------------------------------------
    def start(self, parent: greenlet.greenlet) -> None:
        """Create the app greenlet; the first `resume()` runs setup()."""
        def run() -> None:
            self.lib.otarig_run()
            self.finished = True
        self.greenlet = greenlet.greenlet(run, parent=parent)

    @property
    def current(self) -> bool:
        """True when the caller is running on this app's greenlet (app context)."""
        return self.greenlet is not None and greenlet.getcurrent() is self.greenlet

    def resume(self) -> None:
        if self.greenlet is not None and not self.greenlet.dead:
            self.greenlet.switch()

    def yield_to_scheduler(self) -> int:
        """Called from a bridge callback on the app greenlet: hand control back. Returns abort flag."""
        assert self.greenlet is not None
        self.greenlet.parent.switch()
        return 1 if self.aborted else 0

    def terminate(self) -> bytes:
        """Unwind the app (abort → C++ exception → otarig_run returns) and unload the library.

        Returns the retained section so the next boot can restore it.
        """
        retained = self.read_retained()
        self.aborted = True
        if self.greenlet is not None and not self.greenlet.dead and self.greenlet:  # started
            self.greenlet.switch()
        # a greenlet never switched to (a reset before setup(): docs/reference/particle-ota.md §3.1) has nothing to unwind
        if self.greenlet is not None and self.greenlet:
            raise FirmwareLoadError("firmware did not unwind on abort (a switching call ignored the abort flag)")
        handle = self.lib._handle
        del self.lib
        if sanitizer.enabled():
            # AddressSanitizer keeps a pointer to each global of a library it has seen, after dlclose
            # too, and describing a later bad access reads them all: an unloaded library's would end
            # the report in a crash. The old boot stays mapped and never runs again; its file goes.
            self.path.unlink(missing_ok=True)
        else:
            _dlclose(handle)
        return retained

    # -- retained memory (docs/reference/particle-ota.md §7.1: retained RAM kept across reset and sleep) ---
    def _retained_span(self) -> tuple[int, int]:
        n = ctypes.c_uint32(0)
        p = self.lib.otarig_retained(ctypes.byref(n))
        return (p or 0), n.value

    def read_retained(self) -> bytes:
        p, n = self._retained_span()
        return ctypes.string_at(p, n) if p and n else b""

    def restore_retained(self, data: bytes) -> None:
        p, n = self._retained_span()
        if p and n and len(data) == n:
            ctypes.memmove(p, data, n)

    # -- calls into the firmware (scheduler context; docs/reference/particle-ota.md §2.2 delivery) ---
    def system_event(self, event: int, param: int) -> None:
        self.lib.otarig_system_event(event, param)

    def call_function(self, name: str, arg: str) -> int | None:
        found = ctypes.c_int(0)
        rv = self.lib.otarig_call_function(name.encode(), arg.encode(), ctypes.byref(found))
        return rv if found.value else None

    def get_variable(self, name: str) -> str | None:
        buf = ctypes.create_string_buffer(256)
        rv = self.lib.otarig_get_variable(name.encode(), buf, len(buf))
        return None if rv < 0 else buf.value.decode(errors="replace")

    def cloud_event(self, name: str, data: str) -> int:
        return self.lib.otarig_cloud_event(name.encode(), data.encode())

    def listing(self, what: int) -> list[str]:
        buf = ctypes.create_string_buffer(2048)
        self.lib.otarig_list(what, buf, len(buf))
        return [s for s in buf.value.decode(errors="replace").split("\n") if s]

    def variable_types(self) -> dict[str, str]:
        """The app's cloud variables, name → Cloud API type ("int32", "double", "bool", "string"),
        as the cloud lists them for the device; a name registered empty stays "" (Device OS takes
        it, docs/reference/particle-cloud-api.md §5 "Cloud variables and functions")."""
        out: dict[str, str] = {}
        for line in self.listing(3):  # OTARIG_LIST_VARIABLE_TYPES: "name\ttype"
            name, _, kind = line.partition("\t")
            out[name] = kind
        return out
