"""Firmware on a real bench: the `[firmware]` catalog of Electron binaries by logical version.

Every binary is read and checked with the module parser before anything is flashed or uploaded
(platform 10, a user part, the bench's product ID, a product version, a good CRC-32), so a wrong
file stops the run at bench start with a message naming the file, not halfway through a scenario
on a board that then refuses the OTA.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from . import firmware as fw
from .interfaces import FirmwareBuild


class CatalogError(ValueError):
    """A `[firmware]` entry that cannot be used; the message names the entry and the file."""


@dataclass(frozen=True)
class CatalogEntry:
    version: int
    threaded: bool
    path: Path
    image: bytes
    info: fw.ModuleInfo


def check_binary(path: Path, data: bytes, *, key: str, product_id: int) -> fw.ModuleInfo:
    """The checks of the module parser plus what a product OTA needs; raises CatalogError."""
    try:
        info = fw.validate(data, platform_id=fw.ELECTRON_PLATFORM_ID)
    except fw.FirmwareError as exc:
        raise CatalogError(f"{key} = {str(path)!r}: {exc}") from None
    if info.module_function != fw.FUNCTION_USER_PART:
        raise CatalogError(f"{key} = {str(path)!r}: a {info.module_function_name} module, expected the "
                           "application (user part) — flash Device OS itself with `particle update`")
    if info.product_id is None or info.product_version is None:
        raise CatalogError(f"{key} = {str(path)!r}: no product ID/version in the module; the app must declare "
                           "PRODUCT_ID(...) (Device OS < 4) and PRODUCT_VERSION(...)")
    if info.product_id not in (product_id, 0xFFFF):
        raise CatalogError(f"{key} = {str(path)!r}: built for product {info.product_id}, the bench's is "
                           f"{product_id} (cloud.product_id)")
    return info


class CatalogFirmware:
    """`FirmwareSource` over the bench file's `[firmware]` tables."""

    def __init__(self, entries: dict[tuple[int, bool], CatalogEntry]) -> None:
        self.entries = entries

    @classmethod
    def load(cls, versions: dict[int, str], nonthreaded: dict[int, str], *, product_id: int,
             base: Path) -> "CatalogFirmware":
        """Read and check every binary now; relative paths are against the bench file's folder."""
        entries: dict[tuple[int, bool], CatalogEntry] = {}
        problems: list[str] = []
        for name, table, threaded in (("firmware.versions", versions, True),
                                      ("firmware.nonthreaded", nonthreaded, False)):
            for version, file in sorted(table.items()):
                key = f"{name}.{version}"
                path = Path(file).expanduser()
                path = path if path.is_absolute() else base / path
                try:
                    data = path.read_bytes()
                except OSError as exc:
                    problems.append(f"{key} = {file!r}: cannot read {path} ({exc.strerror}); "
                                    "build it (docs/building-firmware.md) or fix the path")
                    continue
                try:
                    info = check_binary(path, data, key=key, product_id=product_id)
                except CatalogError as exc:
                    problems.append(str(exc))
                    continue
                entries[(version, threaded)] = CatalogEntry(version, threaded, path, data, info)
        if problems:
            raise CatalogError("\n".join(problems))
        return cls(entries)

    def has(self, version: int, *, threaded: bool = True) -> bool:
        return (version, threaded) in self.entries

    def get(self, version: int, *, size: int | None = None, threaded: bool = True) -> FirmwareBuild:
        """The catalog's binary for `version` (`size` is a simulator hint: the binary is what it is)."""
        entry = self.entries.get((version, threaded))
        if entry is None:
            table = "firmware.versions" if threaded else "firmware.nonthreaded"
            raise MissingFirmware(f"no binary for version {version} in [{table}] of the bench file "
                                  "(docs/building-firmware.md says how to build it)")
        return FirmwareBuild(version, entry.image, f"{entry.path.name} (v{version})")


class MissingFirmware(LookupError):
    """The scenario needs a version the catalog does not have (the scenario is skipped for it)."""
