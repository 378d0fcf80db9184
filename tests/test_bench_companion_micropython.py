"""The bench companion on real MicroPython, and compiled with mpy-cross.

- The protocol cases (tests/bench_companion/protocol_cases.py) run on MicroPython 1.27's
  WebAssembly port (tools/micropython/run.mjs): the program as source, and as the .mpy that
  mpy-cross 1.27 makes of it. The fakemachine runs the status line's hard IRQ handler with the heap
  locked, so an allocation there fails as on the board.
- mpy-cross compiles firmware/bench/*.py to .mpy v6 (what MicroPython 1.27 loads), and refuses a
  syntax error naming the file and line.

Needs `otarig tools install` (skips without it; fails under CI).
"""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from otarig.sim.micropython_host import load_module

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / "firmware" / "bench"
CASES_DIR = Path(__file__).resolve().parent / "bench_companion"
PINS = json.loads((BENCH / "bench_pins.json").read_text())


def run_micropython(cmd: list[str], files: list[str], code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*cmd, *files, "-c", code], capture_output=True, text=True, timeout=120)


def expected_summary() -> str:
    cases = load_module(CASES_DIR / "protocol_cases.py", {})
    known = len(cases.EXPECTED_FAILURES)
    line = f"{len(cases.all_cases()) - known} passed, 0 failed"
    return line + (f", {known} skipped" if known else "")


def mpy_cross(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "mpy_cross", *map(str, args)], capture_output=True, text=True,
                          timeout=60)


@pytest.mark.parametrize("form", ["source", "mpy"])
def test_protocol_cases_on_micropython(micropython_cmd: list[str], form: str, tmp_path: Path) -> None:
    program = BENCH / "otarig_bench.py"
    if form == "mpy":
        compiled = tmp_path / "otarig_bench.mpy"
        assert mpy_cross("-o", compiled, program).returncode == 0
        program = compiled
    files = [f"{CASES_DIR / 'fakemachine.py'}=machine.py", str(CASES_DIR / "protocol_cases.py"), str(program)]
    code = f"import json, protocol_cases\nprotocol_cases.run_all(json.loads({json.dumps(PINS)!r}))"
    res = run_micropython(micropython_cmd, files, code)
    out = res.stdout.splitlines()
    assert res.returncode == 0, res.stdout + res.stderr
    assert out and out[-1] == expected_summary(), res.stdout + res.stderr
    assert not [line for line in out if line.startswith("FAIL")], res.stdout


def test_runner_is_micropython_and_fails_on_exception(micropython_cmd: list[str], tmp_path: Path) -> None:
    res = run_micropython(micropython_cmd, [], "import sys\nprint(sys.implementation.name, sys.implementation.version[:3])")
    assert (res.returncode, res.stdout) == (0, "micropython (1, 27, 0)\n"), res.stderr
    mod = tmp_path / "broken.py"
    mod.write_text("def f():\n    raise KeyError('boom')\n")
    res = run_micropython(micropython_cmd, [f"{mod}=nested.py"], "import nested\nnested.f()")
    assert res.returncode == 1
    assert 'File "/lib/nested.py", line 2' in res.stderr and "KeyError: boom" in res.stderr


@pytest.mark.parametrize("name", ["otarig_bench.py", "main.py"])
def test_mpy_cross_compiles(name: str, tmp_path: Path) -> None:
    assert "mpy-cross emitting mpy v6.3" in mpy_cross("--version").stdout
    out = tmp_path / name.replace(".py", ".mpy")
    res = mpy_cross("-o", out, BENCH / name)
    assert res.returncode == 0, res.stderr
    header = out.read_bytes()[:2]
    assert header[:1] == b"M" and header[1] == 6, header  # .mpy version 6: MicroPython >= 1.23


def test_mpy_cross_refuses_syntax_error(tmp_path: Path) -> None:
    bad = tmp_path / "bad_bench.py"
    bad.write_text("import json\ndef f(:\n    pass\n")
    res = mpy_cross("-o", tmp_path / "bad_bench.mpy", bad)
    assert res.returncode != 0
    assert f'File "{bad}", line 2' in res.stderr and "SyntaxError" in res.stderr, res.stderr
    assert not (tmp_path / "bad_bench.mpy").exists()
