"""Bring your own firmware (docs/your-firmware.md): `otarig run --firmware DIR` on a team's
Particle project, through the real `otarig` command, real g++ and the simulated bench.

The forum's app (examples/apps/forum-disable-updates) fails with verdicts that say what to change;
its corrected version passes; a call the host layer lacks is one line; a firmware without the test
agent is refused before anything runs; `otarig firmware add-agent` copies the agent in.
"""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from otarig import verdicts as v
from otarig.firmware_project import agent_problems
from otarig.sim.missing_api import explain
from otarig.timeline import Timeline

REPO = Path(__file__).resolve().parents[1]
APPS = REPO / "examples" / "apps"
OTARIG = [sys.executable, "-m", "otarig.cli"]
#: the two scenarios the forum's question is about, plus one the app has no hook for
FORUM_SCENARIOS = ("intelligent_release_while_busy or standard_release_lands or several_otas_without_a_reset"
                   " or offered_at_the_boot_handshake")


def otarig(*args: str, cwd: Path = REPO) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*OTARIG, *args], cwd=cwd, capture_output=True, text=True, timeout=600)


def results(report: Path) -> dict[str, dict]:
    return {json.loads(m.read_text())["name"]: json.loads(m.read_text()) for m in report.glob("tests/*/meta.json")}


def project(tmp_path: Path, app: str, *, agent: bool = True) -> Path:
    """A Particle project folder holding `app` as src/app.cpp, with the agent copied in by the command."""
    (tmp_path / "src").mkdir(parents=True)
    (tmp_path / "src" / "app.cpp").write_text(app)
    (tmp_path / "project.properties").write_text("name=byo\n")
    if agent:
        done = otarig("firmware", "add-agent", str(tmp_path))
        assert done.returncode == 0, done.stderr
    return tmp_path


AGENT_APP = """#include "Particle.h"
#include "TestAgent.h"

TestAgent agent({4242, 1, false}, {});

void onEvent(system_event_t event, int param) { agent.sysEvent(event, param); }

void setup() {
    System.on(all_events, onEvent);
    agent.begin(0, 0);
%s}

void loop() {
    agent.loop();
    delay(1000);
}
"""


def test_the_forum_app_fails_with_verdicts_that_say_what_to_change_and_the_fixed_one_passes(tmp_path: Path) -> None:
    """AUTOMATIC, non-threaded, updates disabled in setup() and enabled when idle, nothing holding
    the reset: a pending update lands when the app idles and Device OS resets at once, so the app
    never shuts down (docs/reference/particle-ota.md §2.5). The run exits 1 and the terminal names
    the failed verdict with what to change. A scenario needing a hook the app lacks (reset hold) is
    skipped as not applicable. The corrected app passes the same scenarios."""
    forum = otarig("run", "--firmware", str(APPS / "forum-disable-updates"), "-k", FORUM_SCENARIOS,
                   "--report", str(tmp_path / "forum"))
    assert forum.returncode == 1, forum.stdout[-3000:] + forum.stderr[-2000:]
    out = " ".join(forum.stdout.split())
    assert "FAIL shutdown completed before reset" in out and "nothing held the reset" in out
    assert "what to change: call System.disableReset() in setup()" in out
    runs = results(tmp_path / "forum")
    for name in ("test_intelligent_release_while_busy_waits_for_next_idle_window",
                 "test_standard_release_lands_at_next_full_handshake"):
        failed = [v for v in runs[name]["verdicts"] if not v["passed"]]
        assert [v["name"] for v in failed] == ["shutdown completed before reset"], name
        assert "docs/reference/particle-ota.md §2.5" in failed[0]["explanation"]
    # docs/reference/particle-ota.md §3.1: a release made while the device was off, offered at the boot handshake,
    # lands before setup(): the failure names that cause and the fix
    [boot] = [v for v in runs["test_release_made_while_off_is_offered_at_the_boot_handshake"]["verdicts"]
              if not v["passed"]]
    assert boot["name"] == "the app saw every update begin"
    assert "takes the update offered at that boot handshake" in boot["explanation"]
    assert "what to change: add SYSTEM_THREAD(ENABLED) or SYSTEM_MODE(SEMI_AUTOMATIC)" in boot["explanation"]
    assert "FAIL the app saw every update begin" in out and "before setup() runs" in out
    assert runs["test_several_otas_without_a_reset_apply_the_last_one"]["outcome"] == "skipped"
    assert "SKIP test_several_otas_without_a_reset_apply_the_last_one: not applicable to this firmware" in out

    fixed = otarig("run", "--firmware", str(APPS / "forum-disable-updates-fixed"), "-k", FORUM_SCENARIOS,
                   "--report", str(tmp_path / "fixed"))
    assert fixed.returncode == 0, fixed.stdout[-3000:] + fixed.stderr[-2000:]
    record = json.loads((tmp_path / "fixed" / "certification.json").read_text())
    assert record["passed"] is True and record["bench"]["firmware_project"].endswith("forum-disable-updates-fixed")
    assert "SKIP test_several_otas_without_a_reset_apply_the_last_one: not applicable to this firmware" in \
        " ".join(fixed.stdout.split())


def test_a_call_the_host_layer_lacks_is_one_error_line_naming_the_call_and_its_line(tmp_path: Path) -> None:
    """`Cellular.command` is not in firmware/host/: the run stops with one line naming the call and
    src/app.cpp:LINE and what to do, never the compiler's output."""
    byo = project(tmp_path / "byo", AGENT_APP % '    Cellular.command("AT+CSQ\\r\\n");\n')
    done = otarig("run", "--firmware", str(byo), "-k", "lock_and_flash", "--report", str(tmp_path / "r"))
    assert done.returncode != 0
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("error: firmware uses Cellular.command (src/app.cpp:11), which the simulated "
                               "bench's Device OS layer (firmware/host/) does not provide")
    assert "OTARIG_HOST_BUILD" in lines[0] and "docs/your-firmware.md" in lines[0]


def test_the_linker_s_undefined_reference_to_a_host_call_is_named_with_its_first_use(tmp_path: Path) -> None:
    """ld names no line: the call's first use in the sources stands in. (ld's text is given here:
    every call the host headers declare is defined, so no real firmware reaches this path today.)"""
    src = tmp_path / "src" / "app.cpp"
    src.parent.mkdir()
    src.write_text("void setup() {\n    // Particle.syncTime() once a day\n    Particle.syncTime();\n}\n")
    ld = "/usr/bin/ld: 00-app.o: in function `setup()':\napp.cpp:(.text+0x5): undefined reference to " \
         "`CloudClass::syncTime()'\ncollect2: error: ld returned 1 exit status\n"
    line = explain(ld, [src])
    assert line is not None and line.startswith("firmware uses Particle.syncTime (src/app.cpp:3), which")
    assert explain("app.cpp:3:5: error: expected ';' before '}' token\n", [src]) is None


def test_a_firmware_without_the_test_agent_is_refused_before_anything_runs_with_what_to_add(tmp_path: Path) -> None:
    """No lib/TestAgent, no include, no calls: refused at once, naming each missing piece."""
    bare = project(tmp_path / "bare", "#include \"Particle.h\"\nvoid setup() {}\nvoid loop() {}\n", agent=False)
    done = otarig("run", "--firmware", str(bare), "--report", str(tmp_path / "r"))
    assert done.returncode != 0
    assert "does not run otarig's test agent" in done.stderr
    assert "otarig firmware add-agent DIR" in done.stderr and 'no source includes "TestAgent.h"' in done.stderr
    assert not (tmp_path / "r" / "certification.json").exists(), "nothing ran"


def test_add_agent_copies_the_library_and_lists_what_the_sources_still_need(tmp_path: Path) -> None:
    byo = project(tmp_path / "byo", "#include \"Particle.h\"\nvoid setup() {}\nvoid loop() {}\n")
    assert (byo / "lib" / "TestAgent" / "src" / "TestAgent.cpp").is_file()
    no_object = ("no TestAgent object is defined (e.g. `TestAgent agent({PRODUCT, VERSION, threaded}, "
                 "{...});`)")
    assert agent_problems(byo) == ['no source includes "TestAgent.h"', no_object]
    again = otarig("firmware", "add-agent", str(byo))
    assert again.returncode != 0 and "already exists; pass --force" in again.stderr
    (byo / "src" / "app.cpp").write_text(AGENT_APP % "")
    assert agent_problems(byo) == []


@pytest.mark.parametrize("app", sorted(p.name for p in APPS.iterdir() if (p / "src").is_dir()))
def test_every_example_app_runs_the_agent(app: str) -> None:
    assert agent_problems(APPS / app) == []


# -- verdicts over timelines a real bench records (board serial lines, the cloud's stream) ----------
BOARD = "board:e00fce680000000000000001"


def _hello(tl: Timeline, t: float, version: int, *, mode: str = "AUTOMATIC", threaded: bool = False,
           hooks: list[str] | None = None, uptime_ms: int = 15_000) -> None:
    tl.add(t, BOARD, "hello", {"product_version": version, "mode": mode, "threaded": threaded,
                               **({"hooks": hooks} if hooks is not None else {})}, device_t=uptime_ms)


def test_an_update_that_lands_before_setup_fails_with_the_boot_handshake_named_and_the_fix() -> None:
    """Version 1 → 2 across a power cycle with no `firmware_update` begin on the board, the cloud's
    stream saying the transfer started: an AUTOMATIC non-threaded app took it before setup() ran
    (docs/reference/particle-ota.md §3.1)."""
    tl = Timeline()
    tl.add(0, BOARD, "state", {"product_version": 1})
    tl.add(5, "rig", "power_cycle", {})
    tl.add(20, "cloud", "spark/flash/status", {"data": "started "})
    _hello(tl, 60, 2)
    verdict = v.app_saw_every_update(tl)
    assert not verdict.passed
    assert "from version 1 to 2 without the app seeing a `firmware_update` begin" in verdict.message
    assert "cloud started the transfer at 20.0s" in verdict.message and "before setup() runs" in verdict.message
    assert verdict.fix.startswith("add SYSTEM_THREAD(ENABLED) or SYSTEM_MODE(SEMI_AUTOMATIC)")
    assert "what to change: add SYSTEM_THREAD(ENABLED)" in verdict.explain()

    seen = Timeline()
    seen.add(0, BOARD, "state", {"product_version": 1})
    seen.add(30, BOARD, "sys", {"event": "firmware_update", "param": "begin"})
    _hello(seen, 60, 2, mode="SEMI_AUTOMATIC")
    assert v.app_saw_every_update(seen).passed


def test_verdicts_over_hooks_the_firmware_lacks_pass_as_not_applicable() -> None:
    """A firmware whose hello lists no `window` or `records` hook: the idle-window and record
    verdicts say not applicable instead of judging events that cannot come."""
    tl = Timeline()
    _hello(tl, 1, 1, hooks=["workload"])
    tl.add(10, BOARD, "sys", {"event": "firmware_update", "param": "begin"})
    for verdict in (v.update_began_in_idle_window(tl), v.no_record_lost(tl)):
        assert verdict.passed and verdict.message.startswith("not applicable to this firmware")
    _hello(tl, 20, 1, hooks=["workload", "window", "records"])
    tl.add(30, BOARD, "sys", {"event": "firmware_update", "param": "begin"})
    judged = v.update_began_in_idle_window(tl)  # judged again once the hook is there: the window was closed
    assert not judged.passed and "keep updates disabled" in judged.fix
    assert "not applicable" not in v.no_record_lost(tl).message


SILENT_APP = """#include "Particle.h"
#include "TestAgent.h"

TestAgent agent({4242, 1, false}, {});
bool ready = false;  // never set: the agent is linked and called, but never started

void onEvent(system_event_t event, int param) { agent.sysEvent(event, param); }

void setup() {
    System.on(all_events, onEvent);
    if (ready) agent.begin(0, 0);
}

void loop() {
    if (ready) agent.loop();
    delay(1000);
}
"""


def test_a_board_whose_agent_never_says_hello_stops_the_run_at_bench_start(tmp_path: Path) -> None:
    """The sources pass the static check but the agent never starts: no `hello`, no reply to
    `status` within 180 bench seconds (a wake and a power cycle tried) stops the run before any
    scenario, saying what to add — the check a real bench makes too."""
    silent = project(tmp_path / "silent", SILENT_APP)
    assert agent_problems(silent) == []
    done = otarig("run", "--firmware", str(silent), "-k", "lock_and_flash", "--report", str(tmp_path / "r"))
    assert done.returncode == 1
    out = " ".join(done.stdout.split())
    assert "no otarig test agent on its serial port within 180 bench seconds" in out
    assert "otarig firmware add-agent DIR" in out and "agent.begin() in setup()" in out
    record = json.loads((tmp_path / "r" / "certification.json").read_text())
    assert record["passed"] is False and "no otarig test agent" in json.dumps(record)


def _bench_file(tmp_path: Path, firmware: str, *, kind: str = "simulated") -> Path:
    """The shipped bench file with a [firmware] section (and, for a real bench, what it needs)."""
    text = (REPO / "bench_config.toml").read_text()
    if kind == "real":
        text = text.replace('kind = "simulated"', 'kind = "real"')
    path = tmp_path / "bench.toml"
    path.write_text(text + "\n[firmware]\n" + firmware + "\n")
    return path


def test_the_bench_file_s_firmware_project_is_the_simulated_bench_s_firmware(tmp_path: Path) -> None:
    """`[firmware] project = "DIR"` (relative to the bench file) is what `otarig run` certifies:
    here a folder without the agent, refused at once naming that folder."""
    project(tmp_path / "bare", "#include \"Particle.h\"\nvoid setup() {}\nvoid loop() {}\n", agent=False)
    bench = _bench_file(tmp_path, 'project = "bare"')
    done = otarig("run", "--bench", str(bench), "--report", str(tmp_path / "r"), cwd=tmp_path.parent)
    assert done.returncode != 0
    assert f"{tmp_path / 'bare'}: the firmware does not run otarig's test agent" in done.stderr


@pytest.mark.parametrize("kind, firmware, expected", [
    ("simulated", 'versions = { 1 = "v1.bin" }', "firmware.versions: a catalog of Electron binaries is for a real bench"),
    ("real", 'project = "app"\nversions = { 1 = "v1.bin" }',
     "firmware.project = 'app': a real bench flashes Electron binaries, not a project folder"),
])
def test_each_meaning_of_firmware_is_refused_on_the_other_kind_of_bench(tmp_path: Path, kind: str, firmware: str,
                                                                        expected: str) -> None:
    done = otarig("run", "--bench", str(_bench_file(tmp_path, firmware, kind=kind)), "--report", str(tmp_path / "r"))
    assert done.returncode != 0 and expected in done.stderr, done.stderr
