"""Firmware on the simulated bench: the companion built for the host, wrapped as a module binary.

The same `FirmwareSource` interface a real bench's `[firmware]` catalog has; what only a simulator
can make (mutants, images with a defect, a dependency on a newer Device OS) goes through
`SimHandle.firmware`, reachable only from scenarios marked `sim_only`.
"""
from __future__ import annotations

from pathlib import Path

from ..interfaces import FirmwareBuild
from . import firmware_defects
from .build import build_firmware
from .images import make_app_image


class SimFirmwareSource:
    """A Particle project (default: the device companion) at a logical version, built with g++
    (cached by source hash)."""

    def __init__(self, product_id: int, *, mutant: int = 0, project: Path | None = None) -> None:
        self.product_id = product_id
        self.mutant = mutant
        self.project = project

    def get(self, version: int, *, size: int | None = None, threaded: bool = True) -> FirmwareBuild:
        return self.build(version, size=size, threaded=threaded)

    def build(self, version: int, *, size: int | None = None, threaded: bool = True, mutant: int | None = None,
              defect: str | None = None, requires_system: int | None = None) -> FirmwareBuild:
        """`defect` makes a bad image on purpose; `requires_system` sets the system-part dependency
        (a newer Device OS → safe mode, docs/reference/particle-ota.md §2.7)."""
        so = build_firmware(version, project=self.project, threaded=threaded,
                            mutant=self.mutant if mutant is None else mutant, product_id=self.product_id)
        extra = {"required_system_version": requires_system} if requires_system else {}
        image = make_app_image(so, product_id=self.product_id, product_version=version, size=size, **extra)
        label = f"{self.project.name if self.project else 'companion'} v{version}"
        if defect:
            image = firmware_defects.apply(defect, image)
            label += f" ({defect})"
        return FirmwareBuild(version, image, label)
