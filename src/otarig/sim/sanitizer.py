"""AddressSanitizer for host builds of the firmware: a memory error no timeline can show.

An out-of-bounds read or a use-after-free in the firmware may change nothing a scenario can see on
the host (what lies past an array is the compiler's layout) and still persist garbage on an
Electron. Built with `-fsanitize=address`, the first such access ends the process with the
sanitizer's report, naming the file and line (docs/selftest.md "A second look at survivors").

The firmware runs inside the Python process (ctypes) on greenlet stacks, so two things follow:
- the sanitizer's runtime must be loaded before anything else (`LD_PRELOAD`), as the firmware is a
  library loaded later; `environment()` gives a child process that;
- stack instrumentation stays off (`--param asan-stack=0`): greenlets switch stacks behind the
  sanitizer's back, and it would report the switch itself. Globals and the heap are checked.

Whether a process builds sanitized is a property of the process (its runtime is preloaded or not),
so it is chosen by the environment variable `OTARIG_SANITIZE=address`, not per build.
"""
from __future__ import annotations

import functools
import os
import re
import subprocess
from pathlib import Path

__all__ = ["ENV", "SanitizerError", "check_loadable", "compile_flags", "enabled", "environment", "first_report",
           "report_summary", "runtime", "runtime_loaded", "without_runtime"]

#: the variable that asks for sanitized builds in this process (and its children)
ENV = "OTARIG_SANITIZE"
#: heap and globals; not the stack (greenlets, above); frame pointers and line tables, so that a
#: report names the firmware's file:line
_FLAGS = ("-fsanitize=address", "--param", "asan-stack=0", "-fno-omit-frame-pointer", "-g1")
#: detect_leaks=0: the interpreter never frees some memory at exit, leak reports would be about it;
#: fast_unwind_on_fatal=1: the report's backtrace follows frame pointers, as the default unwinder
#: crashes walking out of the firmware through libffi into a greenlet's stack
_OPTIONS = "detect_leaks=0:halt_on_error=1:fast_unwind_on_fatal=1:print_summary=1"


class SanitizerError(RuntimeError):
    """Sanitized builds were asked for, but this process cannot load one."""


def enabled() -> bool:
    """True when this process builds and loads the firmware with AddressSanitizer."""
    value = os.environ.get(ENV, "").strip().lower()
    if value in ("", "0", "no", "off"):
        return False
    if value != "address":
        raise SanitizerError(f"{ENV}={value!r}: the only sanitizer the host build knows is 'address'")
    return True


def compile_flags() -> tuple[str, ...]:
    """Extra compile and link flags of a sanitized build (none unless `enabled()`)."""
    return _FLAGS if enabled() else ()


def runtime_loaded() -> bool:
    """Whether the sanitizer's runtime is mapped into this process (it must come first)."""
    try:
        return "libasan" in Path("/proc/self/maps").read_text()
    except OSError:
        return False


def check_loadable() -> None:
    """Raise a one-line error naming the fix when a sanitized build could not be loaded here."""
    if enabled() and not runtime_loaded():
        raise SanitizerError(
            f"{ENV}=address builds the firmware with AddressSanitizer, whose runtime must be loaded before "
            f"Python starts: run with LD_PRELOAD='{preload() or '<libasan.so> <libstdc++.so>'}' (otarig selftest "
            f"does this for its sanitized pass), or unset {ENV}")


@functools.cache
def _compiler_file(name: str) -> str | None:
    """A runtime library of the compiler (`g++ -print-file-name=NAME`), or None when it has none."""
    cxx = os.environ.get("CXX", "g++")
    try:
        out = subprocess.run([cxx, f"-print-file-name={name}"], capture_output=True, text=True,
                             timeout=60, check=True, env=without_runtime()).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return out if out and Path(out).is_file() else None


def runtime() -> str | None:
    """The path of the compiler's AddressSanitizer runtime, or None when it has none."""
    return _compiler_file("libasan.so")


def _cxx_runtime() -> str | None:
    return _compiler_file("libstdc++.so")


def preload() -> str | None:
    """What `LD_PRELOAD` must name: the sanitizer's runtime, then libstdc++, which the interpreter
    does not link: the runtime takes the C++ exception entry points when it starts, and without them
    the firmware's first `throw` (the host layer ends a run with one) stops it."""
    lib, cxx = runtime(), _cxx_runtime()
    return f"{lib} {cxx}" if lib and cxx else lib


def environment(base: dict[str, str] | None = None) -> dict[str, str]:
    """An environment for a child process that builds and runs the firmware sanitized."""
    lib = runtime()
    if lib is None:
        raise SanitizerError("the compiler has no AddressSanitizer runtime (g++ -print-file-name=libasan.so "
                             "finds none): install it (Debian: libasan8, with g++)")
    env = dict(os.environ if base is None else base)
    env[ENV] = "address"
    env["LD_PRELOAD"] = " ".join(x for x in (preload(), env.get("LD_PRELOAD", "")) if x)
    env["ASAN_OPTIONS"] = ":".join(x for x in (_OPTIONS, env.get("ASAN_OPTIONS", "")) if x)
    return env


def without_runtime(env: dict[str, str] | None = None) -> dict[str, str]:
    """A child's environment without the preloaded runtime (and the libstdc++ preloaded with it):
    the compiler and other tools run plain."""
    env = dict(os.environ if env is None else env)
    kept = [x for x in env.get("LD_PRELOAD", "").split() if not Path(x).name.startswith(("libasan", "libstdc++"))]
    if kept:
        env["LD_PRELOAD"] = " ".join(kept)
    else:
        env.pop("LD_PRELOAD", None)
    return env


_SUMMARY = re.compile(r"SUMMARY: AddressSanitizer: (?P<what>.+)")


def report_summary(log: str) -> str | None:
    """The sanitizer's one-line summary in a process's output ("global-buffer-overflow
    …/RecordLog.cpp:83 in RecordLog::append…"), or None when it reported nothing."""
    m = _SUMMARY.search(log)
    return m.group("what").strip() if m else None


def first_report(folder: Path, prefix: str = "sanitizer") -> tuple[str, Path] | None:
    """The first memory error reported into `folder` (`log_path=folder/prefix`, one file per
    process): its one-line summary and the file with the whole report; None when there is none."""
    for log in sorted(folder.glob(f"{prefix}.*")):
        found = report_summary(log.read_text(errors="replace"))
        if found is not None:
            return found, log
    return None


def _runtime_stays_here() -> None:
    """The preloaded runtime is for this process: a tool it starts (the `particle` CLI's Node.js,
    the compiler) must not run under it, as its own memory errors would stop the run. The runtime is
    loaded by now, so taking it out of this process's environment changes nothing here."""
    if runtime_loaded() and "LD_PRELOAD" in os.environ:
        plain = without_runtime(dict(os.environ))
        os.environ.clear()
        os.environ.update(plain)


_runtime_stays_here()
