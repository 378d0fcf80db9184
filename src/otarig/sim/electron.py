"""A simulated Particle Electron running Device OS 2.3.1 and a firmware host build.

The Device OS *behaviour* lives here (docs/reference/particle-ota.md §7.1–7.5); the application is the
real companion firmware, run by `host_runtime.AppInstance`. Connectivity, OTA reception, sleep
and GPIO are delegated to small collaborators (`connectivity`, `device_ota`, `device_sleep`,
`electron_pins`).
"""
from __future__ import annotations

import ctypes
import enum
import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

import greenlet

from . import deviceos as dos
from . import system_cloud_events
from .app_thread import PUMP_PERIOD_MS, ApplicationQueue, PostedEvent
from .connectivity import Connectivity, Modem
from .device_ota import DeviceOta
from .device_sleep import DeviceSleep
from .electron_modules import (FUNCTION_BOOTLOADER, SYSTEM, USER, Module, bootloader_of,
                               system_part_dependencies, unmet_dependency)
from .electron_pins import ElectronPins
from .mode_button import ModeButton
from .eeprom_emulation import CPU_HZ
from .flash import FlashState
from .host_runtime import AppInstance, SleepRequest
from .images import ImageError, SimImage, read_image
from .cloud_peer import Ack, PingAck, SessionAlert, SessionDiscard, SessionReply
from .link import CellularLink
from .messages import CloudEvent
from .params import DeviceOsParams
from .randomness import spread_ms

if TYPE_CHECKING:
    from .cloud_peer import CloudPeer
    from .world import World


class AppState(enum.Enum):
    NOT_STARTED = "not_started"
    RUNNING = "running"
    SAFE_MODE = "safe_mode"
    DFU = "dfu"
    SLEEPING = "sleeping"
    OFF = "off"


@dataclass
class SystemFlags:
    """docs/reference/particle-ota.md §2.1 / §7.1: RAM flags, reset to these defaults at every boot."""

    updates_enabled: bool = True
    updates_forced: bool = False
    updates_pending: bool = False
    reset_pending: bool = False
    reset_enabled: bool = True
    #: SYSTEM_POWEROFF: the pending reset is a power-off (MODE double click, `mode_button`)
    power_off: bool = False


@dataclass
class RetainedSession:
    """docs/reference/particle-ota.md §1.2 / §7.1: the DTLS session in retained_system RAM (survives reset and sleep)."""

    session_id: str | None = None
    uses: int = 0
    describe_hash: str = ""

    def invalidate(self) -> None:
        self.session_id, self.uses, self.describe_hash = None, 0, ""


@dataclass
class TraceEntry:
    """A ground-truth observation of the model (not visible to a real rig; used by sim tests)."""

    t_ms: int
    kind: str
    data: dict = field(default_factory=dict)


class Electron:
    """One simulated Electron (platform 10)."""

    PLATFORM_ID = 10

    def __init__(self, world: "World", device_id: str, *, cloud: "CloudPeer", link: CellularLink,
                 port: Any | None = None, params: DeviceOsParams | None = None,
                 instance_dir: Path | None = None) -> None:
        self.world = world
        self.sched = world.sched
        self.device_id = device_id
        self.cloud = cloud
        self.link = link
        self.port = port
        self.params = params or DeviceOsParams()
        self.instance_path = (instance_dir or world.instance_dir) / f"{device_id}.so"
        self.flash = FlashState(system_parts={1: dos.SYSTEM_MODULE_VERSION, 2: dos.SYSTEM_MODULE_VERSION,
                                              3: dos.SYSTEM_MODULE_VERSION},
                                bootloader=bootloader_of(dos.SYSTEM_MODULE_VERSION))
        self.flash.attach_clock(lambda: self.sched.now_ms * 1000)
        self.eeprom = (ctypes.c_uint8 * 2047).from_buffer(self.flash.eeprom)
        self.flags = SystemFlags()
        self.session = RetainedSession()
        self.retained_app: bytes | None = None
        self.powered = False
        self.app: AppInstance | None = None
        self.app_state = AppState.OFF
        self.image: SimImage | None = None
        self.boot_count = 0
        #: reset reason of the next power-up: how power was lost (docs/reference/particle-ota.md §7.1 boot_reason)
        self.next_cold_reason = "power_down"
        self.pending_reset_reason = "update"
        self.boot_ms = 0
        self.reset_reason = dos.RESET_REASON["none"]
        self.reset_reason_data = 0
        self.ota_success_hello = False
        self.last_reset_published = False
        self.trace: list[TraceEntry] = []
        self.listeners: list[Callable[[TraceEntry], None]] = []
        self.serial_rx = bytearray()
        self._resume_timer = None
        self._resume_pending = False
        #: CPU cycles of EEPROM reads the app made and has not yet been held for (less than 1 ms)
        self._read_cycles = 0
        self._idle_pass_timer = None
        self._boot_timers: list = []
        self.net = Connectivity(self)
        self.ota = DeviceOta(self)
        self.sleeper = DeviceSleep(self)
        self.pins = ElectronPins(self)
        self.mode_button = ModeButton(self)
        #: a threaded app's event queue (docs/reference/particle-ota.md §2.2; `app_thread`)
        self.app_queue = ApplicationQueue(self)
        #: cloud messages that arrived, and work left, while the system thread was busy (a blocked put,
        #: the reset wait)
        self._held_messages: list[object] = []
        #: the system thread's wait for a threaded app's `reset` handlers (system_shutdown_if_needed)
        self._shutdown_wait = None
        #: the app parked until the cloud connects (`wait_for_cloud`)
        self._cloud_waiter: AppInstance | None = None
        #: what the next boot was asked to enter: "safe_mode" or "dfu" (RTC backup register: a reset keeps it)
        self.boot_request: str | None = None

    # -- timing ---------------------------------------------------------------------------
    def timing(self, name: str, base_ms: int | None = None) -> int:
        """A Device OS timing `name` for this use: its parameter (`<name>_ms`, or `base_ms`) plus a
        seeded draw within its declared spread (`<name>_spread_ms`; `app_delay` → `app_delay_overrun_ms`),
        from this device's stream of that name (`otarig.sim.randomness`)."""
        p = self.params
        base = getattr(p, f"{name}_ms") if base_ms is None else base_ms
        spread = p.app_delay_overrun_ms if name == "app_delay" else getattr(p, f"{name}_spread_ms")
        return spread_ms(self.world.rng("device", self.device_id, name), base, spread)

    # -- observation ----------------------------------------------------------------------
    def note(self, kind: str, **data: Any) -> None:
        entry = TraceEntry(self.sched.now_ms, kind, data)
        self.trace.append(entry)
        for fn in self.listeners:
            fn(entry)

    @property
    def running_version(self) -> int | None:
        return self.image.product_version if self.image else None

    # -- power (docs/reference/particle-ota.md §2.6, §7.1) --------------------------------
    def install(self, image: bytes) -> None:
        """Put an app in the user slot, as `particle flash --usb` would (no OTA involved)."""
        read_image(image)  # validates; raises ImageError naming the failed check
        self.flash.user = image

    def power_on(self) -> None:
        if self.powered:
            return
        self.powered = True
        self.note("power_on")
        if not self.params.session_survives_power_loss:
            self.session.invalidate()  # docs/reference/particle-ota.md §1.2: cold power-up ⇒ full handshake
        self.retained_app = None
        self.boot_request = None
        # The reset reason tells how power was lost last (power_off(brownout=True) → power_brownout).
        reason, self.next_cold_reason = self.next_cold_reason, "power_down"
        self._boot(dos.RESET_REASON[reason])

    def power_off(self, *, brownout: bool = False) -> None:
        """Power lost at this instant: RAM gone, a bootloader copy in progress is left unfinished."""
        if not self.powered:
            return
        self.powered = False
        self.note("power_off", brownout=brownout, ota=self.ota.receiving, copying=self.flash.copying)
        torn = self.flash.power_lost(self.world.rng("flash", self.device_id))
        if torn is not None:
            self.note("flash_torn", op=torn.label, region=torn.region)  # docs/reference/particle-ota.md §2.10
        self._halt(graceful_cloud=False)
        self.app_state = AppState.OFF
        self.next_cold_reason = "power_brownout" if brownout else "power_down"

    # -- reset and boot (docs/reference/particle-ota.md §7.2) -----------------------------
    def reset(self, reason: str, data: int = 0) -> None:
        """A reset of any kind; pending DCT slots are applied at the boot that follows."""
        if not self.powered:
            return
        self.note("reset", reason=reason)
        self._halt(graceful_cloud=reason in ("user", "update"))
        self.reset_reason_data = data
        self._boot(dos.RESET_REASON[reason])

    def reset_from_app(self, reason: str, data: int = 0) -> int:
        """A reset requested by firmware code, done at once on the scheduler: when called on the
        app's own stack, the app is told to unwind first (-1 makes the bridge throw)."""
        self.sched.after(0, lambda: self.reset(reason, data))
        if self.app is not None and self.app.current:
            self.app.aborted = True  # the bridge throws; the app unwinds, it did not exit by itself
            return -1
        return 0

    def _halt(self, *, graceful_cloud: bool) -> None:
        for t in self._boot_timers:
            t.cancel()
        self._boot_timers.clear()
        if self._resume_timer is not None:
            self._resume_timer.cancel()
            self._resume_timer = None
        if self._idle_pass_timer is not None:
            self._idle_pass_timer.cancel()
            self._idle_pass_timer = None
        self.sleeper.cancel()
        self.app_queue.clear()
        self._held_messages.clear()
        self._cloud_waiter = None
        self._end_shutdown_wait()
        self.ota.cancel("halt", emit=False)
        self.net.shutdown(graceful=graceful_cloud)
        self._stop_app()
        self.pins.release()  # the MCU's pins return to their reset state (a HIGH output falls)
        if self.port is not None and self.port.present:
            self.world.port_vanish(self.port)
        self.serial_rx.clear()

    def _stop_app(self) -> None:
        if self.app is not None:
            app, self.app = self.app, None
            if app.greenlet is not None and app.current:
                raise RuntimeError("internal: the app cannot be terminated from its own stack")
            self.retained_app = app.terminate()
        self.app_state = AppState.NOT_STARTED

    def _boot(self, reason: int) -> None:
        self.boot_count += 1
        self.reset_reason = reason
        self.note("boot_start", reason=dos.RESET_REASON_NAME.get(reason, str(reason)))
        self.flags = SystemFlags()  # docs/reference/particle-ota.md §2.1: RAM flags reset at boot
        self.last_reset_published = False
        self.flash.boot()  # HAL_EEPROM_Init (docs/reference/particle-ota.md §2.10)
        self._bootloader()

    def _bootloader(self) -> None:
        """docs/reference/particle-ota.md §2.6: copy each DCT slot (source checked first), clear it after the copy."""
        if self.flash.slots:
            self.note("bootloader_copy_start", slots=len(self.flash.slots))
            # docs/reference/particle-ota.md §2.10: erase + word programs + the DCT write, at flash speed
            self._boot_timers.append(self.sched.after(self.flash.begin_copy(), self._copy_done))
        else:
            self._validate_and_start()

    def _copy_done(self) -> None:
        slot = self.flash.apply_first_slot()
        if slot.module_function == "system":
            info = read_image(slot.image).info
            self.flash.system_parts[slot.module_index] = info.module_version
            self.flash.system_deps[slot.module_index] = info.dependencies
        else:
            self.ota_success_hello = True  # docs/reference/particle-ota.md §1.1: HELLO_FLAG_OTA_UPGRADE_SUCCESSFUL after an update
        self.note("bootloader_copy_done", function=slot.module_function)
        self._bootloader()

    def _validate_and_start(self) -> None:
        """docs/reference/particle-ota.md §2.6 / §7.2 VALIDATE_USER: run the app, factory-restore, or safe mode."""
        request, self.boot_request = self.boot_request, None
        if request == "dfu":
            # docs/reference/particle-ota.md §7.5: `spark/device/reset` = dfu — the bootloader stays in DFU
            # mode (no app, no cloud, no USB serial port) until the next reset or power cycle.
            self.app_state = AppState.DFU
            self.note("dfu_mode")
            return
        image = None
        if self.flash.user is not None:
            try:
                image = read_image(self.flash.user)
            except ImageError as exc:
                self.note("user_invalid", error=str(exc))
        if image is None and self.flash.factory is not None:
            self.flash.user = self.flash.factory
            self.note("factory_restore")
            self._boot_timers.append(self.sched.after(self.timing("boot"), lambda: self.reset("factory_reset")))
            return
        self.image = image
        unmet = self.unmet_at_boot(image)
        if unmet:
            self.note("dependencies_unmet", why=unmet)
        safe_mode = image is None or unmet is not None or request == "safe_mode"
        self._boot_timers.append(self.sched.after(self.timing("usb_enumeration"), self._usb_appears))
        self._boot_timers.append(self.sched.after(self.timing("boot"), lambda: self._start(safe_mode)))

    # -- modules (docs/reference/particle-ota.md §2.6, §2.7, §2.9) ------------------------------
    def installed_modules(self) -> list[Module]:
        """The bootloader, the system parts and the user app, as the device's describe lists them."""
        f = self.flash
        mods = [Module(FUNCTION_BOOTLOADER, 0, f.bootloader)]
        mods += [Module(SYSTEM, i, v, f.system_deps.get(i) or system_part_dependencies(i, v))
                 for i, v in sorted(f.system_parts.items())]
        if self.image is not None:
            mods.append(Module(USER, 1, self.image.module_version, self.image.info.dependencies))
        return mods

    def unmet_at_boot(self, image: SimImage | None) -> str | None:
        """docs/reference/particle-ota.md §2.6, §2.7: at start-up nothing is optional — a user app whose
        dependencies are not met, or a system part whose own (the bootloader included: device-os
        PR #1850) are not, means safe mode. None when everything is met."""
        mods = [m for m in self.installed_modules() if m.function != USER]
        if image is not None:
            mods.append(Module(USER, 1, image.module_version, image.info.dependencies))
        for m in mods:
            why = unmet_dependency(m, mods, user_optional=False)
            if why:
                return f"{m.describe()['f']}{m.index}: {why}"
        return None

    def describe_hash(self) -> str:
        """The system-describe checksum a resumed session compares (docs/reference/particle-ota.md §1.1,
        §1.2; device-os v2.3.1 communication/src/protocol.cpp ~317-343, SYSTEM_DESCRIBE_CRC): it covers
        every module, so a new system part or bootloader makes the next resume send HELLO and describe."""
        f = self.flash
        parts = ",".join(f"{i}:{v}" for i, v in sorted(f.system_parts.items()))
        return hashlib.sha256(f"{self.app_hash()}|b{f.bootloader}|{parts}".encode()).hexdigest()

    def _usb_appears(self) -> None:
        if self.port is not None and self.powered:
            self.world.port_appear(self.port)

    def _start(self, safe_mode: bool) -> None:
        self.boot_ms = self.sched.now_ms
        self._read_cycles = 0
        self.note("booted", version=self.running_version, safe_mode=safe_mode,
                  reason=dos.RESET_REASON_NAME.get(self.reset_reason))
        if safe_mode:
            # docs/reference/particle-ota.md §2.7: safe mode connects to the cloud, never runs setup()/loop(); updates enabled.
            self.app_state = AppState.SAFE_MODE
            self.net.request_connect()
            return
        assert self.image is not None
        self.app = AppInstance(self.image.so_path, self.instance_path, self, self.eeprom, self.retained_app)
        self.app_state = AppState.RUNNING
        mode = self.app.system_mode
        if mode in (dos.AUTOMATIC, 0):
            self.net.request_connect()
            if not self.app.threaded:
                return  # docs/reference/particle-ota.md §3.1: non-threaded AUTOMATIC runs setup() once the cloud is connected
        self._launch_app()

    def _launch_app(self) -> None:
        if self.app is None or self.app.greenlet is not None:
            return
        self.app.start(greenlet.getcurrent())
        self._schedule_resume(0)

    def on_cloud_connected(self) -> None:
        if self.app is not None and self.app.greenlet is None:
            self._launch_app()
        if self._cloud_waiter is not None and self._cloud_waiter is self.app:
            self._cloud_waiter = None
            if self._resume_timer is not None:
                self._resume_timer.cancel()
            self._schedule_resume(0)

    def wait_for_cloud(self, app: AppInstance, timeout_ms: int | None) -> int:
        """Park the app's greenlet until the cloud connects, or for at most `timeout_ms`; the abort flag."""
        if self.net.cloud_connected:
            return 0
        self._cloud_waiter = app
        if timeout_ms is not None:
            self._schedule_resume(timeout_ms)
        aborted = app.yield_to_scheduler()
        self._cloud_waiter = None
        return aborted

    def _semi_automatic_connecting(self, app: AppInstance) -> bool:
        """docs/reference/particle-ota.md §3.1: a non-threaded SEMI_AUTOMATIC app gets no loop() call while the
        cloud connection it asked for is being made (device-os v2.3.1 system/src/main.cpp ~450-452, ~478-480)."""
        net = self.net
        return (app.system_mode == dos.SEMI_AUTOMATIC and not app.threaded and net.auto_connect
                and not net.cloud_connected and net.modem != Modem.OFF)

    @property
    def safe_mode(self) -> bool:
        return self.app_state == AppState.SAFE_MODE

    # -- running the app greenlet ---------------------------------------------------------
    @property
    def app_frozen(self) -> bool:
        """docs/reference/particle-ota.md §2.8: a non-threaded app's loop() and delay() stop while an OTA is in progress."""
        return self.app is not None and not self.app.threaded and self.ota.receiving

    def _schedule_resume(self, delay_ms: int) -> None:
        self._resume_timer = self.sched.after(delay_ms, self._resume_app)

    def _resume_app(self) -> None:
        self._resume_timer = None
        if self.app is None or self.app_state != AppState.RUNNING:
            return
        if self.app_frozen:
            self._resume_pending = True
            return
        if not self.app.threaded and not self.app.greenlet and self.can_shutdown:
            # docs/reference/particle-ota.md §3.1, §2.5: an update that landed before setup() ends inside
            # Spark_Idle, whose system_shutdown_if_needed resets in that same pass (device-os v2.3.1
            # system/src/system_task.cpp ~498) before app_loop reaches setup() (system/src/main.cpp ~474-492)
            self._resume_pending = True
            self.schedule_idle_pass()
            return
        self.app.resume()
        if self.app is not None and self.app.finished and not self.app.aborted:
            self.note("app_exited")

    def unfreeze(self) -> None:
        if self._resume_pending:
            self._resume_pending = False
            self._schedule_resume(0)

    # -- bridge callbacks (firmware → Device OS model) -------------------------------------
    def fw_millis(self) -> int:
        return self.sched.now_ms - self.boot_ms

    def fw_delay(self, ms: int) -> int:
        app = self.app
        if app is None or not app.current:
            return 0  # called from a handler (system context): Device OS would pump; we return at once
        requested = ms = max(int(ms), 0)
        if ms:
            ms = self.timing("app_delay", ms)
        if app.threaded and requested > PUMP_PERIOD_MS + 1:
            return self._pumped_delay(app, requested, ms)
        return self._app_wait(app, ms)

    def _app_wait(self, app: AppInstance, ms: int) -> int:
        if self.sched.skip_ahead(ms):
            return 0  # nothing else happens meanwhile: same timeline without a scheduler round trip
        self._schedule_resume(ms)
        return app.yield_to_scheduler()

    def _pumped_delay(self, app: AppInstance, requested: int, ms: int) -> int:
        """A threaded app's long delay() takes one queued event per second of it (docs/reference/particle-ota.md
        §2.2; device-os v2.3.1 system/src/system_task.cpp ~545-555 system_delay_pump; `app_thread`): at
        each whole second before the last millisecond of the `requested` delay; `ms` is how long it lasts."""
        waited = 0
        while waited + PUMP_PERIOD_MS < requested - 1:
            if self._app_wait(app, PUMP_PERIOD_MS):
                return 1
            waited += PUMP_PERIOD_MS
            self.app_queue.take_one()
            if app.aborted:
                return 1
        return self._app_wait(app, ms - waited)

    def fw_loop_done(self) -> int:
        app = self.app
        if app is None or not app.current:
            return 0
        if self._app_wait(app, self.params.loop_quantum_ms):
            return 1
        while self._semi_automatic_connecting(app):
            if self.wait_for_cloud(app, None):
                return 1
        if app.threaded:
            # docs/reference/particle-ota.md §2.2: the app thread takes one queued event, then calls loop()
            # (device-os v2.3.1 system/src/active_object.cpp ~66-74)
            self.app_queue.take_one()
        return 1 if app.aborted else 0

    def fw_serial(self, op: int, buf: Any, length: int) -> int:
        if op == dos.SERIAL_WRITE:
            data = ctypes.string_at(buf, length)
            if self.port is not None and self.world.port_present(self.port):
                self.world.port_write(self.port, data)
            return length
        if op == dos.SERIAL_READ:
            n = min(length, len(self.serial_rx))
            if n:
                ctypes.memmove(buf, bytes(self.serial_rx[:n]), n)
                del self.serial_rx[:n]
            return n
        if op == dos.SERIAL_AVAILABLE:
            return len(self.serial_rx)
        if op == dos.SERIAL_IS_CONNECTED:
            return int(self.port is not None and self.world.port_present(self.port))
        return -1

    def fw_system(self, op: int, arg: int) -> int:
        f = self.flags
        if op == dos.SYS_ENABLE_UPDATES:
            self.set_updates_enabled(True)
        elif op == dos.SYS_DISABLE_UPDATES:
            self.set_updates_enabled(False)
        elif op == dos.SYS_UPDATES_ENABLED:
            return int(f.updates_enabled)
        elif op == dos.SYS_UPDATES_PENDING:
            return int(f.updates_pending)
        elif op == dos.SYS_UPDATES_FORCED:
            return int(f.updates_forced)
        elif op == dos.SYS_ENABLE_RESET:
            f.reset_enabled = True
            self.note("flag", reset_enabled=True)
            self.schedule_idle_pass()  # docs/reference/particle-ota.md §7.5: enable with reset_pending ⇒ reset on next idle pass
        elif op == dos.SYS_DISABLE_RESET:
            f.reset_enabled = False
            self.note("flag", reset_enabled=False)
            self._end_shutdown_wait()
        elif op == dos.SYS_RESET_ENABLED:
            return int(f.reset_enabled)
        elif op == dos.SYS_RESET_PENDING:
            return int(f.reset_pending)
        elif op == dos.SYS_RESET:
            return self.reset_from_app("user", arg)
        elif op == dos.SYS_RESET_REASON:
            return self.reset_reason
        elif op == dos.SYS_RESET_REASON_DATA:
            return self.reset_reason_data
        elif op == dos.SYS_VERSION_NUMBER:
            return dos.SYSTEM_VERSION_NUMBER
        elif op == dos.SYS_FREE_MEMORY:
            return 60_000
        elif op == dos.SYS_CELLULAR_ON:
            self.net.modem_on()
        elif op == dos.SYS_CELLULAR_OFF:
            self.net.modem_off()
        elif op == dos.SYS_CELLULAR_READY:
            return int(self.net.network_ready)
        elif op == dos.SYS_CELLULAR_CONNECT:
            self.net.network_connect()
        elif op == dos.SYS_CELLULAR_DISCONNECT:
            self.net.network_disconnect()
        else:
            return -1
        return 0

    def fw_cloud(self, op: int, a: str | None, b: str | None, flags: int) -> int:
        if op == dos.CLOUD_CONNECT:
            self.net.request_connect()
        elif op == dos.CLOUD_DISCONNECT:
            self.net.request_disconnect()
        elif op == dos.CLOUD_CONNECTED:
            return int(self.net.cloud_connected)
        elif op == dos.CLOUD_CONNECTING:
            return int(self.net.cloud_connecting)
        elif op == dos.CLOUD_PUBLISH:
            return int(self.net.publish(a or "", b or ""))
        elif op == dos.CLOUD_PROCESS:
            # a threaded app's Particle.process() takes one queued event (system/src/system_cloud.cpp ~250-257)
            if self.app is not None and self.app.threaded and self.app.current:
                self.app_queue.take_one()
                return -1 if self.app is None or self.app.aborted else 0
            return 0
        elif op in (dos.CLOUD_FUNCTION, dos.CLOUD_VARIABLE):
            # Device OS v2.3.1 refuses a key longer than USER_VAR_KEY_LENGTH / USER_FUNC_KEY_LENGTH
            # (64, system/inc/system_cloud.h:380-381) and takes any other, the empty one too
            # (strlen 0 passes: system/src/system_cloud.cpp:193, system_cloud_internal.cpp:398),
            # registering it under the name as given (docs/reference/particle-cloud-api.md §5
            # "Cloud variables and functions")
            return int(a is not None and len(a.encode()) <= dos.USER_KEY_LENGTH)
        elif op == dos.CLOUD_SUBSCRIBED:
            return 1
        else:
            return -1
        return 0

    def fw_sleep(self, req: SleepRequest) -> int:
        return self.sleeper.sleep(req)

    def fw_gpio(self, op: int, pin: int, value: int) -> int:
        return self.pins.fw_gpio(op, pin, value)

    def fw_eeprom_put(self, index: int, buf: Any, length: int) -> int:
        """HAL_EEPROM_Put / HAL_EEPROM_Clear (index -1): the records go to flash now; the app waits
        out their flash time, so a power cut can land inside them (docs/reference/particle-ota.md §2.10)."""
        hold_us = self.flash.eeprom_put(index, ctypes.string_at(buf, length) if index >= 0 else b"")
        hold_ms = -(-max(hold_us, 0) // 1000)
        return self.fw_delay(hold_ms) if hold_ms else 0

    def fw_eeprom_get(self, index: int, length: int) -> int:
        """HAL_EEPROM_Get / HAL_EEPROM_Read: Device OS walks the active page's records for every get,
        whatever its length (docs/reference/particle-ota.md §2.10 "How long a read takes"; device-os
        v2.3.1 services/inc/eeprom_emulation.h:338-349, :495-538). That is plain CPU work on the app's
        thread, not a delay(): the app is held for it (the rest of the device goes on) but takes no
        queued system event (no system_delay_pump, unlike `fw_delay`), and no delay() overrun is
        drawn. Sub-millisecond walks add up exactly, in cycles: the app is held for each whole
        millisecond they reach, the rest carries to the next get of this boot. A get from a handler
        run in system context costs nothing here, as `fw_delay` waits nothing there."""
        app = self.app
        if app is None or not app.current:
            return 0
        self._read_cycles += self.flash.emulation.read_cycles()
        hold_ms, self._read_cycles = divmod(self._read_cycles, CPU_HZ // 1000)
        return self._app_wait(app, hold_ms) if hold_ms else 0

    # -- flags and events (docs/reference/particle-ota.md §2.1, §2.2, §7.5) ---------------
    def set_updates_enabled(self, enabled: bool) -> None:
        if self.flags.updates_enabled == enabled:
            return  # docs/reference/particle-ota.md §2.1: no change, nothing sent
        self.flags.updates_enabled = enabled
        self.note("flag", updates_enabled=enabled)
        self.net.publish_system("particle/device/updates/enabled", "true" if enabled else "false")

    def set_pending(self, pending: bool) -> None:
        if pending and not self.flags.updates_pending:
            self.flags.updates_pending = True
            self.emit(dos.FIRMWARE_UPDATE_PENDING, 0)
        elif not pending:
            self.flags.updates_pending = False

    def set_forced(self, forced: bool) -> None:
        """docs/reference/particle-ota.md §1.5 / §7.5: set the flag and echo it (avoids a race with the cloud's
        delivery) — only when it changes: system_set_flag calls system_flag_changed, which publishes the echo,
        only for a new value (device-os v2.3.1 system/src/system_update.cpp ~154-158, ~123-127)."""
        if self.flags.updates_forced == forced:
            return
        self.flags.updates_forced = forced
        self.note("flag", updates_forced=forced)
        self.net.publish_system("particle/device/updates/forced", "true" if forced else "false")

    def emit(self, event: int, param: int, then: Callable[[], None] | None = None) -> None:
        """Deliver a system event to the app's System.on handlers (docs/reference/particle-ota.md §2.2): at
        once without threading; with SYSTEM_THREAD(ENABLED) through the application queue (`app_thread`),
        so the handlers run at the app's next loop() boundary or delay() pump. `then` runs after them."""
        self.note("system_event", event=event, param=param)
        app = self.app
        if app is not None and self.app_state in (AppState.RUNNING, AppState.SLEEPING):
            if app.threaded:
                self.app_queue.post(PostedEvent(event, param, then))
                return
            if app.greenlet is not None or event != dos.CLOUD_STATUS:
                self.dispatch_event(event, param)
        if then is not None:
            then()

    def dispatch_event(self, event: int, param: int) -> None:
        """The application thread runs the handlers of one queued event (`app_thread.ApplicationQueue`)."""
        if self.app is not None:
            self.note("system_event_handled", event=event, param=param)
            self.app.system_event(event, param)

    @property
    def system_thread_busy(self) -> bool:
        """The system thread is stuck in a put to a full application queue, or waits for the `reset`
        handlers: meanwhile it reads no cloud message (docs/reference/particle-ota.md §2.2, §2.5)."""
        return self.app_queue.blocked or self._shutdown_wait is not None

    def system_thread_freed(self) -> None:
        if self._held_messages:
            self.sched.after(0, self._replay_held_messages)

    def on_system_thread(self, work: Callable[[], None]) -> None:
        """Run `work` now, or first thing once the system thread is free again: it belongs to the message
        being read, and whatever is held arrived after that one."""
        if self.system_thread_busy or self._held_messages:
            self._held_messages.insert(0, work)
        else:
            work()

    def _replay_held_messages(self) -> None:
        while self._held_messages and not self.system_thread_busy and self.powered:
            item = self._held_messages.pop(0)
            if callable(item):
                item()
            else:
                self._read_cloud_message(item)

    def pend_reset(self, reason: str) -> None:
        """docs/reference/particle-ota.md §2.5 system_pending_shutdown: flag, `reset_pending` event once, then idle passes."""
        if not self.flags.reset_pending:
            self.flags.reset_pending = True
            self.pending_reset_reason = reason
            self.emit(dos.RESET_PENDING, 0)
        self.schedule_idle_pass()

    def request_power_off(self) -> None:
        """system_power_off() then the system loop's system_pending_shutdown(RESET_REASON_USER)
        (docs/reference/particle-ota.md §2.11; device-os v2.3.1 system/src/system_task.cpp ~475-492):
        a pending reset that ends in a soft power-off instead of a reset; disableReset() holds it."""
        if self.flags.power_off:
            return
        self.flags.power_off = True
        self.note("power_off_requested")
        self.pend_reset("user")

    def schedule_idle_pass(self) -> None:
        if self._idle_pass_timer is None and self.powered:
            self._idle_pass_timer = self.sched.after(1, self._idle_pass)

    @property
    def can_shutdown(self) -> bool:
        return self.flags.reset_pending and self.flags.reset_enabled and self.powered

    def _idle_pass(self) -> None:
        """docs/reference/particle-ota.md §2.5 system_shutdown_if_needed (device-os v2.3.1
        system/src/system_update.cpp ~369-391): when a reset is pending and enabled, emit `reset` with
        system_shutdown_if_enabled to run after the handlers. A transfer in progress does not hold it:
        the idle pass runs during a transfer too, so a second transfer is cut by the reset.
        With threading the handlers run later, on the app thread; the system thread waits for them up
        to `threaded_reset_wait_ms` (30 s) while the reset is still pending and enabled, then resets.
        """
        self._idle_pass_timer = None
        if not self.can_shutdown or self._shutdown_wait is not None:
            return
        threaded = self.app is not None and self.app.threaded and self.app_state == AppState.RUNNING
        if threaded:
            self._shutdown_wait = self.sched.after(self.params.threaded_reset_wait_ms, self._shutdown_wait_over)
        self.emit(dos.RESET, 0, then=self._shutdown_if_enabled)

    def _shutdown_if_enabled(self) -> None:
        """system_shutdown_if_enabled (system_update.cpp ~355-367): reset if still pending and enabled;
        a handler may have disabled resets (docs ota-update-control "Reset control")."""
        if self.can_shutdown and self.flags.power_off:
            # SLEEP_MODE_SOFTPOWEROFF (system_update.cpp ~360-361): network off, HIBERNATE woken by WKP
            # (system_sleep_compat.cpp ~96-110, ~204-211; docs/reference/particle-ota.md §2.11)
            self.note("soft_power_off")
            self.net.drop_for_sleep()
            self.sched.after(0, lambda: self.sleeper.hibernate_now(0, dos.WKP))
            if self.app is not None and self.app.current:
                self.app.aborted = True  # the app does not run on: it unwinds as for a reset
        elif self.can_shutdown:
            self.reset_from_app(self.pending_reset_reason)
        else:
            self.unfreeze()  # a non-threaded app held back for this reset runs on

    def _shutdown_wait_over(self) -> None:
        self._shutdown_wait = None
        self._shutdown_if_enabled()
        self.system_thread_freed()

    def _end_shutdown_wait(self) -> None:
        """canShutdown() turned false (disableReset): the system thread's wait loop ends early."""
        if self._shutdown_wait is not None:
            self._shutdown_wait.cancel()
            self._shutdown_wait = None
            self.system_thread_freed()

    # -- cloud → device (docs/reference/particle-ota.md §7.5) ------------------------------------
    def on_cloud_message(self, msg: object) -> None:
        if not self.powered or self.sleeper.hibernating:
            return
        if self.system_thread_busy or self._held_messages:
            self._held_messages.append(msg)  # read once the system thread is free (docs/reference/particle-ota.md §2.2)
            return
        self._read_cloud_message(msg)

    def _read_cloud_message(self, msg: object) -> None:
        if isinstance(msg, SessionAlert):  # a read error, not a message (dtls_message_channel.cpp ~440-460)
            if self.net.cloud_connected or self.net.cloud_connecting:
                self.net.session_alert()
            return
        self.net.message_received()  # keep-alive, and the proof of a resumed session (§1.2)
        if isinstance(msg, PingAck):
            return
        if isinstance(msg, SessionReply):
            self.net.session_reply(msg)
            return
        if not self.net.session_up:
            return
        if isinstance(msg, Ack):
            self.net.acknowledged(msg.token)
            return
        if isinstance(msg, SessionDiscard):
            self.net.discard_session()
            return
        if self.sleeper.asleep:
            if not self.sleeper.network_wake:
                return
            self.sleeper.wake(dos.WAKEUP_BY_NETWORK)  # docs/reference/particle-ota.md §7.5: cloud traffic wakes the device
        if self.ota.handle(msg):
            return
        if isinstance(msg, CloudEvent):
            self._cloud_event(msg)

    def _cloud_event(self, ev: CloudEvent) -> None:
        if system_cloud_events.handle(self, ev.name, ev.data):
            return
        if self.app is not None and self.app.greenlet is not None:
            self.app.cloud_event(ev.name, ev.data)

    # -- serial input from the rig ------------------------------------------------------------
    def serial_input(self, data: bytes) -> None:
        self.serial_rx.extend(data)

    # -- cloud-side calls (functions, variables, subscriptions) -------------------------------
    def call_function(self, name: str, arg: str) -> int | None:
        if self.app is None or self.app.greenlet is None:
            return None
        return self.app.call_function(name, arg)

    def get_variable(self, name: str) -> str | None:
        if self.app is None or self.app.greenlet is None:
            return None
        return self.app.get_variable(name)

    def app_hash(self) -> str:
        return hashlib.sha256(self.flash.user or b"").hexdigest()
