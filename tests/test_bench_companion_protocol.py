"""The bench companion's protocol (firmware/bench/otarig_bench.py) under CPython.

One test per `case_*` of tests/bench_companion/protocol_cases.py (the same cases run on real
MicroPython in test_bench_companion_micropython.py). Each gets a fresh fakemachine and a fresh
program, both loaded with `otarig.sim.micropython_host.load_module` as the simulated bench loads
them. Two variants: `rp2` gives the program a `micropython` module (the fakemachine: callbacks
scheduled from the hard IRQ run after it returns, as on the board), `no-micropython` leaves the
program its own fallback (callbacks run inline, as in the simulated bench). Manual clock: no sleeps.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from otarig.sim.micropython_host import load_module

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / "firmware" / "bench"
CASES_DIR = Path(__file__).resolve().parent / "bench_companion"
PINS = json.loads((BENCH / "bench_pins.json").read_text())

cases_mod = load_module(CASES_DIR / "protocol_cases.py", {})
CASES = cases_mod.all_cases()


def maker(variant: str) -> Any:
    fm = load_module(CASES_DIR / "fakemachine.py", {}, name="machine")
    modules = {"machine": fm, "time": fm}
    if variant == "rp2":
        modules["micropython"] = fm
    return cases_mod.Maker(PINS, fm, lambda: load_module(BENCH / "otarig_bench.py", modules))


def _param(name: str, fn: Any) -> Any:
    bug = cases_mod.EXPECTED_FAILURES.get(name)
    marks = [pytest.mark.xfail(reason=bug, raises=AssertionError, strict=True)] if bug else []
    return pytest.param(fn, id=name, marks=marks)


@pytest.mark.parametrize("variant", ["rp2", "no-micropython"])
@pytest.mark.parametrize("case", [_param(name, fn) for name, fn in CASES])
def test_case(case: Any, variant: str) -> None:
    case(maker(variant))


def test_variants_differ_in_schedule() -> None:
    """`rp2`: the cut's events wait until the hard IRQ handler returned; fallback: they are inline."""
    for variant, inline in (("rp2", False), ("no-micropython", True)):
        b = maker(variant)()
        b.ok("arm_cut", edges=1, off_ms=10)
        b.c._on_status(None)  # the handler alone, without fakemachine.drive's run of pending callbacks
        assert not b.closed("vin") and not b.closed("vbus")
        assert bool([m for m in b.lines() if m["ev"] == "cut"]) is inline, variant
        b.fm._run_pending()
        assert len([m for m in b.lines() if m["ev"] == "cut"]) == (0 if inline else 1), variant


def test_run_all_reports_failures(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    """run_all's output is what the MicroPython test reads: a line per failure, then the count."""
    def case_fails(mk: Any) -> None:
        mk().ok("switch", vin="yes")

    def case_passes(mk: Any) -> None:
        pass

    named = dict(CASES)
    failed = cases_mod.run_all(PINS, maker("rp2"), [("ping", named["ping"]), ("status", named["status"]),
                                                    ("fails", case_fails)])
    out = capsys.readouterr().out.splitlines()
    assert failed == 1
    assert out[0].startswith("FAIL fails: AssertionError: switch {'vin': 'yes'}: expected ok")
    assert out[-1] == "2 passed, 1 failed"

    monkeypatch.setattr(cases_mod, "EXPECTED_FAILURES", {"known": "a known bug"})
    assert cases_mod.run_all(PINS, maker("rp2"), [("known", case_fails)]) == 0
    assert capsys.readouterr().out.splitlines() == ["XFAIL known: a known bug", "0 passed, 0 failed, 1 skipped"]
    assert cases_mod.run_all(PINS, maker("rp2"), [("known", case_passes)]) == 1
    assert capsys.readouterr().out.splitlines() == [
        "FAIL known: passed, but is listed in EXPECTED_FAILURES: remove it there", "0 passed, 1 failed"]


def test_fakemachine_timers_and_edges() -> None:
    fm = load_module(CASES_DIR / "fakemachine.py", {}, name="machine")
    fired: list[tuple[str, int]] = []
    fm.Timer(-1, mode=fm.Timer.PERIODIC, period=30, callback=lambda t: fired.append(("p", fm.now())))
    one = fm.Timer(-1, mode=fm.Timer.ONE_SHOT, period=30, callback=lambda t: fired.append(("o", fm.now())))
    gone = fm.Timer(-1, mode=fm.Timer.ONE_SHOT, period=10, callback=lambda t: fired.append(("x", fm.now())))
    gone.deinit()
    fm.advance(29)
    assert fired == []
    fm.advance(31)
    assert fired == [("p", 30), ("o", 30), ("p", 60)] and fm.now() == 60 and one not in fm._timers
    assert fm.ticks_diff(fm.ticks_add(fm.ticks_ms(), -100), fm.ticks_ms()) == -100

    edges: list[Any] = []
    pin = fm.Pin(6, fm.Pin.IN, fm.Pin.PULL_DOWN)
    pin.irq(handler=edges.append, trigger=fm.Pin.IRQ_FALLING)
    fm.drive(6, 1)
    fm.drive(6, 0)
    fm.drive(6, 0)
    assert edges == [pin] and pin.value() == 0
    out = fm.Pin(2, fm.Pin.OUT, value=1)
    assert fm.level(2) == 1 and out.value() == 1
    with pytest.raises(ValueError):
        fm.drive(2, 0)
    with pytest.raises(ValueError):
        fm.level(6)
    fm.reset()
    assert fm.now() == 0 and fm.timers() == []
