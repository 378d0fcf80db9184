"""Run the bench companion's MicroPython program under CPython, in virtual time.

Why: docs/design.md principle 2 (firmware in the loop) — the simulated bench runs the very `main.py` and
`otarig_bench.py` that go on the tester board. Their MicroPython-only imports resolve to stand-ins:
`machine` (given by the caller, wired to the simulated Electron), `time` (ticks over the bench's
virtual clock), `select` and `sys` (the USB serial, i.e. the board's pty). Nothing else changes.

The program runs in a greenlet, like the Electron's app (`host_runtime`): its main loop's
`poll()` parks it until a byte arrives or an interrupt/timer callback ran (`kick`), so an idle
companion costs nothing however long the simulated week. A real board polls every few ms; those
idle passes do nothing, so skipping them changes no output.
"""
from __future__ import annotations

import builtins
import codecs
import types
from pathlib import Path
from typing import Any, Callable

import greenlet

from .scheduler import Scheduler

#: MicroPython's ticks wrap at 2**30 (TICKS_PERIOD in extmod/modtime.c).
TICKS_PERIOD = 1 << 30
POLLIN = 1


def _program_import(modules: dict[str, Any]) -> Callable[..., Any]:
    real = builtins.__import__

    def imp(name: str, globals: Any = None, locals: Any = None, fromlist: Any = (), level: int = 0) -> Any:
        if level == 0 and name in modules:
            return modules[name]
        return real(name, globals, locals, fromlist, level)

    return imp


def load_module(path: Path, modules: dict[str, Any], *, name: str | None = None,
                root: Path | None = None) -> types.ModuleType:
    """Execute one MicroPython source file as a module whose imports of `modules` resolve there.

    `root` is the board's filesystem root: relative `open()` paths resolve against it.
    """
    root = root or path.parent
    own = dict(vars(builtins))
    own["__import__"] = _program_import(modules)
    own["open"] = lambda file, *a, **k: open(root / file if not Path(file).is_absolute() else file, *a, **k)
    mod = types.ModuleType(name or path.stem)
    mod.__file__ = str(path)
    mod.__dict__["__builtins__"] = own
    exec(compile(path.read_text(), str(path), "exec"), mod.__dict__)
    return mod


def time_module(sched: Scheduler) -> types.SimpleNamespace:
    """MicroPython's `time` over virtual time (ticks_ms wraps like the real one). The program
    never blocks in `sleep_ms` (its loop waits in `poll`), so a blocking sleep is refused."""

    def ticks_diff(a: int, b: int) -> int:
        return ((a - b + TICKS_PERIOD // 2) % TICKS_PERIOD) - TICKS_PERIOD // 2

    def sleep_ms(ms: int) -> None:
        raise NotImplementedError("time.sleep_ms in the simulated bench companion: wait in poll() instead")

    return types.SimpleNamespace(
        ticks_ms=lambda: sched.now_ms % TICKS_PERIOD,
        ticks_us=lambda: (sched.now_ms * 1000) % TICKS_PERIOD,
        ticks_add=lambda t, delta: (t + delta) % TICKS_PERIOD,
        ticks_diff=ticks_diff,
        time=lambda: sched.now_ms // 1000,
        sleep_ms=sleep_ms,
        sleep=lambda s: sleep_ms(int(s * 1000)),
    )


class _Stdin:
    """The USB serial as the program reads it: `read(1)` returns one character (UTF-8 decoded)."""

    def __init__(self) -> None:
        self.text = ""
        self._decoder = codecs.getincrementaldecoder("utf-8")("replace")

    def feed(self, data: bytes) -> None:
        self.text += self._decoder.decode(data)

    def available(self) -> bool:
        return bool(self.text)

    def read(self, n: int = 1) -> str:
        out, self.text = self.text[:n], self.text[n:]
        return out


class _Stdout:
    def __init__(self, write: Callable[[bytes], None]) -> None:
        self._write = write

    def write(self, s: str) -> int:
        data = s.encode()
        self._write(data)
        return len(data)


class MicroPythonHost:
    """One MicroPython board's program (`main.py` in `program_dir`) running under CPython.

    `machine` is the board's `machine` module; `write` takes what the program prints (bytes for
    the USB serial). Call `start()` once, `feed()` with bytes from the host, and `kick()` from
    interrupt/timer stand-ins after they ran a callback.
    """

    def __init__(self, program_dir: Path, sched: Scheduler, machine: Any, write: Callable[[bytes], None],
                 *, platform: str = "rp2") -> None:
        self.program_dir = program_dir
        self.sched = sched
        self.stdin = _Stdin()
        self.stdout = _Stdout(write)
        self._kicked = False
        self._waiting = False
        self._glet: greenlet.greenlet | None = None
        self.modules: dict[str, Any] = {
            "machine": machine,
            "time": time_module(sched),
            "select": types.SimpleNamespace(poll=lambda: _Poll(self), POLLIN=POLLIN),
            "sys": types.SimpleNamespace(stdin=self.stdin, stdout=self.stdout, platform=platform,
                                         implementation=types.SimpleNamespace(name="micropython-sim")),
        }

    def load(self, name: str) -> types.ModuleType:
        """Load one of the program's own modules (`name`.py) with the stand-ins."""
        mod = load_module(self.program_dir / f"{name}.py", self.modules, root=self.program_dir)
        self.modules[name] = mod
        return mod

    def start(self) -> None:
        """Boot: load the program's modules, then run `main.py` until it first waits."""
        for src in sorted(self.program_dir.glob("*.py")):
            if src.stem != "main":
                self.load(src.stem)
        main = self.program_dir / "main.py"
        self._glet = greenlet.greenlet(lambda: load_module(main, self.modules, name="__main__"))
        self._resume()

    @property
    def running(self) -> bool:
        return self._glet is not None and not self._glet.dead

    def feed(self, data: bytes) -> None:
        """Bytes from the host on the USB serial."""
        self.stdin.feed(data)
        self.kick()

    def kick(self) -> None:
        """Something changed (input, a callback queued output): let the main loop look."""
        self._kicked = True
        if self._waiting and greenlet.getcurrent() is not self._glet:
            self._resume()

    def _resume(self) -> None:
        assert self._glet is not None
        self._glet.parent = greenlet.getcurrent()  # the program returns here when it waits again
        self._glet.switch()
        if self._glet.dead:
            raise RuntimeError(f"the bench companion program in {self.program_dir} exited "
                               "(a real board would drop to the REPL)")

    def stop(self) -> None:
        """Unplugged: end the program where it waits. A parked greenlet is never collected (its
        frames are invisible to the garbage collector), so it would keep the board and the whole
        simulated world alive for the rest of the process."""
        if self._glet is not None and not self._glet.dead:
            try:
                self._glet.parent = greenlet.getcurrent()  # GreenletExit ends it and comes back here
                self._glet.throw()
            except greenlet.error:  # asked from another thread than the world's: it stays parked
                return
        self._glet = None

    def wait(self) -> None:
        """Called on the program's greenlet: park until `kick`."""
        assert self._glet is not None and greenlet.getcurrent() is self._glet
        self._waiting = True
        try:
            self._glet.parent.switch()
        finally:
            self._waiting = False


class _Poll:
    """`select.poll()` on the USB serial: returns at once with input or after a kick."""

    def __init__(self, host: MicroPythonHost) -> None:
        self.host = host

    def register(self, obj: Any, mask: int = POLLIN) -> None:
        if obj is not self.host.stdin:
            raise ValueError("the simulated board can only poll sys.stdin")

    def poll(self, timeout: int = -1) -> list[tuple[Any, int]]:
        host = self.host
        while True:
            if host.stdin.available():
                return [(host.stdin, POLLIN)]
            if host._kicked:
                host._kicked = False
                return []
            host.wait()
