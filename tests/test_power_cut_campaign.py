"""Power lost in the middle of a write: the campaign, trimmed (docs/reference/particle-ota.md §2.10).

The full figures come from `bench/power_cut_campaign.py` (every word of every write, 10,000 random
instants). Here: every erase, every EEPROM record and status word at 4-8 instants each, one word in
1024 of the long runs (OTA chunks, DCT sectors, the bootloader copy) and 1,000 random instants, on
the real companion and the real boot path (`otarig.sim.power_cut_campaign`).
"""
from __future__ import annotations

from pathlib import Path

from otarig.mutation.projects import project_copy
from otarig.sim.build import companion_project
from otarig.sim.power_cut_campaign import campaign_images, defects_dir, run_campaign


def test_good_build_survives_cuts_inside_every_kind_of_write(tmp_path: Path) -> None:
    v1, v2 = campaign_images()
    result = run_campaign(v1, v2, tmp_path / "run.log", random_n=1_000, every_op_stride=1024, per_short_word=4)
    print("\n" + result.summary())
    assert result.cuts["random"] == 1_000 and result.cuts["every-op"] > 5_000
    assert result.inside_writes > 5_000 and result.boots > 50
    assert set(result.outcomes) == {"v1", "v2"}, "cuts before the slot boot v1, after it v2"
    assert result.bricked == [] and result.records_lost == []


def test_a_defect_only_a_torn_write_exposes_is_caught(tmp_path: Path) -> None:
    """firmware/defects/recordlog-one-copy.patch: one copy per record. Every put is atomic at an
    operation boundary, so only a cut inside a commit word (torn, read as valid with a wrong
    index) can take an acknowledged record's only copy."""
    v1, v2 = campaign_images("recordlog-one-copy")
    result = run_campaign(v1, v2, tmp_path / "run.log", random_n=200, every_op_stride=1024, per_short_word=8)
    print("\n" + result.summary())
    assert result.records_lost, "the campaign missed the defect"
    assert all("(eeprom record [" in lost for lost in result.records_lost), result.records_lost
    assert result.bricked == []


def test_every_defect_patch_applies_to_the_shipped_sources() -> None:
    """A patch that no longer applies would make its campaign fail for the wrong reason."""
    patches = sorted(defects_dir().glob("*.patch"))
    assert {p.stem for p in patches} >= {"recordlog-one-copy", "recordlog-header-last"}
    for patch in patches:
        assert patch.read_text().startswith("otarig power-cut defect: ")
        project = project_copy(companion_project(), patch=patch.read_text(), label=f"defect-{patch.stem}")
        assert (project / "lib/RecordLog/src/RecordLog.cpp").read_text() != \
            (companion_project() / "lib/RecordLog/src/RecordLog.cpp").read_text()
