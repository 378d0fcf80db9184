"""otarig as an installed package: shipped files found through otarig.resources, user caches in
XDG folders, `otarig init`, `otarig tools`, and a summary that never cuts a scenario name.

The wheel itself is built, installed in a fresh venv and run from an empty folder by .ci/run.
"""
from __future__ import annotations

import io
import tomllib
from pathlib import Path

import pytest
from rich.console import Console

from otarig import cli, resources, tools
from otarig.config import ConfigError, load
from otarig.report import print_summary

REPO = Path(__file__).resolve().parents[1]
LONG = "test_power_cut_at_a_chosen_byte_of_the_download_is_survived[ota-begin-250]"


def test_shipped_files_are_the_repository_folders() -> None:
    """In a checkout the package data are links to the top-level folders the README describes."""
    assert resources.suite_dir() == REPO / "hil"
    assert resources.firmware_dir() == REPO / "firmware"
    assert resources.default_fleet() == REPO / "examples" / "fleets" / "default.toml"
    assert (resources.suite_dir() / "conftest.py").is_file()
    assert (resources.firmware_dir() / "host" / "otarig_host.h").is_file()
    assert (resources.bench_program_dir() / "bench_pins.json").is_file()
    for name, files in resources.TOOLS.items():
        for f in files:
            assert (resources.tool_source_dir(name) / f).resolve() == REPO / "tools" / name / f


def test_package_data_covers_what_the_main_job_reads() -> None:
    """Every file of the suite, firmware and fleets is matched by a package-data glob of pyproject."""
    patterns = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]["otarig"]
    pkg = REPO / "src" / "otarig"
    shipped = {p for pat in patterns for p in pkg.glob(pat) if p.is_file()}
    for top in (resources.suite_dir(), resources.firmware_dir(), resources.fleets_dir()):
        for f in top.rglob("*"):
            if f.is_file() and "__pycache__" not in f.parts and not f.name.startswith("."):
                rel = f.relative_to(REPO)
                assert pkg / "_data" / rel in shipped, f"{rel} would not be in the wheel"


def test_caches_follow_xdg(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("OTARIG_CACHE", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert resources.build_cache_dir() == tmp_path / "xdg" / "otarig" / "build"
    assert resources.tool_cache_dir("micropython") == tmp_path / "xdg" / "otarig" / "tools" / "micropython"
    monkeypatch.setenv("XDG_CACHE_HOME", "relative/path")  # the XDG spec: relative paths are ignored
    assert resources.cache_root() == Path.home() / ".cache" / "otarig"
    monkeypatch.setenv("OTARIG_CACHE", str(tmp_path / "mine"))
    assert resources.build_cache_dir() == tmp_path / "mine"


def test_tool_dir_prefers_an_installed_checkout(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    src = tmp_path / "tools" / "micropython"
    src.mkdir(parents=True)
    (src / "install.sh").write_text("")
    monkeypatch.setattr(resources, "tool_source_dir", lambda name: src)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert resources.tool_dir("micropython") == tmp_path / "xdg" / "otarig" / "tools" / "micropython"
    (src / resources.INSTALL_STAMP).parent.mkdir()
    (src / resources.INSTALL_STAMP).write_text("x")
    assert resources.tool_dir("micropython") == src


def test_tools_stage_copies_the_pinned_files(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    dest = tmp_path / "cache" / "particle-cli"
    tools._stage("particle-cli", dest)
    for f in resources.TOOLS["particle-cli"]:
        assert (dest / f).read_bytes() == (REPO / "tools" / "particle-cli" / f).read_bytes()
    assert not (dest / "node_modules").exists()


def test_tools_install_names_unknown_tools(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["tools", "install", "nodejs"]) == 2
    assert "unknown tool 'nodejs'" in capsys.readouterr().err


def test_simulated_template_is_a_valid_bench(tmp_path: Path) -> None:
    path = tmp_path / "bench_config.toml"
    path.write_text(resources.template("simulated"))
    cfg = load(path)
    assert cfg.simulated and cfg.bench_companion is not None and cfg.capabilities.power_cut


def test_real_template_names_what_a_lab_fills_in(tmp_path: Path) -> None:
    text = resources.template("real")
    path = tmp_path / "lab.toml"
    path.write_text(text)
    with pytest.raises(ConfigError) as err:
        load(path)
    msg = str(err.value)
    assert "boards[0].id" in msg and "cloud.product_id" in msg
    filled = text.replace("<device ID: 24 hex digits>", "e00fce68aaaaaaaaaaaaaaaa").replace(
        "product_id = 0 ", "product_id = 12345 ")
    path.write_text(filled)
    cfg = load(path)
    assert not cfg.simulated and cfg.boards[0].port is None  # found on USB by its device ID
    for section in ("bench", "cloud", "flasher", "firmware", "boards", "psu", "bench_companion", "capabilities",
                    "particle_cli"):
        assert section in tomllib.loads(filled), section


def test_init_writes_a_project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                               capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(tmp_path)
    assert cli.main(["init", "proj", "--suite"]) == 0
    out = capsys.readouterr().out
    assert "proj/bench_config.toml" in out and "cd proj && otarig run" in out
    assert load(tmp_path / "proj" / "bench_config.toml").simulated
    assert (tmp_path / "proj" / "hil" / "conftest.py").is_file()
    assert not (tmp_path / "proj" / "hil" / "__pycache__").exists()
    assert cli.main(["init", "proj"]) == 1  # never overwrites without --force
    assert "exists" in capsys.readouterr().err
    assert cli.main(["init", "proj", "--real", "--force"]) == 0
    assert 'kind = "real"' in (tmp_path / "proj" / "bench_config.toml").read_text()
    assert cli.main(["init", "proj", "--suite", "--force"]) == 1  # hil/ is the team's now
    monkeypatch.chdir(tmp_path / "proj")
    from otarig.runner import default_suite

    assert default_suite() == tmp_path / "proj" / "hil"


def test_run_outside_a_project_says_what_to_do(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(tmp_path)
    assert cli.main(["run"]) == 1
    err = capsys.readouterr().err
    assert "no bench_config.toml" in err and "`otarig init`" in err and err.count("\n") == 1


@pytest.mark.parametrize("width", [40, 60, 80, 120])
def test_summary_shows_whole_names_at_any_width(width: int) -> None:
    results = [{"name": LONG, "outcome": "passed", "device_time_s": 100, "data_bytes": 2048, "duration_wall_s": 0.1},
               {"name": "test_lock_and_flash_now", "outcome": "failed", "device_time_s": 60, "data_bytes": 1024,
                "duration_wall_s": 0.2}]
    buf = io.StringIO()
    print_summary(results, Console(file=buf, width=width, color_system=None))
    lines = buf.getvalue().splitlines()
    assert all(len(line) <= width for line in lines)
    text = "".join(line.strip("│ ").split("│")[0].strip() if "│" in line else line.strip() for line in lines)
    assert LONG in text and "test_lock_and_flash_now" in text
    assert "1 passed, 1 failed" in buf.getvalue()


def test_no_shipped_path_is_found_by_walking_up_from_a_module() -> None:
    """otarig.resources is the one place that knows where shipped files are."""
    for py in (REPO / "src" / "otarig").rglob("*.py"):
        if py.name == "resources.py" or "_data" in py.parts:
            continue
        text = py.read_text()
        assert "parents[" not in text or "__file__" not in text, f"{py.relative_to(REPO)} walks up from __file__"
