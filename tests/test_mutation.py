"""otarig.mutation: shipped defects as patches, universalmutator's mutants, trivial equivalence,
the equivalence list, and a tiny `otarig selftest` through the real CLI (two scenarios, a couple
of mutants). The full selftest is `otarig selftest` / bench/selftest_companion.py, not a unit test."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from otarig.mutation.equivalence import (
    EquivalentEntry,
    anchor,
    code_digest,
    line_entry,
    listed_entry,
    listed_reason,
    load_equivalents,
)
from otarig.mutation.engine import Candidate, Outcome
from otarig.mutation.generate import GenerationError, Mutant, default_files, generate, sample
from otarig.mutation.projects import ProjectError, project_copy
from otarig.mutation.report import summarize
from otarig.mutation.shipped import shipped_defect_project, shipped_defects
from otarig.sim.build import BuildError, build_firmware, companion_project

REPO = Path(__file__).resolve().parents[1]
COMPANION = REPO / "firmware" / "companion"


@pytest.fixture(autouse=True)
def _cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTARIG_CACHE", str(tmp_path_factory.getbasetemp() / "mutation-cache"))


def test_no_defect_switch_is_left_in_the_firmware() -> None:
    hits = [p for p in (REPO / "firmware").rglob("*") if p.is_file() and p.suffix in {".cpp", ".h", ".sh", ".md"}
            and "COMPANION_MUTANT" in p.read_text(errors="replace")]
    assert hits == []


def test_every_shipped_patch_applies_and_changes_the_build() -> None:
    defects = shipped_defects()
    assert sorted(defects) == [1, 2, 3, 4, 5, 6]
    assert defects[3].description.startswith("resets are never held")
    good = (COMPANION / "lib" / "OtaGuard" / "src" / "OtaGuard.cpp").read_text()
    copy = shipped_defect_project(3)
    assert copy.name == "companion" and shipped_defect_project(3) == copy  # cached: same folder
    assert "System.disableReset();" in good
    assert "System.disableReset();" not in (copy / "lib" / "OtaGuard" / "src" / "OtaGuard.cpp").read_text()
    assert build_firmware(1, mutant=3) != build_firmware(1)
    # each patch, not only the one looked at above: a change of the guard once left 3 and 6 unapplied
    for n in defects:
        assert code_digest(build_firmware(1, mutant=n)) != code_digest(build_firmware(1)), f"shipped defect {n}"


def test_a_patch_that_does_not_apply_names_the_fix(tmp_path: Path) -> None:
    bad = "--- a/src/companion.cpp\n+++ b/src/companion.cpp\n@@ -1,1 +1,1 @@\n-no such line\n+x\n"
    with pytest.raises(ProjectError, match="does not apply.*regenerate the patch"):
        project_copy(COMPANION, patch=bad, label="broken")
    with pytest.raises(BuildError, match="no shipped defect 99"):
        build_firmware(1, mutant=99)
    with pytest.raises(BuildError, match="otarig selftest --firmware"):
        build_firmware(1, mutant=1, project=tmp_path)


def test_default_files_are_app_and_guard_never_the_agent_the_status_line_or_host() -> None:
    files = default_files(COMPANION)
    assert "src/companion.cpp" in files and "lib/OtaGuard/src/OtaGuard.cpp" in files
    assert "lib/RecordLog/src/RecordLog.cpp" in files
    assert not any("TestAgent" in f or "DownloadSignal" in f or f.startswith("..") for f in files)
    with pytest.raises(GenerationError, match="instrument"):
        generate(COMPANION, ["lib/TestAgent/src/TestAgent.cpp"])
    with pytest.raises(GenerationError, match="no such file"):
        generate(COMPANION, ["lib/Nope.cpp"])


def test_universalmutator_mutants_change_one_line_with_stable_ids() -> None:
    mutants = generate(COMPANION, ["lib/DownloadSignal/src/DownloadSignal.cpp"])
    assert len(mutants) > 20
    original = (COMPANION / "lib/DownloadSignal/src/DownloadSignal.cpp").read_text().splitlines()
    for m in mutants[:10]:
        lines = m.text.splitlines()
        assert [i for i, (a, b) in enumerate(zip(original, lines)) if a != b] == [m.line - 1]
        assert m.original == original[m.line - 1].strip() and m.mutated != m.original
        assert f"-{original[m.line - 1]}" in m.diff(COMPANION)
    again = generate(COMPANION, ["lib/DownloadSignal/src/DownloadSignal.cpp"])
    assert [m.id for m in again] == [m.id for m in mutants]
    picked = sample(mutants, 5, seed=7)
    assert len(picked) == 5 and picked == sample(mutants, 5, seed=7) and picked != sample(mutants, 5, seed=8)


def test_trivial_equivalence_sees_through_paths_but_not_code() -> None:
    rel = "lib/DownloadSignal/src/DownloadSignal.cpp"
    text = (COMPANION / rel).read_text()
    same = project_copy(COMPANION, files={rel: text + "\n// a comment changes no code\n"}, label="comment")
    base = build_firmware(1, project=companion_project())
    assert code_digest(build_firmware(1, project=same)) == code_digest(base)
    mutant = next(m for m in generate(COMPANION, [rel]) if m.mutated == "/*begun_ = true;*/")
    changed = project_copy(COMPANION, files={rel: mutant.text}, label="changed")
    assert code_digest(build_firmware(1, project=changed)) != code_digest(base)


def test_a_defect_in_code_nothing_calls_builds_the_same_machine_code() -> None:
    """The host build drops what nothing calls (--gc-sections, as Device OS's own build): two copies
    that differ only inside a function no one calls are trivially equivalent; a change in code that
    runs is not."""
    rel = "src/companion.cpp"
    text = (COMPANION / rel).read_text()
    dead = "\nint otarigDeadHelper(int x) { return x * %d + 1; }\n"
    three = project_copy(COMPANION, files={rel: text + dead % 3}, label="dead3")
    four = project_copy(COMPANION, files={rel: text + dead % 4}, label="dead4")
    assert code_digest(build_firmware(1, project=three)) == code_digest(build_firmware(1, project=four))
    live = text.replace("kPublishPeriodMs = 300;", "kPublishPeriodMs = 301;")
    assert live != text
    changed = project_copy(COMPANION, files={rel: live}, label="live")
    assert code_digest(build_firmware(1, project=changed)) != code_digest(build_firmware(1, project=three))


def test_equivalents_match_by_file_and_text_when_the_line_moved(tmp_path: Path) -> None:
    f = tmp_path / "equivalent.toml"
    f.write_text('[[equivalent]]\nfile = "src/a.cpp"\nline = 10\noriginal = "x = 1;"\nmutated = "x = 2;"\n'
                 'reason = "x is never read"\n')
    entries = load_equivalents(f)
    assert entries == [EquivalentEntry("src/a.cpp", 10, "x = 1;", "x = 2;", "x is never read")]
    assert listed_reason(Mutant("src/a.cpp", 14, "x = 1;", "x = 2;", ""), entries) == "x is never read"
    assert listed_reason(Mutant("src/a.cpp", 10, "x = 1;", "x = 3;", ""), entries) is None
    f.write_text('[[equivalent]]\nfile = "src/a.cpp"\n')
    with pytest.raises(ValueError, match="lacks line, original, mutated, reason"):
        load_equivalents(f)
    f.write_text('[[equivalents]]\nfile = "src/a.cpp"\n')
    with pytest.raises(ValueError, match=r"unknown table\(s\) equivalents"):
        load_equivalents(f)


def test_an_entry_whose_line_still_holds_its_text_lists_only_that_line(tmp_path: Path) -> None:
    """The same statement on two lines (the companion calls `refreshVariables();` in three places):
    an entry for one of them, whose line has not moved, must not list the other by its text (it
    did, and a killable mutant would have been counted equivalent)."""
    src = tmp_path / "src"
    src.mkdir()
    (src / "a.cpp").write_text("void f() {\n    refresh();\n}\nvoid g() {\n    refresh();\n}\n")
    f = tmp_path / "equivalent.toml"
    f.write_text('[[equivalent]]\nfile = "src/a.cpp"\nline = 5\noriginal = "refresh();"\n'
                 'mutated = "/*refresh();*/"\nreason = "g refreshes what f already did"\n')
    entries = anchor(load_equivalents(f), tmp_path)
    assert entries[0].anchored
    assert listed_entry(Mutant("src/a.cpp", 5, "refresh();", "/*refresh();*/", ""), entries) is not None
    assert listed_entry(Mutant("src/a.cpp", 2, "refresh();", "/*refresh();*/", ""), entries) is None
    (src / "a.cpp").write_text("// a line added above\nvoid f() {\n    refresh();\n}\n")  # moved: by text
    moved = anchor(load_equivalents(f), tmp_path)
    assert not moved[0].anchored
    assert listed_entry(Mutant("src/a.cpp", 3, "refresh();", "/*refresh();*/", ""), moved) is not None


def test_a_whole_line_listing_takes_only_survivors_of_that_line(tmp_path: Path) -> None:
    """`whole_line = true` gives a line's reason to any of its mutants that survives the suite: the
    mutant is still run (listed_entry leaves it out), and a killed one stays killed."""
    f = tmp_path / "equivalent.toml"
    f.write_text('[[equivalent]]\nfile = "src/a.cpp"\nline = 5\noriginal = "v = s * 7 % 60;"\nwhole_line = true\n'
                 'reason = "v is stored but never reported"\n')
    entries = load_equivalents(f)
    assert entries[0].whole_line and entries[0].mutated == ""
    moved = Mutant("src/a.cpp", 8, "v = s * 7 % 60;", "v = s * 7 % 0;", "")
    assert listed_entry(moved, entries) is None, "a whole-line listing never skips the run"
    assert line_entry(moved, entries).reason == "v is stored but never reported"
    assert line_entry(Mutant("src/a.cpp", 6, "w = 1;", "w = 2;", ""), entries) is None
    assert line_entry(Mutant("src/b.cpp", 5, "v = s * 7 % 60;", "v = 0;", ""), entries) is None
    f.write_text('[[allowed]]\nfile = "src/a.cpp"\nline = 5\noriginal = "p = 300;"\nwhole_line = true\n'
                 'mutated = "p = 301;"\nreason = "a pace"\n')
    with pytest.raises(ValueError, match="both whole_line and mutated"):
        load_equivalents(f)


def test_an_allowed_mutant_is_listed_apart_and_the_report_gives_both_rates(tmp_path: Path) -> None:
    """An [[allowed]] entry (a timeline tells it apart, no contract forbids it) is not run, is counted
    apart from the equivalent ones, and the report also gives the rate counting it as a survivor."""
    f = tmp_path / "equivalent.toml"
    f.write_text('[[allowed]]\nfile = "src/a.cpp"\nline = 3\noriginal = "p = 1000;"\nmutated = "p = 1001;"\n'
                 'reason = "the period is declared with it"\n'
                 '[[equivalent]]\nfile = "src/a.cpp"\nline = 9\noriginal = "y = 1;"\nmutated = "y = 2;"\n'
                 'reason = "y is never read"\n')
    entries = load_equivalents(f)
    allowed = Mutant("src/a.cpp", 3, "p = 1000;", "p = 1001;", "")
    assert listed_entry(allowed, entries).kind == "allowed"
    assert listed_entry(Mutant("src/a.cpp", 9, "y = 1;", "y = 2;", ""), entries).kind == "equivalent"
    cands = [Candidate(f"a:{i}", "src/a.cpp:1", mutant=Mutant("src/a.cpp", i, "z;", f"z{i};", "")) for i in range(4)]
    cands.append(Candidate("a:allowed", "src/a.cpp:3", mutant=allowed))
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "a.cpp").write_text("z;\n")  # the survivor's diff is made against it
    outcomes = {"a:0": Outcome("killed"), "a:1": Outcome("killed"), "a:2": Outcome("killed"),
                "a:3": Outcome("survived"), "a:allowed": Outcome("allowed", detail="declared")}
    summary = summarize(cands, outcomes, generated_total=5, base=tmp_path, extra={})
    g = summary["generated"]
    assert (g["listed_allowed"], g["killed"], g["survived"]) == (1, 3, 1)
    assert g["kill_rate"] == 0.75 and g["kill_rate_allowed_as_survivors"] == 0.6
    assert summary["survivors"] == ["a:3"]


def test_shipped_equivalents_list_is_well_formed() -> None:
    path = REPO / "firmware" / "mutants" / "equivalent.toml"
    entries = load_equivalents(path)
    for e in entries:
        text = (COMPANION / e.file).read_text().splitlines()
        assert text[e.line - 1].strip() == e.original, f"{e.file}:{e.line} moved: update equivalent.toml"
        assert e.reason.strip() and "\n" not in e.reason


def test_tiny_selftest_through_the_cli(tmp_path: Path) -> None:
    """Two quick scenarios, shipped defect 1 (caught by the pending-survives-STOP-sleep scenario) and
    two generated mutants of DownloadSignal: the real
    `otarig selftest` in a subprocess, its JSON and HTML."""
    out = tmp_path / "report"
    cmd = [str(Path(sys.executable).parent / "otarig"), "selftest", "--bench", str(REPO / "bench_config.toml"),
           "--report", str(out), "-k", "lock_and_flash_now or (survives_sleep and stop)", "--mutant", "1",
           "--files", "lib/DownloadSignal/src/DownloadSignal.cpp", "--max-mutants", "2", "--seed", "3"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=900, cwd=REPO,
                          env={**os.environ, "COLUMNS": "200"})
    summary = json.loads((out / "selftest.json").read_text())
    assert summary["good"]["failed"] == [] and summary["good"]["ran"] == 2, proc.stdout[-3000:]
    assert summary["mutants"]["1"], "shipped defect 1 survived two scenarios that must catch it"
    gen = summary["generated"]
    assert gen["sampled"] == 2 and gen["total"] > 20
    statuses = {r["status"] for r in summary["results"]}
    assert statuses <= {"killed", "timeout", "crashed", "survived", "invalid", "tce", "equivalent", "allowed"}
    for r in summary["results"]:
        assert r["file"] == "lib/DownloadSignal/src/DownloadSignal.cpp" and r["line"] > 0
        assert (r["diff"] is not None) == (r["status"] == "survived")
    assert proc.returncode == (1 if summary["survivors"] else 0), proc.stdout[-3000:]
    assert "shipped defects" in proc.stdout and "kill rate" in (out / "selftest.html").read_text()


def test_an_outcome_is_kept_per_set_of_scenarios(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A defect that survived a `-k` subset may die in the rest of the suite: its cached outcome
    must not answer for a run over other scenarios (it once did, and a full run reported a survivor
    that no longer survived)."""
    from otarig.mutation.engine import Candidate, MutationEngine

    monkeypatch.setenv("OTARIG_CACHE", str(tmp_path / "cache"))
    suite = Path(__file__).resolve().parents[1] / "hil"
    bench = Path(__file__).resolve().parents[1] / "bench_config.toml"
    engine = MutationEngine(bench, suite, tmp_path / "report", project=None, seed=1, jobs=1, pinned=[])
    candidate = Candidate(key="shipped-1", label="shipped 1", shipped=1)
    engine.nodeids = ["hil/test_releases.py::test_lock_and_flash_now"]
    subset = engine._cache_path(candidate)
    engine.nodeids = ["hil/test_releases.py::test_lock_and_flash_now", "hil/test_week.py::test_week"]
    whole = engine._cache_path(candidate)
    assert whole != subset
    engine.nodeids = list(reversed(engine.nodeids))  # the order they run in is not what decides it
    assert engine._cache_path(candidate) == whole


def test_the_other_threading_model_is_a_second_look_only_for_firmware_built_either_way(tmp_path: Path) -> None:
    """The device companion chooses its model at build time (OTARIG_THREADED): a survivor of the
    bench file's model gets a look in the other. An app that declares its model outright builds the
    same machine code either way, so there is no other model to look in."""
    from otarig.mutation.engine import MutationEngine

    suite, bench = REPO / "hil", REPO / "bench_config.toml"
    companion = MutationEngine(bench, suite, tmp_path / "a", project=None, seed=1, jobs=1, pinned=[])
    assert companion.other_threading() == "non-threaded"  # bench_config.toml runs it threaded
    nonthreaded_bench = tmp_path / "bench.toml"
    text = bench.read_text()
    assert "\nthreaded = true" in text
    nonthreaded_bench.write_text(text.replace("\nthreaded = true", "\nthreaded = false", 1))
    assert MutationEngine(nonthreaded_bench, suite, tmp_path / "b", project=None, seed=1, jobs=1,
                          pinned=[]).other_threading() == "threaded"
    declared = MutationEngine(bench, suite, tmp_path / "c", project=REPO / "examples" / "apps" / "guarded-logger",
                              seed=1, jobs=1, pinned=[])
    assert declared.other_threading() is None


def test_an_id_whose_line_moved_is_named_as_it_is_now() -> None:
    """Ids carry their line; lines added above a mutant move it, and an id copied from an older
    report must lead to the mutant it named (`selftest --only`)."""
    from dataclasses import replace

    from otarig.mutation.generate import Mutant
    from otarig.mutation.session import _moved

    now = Mutant("src/companion.cpp", 196, "if (a) b;", "if (!a) b;", "")
    other = Mutant("src/companion.cpp", 196, "if (a) b;", "if (0==1) b;", "")
    before = replace(now, line=190).id
    said = _moved([before, "companion:7:deadbeef"], {m.id: m for m in (now, other)})
    assert said == f"; its line moved: {before} is now {now.id}"
    assert _moved([now.id], {now.id: now}) == ""
