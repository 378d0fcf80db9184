"""otarig.sim.sanitizer: host builds with AddressSanitizer, and the selftest's second look at a
survivor with it (docs/selftest.md "A second look at survivors"). The end-to-end test runs the real
`otarig selftest` on a mutant that reads past an array, which no scenario can see on the host."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from otarig.sim import sanitizer

REPO = Path(__file__).resolve().parents[1]
needs_runtime = pytest.mark.skipif(sanitizer.runtime() is None,
                                   reason="the compiler has no AddressSanitizer runtime (libasan)")


def test_the_summary_line_is_found_in_a_report_and_nothing_in_a_clean_log() -> None:
    report = ("==1==ERROR: AddressSanitizer: heap-use-after-free on address 0x1\n    #0 0x2 in f a.cpp:3\n"
              "SUMMARY: AddressSanitizer: heap-use-after-free /p/lib/X/src/X.cpp:12 in X::f()\n")
    assert sanitizer.report_summary(report) == "heap-use-after-free /p/lib/X/src/X.cpp:12 in X::f()"
    assert sanitizer.report_summary("1 passed in 2.0s\nAddressSanitizer mentioned in passing") is None


@needs_runtime
def test_a_sanitized_child_preloads_the_runtime_first_and_tools_run_without_it() -> None:
    env = sanitizer.environment({"LD_PRELOAD": "/x/libother.so", "ASAN_OPTIONS": "verbosity=0"})
    preload = env["LD_PRELOAD"].split()
    assert "libasan" in Path(preload[0]).name and "libstdc++" in Path(preload[1]).name
    assert preload[-1] == "/x/libother.so"
    assert env[sanitizer.ENV] == "address" and "detect_leaks=0" in env["ASAN_OPTIONS"]
    assert env["ASAN_OPTIONS"].endswith("verbosity=0")  # the caller's own options still apply
    plain = sanitizer.without_runtime(env)
    assert "libasan" not in plain.get("LD_PRELOAD", "")


def test_an_unknown_sanitizer_is_refused_by_name(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(sanitizer.ENV, "thread")
    with pytest.raises(sanitizer.SanitizerError, match="only sanitizer the host build knows is 'address'"):
        sanitizer.enabled()
    monkeypatch.setenv(sanitizer.ENV, "0")
    assert not sanitizer.enabled() and sanitizer.compile_flags() == ()


def test_a_sanitized_build_without_its_runtime_is_refused_with_the_fix(monkeypatch: pytest.MonkeyPatch) -> None:
    """This test process has no sanitizer runtime preloaded: loading a sanitized build here would
    fail in the dynamic loader; the rig names the fix instead."""
    if sanitizer.runtime_loaded():
        pytest.skip("this process runs with the sanitizer's runtime preloaded")
    monkeypatch.setenv(sanitizer.ENV, "address")
    with pytest.raises(sanitizer.SanitizerError, match="LD_PRELOAD="):
        sanitizer.check_loadable()


@needs_runtime
def test_a_memory_error_no_scenario_sees_is_killed_by_the_sanitized_second_look(tmp_path: Path) -> None:
    """RecordLog.cpp:82 `i <= n` reads one record past the batch: on the host that record is always
    one already persisted and skipped, so the plain build survives; its sanitized build stops at the
    read. The real CLI, one quick scenario, one shipped defect (to keep it short)."""
    out = tmp_path / "report"
    cmd = [str(Path(sys.executable).parent / "otarig"), "selftest", "--bench", str(REPO / "bench_config.toml"),
           "--report", str(out), "-k", "intelligent_release_while_busy", "--mutant", "1",
           "--only", "RecordLog:82:2c140e67", "--jobs", "1"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=900, cwd=REPO,
                          env={**os.environ, "COLUMNS": "200", "OTARIG_CACHE": str(tmp_path / "cache")})
    summary = json.loads((out / "selftest.json").read_text())
    (row,) = summary["results"]
    assert row["status"] == "crashed", (row, proc.stdout[-3000:])
    assert row["detail"].startswith("survived the plain build; its sanitized build: AddressSanitizer: "
                                    "global-buffer-overflow lib/RecordLog/src/RecordLog.cpp:83"), row["detail"]
    assert row["killed_by"] == ["sanitized: test_intelligent_release_while_busy_waits_for_next_idle_window "
                                "(AddressSanitizer)"]
    looks = {look["variant"]: look for look in summary["second_look"]}
    assert looks["sanitized"]["good_failed"] == [] and looks["sanitized"]["killed"] == [row["id"]]
    assert summary["survivors"] == [] and proc.returncode == 0, proc.stdout[-3000:]
    assert "second look, sanitized build" in proc.stdout


@needs_runtime
def test_run_sanitize_names_a_memory_error_in_the_teams_own_firmware(tmp_path: Path) -> None:
    """`otarig run --firmware DIR --sanitize` on a project that reads one record past an array: the
    plain run passes (the read is harmless on the host), the sanitized one stops and names the line."""
    from otarig.mutation.projects import project_copy

    lib = "lib/RecordLog/src/RecordLog.cpp"
    text = (REPO / "firmware" / "companion" / lib).read_text()
    assert text.count("for (uint32_t i = 0; i < n; i++) {") == 1
    project = project_copy(REPO / "firmware" / "companion", label="reads-past-the-batch",
                           files={lib: text.replace("for (uint32_t i = 0; i < n; i++) {",
                                                    "for (uint32_t i = 0; i <= n; i++) {")})
    env = {**os.environ, "OTARIG_CACHE": str(tmp_path / "cache")}

    def run(*extra: str) -> subprocess.CompletedProcess[str]:
        cmd = [str(Path(sys.executable).parent / "otarig"), "run", "--bench", str(REPO / "bench_config.toml"),
               "--firmware", str(project), "-k", "intelligent_release_while_busy", *extra]
        return subprocess.run(cmd, capture_output=True, text=True, timeout=600, cwd=tmp_path, env=env)

    plain = run("--report", str(tmp_path / "plain"))
    assert plain.returncode == 0, plain.stdout[-2000:] + plain.stderr[-2000:]
    sanitized = run("--report", str(tmp_path / "sanitized"), "--sanitize")
    assert sanitized.returncode == 1, sanitized.stdout[-2000:] + sanitized.stderr[-2000:]
    assert "AddressSanitizer stopped the firmware: global-buffer-overflow" in sanitized.stderr
    assert "RecordLog.cpp:83 in RecordLog::append" in sanitized.stderr
    assert list((tmp_path / "sanitized").glob("sanitizer.*")), "the whole report is kept in the report folder"
