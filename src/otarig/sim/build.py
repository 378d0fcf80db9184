"""Builds firmware for the host: a Particle project's real sources + firmware/host/ into one .so.

The simulated Electron runs the very sources that ship to the device (docs/design.md principle 2),
so every simulated device needs a host build. Builds are cached by a SHA-256 over the sources,
the flags and the compiler's version, written atomically and safe under concurrent callers
(several pytest workers may ask for the same build at once).
"""

from __future__ import annotations

import fcntl
import functools
import hashlib
import os
import shutil
import struct
import subprocess
import tempfile
from collections.abc import Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from .. import resources
from . import sanitizer
from .missing_api import explain as explain_missing_api

__all__ = ["BuildError", "build_firmware", "build_companion", "companion_project", "firmware_dir", "cache_dir",
           "compile_flags", "declared_product_version", "PRODUCT_VERSION_SECTION"]

#: the section `PRODUCT_VERSION(x)` puts its 16-bit value in (device-os v2.3.1
#: wiring/inc/spark_wiring_version.h:48; build/arm/linker/module_end.ld:8 copies it into the module
#: info suffix); firmware/host/Particle.h does the same in the host build
PRODUCT_VERSION_SECTION = ".modinfo.product_version"

#: Base flags (docs/dev/architecture.md): -fno-gnu-unique so that dlclose really unloads and a
#: reload re-runs static constructors; hidden visibility (plus the version script
#: firmware/host/otarig_exports.map at link time) so that only the otarig_* ABI is exported, each
#: loaded copy binds to its own symbols and libstdc++ never binds into the library (which would
#: pin it in memory).
BASE_FLAGS: tuple[str, ...] = (
    "-std=gnu++17",
    "-O1",
    "-fPIC",
    "-shared",
    "-fno-gnu-unique",
    "-fvisibility=hidden",
    "-Wall",
    # a function that can fall off its end without a value does not build for the Electron either
    # (device-os v2.3.1 build/module-defaults.mk:53): a firmware, or a generated defect, that does so
    # is refused here as it is there (such a mutant is invalid, not a survivor)
    "-Werror=return-type",
    # each function and datum in its own section, so that the link drops what nothing calls, as the
    # Device OS build does for the real firmware (device-os v2.3.1 build/module-defaults.mk:50,
    # build/arm-tools.mk:27): code the firmware never calls is then not in the build at all, and a
    # defect written into it builds the same machine code (TCE, otarig.mutation.equivalence)
    "-ffunction-sections",
    "-fdata-sections",
)

_SOURCE_SUFFIXES = {".cpp", ".c", ".h", ".hpp", ".ino", ".map"}


class BuildError(RuntimeError):
    """The companion could not be built for the host (missing compiler or a compile error)."""


def firmware_dir() -> Path:
    """The shipped firmware/ folder, or $OTARIG_FIRMWARE_DIR (otarig.resources)."""
    return resources.firmware_dir()


def cache_dir() -> Path:
    """Where builds are kept: $OTARIG_CACHE, else the user's cache folder (otarig.resources)."""
    return resources.build_cache_dir()


def _compiler() -> str:
    cxx = os.environ.get("CXX", "g++")
    path = shutil.which(cxx)
    if path is None:
        raise BuildError(
            f"cannot build firmware for the simulated bench: the C++ compiler {cxx!r} was not found on PATH "
            "(install g++, e.g. `apt-get install g++`, or set CXX)"
        )
    return path


@functools.cache  # asked by every build lookup (one per firmware a scenario uses); a run uses one compiler
def _compiler_version(cxx: str) -> str:
    try:
        out = subprocess.run([cxx, "--version"], capture_output=True, text=True, check=True, timeout=60)
    except (OSError, subprocess.SubprocessError) as exc:
        raise BuildError(f"cannot build firmware for the simulated bench: `{cxx} --version` failed: {exc}") from exc
    return out.stdout


def companion_project() -> Path:
    """The shipped device companion's project folder (firmware/companion/)."""
    return firmware_dir() / "companion"


def _sources(fw: Path, project: Path) -> tuple[list[Path], list[Path], list[Path]]:
    """(compiled sources, all hashed files, include dirs) for the host layer + a Particle project
    folder (`src/`, `lib/<name>/src/`, as `particle compile` lays it out)."""
    host = fw / "host"
    if not host.is_dir():
        raise BuildError(
            f"cannot build firmware for the simulated bench: {fw} has no host/ "
            "(reinstall otarig, or set OTARIG_FIRMWARE_DIR to a firmware folder with host/)"
        )
    if not (project / "src").is_dir():
        raise BuildError(
            f"cannot build {project}: it has no src/ folder (a Particle project folder holds src/, lib/ "
            "and project.properties; see docs/your-firmware.md)"
        )
    lib_srcs = sorted(p for p in (project / "lib").glob("*/src") if p.is_dir())
    include_dirs = [host, *lib_srcs, project / "src"]
    compiled: list[Path] = []
    hashed: list[Path] = []
    for d in include_dirs:
        for p in sorted(d.rglob("*")):
            if p.is_file() and p.suffix in _SOURCE_SUFFIXES:
                hashed.append(p)
                if p.suffix in {".cpp", ".c"}:
                    compiled.append(p)
    return compiled, hashed, include_dirs


def compile_flags(
    version: int = 1,
    *,
    threaded: bool = True,
    product_id: int = 4242,
    extra_defines: Mapping[str, object] | Iterable[str] | None = None,
) -> list[str]:
    """The -D flags for one variant of the companion (see firmware/companion/src/companion.cpp)."""
    defines = [
        "-DOTARIG_HOST_BUILD=1",  # a firmware can keep a call the host layer lacks out (docs/your-firmware.md)
        f"-DCOMPANION_VERSION={int(version)}",
        f"-DOTARIG_PRODUCT_VERSION={int(version)}",
        f"-DOTARIG_THREADED={1 if threaded else 0}",
        f"-DOTARIG_PRODUCT_ID={int(product_id)}",
    ]
    if extra_defines:
        items = extra_defines.items() if isinstance(extra_defines, Mapping) else ((d, None) for d in extra_defines)
        for name, value in sorted(items, key=lambda kv: str(kv[0])):
            name = str(name)
            if not name or any(c.isspace() for c in name):
                raise BuildError(f"bad define name {name!r}: expected a macro name without spaces")
            defines.append(f"-D{name}" if value is None else f"-D{name}={value}")
    return defines


def build_firmware(
    version: int = 1,
    *,
    project: Path | None = None,
    threaded: bool = True,
    mutant: int = 0,
    product_id: int = 4242,
    extra_defines: Mapping[str, object] | Iterable[str] | None = None,
) -> Path:
    """Build (or fetch from the cache) a Particle project folder (default: the shipped device
    companion) with the host layer as a host shared library; return its path.

    The path is stable for identical inputs, so callers must copy it before dlopen when they need
    several independent instances (dlopen of one path returns one instance). `mutant` N builds the
    device companion with its shipped defect N (firmware/mutants/NN-*.patch applied to a copy).
    """
    fw = firmware_dir()
    if mutant:
        from ..mutation.projects import ProjectError
        from ..mutation.shipped import shipped_defect_project

        try:
            project = shipped_defect_project(int(mutant), base=project)
        except ProjectError as exc:
            raise BuildError(str(exc)) from exc
    project = (project or companion_project()).resolve()
    cxx = _compiler()
    compiled, hashed, include_dirs = _sources(fw, project)
    defines = compile_flags(version, threaded=threaded, product_id=product_id,
                            extra_defines=extra_defines)
    sanitize = sanitizer.compile_flags()  # OTARIG_SANITIZE=address (otarig.sim.sanitizer)
    flags = [*BASE_FLAGS, *sanitize, *defines, *(f"-I{d}" for d in include_dirs)]
    exports = fw / "host" / "otarig_exports.map"
    link_flags = [*sanitize, *([f"-Wl,--version-script={exports}"] if exports.is_file() else [])]
    link_flags.append("-Wl,--no-undefined")  # a call the host layer lacks fails here, not at dlopen (missing_api)
    link_flags.append("-Wl,--gc-sections")

    digest = hashlib.sha256()
    digest.update(_compiler_version(cxx).encode())
    digest.update(b"\0".join(f.encode() for f in BASE_FLAGS + sanitize + tuple(defines)))
    contents: dict[Path, bytes] = {}
    for p in hashed:
        rel = p.relative_to(fw if p.is_relative_to(fw / "host") else project)
        contents[p] = b"\0file\0" + rel.as_posix().encode() + b"\0" + p.read_bytes()
        if p not in compiled:
            digest.update(contents[p])
    # An object depends on its own file and (conservatively) every header: a project copy that
    # changes one .cpp (a generated defect) recompiles only that one (otarig.mutation).
    headers_key = digest.copy()
    object_keys = []
    for p in compiled:
        one = headers_key.copy()
        one.update(contents[p])
        object_keys.append(one.hexdigest()[:32])
    for p in compiled:
        digest.update(contents[p])
    key = digest.hexdigest()[:24]

    out_dir = cache_dir()
    out_dir.mkdir(parents=True, exist_ok=True)
    stem = "".join(c if c.isalnum() or c in "-_" else "_" for c in project.name)[:40] or "firmware"
    name = f"{stem}-v{int(version)}-{'t' if threaded else 'nt'}-m{int(mutant)}-p{int(product_id)}{'-asan' if sanitize else ''}-{key}.so"
    target = out_dir / name
    if target.exists():
        return target

    # One builder per target; others wait on the lock and then find the finished file.
    lock_path = out_dir / f".{name}.lock"
    with open(lock_path, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            if target.exists():
                return target
            tmp = Path(tempfile.mkdtemp(prefix=f".{name}.", dir=out_dir))
            try:
                so_tmp = tmp / name
                _compile_and_link(cxx, flags, link_flags, compiled, tmp, so_tmp,
                                  f"{project.name} version={version} threaded={threaded} mutant={mutant}",
                                  object_cache=(out_dir / "objects", object_keys))
                os.chmod(so_tmp, 0o755)
                os.replace(so_tmp, target)  # atomic: readers see no file or a complete one
            finally:
                shutil.rmtree(tmp, ignore_errors=True)
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
    return target


def declared_product_version(so_path: Path) -> int | None:
    """The value the build's `PRODUCT_VERSION(x)` declared (its `.modinfo.product_version` section),
    or None when the firmware declares none. Read from the ELF file, without loading it (loading
    runs the app's static constructors), so an image can carry what the module itself carries."""
    data = Path(so_path).read_bytes()
    if data[:4] != b"\x7fELF" or data[4] != 2 or data[5] != 1:  # 64-bit little-endian, as g++ builds here
        raise BuildError(f"{so_path} is not a 64-bit little-endian ELF file: cannot read its PRODUCT_VERSION")
    shoff, = struct.unpack_from("<Q", data, 0x28)
    shentsize, shnum, shstrndx = struct.unpack_from("<HHH", data, 0x3A)

    def header(i: int) -> tuple[int, int, int, int]:
        name, kind, _flags, _addr, offset, size = struct.unpack_from("<IIQQQQ", data, shoff + i * shentsize)
        return name, kind, offset, size

    _, _, names_at, names_size = header(shstrndx)
    names = data[names_at:names_at + names_size]
    wanted = PRODUCT_VERSION_SECTION.encode()
    for i in range(shnum):
        name, kind, offset, size = header(i)
        if names[name:names.index(b"\0", name)] == wanted and kind != 8 and size >= 2:  # 8: SHT_NOBITS
            return struct.unpack_from("<H", data, offset)[0]
    return None


#: the shipped companion is one project among others (kept under its old name for its callers)
build_companion = build_firmware


def _compile_and_link(cxx: str, flags: list[str], link_flags: list[str], sources: list[Path], work: Path,
                      out: Path, variant: str, *, object_cache: tuple[Path, list[str]] | None = None) -> None:
    """Compile each translation unit in parallel (a build is on the critical path of every
    simulated test), then link them into `out`. With `object_cache` (folder, one key per source),
    an object already built under its key is reused and a new one is kept there."""
    compile_flags_ = [f for f in flags if f != "-shared"]
    objects = [work / f"{i:02d}-{src.stem}.o" for i, src in enumerate(sources)]
    cached: list[Path | None] = [None] * len(sources)
    if object_cache is not None:
        folder, keys = object_cache
        folder.mkdir(parents=True, exist_ok=True)
        cached = [folder / f"{k}.o" for k in keys]
        for i, c in enumerate(cached):
            if c is not None and c.is_file():
                objects[i] = c
    todo = [i for i in range(len(sources)) if objects[i].parent == work]

    def run(cmd: list[str]) -> subprocess.CompletedProcess[str]:
        try:
            # the compiler never runs under a sanitizer runtime preloaded for the firmware
            return subprocess.run(cmd, capture_output=True, text=True, timeout=600, check=False,
                                  env=sanitizer.without_runtime())
        except (OSError, subprocess.SubprocessError) as exc:
            raise BuildError(f"cannot run the C++ compiler {cxx}: {exc}") from exc

    jobs = max(1, min(len(todo), os.cpu_count() or 1))
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        results = list(pool.map(lambda i: run([cxx, *compile_flags_, "-c", str(sources[i]), "-o", str(objects[i])]),
                                todo))
    for i, proc in zip(todo, results):
        if proc.returncode != 0:
            missing = explain_missing_api(proc.stderr, sources, host=firmware_dir() / "host")
            if missing:
                raise BuildError(missing)
            first = "\n".join(_first_errors(proc.stderr))
            raise BuildError(
                f"compiling firmware failed in {sources[i].name} ({cxx} exit {proc.returncode}; "
                f"{variant}):\n{first}"
            )
        keep = cached[i]
        if keep is not None:
            shutil.copy2(objects[i], keep.with_suffix(f".{os.getpid()}.tmp"))
            os.replace(keep.with_suffix(f".{os.getpid()}.tmp"), keep)  # atomic for concurrent builders
    proc = run([cxx, "-shared", "-fPIC", *link_flags, *(str(o) for o in objects), "-o", str(out)])
    if proc.returncode != 0:
        missing = explain_missing_api(proc.stderr, sources, host=firmware_dir() / "host")
        if missing:
            raise BuildError(missing)
        first = "\n".join(_first_errors(proc.stderr))
        raise BuildError(f"linking firmware failed ({cxx} exit {proc.returncode}; {variant}):\n{first}")


def _first_errors(stderr: str, limit: int = 20) -> list[str]:
    """The compiler's first error lines (with their context), not the whole log."""
    lines = stderr.splitlines()
    for i, line in enumerate(lines):
        if "error" in line:
            start = max(0, i - 2)
            return lines[start:start + limit]
    return lines[:limit] or ["(no compiler output)"]
