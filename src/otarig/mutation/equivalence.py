"""Mutants not worth running: trivially equivalent builds, and the ones a person has argued equivalent.

Trivial compiler equivalence (TCE): a mutant whose host build has the same machine code and data as
the original's can behave no differently; comparing builds is cheaper than running the suite.
Builds of two project copies differ in their symbol tables (source paths) and build ids only, so
both are dropped before comparing. The rest is firmware/mutants/equivalent.toml: a survivor no
timeline can tell apart from the original, with a one-line reason.
"""
from __future__ import annotations

import hashlib
import shutil
import subprocess
import tempfile
import tomllib
from dataclasses import dataclass
from pathlib import Path

from .generate import Mutant

__all__ = ["EquivalentEntry", "code_digest", "listed_reason", "load_equivalents"]


def code_digest(so: Path) -> str:
    """SHA-256 of a shared library without its symbol table, debug data and build id."""
    objcopy = shutil.which("objcopy")
    if objcopy is None:  # binutils comes with g++; without it compare whole files (fewer TCE found)
        return hashlib.sha256(so.read_bytes()).hexdigest()
    with tempfile.TemporaryDirectory(prefix="otarig-tce-") as tmp:
        out = Path(tmp) / "stripped.so"
        subprocess.run([objcopy, "--strip-all", "--remove-section=.note.gnu.build-id", str(so), str(out)],
                       check=True, capture_output=True, timeout=120)
        return hashlib.sha256(out.read_bytes()).hexdigest()


@dataclass(frozen=True)
class EquivalentEntry:
    file: str
    line: int
    original: str
    mutated: str
    reason: str


def load_equivalents(path: Path) -> list[EquivalentEntry]:
    """firmware/mutants/equivalent.toml (or a team's own): `[[equivalent]]` tables with file, line,
    original, mutated, reason. A missing file is an empty list."""
    if not path.is_file():
        return []
    try:
        data = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as exc:
        raise ValueError(f"{path}: not valid TOML ({exc}); fix the file or remove it") from exc
    out = []
    for i, e in enumerate(data.get("equivalent", [])):
        missing = [k for k in ("file", "line", "original", "mutated", "reason") if k not in e]
        if missing:
            raise ValueError(f"{path}: equivalent entry {i + 1} lacks {', '.join(missing)} "
                             "(each needs file, line, original, mutated and a one-line reason)")
        out.append(EquivalentEntry(str(e["file"]), int(e["line"]), str(e["original"]).strip(),
                                   str(e["mutated"]).strip(), str(e["reason"])))
    return out


def listed_reason(m: Mutant, entries: list[EquivalentEntry]) -> str | None:
    """The reason a mutant is listed as equivalent: same file and mutated line text, and the same
    line number or (the line moved) the same original text."""
    for e in entries:
        if e.file == m.file and e.mutated == m.mutated and (e.line == m.line or e.original == m.original):
            return e.reason
    return None
