"""The simulated cloud over real HTTP on 127.0.0.1 (otarig.sim.cloud_http), spoken to with plain
`requests` so the wire shapes themselves are checked (docs/reference/particle-cloud-api.md §3, §5).

These tests need no firmware except where a device route is exercised. Waits on the event stream
are bounded reads of a real socket (wall time, event-driven), never sleeps.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from otarig import firmware
from otarig.sim.bench import SimBench
from otarig.sim.build import build_companion
from otarig.sim.cloud_http import REDACTED, CloudHttpServer, redact_headers
from otarig.sim.images import make_app_image

PRODUCT = 4242
DID = "e00fce680000000000000001"


@pytest.fixture
def bench(product_bench: SimBench) -> SimBench:
    return product_bench


@pytest.fixture
def server(bench: SimBench) -> Iterator[CloudHttpServer]:
    srv = CloudHttpServer(bench, keepalive_s=0.2, stream_open_delay_s=0.05)
    srv.start()
    yield srv
    srv.stop()


def _session(server: CloudHttpServer) -> requests.Session:
    s = requests.Session()
    s.trust_env = False  # no proxy for loopback
    s.headers["Authorization"] = f"Bearer {server.token}"
    return s


@pytest.fixture
def api(server: CloudHttpServer) -> requests.Session:
    return _session(server)


def test_auth_shapes_and_token_never_logged(server: CloudHttpServer) -> None:
    anon = requests.Session()
    anon.trust_env = False
    r = anon.get(server.url + "/v1/user")
    assert r.status_code == 401 and r.json()["error"] == "invalid_request"
    r = anon.get(server.url + "/v1/user", headers={"Authorization": "Bearer nope"})
    assert r.status_code == 401
    assert r.json() == {"error": "invalid_token", "error_description": "The access token provided is invalid."}
    r = anon.get(server.url + "/v1/user", params={"access_token": server.token})
    assert r.status_code == 200 and r.json()["username"]
    assert server.token not in json.dumps(list(server.request_log))
    assert f"access_token={REDACTED}" in server.request_log[-1]["path"]
    assert redact_headers({"Authorization": "Bearer x", "Accept": "*/*"}) == {"Authorization": REDACTED, "Accept": "*/*"}


def test_unknown_route_is_a_logged_404(api: requests.Session, server: CloudHttpServer,
                                       caplog: pytest.LogCaptureFixture) -> None:
    r = api.get(server.url + "/v1/no/such/route/here")
    assert r.status_code == 404 and "error" in r.json()
    assert server.request_log[-1] == {"method": "GET", "path": "/v1/no/such/route/here", "status": 404,
                                      "note": "unknown route"}
    assert any("unknown route" in rec.getMessage() for rec in caplog.records)


def test_product_firmware_upload_checks_version_list_get_download(api: requests.Session,
                                                                   server: CloudHttpServer) -> None:
    base = f"{server.url}/v1/products/{PRODUCT}/firmware"
    image = make_app_image(build_companion(2), product_id=PRODUCT, product_version=2)
    r = api.post(base, files={"file": ("firmware.bin", image)}, data={"version": "3", "title": "t"})
    assert r.status_code == 400 and "PRODUCT_VERSION" in r.json()["error"]  # docs/reference/particle-ota.md §1.6
    r = api.post(base, files={"file": ("firmware.bin", b"not a module" * 20)}, data={"version": "2"})
    assert r.status_code == 400 and r.json()["error"].startswith("Invalid firmware binary")
    r = api.post(base, files={"file": ("firmware.bin", image)}, data={"version": "2", "title": "two"})
    assert r.status_code == 200 and r.json()["version"] == 2 and r.json()["size"] == len(image)
    assert [f["version"] for f in api.get(base).json()] == [2]
    assert api.get(f"{base}/2").json()["title"] == "two"
    assert api.get(f"{base}/2/binary").content == image
    assert api.get(f"{base}/9").status_code == 404
    r = api.put(f"{base}/release", json={"version": 9, "product_default": True})
    assert r.status_code == 404 and "error" in r.json()
    r = api.put(f"{base}/release", json={"version": 2, "product_default": True, "intelligent": False})
    assert r.status_code == 200 and r.json()["product_default"] is True
    assert api.delete(f"{base}/2").status_code == 400  # released firmware cannot be deleted
    assert api.get(f"{server.url}/v1/products/99/firmware").status_code == 404


def _read_stream(lines_in: Iterator[str], until_events: int, max_lines: int = 200) -> tuple[list[str], list[dict]]:
    """Raw SSE lines and parsed events, read from the socket until `until_events` events came."""
    lines: list[str] = []
    events: list[dict] = []
    name = None
    for raw in lines_in:
        lines.append(raw)
        if raw.startswith("event: "):
            name = raw[7:]
        elif raw.startswith("data: ") and name:
            events.append({"name": name, **json.loads(raw[6:])})
            name = None
            if len(events) >= until_events:
                break
        if len(lines) >= max_lines:
            break
    return lines, events


def test_event_stream_filters_by_prefix_opens_with_ok_and_keeps_alive(api: requests.Session,
                                                                       server: CloudHttpServer) -> None:
    resp = api.get(f"{server.url}/v1/devices/events/otarig", stream=True, timeout=10)
    assert resp.status_code == 200 and resp.headers["Content-Type"].startswith("text/event-stream")
    assert server.wait_for_streams(1)
    for name in ("otarig/a", "other/b", "otarig/c"):
        assert api.post(f"{server.url}/v1/devices/events", json={"name": name, "data": name[-1]}).json() == {"ok": True}
    it = resp.iter_lines(chunk_size=1, decode_unicode=True)
    lines, events = _read_stream(it, 2)
    assert lines[0] == ":ok"  # docs/reference/particle-cloud-api.md §3: a comment first; events follow in later packets
    assert [e["name"] for e in events] == ["otarig/a", "otarig/c"]
    assert events[0]["data"] == "a" and events[0]["ttl"] == 60 and events[0]["published_at"].endswith("Z")
    # keep-alives while idle (every 0.2 s in this fixture; 5 s by default, under the CLI's 15 s)
    more = []
    for raw in it:
        more.append(raw)
        if more.count(":ok") >= 2:
            break
    resp.close()
    assert more.count(":ok") >= 2


def test_the_rigs_own_stream_gets_events_at_once_other_clients_after_the_open_delay(bench: SimBench) -> None:
    """The open delay works around particle-cli 3.51.0 losing events that arrive with the headers;
    the rig's own stream reads them, and its bench waits for it at every scenario's start."""
    from otarig.cloud import ParticleCloud

    srv = CloudHttpServer(bench, keepalive_s=60, stream_open_delay_s=30)  # a delay no test waits out
    srv.start()
    ours = ParticleCloud(srv.url, srv.token).events("otarig")
    other = _session(srv).get(f"{srv.url}/v1/devices/events/otarig", stream=True, timeout=(10, 1.5))
    try:
        assert ours.wait_open() and srv.wait_for_streams(2)
        _session(srv).post(f"{srv.url}/v1/devices/events", json={"name": "otarig/now", "data": "1"})
        assert ours.get(timeout=10).name == "otarig/now"
        lines = []
        with pytest.raises(requests.exceptions.ConnectionError):  # the read times out: nothing came
            for raw in other.iter_lines(chunk_size=1, decode_unicode=True):
                lines.append(raw)
        assert lines == [":ok", ""]
    finally:
        other.close()
        ours.close()
        srv.stop()


def test_product_stream_carries_product_fields(api: requests.Session, server: CloudHttpServer) -> None:
    resp = api.get(f"{server.url}/v1/products/{PRODUCT}/events", stream=True, timeout=10)
    assert server.wait_for_streams(1)
    api.post(f"{server.url}/v1/products/{PRODUCT}/events", json={"name": "fleet/cmd", "data": "x"})
    _, events = _read_stream(resp.iter_lines(chunk_size=1, decode_unicode=True), 1)
    resp.close()
    assert events[0]["name"] == "fleet/cmd" and events[0]["productID"] == PRODUCT and events[0]["public"] is False


def test_fault_5xx_on_every_second_request(api: requests.Session, server: CloudHttpServer) -> None:
    assert api.put(f"{server.url}/otarig/v1/faults", json={"fail_every_second": True}).status_code == 200
    codes = [api.get(f"{server.url}/v1/user").status_code for _ in range(4)]
    assert codes == [200, 503, 200, 503]
    r = api.get(f"{server.url}/v1/user")
    assert r.status_code == 200
    r = api.get(f"{server.url}/v1/user")
    assert r.status_code == 503 and "error" in r.json()


def test_fault_expired_token(api: requests.Session, server: CloudHttpServer) -> None:
    api.put(f"{server.url}/otarig/v1/faults", json={"token_expired": True})
    r = api.get(f"{server.url}/v1/devices")
    assert r.status_code == 401 and r.json()["error"] == "invalid_token" and "expired" in r.json()["error_description"]
    api.put(f"{server.url}/otarig/v1/faults", json={"token_expired": False})
    assert api.get(f"{server.url}/v1/devices").status_code == 200


def test_fault_streams_down_closes_open_streams_refuses_new_ones_and_loses_what_is_published(
        api: requests.Session, server: CloudHttpServer) -> None:
    """As the real Cloud (docs/reference/particle-cloud-api.md §3 "Gaps"): a dropped stream ends, and
    what is published while no stream listens is never replayed to the next one."""
    url = f"{server.url}/v1/products/{PRODUCT}/events"
    resp = api.get(url, stream=True, timeout=10)
    assert server.wait_for_streams(1)
    faults = api.put(f"{server.url}/otarig/v1/faults", json={"streams_down": True}).json()
    assert faults["streams_down"] is True
    lines = list(resp.iter_lines(chunk_size=1, decode_unicode=True))  # ends: the server closed it
    assert lines[0] == ":ok" and not any(x.startswith("event: ") for x in lines)
    assert server.stream_count == 0 and api.get(url, stream=True, timeout=10).status_code == 503
    api.post(url, json={"name": "fleet/missed", "data": "1"})
    api.put(f"{server.url}/otarig/v1/faults", json={"streams_down": False})
    again = api.get(url, stream=True, timeout=10)
    assert again.status_code == 200 and server.wait_for_streams(1)
    api.post(url, json={"name": "fleet/after", "data": "2"})
    _, events = _read_stream(again.iter_lines(chunk_size=1, decode_unicode=True), 1)
    again.close()
    assert [e["name"] for e in events] == ["fleet/after"]


def test_the_clients_stream_notes_each_gap_but_not_its_first_connect(server: CloudHttpServer,
                                                                    api: requests.Session) -> None:
    """`EventStream.gaps`: from the drop it noticed to its reconnected response, in its `now()` time."""
    from otarig.cloud import ParticleCloud

    ticks = iter(range(100, 10_000))  # a clock that moves one tick each time it is read
    stream = ParticleCloud(server.url, server.token).events(product=PRODUCT, reconnect_delay=0.05,
                                                            now=lambda: float(next(ticks)))
    try:
        assert stream.wait_open() and stream.gaps == [] and stream.down_since is None
        api.put(f"{server.url}/otarig/v1/faults", json={"streams_down": True})
        assert stream.wait_down() and stream.down_since is not None
        down = stream.down_since
        api.put(f"{server.url}/otarig/v1/faults", json={"streams_down": False})
        assert stream.wait_open()
        assert len(stream.gaps) == 1 and stream.gaps[0][0] == down and stream.gaps[0][1] > down
        assert stream.down_since is None
    finally:
        stream.close()


def test_device_routes_with_firmware(bench: SimBench, api: requests.Session, server: CloudHttpServer,
                                     tmp_path: Path) -> None:
    img1 = make_app_image(build_companion(1), product_id=PRODUCT, product_version=1)
    dev = bench.add_electron(DID, product_id=PRODUCT, image=img1, with_port=False)
    bench.run_for(60)
    assert dev.net.cloud_connected
    got = api.get(f"{server.url}/v1/devices").json()
    assert [d["id"] for d in got] == [DID] and got[0]["connected"] is True and got[0]["platform_id"] == 10
    one = api.get(f"{server.url}/v1/products/{PRODUCT}/devices/{DID}").json()
    assert one["firmware_version"] == 1 and "workload" in one["functions"] and "version" in one["variables"]
    assert one["firmware_updates_enabled"] is False  # the companion's guard disabled updates (docs/reference/particle-ota.md §3.1)
    assert api.get(f"{server.url}/v1/devices/{DID}/version").json()["result"] == 1
    assert api.post(f"{server.url}/v1/devices/{DID}/workload", json={"args": "busy"}).json()["return_value"] == 0
    assert api.post(f"{server.url}/v1/devices/{DID}/nofn", json={"args": ""}).status_code == 404
    assert api.get(f"{server.url}/v1/devices/{DID}/novar").status_code == 404
    r = api.put(f"{server.url}/v1/devices/{DID}", json={"name": "truck-7"})
    assert r.json()["name"] == "truck-7"
    assert api.get(f"{server.url}/v1/devices/truck-7").json()["id"] == DID  # names work as IDs
    r = api.put(f"{server.url}/v1/products/{PRODUCT}/devices/{DID}",
                json={"development": True, "groups": ["beta"], "firmware_updates_forced": True})
    body = r.json()
    assert body["development"] is True and body["groups"] == ["beta"] and body["firmware_updates_forced"] is True
    assert api.put(f"{server.url}/v1/products/{PRODUCT}/devices/{DID}", json={"desired_firmware_version": 7}
                   ).status_code == 404
    r = api.put(f"{server.url}/v1/devices/{DID}", files={"file": ("x.bin", b"junk" * 100)})
    assert r.status_code == 400 and "Invalid firmware binary" in r.json()["error"]
    argon = firmware.build_module(b"x", product_id=PRODUCT, product_version=2, platform_id=12)
    r = api.put(f"{server.url}/v1/devices/{DID}", files={"file": ("a.bin", argon)})
    assert r.status_code == 400 and "platform 12" in r.json()["error"]


def test_otarig_sim_json_first_line(tmp_path: Path) -> None:
    """`otarig sim --json`: one JSON object on the first line; the API it names answers."""
    build_companion(1)  # warm the cache so the subprocess starts fast
    env = {k: v for k, v in os.environ.items() if not k.lower().endswith("_proxy")}
    proc = subprocess.Popen([sys.executable, "-m", "otarig.cli", "sim", "--json", "--speed", "20", "--boards", "2"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=tmp_path)
    try:
        assert proc.stdout is not None
        info = json.loads(proc.stdout.readline())
        assert info["product"] == 4242 and len(info["boards"]) == 2 and info["psu"].startswith("TCPIP::127.0.0.1::")
        s = requests.Session()
        s.trust_env = False
        devices = s.get(info["api_url"] + "/v1/devices", headers={"Authorization": f"Bearer {info['token']}"},
                        timeout=10).json()
        assert sorted(d["id"] for d in devices) == sorted(b["device_id"] for b in info["boards"])
        assert all(Path(b["port"]).exists() for b in info["boards"])
        # the bench companion is there too, on its own pty, reachable by `otarig companion`
        tester = info["bench_companion"]["port"]
        status = subprocess.run([sys.executable, "-m", "otarig.cli", "companion", "status", "--port", tester],
                                capture_output=True, text=True, timeout=60, env=env)
        assert status.returncode == 0, status.stderr
        assert json.loads(status.stdout)["switches"] == {"vin": True, "vbus": True, "antenna": True}
        off = subprocess.run([sys.executable, "-m", "otarig.cli", "companion", "antenna-off", "--ms", "60000",
                              "--port", tester], capture_output=True, text=True, timeout=60, env=env)
        assert off.returncode == 0 and json.loads(off.stdout) == {"cmd": "antenna_off", "ms": 60000}, off.stderr
        status = subprocess.run([sys.executable, "-m", "otarig.cli", "companion", "status", "--port", tester],
                                capture_output=True, text=True, timeout=60, env=env)
        assert json.loads(status.stdout)["switches"]["antenna"] is False
    finally:
        proc.send_signal(signal.SIGTERM)
        rc = proc.wait(timeout=20)
    assert rc == 0
