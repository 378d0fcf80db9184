"""One line for a Device OS call the host layer lacks, instead of g++'s or the linker's dump.

A product team's firmware (`otarig run --firmware DIR`) is built against `firmware/host/`, a
subset of the Device OS 2.3.1 API (docs/design.md principle 2). A call outside that subset fails
the build in one of a few ways g++ and ld word in fixed phrases; this module recognises them and
names the call and the file:line where the firmware makes it, with what to do about it.
"""
from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path

__all__ = ["explain"]

_Q = "[\u2018'`]"   # g++ quotes with ‘…’ in a UTF-8 locale, '…' in C; ld with `…'
_E = "[\u2019']"
_AT = r"^(?P<file>[^:\s][^:]*):(?P<line>\d+):(?:\d+:)? (?:fatal )?error: "

#: (pattern, how to name the call from its groups)
_COMPILER = [
    re.compile(_AT + rf"{_Q}(?P<type>(?:class |struct )?[\w:]+){_E} has no member named {_Q}(?P<member>\w+){_E}"),
    re.compile(_AT + rf"{_Q}(?P<member>\w+){_E} is not a member of {_Q}(?P<type>[\w:]+){_E}"),
    re.compile(_AT + rf"{_Q}(?P<name>\w+){_E} was not declared in this scope"),
    re.compile(_AT + rf"{_Q}(?P<name>\w+){_E} does not name a type"),
    re.compile(_AT + r"(?P<header>[\w./-]+\.h(?:pp)?): No such file or directory"),
]
_LINKER = re.compile(rf"undefined reference to {_Q}(?P<symbol>[^'\u2019]+){_E}")

#: the Device OS class behind each global object the API offers (firmware/host/*.h)
_OBJECTS = {"CellularClass": "Cellular", "SystemClass": "System", "CloudClass": "Particle",
            "USBSerial": "Serial", "EEPROMClass": "EEPROM"}


def _shown(path: str) -> str:
    """The path as a team knows it: from the project's lib/ or src/ on."""
    p = path.replace("\\", "/")
    for anchor in ("/lib/", "/src/"):
        i = p.rfind(anchor) if anchor == "/src/" and "/lib/" not in p else p.find(anchor)
        if i >= 0:
            return p[i + 1:]
    return Path(p).name


def _call(m: re.Match[str]) -> str:
    groups = m.groupdict()
    if groups.get("member"):
        cls = groups["type"].split()[-1].split("::")[-1]
        return f"{_OBJECTS.get(cls, cls)}.{groups['member']}" if cls in _OBJECTS else f"{cls}::{groups['member']}"
    if groups.get("header"):
        return f"#include \"{groups['header']}\""
    return groups["name"]


def _advice(call: str) -> str:
    return (f"firmware uses {call}, which the simulated bench's Device OS layer (firmware/host/) does not "
            "provide: keep it out of the host build with `#ifndef OTARIG_HOST_BUILD` (the bench then certifies "
            "the firmware without that call), or add it to firmware/host/ (docs/your-firmware.md, "
            "\"Calls the simulated bench lacks\")")


def explain(output: str, sources: Iterable[Path], host: Path | None = None) -> str | None:
    """The one line for the first missing call in a compiler's or linker's `output`, or None when
    the failure is something else (a plain error in the firmware's own code)."""
    host_prefix = str(host.resolve()) if host is not None else None
    for line in output.splitlines():
        for pattern in _COMPILER:
            m = pattern.search(line)
            if m is None or (host_prefix and str(Path(m["file"]).resolve()).startswith(host_prefix)):
                continue
            return _advice(f"{_call(m)} ({_shown(m['file'])}:{m['line']})")
    m = _LINKER.search(output)
    if m is None:
        return None
    symbol = m["symbol"]
    name = symbol.split("(")[0]
    short = name.split("::")[-1]
    cls = name.split("::")[-2] if "::" in name else ""
    if host is not None and not _declared_in(short, host):
        return None  # the firmware's own function, declared but never defined: a plain error
    call = f"{_OBJECTS.get(cls, cls)}.{short}" if cls in _OBJECTS else name
    used = _first_use(short, sources)
    return _advice(f"{call} ({used})" if used else call)


def _declared_in(name: str, host: Path) -> bool:
    """Whether a header of the host layer declares `name` (without defining it for the host)."""
    word = re.compile(rf"\b{re.escape(name)}\s*\(")
    return any(word.search(h.read_text(errors="replace")) for h in host.glob("*.h"))


def _first_use(name: str, sources: Iterable[Path]) -> str | None:
    """file:line of the first call of `name(` in the firmware's sources (the linker names no line)."""
    call = re.compile(rf"\b{re.escape(name)}\s*\(")
    for src in sources:
        try:
            lines = src.read_text(errors="replace").splitlines()
        except OSError:
            continue
        for i, text in enumerate(lines, 1):
            if call.search(text.split("//")[0]):
                return f"{_shown(str(src))}:{i}"
    return None
