"""The device companion's hand-written defects: patch files in firmware/mutants/.

Each `NN-name.patch` is a unified diff against firmware/companion whose first line says the
defect (patch(1) ignores text before the first `---`). `--mutant N` builds the companion with
patch N applied (firmware/mutants/README.md); the shipped sources carry no defect.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from .. import resources
from .projects import ProjectError, project_copy

__all__ = ["ShippedDefect", "shipped_defect_project", "shipped_defects"]

_NAME = re.compile(r"^(\d{2})-([a-z0-9-]+)\.patch$")


@dataclass(frozen=True)
class ShippedDefect:
    number: int
    name: str           # from the file name, e.g. "resets-before-persisting"
    description: str    # the patch's first line, after "otarig shipped defect N: "
    path: Path

    @property
    def patch(self) -> str:
        return self.path.read_text()


def mutants_dir() -> Path:
    return resources.firmware_dir() / "mutants"


def shipped_defects() -> dict[int, ShippedDefect]:
    """number → defect, from firmware/mutants/NN-name.patch."""
    out: dict[int, ShippedDefect] = {}
    folder = mutants_dir()
    for p in sorted(folder.glob("*.patch")) if folder.is_dir() else []:
        m = _NAME.match(p.name)
        if not m:
            continue
        first = p.read_text().split("\n", 1)[0]
        desc = first.split(":", 1)[1].strip() if first.startswith("otarig shipped defect") else m[2].replace("-", " ")
        out[int(m[1])] = ShippedDefect(int(m[1]), m[2], desc, p)
    return out


def shipped_defect_project(number: int, base: Path | None = None) -> Path:
    """firmware/companion with shipped defect `number` applied (a cached copy)."""
    from ..sim.build import companion_project

    companion = companion_project().resolve()
    if base is not None and base.resolve() != companion:
        raise ProjectError(f"--mutant {number} is a defect of the device companion (firmware/mutants/), not of "
                           f"{base}: for your own firmware, `otarig selftest --firmware {base}` generates defects")
    defects = shipped_defects()
    if number not in defects:
        known = ", ".join(str(n) for n in defects) or "none"
        raise ProjectError(f"no shipped defect {number} (firmware/mutants/{number:02d}-*.patch); known: {known}")
    d = defects[number]
    return project_copy(companion, patch=d.patch, label=f"m{number}")
