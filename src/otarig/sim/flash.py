"""The Electron's flash as far as OTA and the app's EEPROM are concerned
(docs/reference/particle-ota.md §2.6, §2.10, §7.1).

User app slot, factory slot, OTA region, the DCT "module slots" that the bootloader copies at the
next boot, and the emulated EEPROM pages. Every write goes through the flash `Journal`
(`stm32_flash`) at word and sector grain with the STM32F205's timing, so a power cut can land
inside any of them (§2.10):

* a DCT write (a slot registered by HAL_FLASH_End, cleared by the bootloader) is Device OS's
  double-copy DCD (`services/inc/dcd.h`): erase the other 16 KB sector, program the whole sector,
  the CRC last; a sector whose CRC does not check is ignored, so the write counts only once its
  last word is in;
* the bootloader's copy (`FLASH_CopyMemory` -> `CopyFlashBlock`, `platform/MCU/STM32F2xx/
  SPARK_Firmware_Driver/src/flash_mal.c`) erases the destination sector, programs it word by word,
  and only then clears the slot: a cut during the copy leaves the slot to be copied again (§2.6).
"""
from __future__ import annotations

import math
import random
from collections.abc import Callable
from dataclasses import dataclass, field

from .eeprom_emulation import ACTIVE, PAGES, EepromEmulation
from .stm32_flash import WORD, Journal, Op

#: the Electron's user app sector (0x08080000, 128 KB), the OTA region (0x080C0000), a DCT sector
USER_SECTOR = OTA_SECTOR = 128 * 1024
DCT_SECTOR = 16 * 1024
#: EEPROM.length() on the Electron, what the app's EEPROM view holds
EEPROM_LENGTH = 2047


@dataclass
class PendingSlot:
    """A DCT module slot: an image validated by HAL_FLASH_End, waiting for the bootloader."""

    image: bytes
    module_function: str  # "user" or "system"
    module_index: int = 1


def _formatted_pages() -> dict[str, bytearray]:
    """A device that has booted before: page 1 ACTIVE and empty, page 2 erased."""
    pages = {name: bytearray(b"\xff" * size) for name, size in PAGES}
    pages[PAGES[0][0]][:4] = ACTIVE.to_bytes(4, "little")
    return pages


@dataclass
class FlashState:
    """What survives a power cut: modules, OTA region, DCT slots, EEPROM pages."""

    factory: bytes | None = None
    #: system part index -> module version (Device OS 2.3.1 = 2302 for every part)
    system_parts: dict[int, int] = field(default_factory=dict)
    #: bootloader module version (Device OS 2.3.1 ships 1006: docs/reference/particle-ota.md §2.9)
    bootloader: int = 1006
    #: the dependencies each installed system part's image declared, when it came by OTA (else the
    #: Electron's defaults for its version, `electron_modules.system_part_dependencies`)
    system_deps: dict[int, tuple] = field(default_factory=dict)
    slots: list[PendingSlot] = field(default_factory=list)
    #: True while the bootloader is copying the first slot
    copying: bool = False
    #: the app's EEPROM as Device OS reads it back from the pages (RAM; rebuilt at boot)
    eeprom: bytearray = field(default_factory=lambda: bytearray(b"\xff" * EEPROM_LENGTH))
    journal: Journal = field(default_factory=Journal)
    regions: dict[str, bytearray] = field(default_factory=lambda: {
        **_formatted_pages(), "user": bytearray(b"\xff" * USER_SECTOR),
        "ota": bytearray(b"\xff" * OTA_SECTOR), "dct": bytearray(b"\xff" * DCT_SECTOR),
        "system": bytearray(b"\xff" * USER_SECTOR)})
    #: bytes of the module in the user sector (0: no app)
    user_length: int = 0
    #: the slot the last bootloader copy cleared
    copied: PendingSlot | None = None

    def __post_init__(self) -> None:
        self.emulation = EepromEmulation(self, self.journal)

    # -- the store the journal writes ----------------------------------------------------------
    def region(self, name: str) -> bytearray:
        return self.regions[name]

    def attach_clock(self, clock_us: Callable[[], int]) -> None:
        """Ops take time from now on (a device in a world); without a clock they are instant."""
        self.journal.clock_us = clock_us

    @property
    def user(self) -> bytes | None:
        """The user module as the bootloader finds it (possibly torn), or None when there is none."""
        return bytes(self.regions["user"][:self.user_length]) if self.user_length else None

    @user.setter
    def user(self, image: bytes | None) -> None:
        """Put an app in place outside any OTA (a USB flash, a test's setup): no journal."""
        mem = self.regions["user"]
        mem[:] = b"\xff" * len(mem)
        if image is not None:
            mem[:len(image)] = image
        self.user_length = len(image) if image else 0

    # -- DCT -----------------------------------------------------------------------------------
    def _dct_write(self, label: str, effect: Callable[[], None], undo: Callable[[], None]) -> int:
        """One DCD write: erase + program a sector; `effect` when its last word (the CRC) is in."""
        run = self.journal.run
        erase = run(self, Op("erase", "dct", 0, DCT_SECTOR, 0, label=f"{label}: dct erase"))
        prog = run(self, Op("program", "dct", 0, DCT_SECTOR, 0, bytes(DCT_SECTOR), f"{label}: dct sector",
                            effect=effect, undo=undo))
        return prog.end_us - erase.start_us

    def register_slot(self, image: bytes, module_function: str, module_index: int = 1) -> None:
        """docs/reference/particle-ota.md §2.5: HAL_FLASH_End registers the image; it is applied at the next reset."""
        slot = PendingSlot(image, module_function, module_index)
        self._dct_write("register slot", lambda: self.slots.append(slot), lambda: self.slots.remove(slot))

    # -- the bootloader's copy -----------------------------------------------------------------
    def begin_copy(self) -> int:
        """Journal the copy of the first slot (erase, program, clear the slot); its duration in ms."""
        slot = self.slots[0]
        self.copying = True
        run = self.journal.run
        region = "user" if slot.module_function == "user" else "system"
        length = len(slot.image)
        old_length = self.user_length

        def to_new() -> None:
            if region == "user":
                self.user_length = length

        def to_old() -> None:
            if region == "user":
                self.user_length = old_length

        start = run(self, Op("erase", region, 0, USER_SECTOR, 0, label="bootloader copy: erase",
                             effect=to_new, undo=to_old)).start_us
        padded = slot.image + b"\xff" * (-length % WORD)
        run(self, Op("program", region, 0, len(padded), 0, padded, "bootloader copy: program"))

        def cleared() -> None:
            self.copied = self.slots.pop(0)

        def restored() -> None:
            self.slots.insert(0, slot)

        self._dct_write("clear slot", cleared, restored)
        return math.ceil((self.journal.busy_until_us - start) / 1000) if self.journal.clock_us else 0

    @property
    def slot_pending(self) -> bool:
        """A slot waits for the bootloader: its DCT write is in (not just begun), or a copy is under
        way (until the DCT write that clears the slot is in)."""
        if self.copying:
            return True
        now = self._now_us()
        writing = sum(1 for op in self.journal.ops
                      if op.end_us > now and op.effect is not None and op.label.startswith("register slot"))
        return len(self.slots) > writing

    def apply_first_slot(self) -> PendingSlot:
        """The bootloader's copy of one slot completed (docs/reference/particle-ota.md §2.6)."""
        self.copying = False
        slot, self.copied = self.copied, None
        assert slot is not None, "apply_first_slot without begin_copy"
        return slot

    # -- the OTA region (HAL_FLASH_Begin / HAL_FLASH_Update) -----------------------------------
    def ota_erase(self) -> None:
        self.journal.run(self, Op("erase", "ota", 0, OTA_SECTOR, 0, label="ota region erase"))

    def ota_write(self, offset: int, data: bytes) -> None:
        if offset + len(data) > OTA_SECTOR:
            return  # the model keeps one sector of OTA region; a longer file is refused later anyway
        padded = data + b"\xff" * (-len(data) % WORD)
        self.journal.run(self, Op("program", "ota", offset, len(padded), 0, padded, "ota chunk"))

    # -- EEPROM ----------------------------------------------------------------------------------
    def eeprom_put(self, index: int, data: bytes) -> int:
        """HAL_EEPROM_Put (HAL_EEPROM_Clear when `index` < 0); returns how long the app is held:
        the µs of flash time it started."""
        before = self.journal.busy_until_us
        if index < 0:
            self.emulation.clear()
        else:
            self.emulation.put(index, data)
            self.emulation.settle(self.journal.busy_until_us)
        self.refresh_eeprom()
        return max(self.journal.busy_until_us - max(before, self._now_us()), 0)

    def _now_us(self) -> int:
        return self.journal.clock_us() if self.journal.clock_us else 0

    def refresh_eeprom(self) -> None:
        self.eeprom[:] = self.emulation.view(len(self.eeprom))

    def damage_eeprom(self, put: int = 1, *, before_us: int | None = None, reads: str = "wrong",
                      bits: int = 0x01) -> list[int]:
        """The records of the `put`-th newest EEPROM put (1: the last one) that started before
        `before_us` (default: any) read wrong from now on (`EepromEmulation.damage`, docs/reference/
        particle-ota.md §2.10 "Damaged stored data"); the app's view follows at once, as Device OS
        reads the page at every get; `bits`: which bits of each byte read flipped for `wrong`.
        Returns the EEPROM indices that now read differently."""
        if put < 1:
            raise ValueError(f"put counts back from the newest, 1 or more, not {put}")
        puts = [p for p in self.emulation.puts if before_us is None or p.start_us < before_us]
        if len(puts) < put:
            raise ValueError(f"the firmware made {len(puts)} EEPROM put(s) that wrote something"
                             f"{'' if before_us is None else ' before then'}; put {put} back does not exist")
        target = puts[-put]
        later = list(self.emulation.puts)
        at = next(k for k, p in enumerate(later) if p is target)
        rewritten = {i for p in later[at + 1:] for i in p.indices}
        # the bytes still holding what that put wrote: a later put of the same byte is another put's
        damaged = self.emulation.damage(tuple(i for i in target.indices if i not in rewritten), reads, bits)
        self.refresh_eeprom()
        return damaged

    def boot(self) -> None:
        """HAL_EEPROM_Init at every boot, then the app's view of the pages."""
        self.emulation.init()
        self.refresh_eeprom()

    # -- power ---------------------------------------------------------------------------------
    def power_lost(self, rng: random.Random) -> Op | None:
        """Power went now: what had not finished is taken back, the op in progress torn (§2.10)."""
        torn = self.journal.power_lost(self, rng)
        self.emulation.forget_after(self._now_us())
        self.copying = False
        return torn
