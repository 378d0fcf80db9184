"""Where otarig's shipped files and the user's caches are: the one place the code looks them up.

Shipped files (the suite, the firmware sources, the example fleets, the pinned tools' manifests,
the bench file templates) are package data under ``otarig/_data`` and ``otarig/templates``, found
through ``importlib.resources`` so an installed wheel works from any folder. In the repository
``src/otarig/_data/*`` are symlinks to the top-level ``hil/``, ``firmware/``, ``examples/`` and
``tools/`` files, so an editable install reads (and a wheel build copies) the very files the
repository keeps. What otarig writes (host builds, installed tools) goes to the user's cache
folder, never into the package.
"""
from __future__ import annotations

import os
from importlib.resources import files
from pathlib import Path

__all__ = ["TOOLS", "build_cache_dir", "bench_program_dir", "cache_root", "data_dir", "default_fleet",
           "firmware_dir", "fleets_dir", "suite_dir", "suite_ini", "template", "tool_cache_dir", "tool_dir",
           "tool_source_dir"]

#: The pinned tools `otarig tools install` puts in the cache, and the files each installer needs.
TOOLS: dict[str, tuple[str, ...]] = {
    "particle-cli": ("install.sh", "package.json", "package-lock.json"),
    "micropython": ("install.sh", "package.json", "package-lock.json", "stubs.txt", "run.mjs", "mypy.ini"),
    "labgrid": ("install.sh", "requirements.txt"),  # a venv of its own (docs/lab.md)
}

#: written by each tool's install.sh once `npm ci` and its own check succeeded
INSTALL_STAMP = Path("node_modules") / ".otarig-install-stamp"


def _package_path(*parts: str) -> Path:
    """A shipped file or folder as a real path (otarig is installed unpacked, never zipped)."""
    res = files("otarig").joinpath(*parts)
    if not isinstance(res, Path):
        raise RuntimeError(f"otarig must be installed as files on disk, not in an archive ({res})")
    return res


def data_dir() -> Path:
    """The package's data folder: hil/, firmware/, examples/, tools/ (symlinks in a checkout)."""
    return _package_path("_data")


def suite_dir() -> Path:
    """The shipped certification suite (hil/)."""
    return (data_dir() / "hil").resolve()


def firmware_dir() -> Path:
    """firmware/ (device companion, host layer, tester board program), or $OTARIG_FIRMWARE_DIR."""
    env = os.environ.get("OTARIG_FIRMWARE_DIR")
    if env:
        return Path(env).expanduser().resolve()
    return (data_dir() / "firmware").resolve()


def bench_program_dir() -> Path:
    """firmware/bench/: the tester board's MicroPython program and pin map."""
    return firmware_dir() / "bench"


def fleets_dir() -> Path:
    """The example fleets of `otarig rollout` (examples/fleets/)."""
    return (data_dir() / "examples" / "fleets").resolve()


def default_fleet() -> Path:
    return fleets_dir() / "default.toml"


def template(name: str) -> str:
    """A bench file template of `otarig init` (``simulated`` or ``real``)."""
    return _package_path("templates", f"bench-{name}.toml").read_text(encoding="utf-8")


def suite_ini() -> Path:
    """The pytest configuration `otarig run` gives the suite, so no project's own ini is read."""
    return _package_path("pytest-suite.ini")


def cache_root() -> Path:
    """The user's cache folder for otarig: $XDG_CACHE_HOME/otarig, else ~/.cache/otarig."""
    xdg = os.environ.get("XDG_CACHE_HOME", "")
    base = Path(xdg) if xdg and Path(xdg).is_absolute() else Path.home() / ".cache"  # XDG: relative → ignored
    return base / "otarig"


def build_cache_dir() -> Path:
    """Where host builds of the device companion are kept: $OTARIG_CACHE, else <cache>/build."""
    env = os.environ.get("OTARIG_CACHE")
    if env:
        return Path(env).expanduser().resolve()
    return cache_root() / "build"


def tool_source_dir(name: str) -> Path:
    """The shipped installer and pin files of a tool (package.json, package-lock.json, install.sh …)."""
    if name not in TOOLS:
        raise KeyError(f"unknown tool {name!r}; known: {', '.join(TOOLS)}")
    return data_dir() / "tools" / name


def tool_cache_dir(name: str) -> Path:
    """Where `otarig tools install` installs a tool: <cache>/tools/NAME."""
    tool_source_dir(name)  # validates the name
    return cache_root() / "tools" / name


def tool_dir(name: str) -> Path:
    """Where a pinned tool is installed: a checkout's tools/NAME when installed there (an editable
    checkout set up with its install.sh), else the cache folder (installed or not)."""
    checkout = (tool_source_dir(name) / "install.sh").resolve().parent
    if (checkout / INSTALL_STAMP).is_file():
        return checkout
    return tool_cache_dir(name)
