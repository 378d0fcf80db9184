"""Secrets: no access token in any file a run leaves behind.

Two runs that use the token the most (the real `particle` CLI flashing, getting and calling; a
lock-and-flash through the Cloud API), each as a subprocess over the real channels:

* `otarig run` on the default simulated bench, where each scenario's simulated cloud makes up a
  random token (`otarig.sim.cloud_http.CloudHttpServer`). The run is started through a small
  wrapper that notes each token the simulated cloud makes and prints them on stderr at exit (a
  pipe to this test, never a file), so the scan knows what to look for.
* a stand-in (`otarig sim --bench-file`, another process) and `otarig run` against it, with a token
  of our choosing in `OTARIG_STANDIN_TOKEN` — one with characters that URL encoding, JSON and
  base64 change, so each of those forms is a different string to look for.

Every process gets its own TMPDIR, so `tempfile.gettempdir()` of the run is a folder this test
owns: every temporary folder the run made (world folders, CLI homes, pytest's basetemp) is in it;
new otarig-* folders in the system's temporary folder are scanned as well.
After the run the scan reads every file left there and in the report folder (names included) and
looks for the token plain, URL-encoded, JSON-escaped, base64, in a bearer header and by its first
16 characters (a truncated leak); any hit fails the test, naming the file and the form.
"""
from __future__ import annotations

import base64
import json
import os
import secrets
import subprocess
import sys
import tempfile
import textwrap
import urllib.parse
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
OTARIG = [sys.executable, "-m", "otarig.cli"]
SELECT = "particle_cli or lock_and_flash"
TOKENS_MARK = "OTARIG-TEST-TOKENS "

pytestmark = pytest.mark.usefixtures("require_particle_cli")

#: `otarig …` with every token the simulated cloud makes noted, printed on stderr at exit
NOTING_TOKENS = textwrap.dedent(f'''
    import json, sys
    from otarig.sim import cloud_http

    made = []
    init = cloud_http.CloudHttpServer.__init__

    def noting(self, *args, **kwargs):
        init(self, *args, **kwargs)
        made.append(self.token)

    cloud_http.CloudHttpServer.__init__ = noting
    from otarig.cli import main
    try:
        rc = main(sys.argv[1:])
    finally:
        sys.stderr.write({TOKENS_MARK!r} + json.dumps(made) + "\\n")
    sys.exit(rc)
''')


def forms(token: str) -> dict[str, bytes]:
    """Every way a token may be written down."""
    out = {
        "plain": token,
        "url-encoded": urllib.parse.quote(token, safe=""),
        "url-encoded (form)": urllib.parse.quote_plus(token),
        "json-escaped": json.dumps(token)[1:-1],
        "base64": base64.b64encode(token.encode()).decode(),
        "bearer header": f"Bearer {token}",
        "first 16 characters": token[:16],
    }
    return {k: v.encode() for k, v in out.items()}


def scan(roots: list[Path], tokens: list[str]) -> list[str]:
    """`path: form` for every file (or file name) under `roots` holding a token in any form."""
    patterns = [(f"token {i} {label}", form) for i, tok in enumerate(tokens) for label, form in forms(tok).items()]
    hits, files = [], 0
    for root in roots:
        for path in sorted(root.rglob("*")):
            name = str(path.relative_to(root)).encode()
            hits += [f"{path} (its name): {label}" for label, form in patterns if form in name]
            if path.is_symlink():
                target = os.readlink(path).encode()
                hits += [f"{path} (link target): {label}" for label, form in patterns if form in target]
                continue
            try:
                if not path.is_file():
                    continue
                data = path.read_bytes()
            except (FileNotFoundError, PermissionError):  # another process's folder, gone meanwhile
                continue
            files += 1
            hits += [f"{path}: {label}" for label, form in patterns if form in data]
    assert files, f"nothing to scan under {roots}"
    return hits


def system_temp_otarig() -> set[Path]:
    """otarig-* entries in this process's temporary folder (the system's): a run given its own
    TMPDIR should make none there, and whatever it did make is scanned too."""
    return set(Path(tempfile.gettempdir()).glob("otarig-*"))


def _env(tmpdir: Path, **extra: str) -> dict[str, str]:
    tmpdir.mkdir(parents=True, exist_ok=True)
    env = {k: v for k, v in os.environ.items() if k not in ("OTARIG_PARTICLE_CLI", "PARTICLE_ACCESS_TOKEN")}
    return {**env, "TMPDIR": str(tmpdir), **extra}


def test_a_simulated_run_with_the_cli_leaves_no_token_anywhere(tmp_path: Path) -> None:
    report, tmpdir = tmp_path / "report", tmp_path / "tmp"
    before = system_temp_otarig()
    done = subprocess.run([sys.executable, "-c", NOTING_TOKENS, "run", "--report", str(report), "-k", SELECT],
                          cwd=REPO, env=_env(tmpdir), capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    tokens = json.loads(done.stderr.split(TOKENS_MARK)[1].splitlines()[0])
    record = json.loads((report / "certification.json").read_text())
    assert record["summary"]["passed"] == 2 and len(tokens) == 2, (record["summary"], len(tokens))
    assert any((report / "tests").glob("*/cli-transcript.txt")), "the CLI scenario ran the CLI"
    hits = scan([report, tmpdir, *sorted(system_temp_otarig() - before)], tokens)
    assert not hits, "\n".join(hits)
    for tok in tokens:  # the console is not a file, but it is read over shoulders and kept by CI
        assert tok not in done.stdout and tok[:16] not in done.stdout


def test_a_stand_in_run_with_the_cli_leaves_no_token_anywhere(tmp_path: Path) -> None:
    token = f"{secrets.token_hex(12)}+/={secrets.token_urlsafe(12)}"  # URL, JSON and base64 forms all differ
    sim_tmp, run_tmp = tmp_path / "sim-tmp", tmp_path / "run-tmp"
    bench, report = tmp_path / "standin" / "bench-standin.toml", tmp_path / "report"
    bench.parent.mkdir()
    before = system_temp_otarig()
    sim = subprocess.Popen([*OTARIG, "sim", "--json", "--speed", "20", "--bench-file", str(bench)], cwd=bench.parent,
                           env=_env(sim_tmp, OTARIG_STANDIN_TOKEN=token), stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, text=True)
    try:
        first = sim.stdout.readline() if sim.stdout else ""
        assert first, f"otarig sim did not start: {sim.stderr.read() if sim.stderr else ''}"
        done = subprocess.run([*OTARIG, "run", "--bench", str(bench), "--report", str(report), "-k", SELECT],
                              cwd=REPO, env=_env(run_tmp, OTARIG_STANDIN_TOKEN=token), capture_output=True,
                              text=True, timeout=900)
    finally:
        sim.terminate()
        sim_out, sim_err = sim.communicate(timeout=60)
    assert done.returncode == 0, done.stdout[-3000:]
    record = json.loads((report / "certification.json").read_text())
    assert record["bench"]["stand_in"] is True and record["summary"]["passed"] == 2, record["summary"]
    assert any((report / "tests").glob("*/cli-transcript.txt")), "the CLI scenario ran the CLI"
    hits = scan([report, run_tmp, sim_tmp, bench.parent, *sorted(system_temp_otarig() - before)], [token])
    assert not hits, "\n".join(hits)
    for text in (done.stdout, done.stderr, first, sim_out, sim_err):
        assert token not in text and token[:16] not in text


def test_the_scan_finds_each_form(tmp_path: Path) -> None:
    """The scan itself: each form of a token, written into a file (or a file name), is a hit."""
    token = "abc+/=" + secrets.token_hex(8)
    for label, form in forms(token).items():
        folder = tmp_path / label.replace(" ", "-")
        folder.mkdir()
        (folder / "log.txt").write_bytes(b"x " + form + b" y")
        assert any(label in hit for hit in scan([folder], [token])), label
    named = tmp_path / "named"
    named.mkdir()
    hex_token = secrets.token_hex(20)
    (named / f"profile-{hex_token[:16]}.json").write_text("{}")
    assert scan([named], [hex_token])
