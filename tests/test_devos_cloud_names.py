"""Cloud variable and function names as Device OS 2.3.1 takes them, and the cloud's listing of
them: `spark_variable` / `spark_function_internal` refuse a key longer than 64 bytes
(USER_VAR_KEY_LENGTH / USER_FUNC_KEY_LENGTH, device-os v2.3.1 system/inc/system_cloud.h:380-381;
system/src/system_cloud.cpp:193, system_cloud_internal.cpp:398) and take any other, the empty one
too; the Cloud API lists what the running app registered, with its type
(docs/reference/particle-cloud-api.md §5 "Cloud variables and functions"). The fleet scenario's
`cloud_interface_kept` reads that listing, so it must not show a name the app did not register."""
from __future__ import annotations


import pytest
import requests

from otarig.sim import deviceos as dos
from otarig.sim.bench import SimBench
from otarig.sim.build import build_companion
from otarig.sim.cloud_http import CloudHttpServer
from otarig.sim.images import make_app_image

PRODUCT = 4242
DID = "e00fce680000000000000001"


@pytest.fixture
def bench(product_bench: SimBench) -> SimBench:
    return product_bench


def test_the_cloud_lists_each_variable_with_the_type_the_app_registered(bench: SimBench) -> None:
    """The companion registers three int variables and a bool one (firmware/companion/src/companion.cpp
    setup()); the device info read over HTTP says so, rather than calling every variable int32."""
    bench.add_electron(DID, product_id=PRODUCT, image=make_app_image(build_companion(1), product_id=PRODUCT,
                                                                      product_version=1), with_port=False)
    bench.run_for(60)
    srv = CloudHttpServer(bench, keepalive_s=0.2, stream_open_delay_s=0.05)
    srv.start()
    try:
        s = requests.Session()
        s.trust_env = False
        s.headers["Authorization"] = f"Bearer {srv.token}"
        info = s.get(f"{srv.url}/v1/products/{PRODUCT}/devices/{DID}").json()
    finally:
        srv.stop()
    assert info["variables"] == {"version": "int32", "records": "int32", "lastSeq": "int32", "windowOpen": "bool"}
    assert info["functions"] == ["workload"]


def test_a_name_over_64_bytes_is_refused_and_an_empty_one_taken(bench: SimBench) -> None:
    """Through the host layer's own callback (the channel Particle.variable/function use): 64 bytes
    pass, 65 are refused, and the empty name reaches Device OS as "" and is taken, as in 2.3.1."""
    dev = bench.add_electron(DID, product_id=PRODUCT, image=make_app_image(build_companion(1), product_id=PRODUCT,
                                                                            product_version=1), with_port=False)
    bench.run_for(30)
    assert dev.app is not None
    cloud = dev.app._callbacks["cloud"]
    for op in (dos.CLOUD_VARIABLE, dos.CLOUD_FUNCTION):
        assert cloud(op, b"k" * dos.USER_KEY_LENGTH, b"int32", 0) == 1
        assert cloud(op, b"k" * (dos.USER_KEY_LENGTH + 1), b"int32", 0) == 0
        assert cloud(op, b"", b"int32", 0) == 1
