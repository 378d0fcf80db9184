"""`rig.sim` (what only the simulator can do) is for scenarios marked `sim_only`: using it unmarked
is an error that says how to fix it, not a silent skip. Run as a real pytest session over the
plugin, against the simulated bench."""
from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

SUITE = textwrap.dedent('''
    import pytest

    def test_unmarked_scenario_reaches_for_the_simulator(rig):
        rig.sim.cloud_blackhole(after_chunks=3)

    @pytest.mark.sim_only
    def test_marked_scenario_may(rig):
        assert rig.sim.ota_bytes() == 0
''')


def test_rig_sim_in_an_unmarked_scenario_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "test_scenarios.py").write_text(SUITE)
    done = subprocess.run([sys.executable, "-m", "pytest", str(tmp_path / "test_scenarios.py"),
                           f"--bench={REPO / 'bench_config.toml'}", f"--otarig-artifacts={tmp_path / 'art'}",
                           "-p", "no:cacheprovider", "-q", f"--rootdir={tmp_path}"],
                          capture_output=True, text=True, timeout=300, cwd=tmp_path)
    out = done.stdout + done.stderr
    assert done.returncode == 1, out[-2000:]
    assert "1 failed, 1 passed" in out
    assert "SimOnlyError" in out and "not marked" in out and "@pytest.mark.sim_only" in out
