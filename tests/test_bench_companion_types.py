"""Type-check the bench companion (firmware/bench/*.py) against MicroPython 1.27's RP2040 stubs.

mypy with tools/micropython/mypy.ini: the stubs' own reduced stdlib (sys, json, ...) as typeshed,
their `machine`, `time`, `select`, `micropython` on the module path, and the bodies of the
program's unannotated functions checked. The stubs live beside mypy.ini in the MicroPython install
(`otarig tools path micropython`; install.sh, `pip install --target`), never in the venv. Needs
`otarig tools install`.
"""
from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from otarig import resources

ROOT = Path(__file__).resolve().parents[1]
CONFIG = resources.tool_dir("micropython") / "mypy.ini"  # its $MYPY_CONFIG_FILE_DIR/stubs are the installed ones

#: Uses only MicroPython's modules and names (CPython's typeshed has none of them), then misuses
#: them: the check must use the rp2 stubs, and must catch each `# error` line.
PROBE = """\
import sys
import time
import select
import micropython
from machine import Pin, Timer

sys.print_exception(ValueError("x"))
start = time.ticks_ms()
elapsed = time.ticks_diff(time.ticks_ms(), start)
poller = select.poll()
poller.register(sys.stdin, select.POLLIN)
ready = [x for x in poller.ipoll(0)]
micropython.schedule(print, 1)
led = Pin(25, Pin.OUT, value=0)
led.irq(handler=None, trigger=Pin.IRQ_RISING, hard=True)
Timer(-1, mode=Timer.ONE_SHOT, period=10, callback=lambda t: None)
Pin(2, "out")  # error: arg-type
Pin(3, Pin.IN, Pin.PULL_DOWN).irq(trigger="rising")  # error: arg-type
Timer(-1, mode=Timer.ONE_SHOT, period="10", callback=lambda t: None)  # error: call-overload
time.ticks_ms(5)  # error: call-arg
micropython.schedule(print)  # error: call-arg
"""


def mypy(*paths: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "mypy", "--config-file", str(CONFIG), *map(str, paths)],
                          capture_output=True, text=True, timeout=120, cwd=ROOT)


def test_bench_companion_is_clean(micropython_stubs: Path) -> None:
    res = mypy(*sorted((ROOT / "firmware" / "bench").glob("*.py")))
    assert res.returncode == 0, res.stdout + res.stderr
    assert res.stdout.startswith("Success: no issues found in 2 source files"), res.stdout


def test_check_uses_the_stubs_and_catches_errors(micropython_stubs: Path, tmp_path: Path) -> None:
    probe = tmp_path / "probe.py"
    probe.write_text(PROBE)
    res = mypy(probe)
    found = {(int(m[1]), m[2]) for m in re.finditer(r"^.*probe\.py:(\d+): error: .*\[([a-z-]+)\]$", res.stdout, re.M)}
    want = {(n, line.split("# error: ")[1]) for n, line in enumerate(PROBE.splitlines(), 1) if "# error: " in line}
    assert res.returncode == 1
    assert found == want, res.stdout


def test_catches_an_error_in_the_program(micropython_stubs: Path, tmp_path: Path) -> None:
    """Inside an unannotated method body (check_untyped_defs): a wrong pull argument to Pin."""
    src = (ROOT / "firmware" / "bench" / "otarig_bench.py").read_text()
    good = 'Pin(pins["status"]["pin"], Pin.IN, Pin.PULL_DOWN)'
    assert good in src
    text = src.replace(good, 'Pin(pins["status"]["pin"], Pin.IN, "down")')
    bad = tmp_path / "otarig_bench.py"
    bad.write_text(text)
    line = next(n for n, x in enumerate(text.splitlines(), 1) if '"down"' in x)
    res = mypy(bad)
    assert res.returncode == 1
    assert f'otarig_bench.py:{line}: error: Argument 3 to "Pin" has incompatible type "str"; expected "int"' \
        in res.stdout, res.stdout
