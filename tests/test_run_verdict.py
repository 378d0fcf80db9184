"""One verdict on a run: the exit status of `otarig run` and `passed` in its record always agree,
and a run that tested nothing, or skipped for want of a capability or a tool, does not pass."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from otarig.plugin import SKIP_NEEDS, SKIP_POLICY
from otarig.runner import REPORT_MARKER, run_verdict

REPO = Path(__file__).resolve().parents[1]
OTARIG = [sys.executable, "-m", "otarig.cli"]


def _r(outcome: str, reason: str = "") -> dict:
    return {"outcome": outcome, "reason": reason}


@pytest.mark.parametrize("results, allow, interrupted, passed", [
    ([_r("passed"), _r("passed")], False, False, True),
    ([_r("passed"), _r("failed")], False, False, False),
    ([_r("passed"), _r("error")], True, False, False),
    ([_r("passed"), _r("skipped", SKIP_NEEDS + "tool: particle-cli")], False, False, False),
    ([_r("passed"), _r("skipped", SKIP_NEEDS + "tool: particle-cli")], True, False, True),
    ([_r("passed"), _r("skipped", SKIP_POLICY + "sim_only")], False, False, True),
    ([_r("skipped", SKIP_POLICY + "long"), _r("skipped", SKIP_POLICY + "sim_only")], True, False, False),
    ([], True, False, False),
    ([_r("passed")], False, True, False),
])
def test_run_verdict(results: list[dict], allow: bool, interrupted: bool, passed: bool) -> None:
    ok, why = run_verdict(results, allow_skips=allow, interrupted=interrupted)
    assert ok is passed
    assert bool(why) is not passed


def _run(tmp_path: Path, *args: str, env: dict[str, str] | None = None, bench: Path | None = None) -> tuple[int, str, dict]:
    report = tmp_path / "report"
    done = subprocess.run([*OTARIG, "run", "--bench", str(bench or REPO / "bench_config.toml"),
                           "--report", str(report), *args], cwd=REPO, capture_output=True, text=True,
                          env={**os.environ, **(env or {})}, timeout=600)
    record = json.loads((report / "certification.json").read_text()) if (report / "certification.json").exists() else {}
    return done.returncode, done.stdout + done.stderr, record


def test_a_bench_whose_scenarios_all_skip_does_not_pass(tmp_path: Path) -> None:
    """A simulated bench without a tester board: the tester's scenarios all skip for want of a
    capability; the run exits non-zero, even with --allow-skips (nothing was tested)."""
    text = (REPO / "bench_config.toml").read_text()
    bench = tmp_path / "bench.toml"
    bench.write_text(text.split("[bench_companion]")[0] + "[capabilities]\npsu = true\n")
    rc, out, record = _run(tmp_path, "-k", "test_bench_companion", bench=bench)
    assert rc != 0 and record["passed"] is False
    assert record["summary"]["skipped"] == 4 and record["summary"]["passed"] == 0
    assert "SKIP" in out and "capability" in out
    rc, _, record = _run(tmp_path, "-k", "test_bench_companion", "--allow-skips", bench=bench)
    assert rc != 0 and record["passed"] is False and "no scenario ran" in record["not_passed_because"]


def test_a_missing_particle_cli_names_the_tool_and_fails_unless_skips_are_allowed(tmp_path: Path) -> None:
    """The scenario that drives the real `particle` CLI cannot run when the CLI is missing: the run
    says which tool, exits non-zero, and the record agrees; --allow-skips lets the rest pass."""
    missing = {"OTARIG_PARTICLE_CLI": str(tmp_path / "no-such-particle-cli.js")}
    rc, out, record = _run(tmp_path, "-k", "particle_cli or lock_and_flash", env=missing)
    assert rc != 0 and record["passed"] is False
    assert "particle-cli" in out and "SKIP" in out
    assert record["summary"]["passed"] == 1 and record["summary"]["skipped"] == 1
    rc, out, record = _run(tmp_path, "-k", "particle_cli or lock_and_flash", "--allow-skips", env=missing)
    assert rc == 0 and record["passed"] is True and record["skips_allowed"] is True


def test_the_report_folder_is_never_a_folder_otarig_did_not_make(tmp_path: Path) -> None:
    """`--report` naming a folder with other files in it is refused and nothing in it is touched;
    a folder an earlier run wrote (it carries the marker) is replaced."""
    lab = tmp_path / "lab"
    lab.mkdir()
    (lab / "notes.txt").write_text("keep me")
    done = subprocess.run([*OTARIG, "run", "--report", str(lab), "-k", "lock_and_flash"], cwd=REPO,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode != 0 and "not an otarig report" in done.stderr
    assert (lab / "notes.txt").read_text() == "keep me" and sorted(p.name for p in lab.iterdir()) == ["notes.txt"]
    rc, _, record = _run(tmp_path, "-k", "lock_and_flash")
    assert rc == 0 and (tmp_path / "report" / REPORT_MARKER).is_file()
    rc, _, record = _run(tmp_path, "-k", "lock_and_flash")
    assert rc == 0 and record["passed"] is True
