"""Generated defects: universalmutator's mutants of a Particle project's own C++.

universalmutator (PyPI `universalmutator`, command `mutate`) rewrites one line of a source file
per mutant with regular-expression rules for C/C++ (operators, constants, conditions, deleted
statements). Only the app and guard sources are mutated by default: the host layer is the
simulator's stand-in for Device OS, and the TestAgent is the rig's instrument, not the firmware
under certification (docs/your-firmware.md).
"""
from __future__ import annotations

import difflib
import hashlib
import random
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

__all__ = ["GenerationError", "Mutant", "default_files", "generate", "sample"]

#: the rig's own library inside a team's project: never mutated (docs/your-firmware.md)
INSTRUMENT_LIBS = frozenset({"TestAgent"})
#: bench instrumentation a project may link, which decides nothing (the download status line the
#: tester board times cuts on, docs/protocol.md): left out of the defaults, mutated only by --files
#: (a defect there mis-times the rig's own cuts; it is not a defect of the firmware under test)
BENCH_SIGNAL_LIBS = frozenset({"DownloadSignal"})
_MUTATED_SUFFIXES = (".cpp", ".c", ".ino")


class GenerationError(RuntimeError):
    """Mutants could not be generated (tool missing, bad --files)."""


@dataclass(frozen=True)
class Mutant:
    """One generated defect: `file` (relative to the project) with line `line` changed."""

    file: str
    line: int
    original: str   # the line as shipped (stripped)
    mutated: str    # the line in the mutant (stripped)
    text: str       # the whole mutated file

    @property
    def id(self) -> str:
        """Stable across re-generation: file, line and both lines' text (not the tool's numbering)."""
        h = hashlib.sha256(f"{self.file}\0{self.line}\0{self.original}\0{self.mutated}".encode()).hexdigest()
        return f"{Path(self.file).stem}:{self.line}:{h[:8]}"

    def diff(self, base: Path) -> str:
        before = (base / self.file).read_text().splitlines(keepends=True)
        return "".join(difflib.unified_diff(before, self.text.splitlines(keepends=True),
                                            f"a/{self.file}", f"b/{self.file}", n=2))


def default_files(project: Path) -> list[str]:
    """The app and guard sources: src/ and lib/*/src/ except the TestAgent and the download status
    line (.cpp, .c, .ino)."""
    out = [p for p in sorted((project / "src").rglob("*")) if p.suffix in _MUTATED_SUFFIXES]
    for lib in sorted((project / "lib").glob("*/src")):
        if lib.parent.name not in INSTRUMENT_LIBS | BENCH_SIGNAL_LIBS:
            out += [p for p in sorted(lib.rglob("*")) if p.suffix in _MUTATED_SUFFIXES]
    return [p.relative_to(project).as_posix() for p in out if p.is_file()]


def _mutate_command() -> list[str]:
    exe = shutil.which("mutate", path=f"{Path(sys.executable).parent}:{shutil.os.environ.get('PATH', '')}")
    if exe is None:
        raise GenerationError("universalmutator is not installed: pip install 'otarig[mutation]' "
                              "(or pip install universalmutator); its command is `mutate`")
    return [exe]


def generate(project: Path, files: list[str]) -> list[Mutant]:
    """Every mutant universalmutator makes of `files` (paths relative to `project`)."""
    mutants: list[Mutant] = []
    cmd = _mutate_command()
    for rel in files:
        src = project / rel
        if not src.is_file():
            raise GenerationError(f"--files {rel}: no such file in {project} (give paths relative to the project, "
                                  "e.g. lib/OtaGuard/src/OtaGuard.cpp)")
        if any(part in INSTRUMENT_LIBS for part in Path(rel).parts):
            raise GenerationError(f"--files {rel}: the TestAgent is the rig's instrument, not firmware under test")
        original = src.read_text()
        before = original.splitlines()
        with tempfile.TemporaryDirectory(prefix="otarig-mutate-") as tmp:
            work = Path(tmp) / ("m" + (src.suffix if src.suffix != ".ino" else ".cpp"))
            work.write_text(original)
            out = Path(tmp) / "out"
            out.mkdir()
            proc = subprocess.run([*cmd, str(work), "cpp", "--noCheck", "--mutantDir", str(out)],
                                  capture_output=True, text=True, cwd=tmp, timeout=600, check=False)
            if proc.returncode != 0:
                raise GenerationError(f"universalmutator failed on {rel}: {proc.stderr.strip()[-300:]}")
            for f in sorted(out.iterdir(), key=lambda p: int(p.name.split(".")[-2])):
                text = f.read_text()
                after = text.splitlines()
                changed = [i for i, (a, b) in enumerate(zip(before, after)) if a != b]
                if len(before) != len(after) or len(changed) != 1:
                    continue  # universalmutator changes one line in place; anything else is not its mutant
                i = changed[0]
                mutants.append(Mutant(rel, i + 1, before[i].strip(), after[i].strip(), text))
    return mutants


def sample(mutants: list[Mutant], n: int | None, seed: int) -> list[Mutant]:
    """A reproducible sample of `n` (all when None), in file/line order."""
    if n is None or n >= len(mutants):
        chosen = list(mutants)
    else:
        chosen = random.Random(seed).sample(mutants, n)
    return sorted(chosen, key=lambda m: (m.file, m.line, m.mutated))
