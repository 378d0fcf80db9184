"""Hostile request bodies to the simulated cloud, over real HTTP with `requests`.

Each malformed body gets a 400 (413 when too large) in the real Particle API's error shape
`{"ok": false, "error": "..."}` naming what is wrong, nothing is changed, nothing is logged as an
internal error, and the next good request works.
"""
from __future__ import annotations

import json
import logging
from collections.abc import Iterator

import pytest
import requests

from otarig.sim.bench import SimBench
from otarig.sim.build import build_companion
from otarig.sim.cloud import DeviceRecord
from otarig.sim.cloud_http import CloudHttpServer
from otarig.sim.images import make_app_image

PRODUCT = 4242
DID = "e00fce680000000000000001"
BOUNDARY = "otarigBoundary"
JSON = {"Content-Type": "application/json"}
MULTIPART = {"Content-Type": f"multipart/form-data; boundary={BOUNDARY}"}


@pytest.fixture(scope="module")
def image() -> bytes:
    return make_app_image(build_companion(2), product_id=PRODUCT, product_version=2)


@pytest.fixture
def server(image: bytes) -> Iterator[CloudHttpServer]:
    """A cloud with firmware v2 uploaded (over HTTP) and one product device."""
    bench = SimBench(seed=3)
    bench.cloud.add_product(PRODUCT)
    bench.cloud.devices[DID] = DeviceRecord(DID, PRODUCT, name="bench-dut")
    srv = CloudHttpServer(bench, keepalive_s=0.2, stream_open_delay_s=0.05)
    srv.start()
    r = _session(srv).post(_firmware(srv), files={"file": ("firmware.bin", image)}, data={"version": "2"})
    assert r.status_code == 200
    yield srv
    srv.stop()
    bench.close()


def _session(server: CloudHttpServer) -> requests.Session:
    s = requests.Session()
    s.trust_env = False  # no proxy for loopback
    s.headers["Authorization"] = f"Bearer {server.token}"
    return s


def _firmware(server: CloudHttpServer) -> str:
    return f"{server.url}/v1/products/{PRODUCT}/firmware"


def _multipart(*parts: bytes, close: bool = True) -> bytes:
    body = b"".join(b"--" + BOUNDARY.encode() + b"\r\n" + part + b"\r\n" for part in parts)
    return body + (b"--" + BOUNDARY.encode() + b"--\r\n" if close else b"")


def _field(name: str, value: bytes, headers: bytes = b"") -> bytes:
    return f'Content-Disposition: form-data; name="{name}"\r\n'.encode() + headers + b"\r\n" + value


FILE_PART = (b'Content-Disposition: form-data; name="file"; filename="firmware.bin"\r\n'
             b"Content-Type: application/octet-stream\r\n\r\n" + b"\x00" * 64)

# (route, method, headers, body, words the error must contain)
RELEASE = ("release", "PUT", JSON)
DEVICE = ("device", "PUT", JSON)
UPLOAD = ("upload", "POST", MULTIPART)
HOSTILE = {
    "json_nested_100000": (*RELEASE, b"[" * 100_000, "nested too deeply"),
    "json_version_1e999": (*RELEASE, b'{"version": 1e999, "product_default": true}', "out of range"),
    "json_version_nan": (*RELEASE, b'{"version": NaN, "product_default": true}', "NaN"),
    "json_version_null": (*RELEASE, b'{"version": null, "product_default": true}', "version must be an integer"),
    "json_version_list": (*RELEASE, b'{"version": [2], "product_default": true}', "version must be an integer"),
    "json_version_true": (*RELEASE, b'{"version": true, "product_default": true}', "version must be an integer"),
    "json_version_float": (*RELEASE, b'{"version": 2.5, "product_default": true}', "version must be an integer"),
    "json_version_5000_digits": (*RELEASE, b'{"version": 1' + b"0" * 5000 + b"}", "out of range"),
    "json_groups_5": (*RELEASE, b'{"version": 2, "groups": 5}', "groups must be"),
    "json_groups_of_objects": (*RELEASE, b'{"version": 2, "groups": [{"a": 1}]}', "groups must be"),
    "json_default_maybe": (*RELEASE, b'{"version": 2, "product_default": "maybe"}', "product_default must be"),
    "json_not_utf8": (*RELEASE, b'\xff\xfe{"version": 2}', "not UTF-8"),
    "json_bad_charset": ("release", "PUT", {"Content-Type": "application/json; charset=bogus"},
                         b'{"version": 2, "groups": 5}', "groups must be"),
    "json_truncated": (*RELEASE, b'{"version": 2, "prod', "Invalid JSON body"),
    "json_array": (*RELEASE, b"[2]", "expected an object"),
    "device_groups_5": (*DEVICE, b'{"groups": 5}', "groups must be"),
    "device_desired_1e999": (*DEVICE, b'{"desired_firmware_version": 1e999}', "out of range"),
    "device_desired_object": (*DEVICE, b'{"desired_firmware_version": {}}', "desired_firmware_version must be"),
    "device_development_perhaps": (*DEVICE, b'{"development": "perhaps"}', "development must be"),
    "device_name_object": (*DEVICE, b'{"name": {"a": 1}}', "name must be"),
    "multipart_no_boundary": ("upload", "POST", {"Content-Type": "multipart/form-data"},
                              _multipart(FILE_PART, _field("version", b"3")), "Malformed multipart"),
    "multipart_garbage": (*UPLOAD, b"garbage, not a multipart body", "Malformed multipart"),
    "multipart_unterminated": (*UPLOAD, _multipart(FILE_PART, _field("version", b"3"), close=False),
                               "Malformed multipart"),
    "multipart_cut_short": (*UPLOAD, _multipart(FILE_PART, _field("version", b"3"))[:90], "Malformed multipart"),
    "multipart_part_without_name": (*UPLOAD, _multipart(b"Content-Disposition: form-data\r\n\r\n3", FILE_PART),
                                    "Malformed multipart"),
    "multipart_unknown_charset": (*UPLOAD, _multipart(FILE_PART, _field(
        "version", b"3", b"Content-Type: text/plain; charset=bogus\r\n")), "Malformed multipart"),
    "multipart_version_not_utf8": (*UPLOAD, _multipart(FILE_PART, _field("version", b"\xff")), "Malformed multipart"),
    "multipart_version_1e999": (*UPLOAD, _multipart(FILE_PART, _field("version", b"1e999")),
                                "version must be an integer"),
    "multipart_version_huge": (*UPLOAD, _multipart(FILE_PART, _field("version", b"9" * 5000)),
                               "version must be an integer"),
    "multipart_nested": (*UPLOAD, _multipart(
        b"Content-Type: multipart/mixed; boundary=QQ\r\n" + _field("x", b"--QQ\r\n\r\nq\r\n--QQ--"), FILE_PART),
        "Malformed multipart"),
    "multipart_title_binary": (*UPLOAD, _multipart(FILE_PART, _field("version", b"3"), _field(
        "title", b"\xff\xfe", b"Content-Type: application/octet-stream\r\n").replace(
        b'name="title"', b'name="title"; filename="t"')), "title must be UTF-8 text"),
}


def _url(server: CloudHttpServer, route: str) -> str:
    return {"release": _firmware(server) + "/release", "upload": _firmware(server),
            "device": f"{server.url}/v1/products/{PRODUCT}/devices/{DID}"}[route]


def _snapshot(api: requests.Session, server: CloudHttpServer) -> tuple[str, str]:
    """Firmware list and the device, as the API reports them: what a refused request must not change."""
    return (json.dumps(api.get(_firmware(server)).json(), sort_keys=True),
            json.dumps(api.get(_url(server, "device")).json(), sort_keys=True))


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_malformed_body_is_a_400_in_the_api_error_shape_and_changes_nothing(server, caplog, name):
    route, method, headers, body, words = HOSTILE[name]
    api = _session(server)
    before = _snapshot(api, server)
    with caplog.at_level(logging.WARNING, logger="otarig.sim.cloud_http"):
        r = api.request(method, _url(server, route), headers=headers, data=body)
    assert r.status_code == 400, r.text
    reply = r.json()
    assert set(reply) == {"ok", "error"} and reply["ok"] is False and words in reply["error"], reply
    assert len(reply["error"]) < 200, "a hostile body is not echoed back at length"
    assert not [rec for rec in caplog.records if rec.exc_info or rec.levelno >= logging.ERROR]
    assert all(entry["status"] != 500 for entry in server.request_log)
    assert _snapshot(api, server) == before


def test_body_over_the_size_limit_is_413_in_the_api_error_shape(server):
    r = _session(server).put(_url(server, "release"), headers=JSON, data=b" " * (16 * 1024 * 1024 + 1))
    assert r.status_code == 413 and r.json()["ok"] is False and "larger than" in r.json()["error"]


def test_after_every_hostile_body_the_same_calls_still_work(server):
    """Bad requests lose nothing: the release and device update they garbled then go through."""
    api = _session(server)
    for route, method, headers, body, _ in HOSTILE.values():
        assert api.request(method, _url(server, route), headers=headers, data=body).status_code == 400
    r = api.put(_url(server, "release"), json={"version": 2, "groups": "field,lab", "product_default": "true"})
    assert r.status_code == 200 and r.json()["product_default"] is True
    r = api.put(_url(server, "device"), json={"groups": ["field"], "desired_firmware_version": 2,
                                               "development": False, "name": "renamed"})
    assert r.status_code == 200
    device = api.get(_url(server, "device")).json()
    assert device["groups"] == ["field"] and device["desired_firmware_version"] == 2 and device["name"] == "renamed"
    r = api.post(_firmware(server), files={"file": ("firmware.bin", b"\x00" * 64)}, data={"version": "3"})
    assert r.status_code == 400 and r.json() == {"ok": False, "error": r.json()["error"]}
    assert r.json()["error"].startswith("Invalid firmware binary"), "a well-formed body reaches the cloud's checks"
