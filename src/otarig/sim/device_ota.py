"""What a simulated Electron does with the cloud's OTA messages (docs/reference/particle-ota.md §7.4).

Refusal while updates are disabled and not forced (5.03), begin/progress/complete/failed
events, chunk CRC, missed-chunk rounds, the 300 s update watchdog, validation, DCT slot
registration, and the reset that v2.3.1 pends even after a failed validation.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from . import deviceos as dos
from .electron_modules import Module, unmet_dependency
from .images import ImageError, read_image
from .messages import BeginReply, Chunk, DoneReply, UpdateBegin, UpdateDone
from .ota_receiver import OtaReceiver, OtaState

if TYPE_CHECKING:
    from .electron import Electron


class DeviceOta:
    def __init__(self, dev: "Electron") -> None:
        self.dev = dev
        self.rx = OtaReceiver()
        self._watchdog = None
        #: the end of HAL_FLASH_End, waiting for its DCT write (docs/reference/particle-ota.md §2.10)
        self._finishing = None
        self.transfers_begun = 0
        self.results: list[tuple[int, bool, str]] = []

    @property
    def receiving(self) -> bool:
        return self.rx.state == OtaState.RECEIVING

    def handle(self, msg: object) -> bool:
        if isinstance(msg, UpdateBegin):
            self._begin(msg)
        elif isinstance(msg, Chunk):
            self._chunk(msg)
        elif isinstance(msg, UpdateDone):
            self._done(msg)
        else:
            return False
        return True

    def _arm_watchdog(self) -> None:
        """docs/reference/particle-ota.md §2.4 (corrected): the update watchdog restarts at begin and on a
        good, new chunk only — `TimingFlashUpdateTimeout = 0` in Spark_Prepare_For_Firmware_Update and
        Spark_Save_Firmware_Chunk (device-os v2.3.1 system/src/system_update.cpp ~322, ~435), counted up
        by SysTick while SPARK_FLASH_UPDATE is set (system/src/main.cpp ~376-387)."""
        if self._watchdog is not None:
            self._watchdog.cancel()
        self._watchdog = self.dev.sched.after(self.dev.params.update_timeout_ms, self._watchdog_fired)

    def _disarm_watchdog(self) -> None:
        if self._watchdog is not None:
            self._watchdog.cancel()
            self._watchdog = None

    def _watchdog_fired(self) -> None:
        """docs/reference/particle-ota.md §2.4: no chunk for TIMING_FLASH_UPDATE_TIMEOUT → hard reset, RESET_REASON_UPDATE_TIMEOUT."""
        self._watchdog = None
        if self.receiving:
            self.dev.note("update_watchdog")
            self.rx.reset()
            self.dev.reset("update_timeout")

    def _begin(self, msg: UpdateBegin) -> None:
        dev = self.dev
        f = dev.flags
        if not (f.updates_enabled or f.updates_forced) and not dev.safe_mode:
            # docs/reference/particle-ota.md §1.5 / §2.3 step 2-3: ≥1.2.1 refuses with 5.03 so the cloud reacts at once.
            dev.note("ota_refused", transfer=msg.transfer_id)
            dev.net.send(BeginReply(msg.transfer_id, accepted=False), 60, "ota")
            return
        if self.receiving:
            # docs/reference/particle-ota.md §2.3: a new UpdateBegin restarts the transfer, no `failed`
            # (device-os v2.3.1 communication/src/chunked_transfer.cpp ~87-117 prepares it afresh).
            self.cancel("superseded", emit=False)
        dev.net.send(BeginReply(msg.transfer_id, accepted=True), 60, "ota")
        f.updates_pending = False  # docs/reference/particle-ota.md §2.3 step 4
        # docs/reference/particle-ota.md §2.5: HAL_FLASH_Begin → FLASH_Begin clears every non-factory DCT
        # slot (platform/MCU/STM32F2xx/SPARK_Firmware_Driver/src/flash_mal.c ~881-900): an update
        # registered before and not yet applied by a reset is gone.
        dev.flash.slots.clear()
        self.transfers_begun += 1
        self.rx.begin(msg)
        dev.flash.ota_erase()  # HAL_FLASH_Begin (docs/reference/particle-ota.md §2.10)
        self._arm_watchdog()
        dev.note("ota_begin", transfer=msg.transfer_id, length=msg.file_length)
        dev.emit(dos.FIRMWARE_UPDATE, dos.FIRMWARE_UPDATE_BEGIN)

    def _chunk(self, chunk: Chunk) -> None:
        """docs/reference/particle-ota.md §2.2, §2.4, §7.4 (corrected): a duplicate (fast OTA) or a chunk with
        a bad CRC fires nothing and does not restart the watchdog; a good, new chunk restarts the watchdog
        and fires `progress` before it is written (Spark_Save_Firmware_Chunk, device-os v2.3.1
        system/src/system_update.cpp ~433-437, called by communication/src/chunked_transfer.cpp ~201)."""
        if not self.receiving or chunk.transfer_id != self.rx.transfer_id:
            return
        if self.rx.classify(chunk) != "good":
            self.rx.accept_chunk(chunk)  # counts the bad CRC / duplicate; writes nothing
            return
        self._arm_watchdog()
        self.dev.emit(dos.FIRMWARE_UPDATE, dos.FIRMWARE_UPDATE_PROGRESS)
        # the write follows the post of `progress`, which may leave the system thread waiting for room
        # in a threaded app's queue (docs/reference/particle-ota.md §2.2; system_update.cpp ~437-440)
        self.dev.on_system_thread(lambda: self._write(chunk))

    def _write(self, chunk: Chunk) -> None:
        if not self.receiving or chunk.transfer_id != self.rx.transfer_id:
            return  # a handler disconnected or slept (a defect the rig must catch), or a reset came first
        self.rx.accept_chunk(chunk)
        self.dev.flash.ota_write(chunk.index * self.rx.chunk_size, chunk.data)  # HAL_FLASH_Update (§2.10)

    def _done(self, msg: UpdateDone) -> None:
        dev = self.dev
        if not self.receiving or msg.transfer_id != self.rx.transfer_id:
            return
        missing = self.rx.missing_request()
        if missing:
            # docs/reference/particle-ota.md §2.4: BAD + ChunkMissed for at most MISSED_CHUNKS_TO_SEND (40) chunks per round
            dev.note("ota_missing", transfer=msg.transfer_id, chunks=missing)
            dev.net.send(DoneReply(msg.transfer_id, missing=missing), 60 + 2 * len(missing), "ota")
            return
        if self._finishing is not None:
            return  # HAL_FLASH_End is still writing the DCT
        ok, error = self._validate_and_register(self.rx.image())
        # docs/reference/particle-ota.md §2.10: the reply and `complete` wait for HAL_FLASH_End's DCT
        # write; a cut meanwhile leaves no slot
        hold_ms = -(-(dev.flash.journal.busy_until_us - dev.sched.now_ms * 1000) // 1000)
        if hold_ms > 0:
            self._finishing = dev.sched.after(hold_ms, lambda: self._finish(ok, error))
        else:
            self._finish(ok, error)

    def _finish(self, ok: bool, error: str) -> None:
        dev = self.dev
        self._finishing = None
        self._disarm_watchdog()
        transfer = self.rx.transfer_id
        chunks, bad_crc, duplicates = self.rx.chunks_received, self.rx.bad_crc, self.rx.duplicates
        self.rx.reset()
        self.results.append((transfer, ok, error))
        dev.note("ota_end", transfer=transfer, ok=ok, error=error, chunks=chunks, bad_crc=bad_crc,
                 duplicates=duplicates)
        dev.net.send(DoneReply(transfer, ok=ok, error=error), 80, "ota")
        dev.emit(dos.FIRMWARE_UPDATE, dos.FIRMWARE_UPDATE_COMPLETE if ok else dos.FIRMWARE_UPDATE_FAILED)
        if ok or dev.params.reset_on_failed_validation:
            dev.pend_reset("update")  # docs/reference/particle-ota.md §2.5: "always restart for now" in v2.3.1
        dev.unfreeze()

    def _validate_and_register(self, image: bytes) -> tuple[bool, str]:
        """docs/reference/particle-ota.md §2.5 HAL_FLASH_End: range, platform, CRC; dependencies with user deps
        optional; then register a slot — or, for the bootloader, flash it at once.

        A system part gets the full dependency check (§2.7, corrected; device-os v2.3.1
        hal/src/stm32f2xx/ota_flash_hal_stm32f2xx.cpp ~350-353 → hal/src/stm32/ota_module.cpp ~86 →
        `validate_module_dependencies` ~161-200 and `_full` ~103-159): its first dependency must be
        met by what is installed now (userDepsOptional skips its bootloader dependency2), and no other
        installed system part may lose a dependency. A failure is SYSTEM_ERROR_OTA_DEPENDENCY_CHECK_FAILED:
        `failed`, no slot. The bootloader is written directly, not through a slot (~357-359).
        """
        dev = self.dev
        try:
            sim_image = read_image(image, max_size=dev.params.max_app_size)
        except ImageError as exc:
            return False, str(exc)
        info = sim_image.info
        if sim_image.module_function in ("system", "bootloader"):
            module = Module(info.module_function, info.module_index, info.module_version, info.dependencies)
            why = unmet_dependency(module, dev.installed_modules(), user_optional=True)
            if why:
                return False, f"dependency check failed: {sim_image.module_function} {info.module_index} {why}"
        if sim_image.module_function == "bootloader":
            dev.flash.bootloader = info.module_version
            dev.note("bootloader_flashed", version=info.module_version)
        elif sim_image.module_function == "system":
            dev.flash.register_slot(image, "system", info.module_index)
        else:
            dev.flash.register_slot(image, "user")
        return True, ""

    def cancel(self, reason: str, *, emit: bool = True) -> None:
        """The transfer ends unfinished; the OTA region is never applied (docs/reference/particle-ota.md §2.4, §7.4).

        `emit`: an error in the protocol's event loop calls ChunkedTransfer::cancel(), which finishes
        the update with a failure → `firmware_update failed` (device-os v2.3.1
        communication/src/protocol.cpp ~487-492, communication/src/chunked_transfer.cpp ~361-369).
        A disconnect (Particle.disconnect, sleep, Cellular.off, modem-reported loss), a reset or a
        power loss ends it with no event (docs/reference/particle-ota.md §2.2, corrected): callers pass
        `emit=False` (`connectivity.Connectivity._drop_cloud`, `Electron._halt`).
        """
        if not self.receiving:
            return
        if self._finishing is not None:
            self._finishing.cancel()
            self._finishing = None
        self._disarm_watchdog()
        transfer = self.rx.transfer_id
        chunks = self.rx.chunks_received
        self.rx.reset()
        self.dev.note("ota_cancelled", transfer=transfer, reason=reason, chunks=chunks, failed_event=emit)
        if emit:
            self.dev.emit(dos.FIRMWARE_UPDATE, dos.FIRMWARE_UPDATE_FAILED)
        self.dev.unfreeze()
