"""otarig.particle_cli: the real particle-cli 3.51.0 against a loopback HTTP stub.

The stub below (``http.server`` in a thread) stands in for the simulated Particle Cloud, which is
built separately (otarig.sim); it answers exactly the minimal responses that
``docs/reference/particle-cloud-api.md`` §3 lists, records every request, and answers unknown routes
with 404 so a new CLI call is noticed (Risks 4).
"""

from __future__ import annotations

import email.parser
import email.policy
import json
import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from otarig import firmware as fw
from otarig.particle_cli import (
    AuthError,
    CliFailed,
    CliNotFound,
    CliTimeout,
    NoDevices,
    ParticleCli,
    strip_ansi,
)

TOKEN = "0tar1g5ecret70ken0123456789abcdef01234567"
DEVICE = "e00fce68aabbccddeeff0011"


pytestmark = pytest.mark.usefixtures("require_particle_cli")


class Stub(ThreadingHTTPServer):
    daemon_threads = True
    requests: list[dict[str, Any]]
    stopping: threading.Event


class Handler(BaseHTTPRequestHandler):
    server: Stub
    protocol_version = "HTTP/1.1"

    def log_message(self, *args: Any) -> None:  # keep pytest output clean
        pass

    def _body(self) -> bytes:
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            out = b""
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip(), 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return out
                out += self.rfile.read(size)
                self.rfile.readline()
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n else b""

    def _json(self, status: int, obj: Any) -> None:
        raw = json.dumps(obj).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(raw)))
        self.end_headers()
        self.wfile.write(raw)

    def _record(self, body: bytes) -> dict[str, Any]:
        rec = {"method": self.command, "path": self.path, "headers": dict(self.headers), "body": body}
        self.server.requests.append(rec)
        return rec

    def _authorized(self) -> bool:
        if self.headers.get("Authorization") == f"Bearer {TOKEN}":
            return True
        self._json(401, {"error": "invalid_token", "error_description": "The access token provided is invalid."})
        return False

    def do_GET(self) -> None:
        self._record(b"")
        if not self._authorized():
            return
        path = self.path.split("?", 1)[0]
        if path.startswith("/v1/devices/events") or "/events" in path:
            return self._sse(path)
        if path == f"/v1/devices/{DEVICE}/temperature":
            return self._json(200, {"name": "temperature", "result": 42, "coreInfo": {"deviceID": DEVICE}})
        self._json(404, {"error": "Variable not found"})

    def do_POST(self) -> None:
        body = self._body()
        self._record(body)
        if not self._authorized():
            return
        if self.path == "/v1/devices/events":
            return self._json(200, {"ok": True})
        if self.path == f"/v1/devices/{DEVICE}/leak":
            # An error that echoes the token: the rig must redact it from everything it keeps.
            return self._json(400, {"error": f"token {TOKEN} not allowed here"})
        if self.path == f"/v1/devices/{DEVICE}/setMode":
            args = json.loads(body)["args"]
            return self._json(200, {"id": DEVICE, "connected": True, "return_value": len(args)})
        self._json(404, {"error": "Function not found"})

    def do_PUT(self) -> None:
        body = self._body()
        rec = self._record(body)
        if not self._authorized():
            return
        if self.path == f"/v1/devices/{DEVICE}":
            msg = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
                b"Content-Type: " + self.headers["Content-Type"].encode() + b"\r\n\r\n" + body
            )
            rec["parts"] = {
                p.get_param("name", header="content-disposition"): p.get_payload(decode=True)
                for p in msg.iter_parts()
            }
            return self._json(200, {"id": DEVICE, "status": "Update started"})
        self._json(404, {"error": "not found"})

    def _sse(self, path: str) -> None:
        """Two events then keep-alive comments until the client hangs up (docs/reference/particle-cloud-api.md §3 subscribe)."""
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        self.end_headers()
        prefix = path.rsplit("/events", 1)[1].lstrip("/")
        events = [("otarig/boot", "v1"), ("spark/status", "online"), ("otarig/idle", "1")]
        try:
            # particle-cli attaches its 'event' listener a few promise hops after the response
            # starts (src/cmd/subscribe.js), so events in the first packet are lost: open the
            # stream with a comment and publish a moment later, as a real cloud would.
            self.wfile.write(b":ok\n\n")
            self.wfile.flush()
            if self.server.stopping.wait(0.5):
                return
            for name, data in events:
                if not name.startswith(prefix):
                    continue  # the stub filters by prefix; the CLI does not (§3)
                payload = {"data": data, "ttl": 60, "published_at": "2026-11-01T00:00:00.000Z", "coreid": DEVICE}
                self.wfile.write(f"event: {name}\ndata: {json.dumps(payload)}\n\n".encode())
                self.wfile.flush()
            for _ in range(100):
                if self.server.stopping.wait(0.2):
                    break
                self.wfile.write(b":ok\n\n")
                self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError):
            pass
        self.close_connection = True


@pytest.fixture
def stub() -> Iterator[Stub]:
    server = Stub(("127.0.0.1", 0), Handler)
    server.requests = []
    server.stopping = threading.Event()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.stopping.set()
    server.shutdown()
    server.server_close()


@pytest.fixture
def cli(stub: Stub, tmp_path: Path) -> ParticleCli:
    port = stub.server_address[1]
    return ParticleCli(tmp_path / "home", f"http://127.0.0.1:{port}", TOKEN, timeout=60)


def _assert_no_token(cli: ParticleCli, *extra: object) -> None:
    blob = json.dumps(cli.transcript_records()) + "".join(str(e) for e in extra)
    assert TOKEN not in blob


def test_version(cli: ParticleCli) -> None:
    assert cli.version() == "3.51.0"


def test_config_file_per_spec(cli: ParticleCli, stub: Stub) -> None:
    path = cli.write_config()
    cfg = json.loads(path.read_text())
    assert cfg["apiUrl"] == f"http://127.0.0.1:{stub.server_address[1]}"
    assert cfg["access_token"] == TOKEN
    assert cfg["access_token_expires_at"].startswith("9999")
    assert "flashWarningShownOn" in cfg


def test_publish_get_call(cli: ParticleCli, stub: Stub, monkeypatch: pytest.MonkeyPatch) -> None:
    # A proxy in the environment must not capture loopback traffic (docs/reference/particle-cloud-api.md §2 item 3).
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:9")
    monkeypatch.setenv("HTTPS_PROXY", "http://127.0.0.1:9")
    result = cli.publish("otarig/test", "hello")
    assert result.rc == 0 and "otarig/test" in result.output
    pub = next(r for r in stub.requests if r["path"] == "/v1/devices/events")
    assert json.loads(pub["body"]) == {"name": "otarig/test", "data": "hello"}
    assert pub["headers"]["Authorization"] == f"Bearer {TOKEN}"

    assert cli.get(DEVICE, "temperature") == 42
    assert cli.call(DEVICE, "setMode", "idle") == 4
    call = next(r for r in stub.requests if r["path"].endswith("/setMode"))
    assert json.loads(call["body"]) == {"args": "idle"}
    _assert_no_token(cli)
    assert [r.command[1] for r in cli.transcript] == ["publish", "get", "call"]
    assert all(r.duration > 0 for r in cli.transcript)


def test_flash_cloud_uploads_module_multipart(cli: ParticleCli, stub: Stub, tmp_path: Path) -> None:
    image = fw.build_manifest_module({"build": "host-1"}, product_id=1234, product_version=5, size=8192)
    path = tmp_path / "app.bin"
    path.write_bytes(image)
    result = cli.flash_cloud(DEVICE, path)
    assert "Flash success" in result.output
    put = next(r for r in stub.requests if r["method"] == "PUT")
    assert put["parts"]["file"] == image
    assert put["parts"]["latest"] == b"true"
    _assert_no_token(cli)


def test_flash_cloud_refuses_missing_file(cli: ParticleCli, tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        cli.flash_cloud(DEVICE, tmp_path / "nope.bin")


def test_subscribe_max_two(cli: ParticleCli, stub: Stub) -> None:
    events = cli.subscribe(max_events=2, timeout=30)
    assert [e["name"] for e in events] == ["otarig/boot", "spark/status"]
    assert events[1]["data"] == "online" and events[0]["coreid"] == DEVICE
    sse = [r for r in stub.requests if "/events" in r["path"]]
    assert sse and sse[0]["path"].startswith("/v1/devices/events?")


def test_subscribe_prefix_and_device(cli: ParticleCli, stub: Stub) -> None:
    events = cli.subscribe("otarig", device=DEVICE, max_events=2, timeout=30)
    assert [e["name"] for e in events] == ["otarig/boot", "otarig/idle"]
    assert any(r["path"].startswith(f"/v1/devices/{DEVICE}/events/otarig") for r in stub.requests)


def test_unauthorized_is_auth_error(stub: Stub, tmp_path: Path) -> None:
    bad = "badb0b" + TOKEN[6:]
    cli = ParticleCli(tmp_path / "home", f"http://127.0.0.1:{stub.server_address[1]}", bad, timeout=60)
    with pytest.raises(AuthError) as exc:
        cli.get(DEVICE, "temperature")
    assert exc.value.rc != 0
    # The CLI nulls the token on a 401 (docs/reference/particle-cloud-api.md §2 item 4); the next run rewrites it.
    assert json.loads((tmp_path / "home/.particle/particle.config.json").read_text())["access_token"] is None
    cli.write_config()
    assert json.loads((tmp_path / "home/.particle/particle.config.json").read_text())["access_token"] == bad
    assert bad not in json.dumps(cli.transcript_records()) + str(exc.value)


def test_token_echoed_by_server_is_redacted(cli: ParticleCli) -> None:
    with pytest.raises(CliFailed) as exc:
        cli.call(DEVICE, "leak", "x")
    assert "<redacted>" in exc.value.output
    _assert_no_token(cli, exc.value, exc.value.output)


def test_callable_token_source(stub: Stub, tmp_path: Path) -> None:
    cli = ParticleCli(tmp_path / "h", f"http://127.0.0.1:{stub.server_address[1]}", lambda: TOKEN)
    assert cli.get(DEVICE, "temperature") == 42


def test_hanging_server_times_out(tmp_path: Path) -> None:
    # A listening socket that never accepts: the connection opens, no answer ever comes.
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(8)
    try:
        cli = ParticleCli(tmp_path / "home", f"http://127.0.0.1:{sock.getsockname()[1]}", TOKEN, timeout=4)
        t0 = time.monotonic()
        with pytest.raises(CliTimeout) as exc:
            cli.get(DEVICE, "temperature")
        assert time.monotonic() - t0 < 20
        assert exc.value.timeout == 4
        assert cli.transcript[-1].rc == -9
        _assert_no_token(cli, exc.value)
    finally:
        sock.close()


def test_usb_commands_without_devices(cli: ParticleCli, tmp_path: Path) -> None:
    assert cli.usb_list() == []
    with pytest.raises(NoDevices):
        cli.usb_dfu()
    with pytest.raises(NoDevices):
        cli.usb_reset()
    image = tmp_path / "a.bin"
    image.write_bytes(fw.build_module(b"x", product_id=1, product_version=1))
    with pytest.raises(NoDevices):
        cli.flash_usb(image)
    with pytest.raises(NoDevices):
        cli.flash_local(image)


def test_serial_list_with_empty_udevadm(stub: Stub, tmp_path: Path) -> None:
    fake = tmp_path / "bin"
    fake.mkdir()
    (fake / "udevadm").write_text("#!/bin/sh\nexit 0\n")
    (fake / "udevadm").chmod(0o755)
    cli = ParticleCli(tmp_path / "home", f"http://127.0.0.1:{stub.server_address[1]}", TOKEN,
                      path_prepend=[fake])
    assert cli.serial_list() == []


def test_cli_not_found(tmp_path: Path) -> None:
    with pytest.raises(CliNotFound):
        ParticleCli(tmp_path, "http://127.0.0.1:9", TOKEN, executable=tmp_path / "missing.js").version()
    with pytest.raises(CliNotFound):
        ParticleCli(tmp_path, "http://127.0.0.1:9", TOKEN, node=tmp_path / "no-node").version()


def test_transcript_written(cli: ParticleCli, tmp_path: Path) -> None:
    cli.version()
    path = cli.write_transcript(tmp_path / "artifacts" / "cli.jsonl")
    rec = json.loads(path.read_text().splitlines()[0])
    assert rec["command"] == ["particle", "--version"] and rec["rc"] == 0 and rec["output"] == "3.51.0"


def test_strip_ansi() -> None:
    assert strip_ansi("\x1b[2K\x1b[1Gspin\r\x1b[32mdone\x1b[39m\n") == "done\n"


def test_an_interrupted_cli_call_leaves_no_child_behind(tmp_path):
    """Ctrl-C or SIGTERM (a KeyboardInterrupt in the rig) while the CLI runs: the child is ended
    and waited for before the interrupt goes on (a stand-in executable that would run for a minute)."""
    import os
    import signal
    import threading
    import time as _time

    from otarig.particle_cli import ParticleCli

    script = tmp_path / "particle"
    pidfile = tmp_path / "pid"
    script.write_text(f"#!/bin/sh\necho $$ > {pidfile}\nexec sleep 60\n")
    script.chmod(0o755)
    cli = ParticleCli(tmp_path / "home", "http://127.0.0.1:9", "t0k3n", executable=script, timeout=120)
    main = threading.main_thread().ident

    def interrupt() -> None:
        while not pidfile.exists():
            _time.sleep(0.01)
        signal.pthread_kill(main, signal.SIGINT)

    threading.Thread(target=interrupt, daemon=True).start()
    try:
        cli.run("--version")
    except KeyboardInterrupt:
        pass
    pid = int(pidfile.read_text())
    try:
        os.kill(pid, 0)
        alive = True
    except ProcessLookupError:
        alive = False
    assert not alive, "the CLI's child outlived the interrupt"
