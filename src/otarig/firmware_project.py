"""A product team's Particle project folder as the rig needs it: the test agent linked and called.

What the rig needs from a firmware is small (docs/your-firmware.md): the TestAgent library in the
project's lib/, and four calls into it. `agent_problems` checks the sources for them before
anything is built, so a firmware without the agent is refused at once with what to add (the
bench's own check, no `hello` on the serial port, holds on a real bench too:
`otarig.strategy.NoTestAgent`). `add_agent` copies the library in.
"""
from __future__ import annotations

import re
import shutil
from pathlib import Path

from . import resources

__all__ = ["ProjectError", "agent_library", "agent_problems", "require_agent", "add_agent"]

_SOURCES = {".cpp", ".c", ".h", ".hpp", ".ino"}
#: the calls the rig depends on, by what each gives it (docs/your-firmware.md "What to add")
_CALLS = {
    "begin": "agent.begin(records, lastSeq) in setup() (hello and boot)",
    "loop": "agent.loop() in loop() (commands)",
    "sysEvent": "agent.sysEvent(event, param) from a System.on(all_events, ...) handler (the OTA events)",
}


class ProjectError(ValueError):
    """The folder is not a project the rig can certify; the message says what to add."""


def agent_library() -> Path:
    """The shipped TestAgent library (firmware/companion/lib/TestAgent)."""
    return resources.firmware_dir() / "companion" / "lib" / "TestAgent"


def _own_sources(project: Path) -> list[Path]:
    """The project's sources, the agent library's own excluded."""
    roots = [project / "src", *(p for p in (project / "lib").glob("*/src") if p.parent.name != "TestAgent")]
    return sorted(p for r in roots if r.is_dir() for p in r.rglob("*") if p.suffix in _SOURCES and p.is_file())


def agent_problems(project: Path) -> list[str]:
    """What the project lacks for the rig to talk to it (empty when nothing)."""
    if not (project / "src").is_dir():
        return [f"{project} has no src/ folder (a Particle project folder holds src/, lib/ and project.properties)"]
    problems = []
    if not (project / "lib" / "TestAgent" / "src" / "TestAgent.h").is_file():
        problems.append("no lib/TestAgent/ (run `otarig firmware add-agent DIR` to copy it in)")
    text = "\n".join(p.read_text(errors="replace") for p in _own_sources(project))
    code = re.sub(r"//[^\n]*|/\*.*?\*/", "", text, flags=re.S)
    if not re.search(r'#\s*include\s*[<"]TestAgent\.h[>"]', code):
        problems.append('no source includes "TestAgent.h"')
    names = re.findall(r"\bTestAgent\s+(\w+)\s*[({]", code)
    if not names:
        problems.append("no TestAgent object is defined (e.g. `TestAgent agent({PRODUCT, VERSION, threaded}, {...});`)")
    else:
        obj = "|".join(map(re.escape, names))
        problems += [f"missing {why}" for call, why in _CALLS.items()
                     if not re.search(rf"\b(?:{obj})\s*\.\s*{call}\s*\(", code)]
    return problems


def require_agent(project: Path) -> None:
    """Raise `ProjectError` naming every missing piece (docs/your-firmware.md)."""
    problems = agent_problems(project)
    if problems:
        raise ProjectError(f"{project}: the firmware does not run otarig's test agent, so the rig cannot talk to it: "
                           + "; ".join(problems) + " (docs/your-firmware.md, \"What to add\")")


def add_agent(project: Path, *, force: bool = False) -> Path:
    """Copy the TestAgent library into `project`/lib/TestAgent; return where it went."""
    if not (project / "src").is_dir():
        raise ProjectError(f"{project}: not a Particle project folder (no src/); create one with "
                           "`particle project create` or give the folder that holds src/")
    dest = project / "lib" / "TestAgent"
    if dest.exists() or dest.is_symlink():
        if not force:
            raise ProjectError(f"{dest} already exists; pass --force to replace it with otarig's copy")
        if dest.is_symlink() or dest.is_file():
            dest.unlink()
        else:
            shutil.rmtree(dest)
    shutil.copytree(agent_library(), dest)
    return dest
