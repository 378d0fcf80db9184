"""The fleet's release: the firmware devices in the field run now, which a candidate must upgrade from.

A candidate arrives by OTA on a device that has been running the previous release: whatever that
release persisted (records in EEPROM, docs/reference/particle-ota.md §2.10) is what the candidate
boots with. Certifying "nothing lost before the reset" therefore needs the build the fleet really
runs, not another build of the candidate (a candidate whose record format or checksum changed
reads its own records fine and loses every record the field wrote).

Where it comes from, by bench (docs/your-firmware.md "The fleet's release"):

* `[firmware] fleet_release = "PATH"` in the bench file (relative to it): an Electron binary of
  the release in the field on a real bench; on the simulated bench a Particle project folder (built
  for the host like the candidate) or a module binary the simulated bench built (a report keeps
  them in `firmware/`). `--fleet-release PATH` (pytest) overrides it.
* none given, on the simulated bench: the project under test as it is, built without any defect
  (`--mutant`); `otarig selftest` passes the unmutated project, so a mutant is the candidate only.
* none given, on a real bench: no fleet release; the scenarios that need one are skipped with what
  to add.
"""
from __future__ import annotations

from pathlib import Path

from .firmware_catalog import CatalogError, check_binary
from .firmware_project import ProjectError, require_agent
from .interfaces import FirmwareBuild

__all__ = ["NO_FLEET_RELEASE", "BinaryRelease", "FleetReleaseError", "NoFleetRelease", "binary", "locate"]

KEY = "firmware.fleet_release"
#: what a bench without a fleet release is told to add (the scenario's skip reason)
NO_FLEET_RELEASE = ("the fleet's release (the firmware the devices in the field run now, which the candidate "
                    "must upgrade from): add `fleet_release = \"path/to/the-release-in-the-field.bin\"` to the "
                    "[firmware] section of the bench file (docs/your-firmware.md \"The fleet's release\")")


class FleetReleaseError(ValueError):
    """`fleet_release` names something the rig cannot use; the message names the file and the fix."""


class NoFleetRelease(LookupError):
    """The bench has no fleet release: a scenario that needs one is skipped with what to add."""


class BinaryRelease:
    """A `FirmwareSource` of one binary: the fleet's release as it was built, whatever the version
    a scenario uploads it as (the cloud names it by this run's product version, `cloud_access.prepare`)."""

    def __init__(self, path: Path, image: bytes) -> None:
        self.path = path
        self.image = image

    def get(self, version: int, *, size: int | None = None, threaded: bool = True) -> FirmwareBuild:
        """The binary (`size` and `threaded` are build hints: a binary is what it is)."""
        return FirmwareBuild(version, self.image, f"fleet release {self.path.name} (as v{version})")


def locate(value: str, *, base: Path, simulated: bool, product_id: int, key: str = KEY) -> Path:
    """The fleet release `value` names (relative to `base`, the bench file's folder), checked now so
    a wrong path stops the run at bench start naming the file, not halfway through a scenario."""
    path = Path(value).expanduser()
    path = (path if path.is_absolute() else base / path).resolve()
    if path.is_dir():
        if not simulated:
            raise FleetReleaseError(f"{key} = {value!r}: {path} is a project folder; a real bench flashes the "
                                    "Electron binary the fleet runs: build it with `particle compile electron` "
                                    "(docs/building-firmware.md) and name the .bin")
        try:
            require_agent(path)
        except ProjectError as exc:
            raise FleetReleaseError(f"{key} = {value!r}: {exc}") from None
        return path
    try:
        data = path.read_bytes()
    except OSError as exc:
        what = "a project folder (src/, lib/) or " if simulated else ""
        raise FleetReleaseError(f"{key} = {value!r}: cannot read {path} ({exc.strerror}); give {what}the binary "
                                "of the release the fleet runs, relative to the bench file, or remove the key "
                                "(docs/your-firmware.md \"The fleet's release\")") from None
    try:
        check_binary(path, data, key=key, product_id=product_id)
    except CatalogError as exc:
        raise FleetReleaseError(str(exc)) from None
    return path


def binary(path: Path) -> BinaryRelease:
    """The source of a binary `locate` has checked."""
    return BinaryRelease(path, path.read_bytes())
