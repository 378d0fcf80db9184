"""Mutants not worth running: trivially equivalent builds, and the ones a person has argued equivalent.

Trivial compiler equivalence (TCE): a mutant whose host build has the same machine code and data as
the original's can behave no differently; comparing builds is cheaper than running the suite.
Builds of two project copies differ in their symbol tables (source paths) and build ids only, so
both are dropped before comparing. The rest is firmware/mutants/equivalent.toml, each entry with a
one-line reason: `[[equivalent]]`, a survivor no timeline can tell apart from the original, and
`[[allowed]]`, a survivor a timeline can tell apart but that is no defect: a different firmware every
contract the rig certifies allows as well (a constant the app declares, changed with its declaration).
Both are left out of the kill rate; the report counts them apart, and gives the rate with the allowed
ones counted as survivors too, so nobody has to take a listing on trust.

An entry with `whole_line = true` and no `mutated` gives the reason for a *line* (a value never
reported, a result nobody reads, a pace the app chooses): its mutants are still run, and only one
that survives the whole suite takes the listing, so a change of that line that breaks a contract
(a pace the rate limit refuses, a division by zero) stays killed. Per-text listings would need one
entry for each of the operators the mutation tool applies to the same line.
"""
from __future__ import annotations

import dataclasses
import hashlib
import shutil
import subprocess
import tempfile
import tomllib
from dataclasses import dataclass
from pathlib import Path

from .generate import Mutant

__all__ = ["EquivalentEntry", "anchor", "code_digest", "line_entry", "listed_entry", "listed_reason", "load_equivalents"]


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
    kind: str = "equivalent"  # or "allowed": told apart by a timeline, but no contract forbids it
    whole_line: bool = False  # the reason holds for any mutant of the line that survives the suite
    #: the line still holds `original` in the sources: the entry is for that line only, never for
    #: the same text elsewhere (a statement written on several lines, each its own mutant)
    anchored: bool = False


def load_equivalents(path: Path) -> list[EquivalentEntry]:
    """firmware/mutants/equivalent.toml (or a team's own): `[[equivalent]]` and `[[allowed]]` tables
    with file, line, original, mutated, reason. A missing file is an empty list."""
    if not path.is_file():
        return []
    try:
        data = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as exc:
        raise ValueError(f"{path}: not valid TOML ({exc}); fix the file or remove it") from exc
    unknown = sorted(set(data) - {"equivalent", "allowed"})
    if unknown:
        raise ValueError(f"{path}: unknown table(s) {', '.join(unknown)} (only [[equivalent]] and [[allowed]])")
    out = []
    for kind in ("equivalent", "allowed"):
        for i, e in enumerate(data.get(kind, [])):
            whole = e.get("whole_line") is True
            needed = [k for k in ("file", "line", "original", "mutated", "reason") if k != "mutated" or not whole]
            missing = [k for k in needed if k not in e]
            if missing:
                raise ValueError(f"{path}: {kind} entry {i + 1} lacks {', '.join(missing)} "
                                 "(each needs file, line, original, a one-line reason, and mutated unless "
                                 "whole_line = true)")
            if whole and "mutated" in e:
                raise ValueError(f"{path}: {kind} entry {i + 1} has both whole_line and mutated: a whole-line "
                                 "listing covers every mutant of the line that survives, so drop mutated")
            out.append(EquivalentEntry(str(e["file"]), int(e["line"]), str(e["original"]).strip(),
                                       str(e.get("mutated", "")).strip(), str(e["reason"]), kind, whole))
    return out


def anchor(entries: list[EquivalentEntry], project: Path) -> list[EquivalentEntry]:
    """The entries, each marked `anchored` when its line in `project`'s sources still holds its
    original text (then the original-text fallback of a moved line does not apply to it)."""
    sources: dict[str, list[str]] = {}  # each file read once, however many entries it has
    out = []
    for e in entries:
        if e.file not in sources:
            try:
                sources[e.file] = (project / e.file).read_text(errors="replace").splitlines()
            except OSError:
                sources[e.file] = []
        lines = sources[e.file]
        held = 0 < e.line <= len(lines) and lines[e.line - 1].strip() == e.original
        out.append(dataclasses.replace(e, anchored=held))
    return out


def _same_line(m: Mutant, e: EquivalentEntry) -> bool:
    """Same file, and the same line number or (the line moved) the same original text."""
    return e.file == m.file and (e.line == m.line or (not e.anchored and e.original == m.original))


def listed_entry(m: Mutant, entries: list[EquivalentEntry]) -> EquivalentEntry | None:
    """The entry that lists a mutant: same file and mutated line text, and the same line number or
    (the line moved) the same original text."""
    for e in entries:
        if not e.whole_line and e.mutated == m.mutated and _same_line(m, e):
            return e
    return None


def line_entry(m: Mutant, entries: list[EquivalentEntry]) -> EquivalentEntry | None:
    """The whole-line entry for a mutant's line (taken only once the mutant survived the suite)."""
    for e in entries:
        if e.whole_line and _same_line(m, e):
            return e
    return None


def listed_reason(m: Mutant, entries: list[EquivalentEntry]) -> str | None:
    """The one-line reason a mutant is listed, or None."""
    e = listed_entry(m, entries)
    return e.reason if e else None
