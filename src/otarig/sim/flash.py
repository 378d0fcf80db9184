"""The Electron's flash as far as OTA is concerned (docs/reference/particle-ota.md §2.6, §7.1).

User app slot, factory slot, OTA scratch region and the DCT "module slots" that the
bootloader copies at the next boot. Power loss semantics follow docs/reference/particle-ota.md §2.6: the copy
checks its source before erasing and clears the slot only after copying, so a cut
during the copy leaves the slot to be copied again.
"""
from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class PendingSlot:
    """A DCT module slot: an image validated by HAL_FLASH_End, waiting for the bootloader."""

    image: bytes
    module_function: str  # "user" or "system"
    module_index: int = 1


@dataclass
class FlashState:
    """What survives a power cut: modules, OTA region, DCT slots, EEPROM."""

    user: bytes | None = None
    factory: bytes | None = None
    #: system part index -> module version (Device OS 2.3.1 = 2302 for every part)
    system_parts: dict[int, int] = field(default_factory=dict)
    #: bootloader module version (Device OS 2.3.1 ships 1006: docs/reference/particle-ota.md §2.9)
    bootloader: int = 1006
    #: the dependencies each installed system part's image declared, when it came by OTA (else the
    #: Electron's defaults for its version, `electron_modules.system_part_dependencies`)
    system_deps: dict[int, tuple] = field(default_factory=dict)
    slots: list[PendingSlot] = field(default_factory=list)
    #: True while the bootloader is copying the first slot (a cut now corrupts the destination)
    copying: bool = False
    eeprom: bytearray = field(default_factory=lambda: bytearray(b"\xff" * 2047))

    def register_slot(self, image: bytes, module_function: str, module_index: int = 1) -> None:
        """docs/reference/particle-ota.md §2.5: HAL_FLASH_End registers the image; it is applied at the next reset."""
        self.slots.append(PendingSlot(image, module_function, module_index))

    def corrupt_copy_destination(self) -> None:
        """A power cut during the bootloader copy: the destination is half written (docs/reference/particle-ota.md §2.6)."""
        if self.copying and self.slots and self.slots[0].module_function == "user":
            self.user = None
        self.copying = False

    def apply_first_slot(self) -> PendingSlot:
        """The bootloader's copy of one slot completed: write it, then clear the slot (docs/reference/particle-ota.md §2.6)."""
        slot = self.slots.pop(0)
        if slot.module_function == "user":
            self.user = slot.image
        self.copying = False
        return slot
