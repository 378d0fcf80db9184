"""The main job end to end: `otarig run` on the default simulated bench, and the suite's power
to fail (`otarig selftest` on one mutant). Real subprocesses, real report files."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _otarig(*args: str, timeout: float) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "otarig.cli", *args], cwd=REPO, capture_output=True,
                          text=True, timeout=timeout)


def test_otarig_run_passes_every_scenario_and_writes_the_report(tmp_path):
    report = tmp_path / "report"
    proc = _otarig("run", "--report", str(report), timeout=900)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    record = json.loads((report / "certification.json").read_text())
    assert record["passed"] is True
    outcomes = {r["name"]: r["outcome"] for r in record["results"]}
    assert len(outcomes) >= 20 and set(outcomes.values()) <= {"passed", "skipped"}
    assert all(len(f["sha256"]) == 64 for f in record["firmware"])
    assert (report / "junit.xml").exists() and (report / "report.html").read_text().count("data:image/png") >= 20
    assert "device time" in proc.stdout


def test_selftest_kills_a_mutant_that_resets_before_persisting(tmp_path):
    """Shipped defect 3 releases resets before the app persisted its records; the scenario that
    watches a forced download on a frozen app must catch it (the whole suite per defect is `otarig
    selftest` itself, too long for a unit test)."""
    out = tmp_path / "selftest"
    proc = _otarig("selftest", "--mutant", "3", "--shipped-only", "-k", "app_during_a_forced_download",
                   "--report", str(out), timeout=900)
    summary = json.loads((out / "selftest.json").read_text())
    assert summary["good"]["failed"] == [] and summary["good"]["ran"] >= 1, proc.stdout[-3000:]
    assert summary["mutants"]["3"], "mutant 3 survived the suite"
    assert proc.returncode == 0


def test_otarig_run_threading_builds_the_other_model_and_the_record_says_so(tmp_path):
    """`otarig run --threading non-threaded` certifies the companion built without
    SYSTEM_THREAD(ENABLED) whatever the bench file says: the board's hello says it ran non-threaded,
    and the record notes the model the bench built."""
    report = tmp_path / "report"
    proc = _otarig("run", "--threading", "non-threaded", "-k", "lost_in_every_copy", "--report", str(report),
                   timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    record = json.loads((report / "certification.json").read_text())
    assert record["passed"] is True and record["bench"]["threaded"] is False
    hellos = [json.loads(line) for t in (report / "tests").glob("*/timeline.jsonl")
              for line in t.read_text().splitlines() if '"kind":"hello"' in line]
    assert hellos and all(h["data"]["threaded"] is False for h in hellos)
