"""`otarig tools install`: the pinned particle CLI and MicroPython, from an installed package.

The wheel ships each tool's lock files and install.sh (otarig.resources); they are copied into
the user's cache folder and install.sh runs there (`npm ci`), so the same pinned trees land on
every machine whether otarig is a checkout or a wheel. A checkout whose tools/NAME was set up
with its install.sh keeps that install (install.sh re-checks it in place).
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from . import resources

__all__ = ["ToolError", "install"]

#: each install.sh's "reinstall anyway" switch
_FORCE_ENV = {"particle-cli": "OTARIG_CLI_FORCE", "micropython": "OTARIG_MICROPYTHON_FORCE",
              "labgrid": "OTARIG_LABGRID_FORCE"}


class ToolError(Exception):
    """A tool could not be installed; the message says why (install.sh's own output is above it)."""


def _stage(name: str, dest: Path) -> None:
    """Copy the shipped installer and pin files into dest, replacing only what changed."""
    src = resources.tool_source_dir(name)
    dest.mkdir(parents=True, exist_ok=True)
    for fname in resources.TOOLS[name]:
        data = (src / fname).read_bytes()
        out = dest / fname
        if not out.is_file() or out.read_bytes() != data:
            tmp = out.with_name(f".{fname}.tmp")
            tmp.write_bytes(data)
            tmp.replace(out)


def install(name: str, *, force: bool = False) -> Path:
    """Install one pinned tool (idempotent); return the folder it is in."""
    dest = resources.tool_dir(name)
    if dest == resources.tool_cache_dir(name):
        _stage(name, dest)
    if shutil.which("bash") is None:
        raise ToolError(f"{name}: bash not found (install.sh needs it)")
    env = {**os.environ, "OTARIG_PYTHON": os.environ.get("OTARIG_PYTHON", sys.executable)}
    node = resources.tool_dir("particle-cli")  # MicroPython runs on the pinned Node when it is installed
    pinned = sorted((node / "node_modules").glob("node-linux-*/bin/node"))
    if pinned and "OTARIG_NODE" not in env:
        env["OTARIG_NODE"] = str(pinned[0])
    if force:
        env[_FORCE_ENV[name]] = "1"
    sys.stdout.flush()
    done = subprocess.run(["bash", str(dest / "install.sh")], cwd=dest, env=env)
    if done.returncode != 0:
        raise ToolError(f"{name}: {dest / 'install.sh'} failed (exit {done.returncode})")
    return dest
