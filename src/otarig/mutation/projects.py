"""A copy of a Particle project folder with a patch applied or some files replaced.

A defective build is built like any project (`build_firmware(project=copy)`), so the shipped
sources carry no defect switches. Copies live in the build cache, named by a hash of the base's
files and the change: asking twice for the same change returns the same folder (a re-run reuses
it, and build_firmware's own cache then finds the build).
"""
from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tempfile
from collections.abc import Mapping
from pathlib import Path

from .. import resources

__all__ = ["ProjectError", "project_copy", "project_files"]

#: what a Particle project folder holds that a build reads (docs/your-firmware.md)
_PROJECT_PARTS = ("src", "lib", "project.properties")


class ProjectError(RuntimeError):
    """A project copy could not be made (a patch that does not apply, a file outside the project)."""


def project_files(base: Path) -> list[Path]:
    """Every file of the project parts, relative to `base`, sorted."""
    out: list[Path] = []
    for part in _PROJECT_PARTS:
        p = base / part
        if p.is_file():
            out.append(Path(part))
        elif p.is_dir():
            out += sorted(f.relative_to(base) for f in p.rglob("*") if f.is_file() and "__pycache__" not in f.parts)
    return out


def _key(base: Path, patch: str | None, files: Mapping[str, str] | None) -> str:
    digest = hashlib.sha256()
    for rel in project_files(base):
        digest.update(b"\0file\0" + rel.as_posix().encode() + b"\0" + (base / rel).read_bytes())
    digest.update(b"\0patch\0" + (patch or "").encode())
    for rel, text in sorted((files or {}).items()):
        digest.update(b"\0replace\0" + rel.encode() + b"\0" + text.encode())
    return digest.hexdigest()[:20]


def project_copy(base: Path, *, patch: str | None = None, files: Mapping[str, str] | None = None,
                 label: str = "variant") -> Path:
    """The project `base` with a unified diff `patch` (paths a/… b/… relative to `base`) applied
    and/or the files `files` (relative path → new text) replaced; a cached folder."""
    base = base.resolve()
    root = resources.build_cache_dir() / "projects"
    stem = "".join(c if c.isalnum() or c in "-_" else "_" for c in f"{base.name}-{label}")[:60]
    holder = root / f"{stem}-{_key(base, patch, files)}"
    target = holder / base.name  # the project keeps its folder name (build names derive from it)
    if target.is_dir():
        return target
    root.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{holder.name}.", dir=root))
    try:
        work = tmp / base.name
        work.mkdir()
        for part in _PROJECT_PARTS:
            src = base / part
            if src.is_dir():
                shutil.copytree(src, work / part, ignore=shutil.ignore_patterns("__pycache__", "*.bin"))
            elif src.is_file():
                shutil.copy2(src, work / part)
        for rel, text in (files or {}).items():
            dest = (work / rel).resolve()
            if not dest.is_relative_to(work.resolve()) or not dest.is_file():
                raise ProjectError(f"cannot replace {rel}: not a file of the project {base}")
            dest.write_text(text)
        if patch:
            _apply(patch, work, label)
        try:
            os.rename(tmp, holder)
            tmp = holder / "_"  # renamed: nothing left to clean up
        except OSError:
            if not target.is_dir():  # another process made it first: theirs is the same
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target


def _apply(patch: str, folder: Path, label: str) -> None:
    """patch(1), which every Linux bench has; a patch that does not apply is an error, never fuzz."""
    exe = shutil.which("patch")
    if exe is None:
        raise ProjectError(f"cannot apply {label}: the `patch` program is not on PATH (apt-get install patch)")
    proc = subprocess.run([exe, "--batch", "--forward", "--fuzz=0", "-p1", "-d", str(folder)], input=patch,
                          capture_output=True, text=True, timeout=60, check=False)
    if proc.returncode != 0:
        raise ProjectError(f"{label} does not apply to {folder.name}: "
                           f"{(proc.stdout + proc.stderr).strip().splitlines()[-1:]}; "
                           "regenerate the patch against the current sources (diff -u a/… b/…)")
