"""Hostile bench files: each gets clear error lines (key, redacted value, expectation), never a
traceback, never a secret, never the whole configuration dumped as one value.

Every case goes through the real reader twice: `otarig.config.load` on a file on disk, and the
`otarig run --bench FILE` command in a subprocess (what a lab engineer types).
"""
from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from otarig.config import ConfigError, load

REPO = Path(__file__).resolve().parents[1]
GOOD = (REPO / "bench_config.toml").read_text()
TOKEN = "f00dbabe" * 5  # what a Particle access token looks like (40 hex digits)


def _without(section: str) -> str:
    """The shipped bench file minus one `[section]` (its header up to the next header)."""
    return re.sub(rf"^\[{section}\]\n(?:(?!\[).*\n)*", "", GOOD, flags=re.MULTILINE)


def _write(tmp_path: Path, content: str | bytes) -> Path:
    p = tmp_path / "bench_config.toml"
    if isinstance(content, bytes):
        p.write_bytes(content)
    else:
        p.write_text(content)
    return p


def _problem(tmp_path: Path, content: str | bytes) -> str:
    with pytest.raises(ConfigError) as err:
        load(_write(tmp_path, content))
    return str(err.value)


HOSTILE: dict[str, str | bytes] = {
    "deep_array": GOOD + "\n[extra]\nx = " + "[" * 100_000 + "]" * 100_000 + "\n",
    "deep_inline_table": GOOD + "\n[extra]\nx = " + "{a = " * 5_000 + "1" + "}" * 5_000 + "\n",
    "latin1": GOOD.replace("simulated-electron", "simul\xe9").encode("latin-1"),
    "token_in_cloud": GOOD.replace("[cloud]", f'[cloud]\ntoken = "{TOKEN}"'),
    "password_in_psu": GOOD.replace("[psu]", f'[psu]\npassword = "{TOKEN}"'),
    "secret_in_inline_table": GOOD.replace("[cloud]", f'[cloud]\nauth = {{ api_secret = "{TOKEN}" }}'),
    "token_as_token_env": GOOD.replace('token_env = "PARTICLE_ACCESS_TOKEN"', f'token_env = "{TOKEN}"'),
    "no_psu": _without("psu"),
    "no_bench_companion": _without("bench_companion"),
    "psu_array": GOOD.replace("[psu]", "[[psu]]"),
}


def test_deeply_nested_value_is_one_line_not_a_recursion_error(tmp_path):
    for name in ("deep_array", "deep_inline_table"):
        msg = _problem(tmp_path, HOSTILE[name])
        assert msg.count("\n") == 0 and "nested too deeply" in msg and "bench_config.toml" in msg


def test_file_that_is_not_utf8_names_the_byte_and_where_it_is(tmp_path):
    msg = _problem(tmp_path, HOSTILE["latin1"])
    line = GOOD.splitlines().index('name = "simulated-electron"') + 1
    assert msg.count("\n") == 0
    assert f"not UTF-8 text: byte 0xe9 at line {line}, column 14" in msg and "re-save the file as UTF-8" in msg


@pytest.mark.parametrize("name, key", [("token_in_cloud", "cloud.token"), ("password_in_psu", "psu.password"),
                                       ("secret_in_inline_table", "cloud.auth.api_secret")])
def test_a_secret_key_is_refused_without_its_value_and_says_where_tokens_go(tmp_path, name, key):
    msg = _problem(tmp_path, HOSTILE[name])
    assert TOKEN not in msg and TOKEN[:8] not in msg
    line = next(ln for ln in msg.splitlines() if f": {key}:" in ln)
    assert "not allowed" in line and "<redacted>" in line and "cloud.token_env" in line


def test_a_token_pasted_into_token_env_is_not_echoed(tmp_path):
    msg = _problem(tmp_path, HOSTILE["token_as_token_env"])
    assert TOKEN not in msg and "cloud.token_env = <redacted>" in msg and "environment variable" in msg


@pytest.mark.parametrize("name, section, keys", [
    ("no_psu", "psu", "resource, model, channel"),
    ("no_bench_companion", "bench_companion", "port, timeout_s"),
    ("psu_array", "psu", "resource, model, channel"),
])
def test_missing_or_misshapen_section_says_which_and_what_shape_not_the_whole_config(tmp_path, name, section, keys):
    msg = _problem(tmp_path, HOSTILE[name])
    assert msg.count("\n") == 0, msg
    assert f"[{section}]" in msg and keys in msg and "table" in msg
    # nothing from the rest of the file leaks into the line
    for other in ("simulated-electron", "PARTICLE_ACCESS_TOKEN", "tools/particle-cli", "'bench':"):
        assert other not in msg


def test_psu_as_an_array_names_the_key_and_its_shape(tmp_path):
    msg = _problem(tmp_path, HOSTILE["psu_array"])
    assert msg.startswith(f"{tmp_path / 'bench_config.toml'}: psu = <an array of 1 table>: expected one [psu] table")


def test_huge_value_and_newline_in_a_key_stay_on_one_line_each(tmp_path):
    text = GOOD.replace("[cloud]", '[cloud]\n"a\\nb" = 1\nnotes = "' + "x" * 200_000 + '"')
    lines = _problem(tmp_path, text).splitlines()
    assert len(lines) == 2 and all(len(line) < 400 for line in lines)
    assert any("cloud.'a\\nb': unknown key" in line for line in lines)
    assert any("cloud.notes: unknown key" in line and "(200000 characters)" in line for line in lines)


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_otarig_command_reports_hostile_bench_file_without_traceback_or_secret(tmp_path, name):
    path = _write(tmp_path, HOSTILE[name])
    proc = subprocess.run([sys.executable, "-m", "otarig.cli", "run", "--bench", str(path),
                           "--report", str(tmp_path / "r")], capture_output=True, text=True, timeout=60)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 1, out
    assert "Traceback" not in out and "Error:" not in out.replace("error:", "")
    assert TOKEN not in out
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert lines and lines[0].startswith(f"error: {path}: ")
    assert all(line.startswith(str(path)) for line in lines[1:])
    assert not (tmp_path / "r").exists(), "nothing ran on a broken bench file"
