"""bench_config.toml validation: each problem gives one clear line naming key, value and expectation."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from otarig.config import ConfigError, load

REPO = Path(__file__).resolve().parents[1]
from sim_helpers import real_bench_text  # noqa: E402

GOOD = (REPO / "bench_config.toml").read_text()


def _write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "bench_config.toml"
    p.write_text(text)
    return p


def test_the_shipped_bench_file_is_a_simulated_bench_with_one_electron():
    cfg = load(REPO / "bench_config.toml")
    assert cfg.simulated and len(cfg.boards) == 1 and cfg.boards[0].platform_id == 10


def test_missing_key_names_the_key(tmp_path):
    text = GOOD.replace('id = "e00fce680000000000000001"\n', "")
    with pytest.raises(ConfigError) as err:
        load(_write(tmp_path, text))
    assert "boards[0].id: missing" in str(err.value)


def test_wrong_type_names_key_value_and_expectation(tmp_path):
    text = GOOD.replace("seed = 1", 'seed = "one"')
    with pytest.raises(ConfigError) as err:
        load(_write(tmp_path, text))
    msg = str(err.value)
    assert "bench.seed = 'one'" in msg and "integer" in msg


def test_bad_device_id_and_unknown_key(tmp_path):
    text = GOOD.replace('id = "e00fce680000000000000001"', 'id = "xyz"').replace("[cloud]", "[cloud]\nregion = 'eu'")
    with pytest.raises(ConfigError) as err:
        load(_write(tmp_path, text))
    lines = str(err.value).splitlines()
    assert any("boards[0].id = 'xyz'" in line and "24 lowercase hex" in line for line in lines)
    assert any("cloud.region: unknown key" in line for line in lines)


def test_real_bench_port_that_does_not_exist(tmp_path):
    text = real_bench_text(GOOD).replace(
        'role = "dut"', 'role = "dut"\nport = "/dev/ttyACM-otarig-missing"').replace(
        'port = "sim"', 'port = "/dev/ttyACM-otarig-tester"')
    with pytest.raises(ConfigError) as err:
        load(_write(tmp_path, text))
    assert "boards[0].port = '/dev/ttyACM-otarig-missing': no such serial device" in str(err.value)


def test_not_toml(tmp_path):
    with pytest.raises(ConfigError) as err:
        load(_write(tmp_path, "[bench\nkind="))
    assert "not valid TOML" in str(err.value)


@pytest.mark.parametrize("broken", [
    GOOD.replace('id = "e00fce680000000000000001"\n', ""),
    GOOD.replace("seed = 1", 'seed = "one"'),
    GOOD.replace('kind = "simulated"', 'kind = "real"').replace('role = "dut"', 'role = "dut"\nport = "/dev/nope0"'),
])
def test_otarig_run_reports_a_broken_bench_file_in_one_line_without_traceback(tmp_path, broken):
    path = _write(tmp_path, broken)
    proc = subprocess.run([sys.executable, "-m", "otarig.cli", "run", "--bench", str(path),
                           "--report", str(tmp_path / "r")], capture_output=True, text=True, timeout=60)
    assert proc.returncode != 0
    assert "Traceback" not in proc.stderr + proc.stdout
    err_lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(err_lines) == 1 and err_lines[0].startswith("error: ") and str(path) in err_lines[0]
