"""Firmware on the simulated bench: the companion built for the host, wrapped as a module binary.

The same `FirmwareSource` interface a real bench's `[firmware]` catalog has; what only a simulator
can make (mutants, images with a defect, a dependency on a newer Device OS) goes through
`SimHandle.firmware`, reachable only from scenarios marked `sim_only`.
"""
from __future__ import annotations

from pathlib import Path

from ..interfaces import FirmwareBuild
from . import firmware_defects
from .build import build_firmware, companion_project, declared_product_version
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
        # the module's product version is what the build's PRODUCT_VERSION(x) declares (the rig's
        # -DOTARIG_PRODUCT_VERSION reaches it only through that macro), so a firmware without the
        # macro carries none and the cloud refuses it as a real one would (docs/your-firmware.md)
        image = make_app_image(so, product_id=self.product_id, size=size, **extra)
        label = f"{self.project.name if self.project else 'companion'} v{version}"
        if declared_product_version(so) is None:
            label += f" (no PRODUCT_VERSION in {_main_source(self.project)})"
        if defect:
            image = firmware_defects.apply(defect, image)
            label += f" ({defect})"
        return FirmwareBuild(version, image, label)


def _main_source(project: Path | None) -> str:
    """The project's source that defines setup() (where PRODUCT_VERSION(x) goes), for the message
    that names the fix; its src/ folder when none is found."""
    root = (project or companion_project()).resolve()
    for path in sorted((root / "src").rglob("*")):
        if path.suffix in (".cpp", ".ino") and path.is_file() and "setup()" in path.read_text(errors="replace"):
            return str(path)
    return str(root / "src")
