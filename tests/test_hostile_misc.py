"""Hostile input, small items, each over the real channel: the simulated cloud's password login
(HTTP, and the real `particle` CLI), its request log under a flood of requests (HTTP), and
`otarig firmware inspect` given files that are not module binaries (the command, as a subprocess).
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from otarig.sim import cloud_http
from otarig.sim.bench import SimBench
from otarig.sim.cloud_http import CloudHttpServer

OTARIG = [sys.executable, "-m", "otarig.cli"]


@pytest.fixture
def server(tmp_path: Path) -> Iterator[CloudHttpServer]:
    bench = SimBench(seed=5, workdir=tmp_path / "world")
    srv = CloudHttpServer(bench)
    srv.start()
    yield srv
    srv.stop()
    bench.close()


def _session() -> requests.Session:
    s = requests.Session()
    s.trust_env = False  # no proxy for loopback
    return s


# -- POST /oauth/token ---------------------------------------------------------------------------

@pytest.mark.parametrize("form", [
    {"grant_type": "password", "username": "otarig@example.com", "password": "anything"},
    {"grant_type": "password", "username": "someone@else.org", "password": ""},
    {"grant_type": "password", "username": "otarig@example.com", "password": "x", "client_id": "particle-cli",
     "client_secret": "particle-cli", "expires_in": "7776000"},
    {"grant_type": "client_credentials", "client_id": "particle-cli", "client_secret": "particle-cli"},
    {},
], ids=["bench-user", "other-user", "cli-form", "client-credentials", "empty"])
def test_oauth_token_never_hands_out_the_token(server: CloudHttpServer, form: dict) -> None:
    """Whatever username and password come (the form `particle login -u -p` sends included), the
    answer is a 401 that says to use the printed token, and the token is nowhere in it."""
    r = _session().post(f"{server.url}/oauth/token", data=form, timeout=10)
    assert r.status_code == 401
    assert server.token not in r.text
    assert r.json()["error"] == "invalid_grant"
    assert "--token" in r.json()["error_description"]
    assert server.token not in json.dumps(list(server.request_log))


def test_oauth_token_refused_even_with_the_bearer_token(server: CloudHttpServer) -> None:
    r = _session().post(f"{server.url}/oauth/token", data={"grant_type": "password", "username": "u", "password": "p"},
                        headers={"Authorization": f"Bearer {server.token}"}, timeout=10)
    assert r.status_code == 401 and server.token not in r.text


@pytest.mark.usefixtures("require_particle_cli")
def test_the_particle_cli_logs_in_with_the_token_and_not_with_a_password(server: CloudHttpServer,
                                                                         tmp_path: Path) -> None:
    """The pinned CLI: `login -u -p` fails without ever receiving the token; `login --token`
    (what `otarig sim` documents) still works, and so does a call with the token afterwards."""
    from otarig.particle_cli import ParticleCli

    cli = ParticleCli(tmp_path / "home", server.url, lambda: server.token, timeout=60)
    refused = cli.run("login", "-u", "otarig@example.com", "-p", "a-password", check=False)
    assert refused.rc != 0, refused.output
    config = json.loads((tmp_path / "home" / ".particle" / "particle.config.json").read_text())
    assert config.get("access_token") in (None, server.token)  # the file the rig wrote; nothing new from the cloud
    assert any(e["path"] == "/oauth/token" and e["status"] == 401 for e in server.request_log)
    ok = cli.run("login", "--token", server.token)
    assert ok.rc == 0 and server.token not in ok.output
    assert cli.run("whoami").output.strip().endswith(server.username)


# -- the request log -------------------------------------------------------------------------------

def test_the_request_log_is_capped(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A flood of requests (good and unauthorised) keeps only the last REQUESTS_KEPT entries, the
    newest last; the cap in use is the module's (10,000 by default; small here to keep the test short)."""
    assert cloud_http.REQUESTS_KEPT == 10_000
    monkeypatch.setattr(cloud_http, "REQUESTS_KEPT", 50)
    bench = SimBench(seed=5, workdir=tmp_path / "world")
    srv = CloudHttpServer(bench)
    srv.start()
    try:
        s = _session()
        for i in range(300):
            headers = {"Authorization": f"Bearer {srv.token}"} if i % 2 else {}
            r = s.get(f"{srv.url}/v1/user?n={i}", headers=headers, timeout=10)
            assert r.status_code == (200 if i % 2 else 401)
        assert len(srv.request_log) == 50
        assert srv.request_log[-1]["path"] == "/v1/user?n=299" and srv.request_log[0]["path"] == "/v1/user?n=250"
    finally:
        srv.stop()
        bench.close()


# -- otarig firmware inspect -----------------------------------------------------------------------

def _inspect(path: Path | str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*OTARIG, "firmware", "inspect", str(path)], capture_output=True, text=True, timeout=60)


def _one_line_error(r: subprocess.CompletedProcess[str], *words: str) -> None:
    assert r.returncode != 0
    assert "Traceback" not in r.stderr and "MemoryError" not in r.stderr, r.stderr[-2000:]
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:"), r.stderr[-2000:]
    for word in words:
        assert word in lines[0], lines[0]


def test_inspect_refuses_a_huge_sparse_file(tmp_path: Path) -> None:
    """40 GB (sparse: no disk used): refused by its size before a byte is read."""
    huge = tmp_path / "huge.bin"
    with open(huge, "wb") as fh:
        fh.truncate(40 * 1024 ** 3)
    _one_line_error(_inspect(huge), "too large", "128 KB")


def test_inspect_refuses_just_over_one_megabyte(tmp_path: Path) -> None:
    big = tmp_path / "big.bin"
    big.write_bytes(b"\0" * ((1 << 20) + 1))
    _one_line_error(_inspect(big), "too large")


def test_inspect_refuses_dev_zero() -> None:
    """A device that never ends: refused as not a regular file (no unbounded read)."""
    _one_line_error(_inspect("/dev/zero"), "a device, not a module binary")


def test_inspect_refuses_a_fifo_without_blocking(tmp_path: Path) -> None:
    """A FIFO nobody writes to: refused at once (the open does not wait for a writer)."""
    fifo = tmp_path / "pipe.bin"
    os.mkfifo(fifo)
    _one_line_error(_inspect(fifo), "a FIFO, not a module binary")


def test_inspect_refuses_a_folder(tmp_path: Path) -> None:
    _one_line_error(_inspect(tmp_path), "a folder, not a module binary")


def test_inspect_still_reads_a_module_through_a_symlink(tmp_path: Path) -> None:
    """A link to a real module binary is followed (only what it points at is checked)."""
    from otarig.sim.build import build_companion
    from otarig.sim.images import make_app_image

    image = tmp_path / "v1.bin"
    image.write_bytes(make_app_image(build_companion(1), product_id=4242, product_version=1))
    link = tmp_path / "link.bin"
    link.symlink_to(image)
    r = subprocess.run([*OTARIG, "firmware", "inspect", "--json", "--check", str(link)], capture_output=True,
                       text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["platform_id"] == 10



# -- the record states what ran, measured ----------------------------------------------------------

REPO = Path(__file__).resolve().parents[1]


def _bench_with(tmp_path: Path, name: str, path: str, version: str) -> Path:
    """The default simulated bench file with its `[particle_cli]` section replaced."""
    text = (REPO / "bench_config.toml").read_text()
    head, _, rest = text.partition("[particle_cli]")
    tail = rest[rest.index("\n["):] if "\n[" in rest else ""
    bench = tmp_path / name
    bench.write_text(f'{head}[particle_cli]\npath = "{path}"\nversion = "{version}"\n{tail}')
    return bench


def _run_cli_scenario(tmp_path: Path, bench: Path) -> tuple[subprocess.CompletedProcess[str], dict]:
    report = tmp_path / f"report-{bench.stem}"
    done = subprocess.run([*OTARIG, "run", "--bench", str(bench), "--report", str(report), "-k", "particle_cli"],
                          cwd=REPO, capture_output=True, text=True, timeout=600,
                          env={k: v for k, v in os.environ.items() if k not in ("OTARIG_PARTICLE_CLI", "OTARIG_NODE")})
    return done, json.loads((report / "certification.json").read_text())


@pytest.mark.usefixtures("require_particle_cli")
def test_the_record_states_the_cli_version_that_ran_from_the_path_the_bench_file_names(tmp_path: Path) -> None:
    """`version = "9.9.9"` and `path` naming a `particle` executable (a wrapper that notes each call
    and runs the pinned CLI): the scenario's CLI calls all go through that executable, it is asked
    its version once, and the record says the version it reported (3.51.0) and where it was, with
    the bench file's 9.9.9 kept apart as what was declared."""
    from otarig.particle_cli import DEFAULT_CLI_JS, _find_node

    calls = tmp_path / "calls.txt"
    wrapper = tmp_path / "bin" / "particle"
    wrapper.parent.mkdir()
    wrapper.write_text(f'#!/bin/sh\necho "$1" >> "{calls}"\nexec "{_find_node(None)}" "{DEFAULT_CLI_JS}" "$@"\n')
    wrapper.chmod(0o755)
    done, record = _run_cli_scenario(tmp_path, _bench_with(tmp_path, "bench-wrapper.toml", str(wrapper), "9.9.9"))
    assert done.returncode == 0, done.stdout[-3000:]
    assert record["tools"]["particle_cli"] == "3.51.0"
    assert record["tools"]["particle_cli_declared"] == "9.9.9"
    assert record["tools"]["particle_cli_path"] == str(wrapper)
    called = calls.read_text().split()
    assert called.count("--version") == 1 and "flash" in called, called
    assert "9.9.9" in done.stdout and "3.51.0" in done.stdout  # the mismatch is said, not hidden


def test_a_cli_path_that_does_not_exist_skips_the_cli_scenario_naming_it(tmp_path: Path) -> None:
    """`path = "/nonexistent"`: the scenario that needs the CLI skips with "needs tool: …" naming
    that path (not the pinned install's), the run does not pass, and the record says no CLI ran."""
    from otarig.plugin import SKIP_NEEDS

    missing = tmp_path / "nonexistent"
    done, record = _run_cli_scenario(tmp_path, _bench_with(tmp_path, "bench-missing.toml", str(missing), "3.51.0"))
    assert done.returncode != 0 and record["passed"] is False
    [result] = record["results"]
    assert result["outcome"] == "skipped"
    assert result["reason"].startswith(f"{SKIP_NEEDS}tool: ") and str(missing) in result["reason"], result["reason"]
    assert record["tools"]["particle_cli"] is None and record["tools"]["particle_cli_path"] == str(missing)
    assert str(missing) in done.stdout.replace("\n", "")
