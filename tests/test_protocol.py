"""otarig.protocol: the decoder never raises, never grows without bound, and does not care how the
input was chunked (docs/protocol.md, Framing)."""

from __future__ import annotations

import json
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from otarig.protocol import (
    MAX_LINE,
    PROTOCOL_VERSION,
    Event,
    LineDecoder,
    Noise,
    ProtocolError,
    check_hello,
    encode_command,
    escape_bytes,
)

HELLO = (
    b'{"ev":"hello","t":12,"proto":1,"agent":"otarig-companion","product_id":4242,'
    b'"product_version":1,"device_os":"2.3.1","threaded":true,"mode":"SEMI_AUTOMATIC","mutant":0}\n'
)


def decode_all(data: bytes, cuts: list[int] | None = None) -> list[Event | Noise]:
    """Feed `data` split at `cuts`, then flush."""
    dec = LineDecoder()
    out: list[Event | Noise] = []
    prev = 0
    for cut in sorted(set(cuts or [])) + [len(data)]:
        out += dec.feed(data[prev:cut])
        prev = cut
    return out + dec.flush()


# -- events ---------------------------------------------------------------------------------


def test_hello_decodes_to_a_typed_event() -> None:
    [ev] = LineDecoder().feed(HELLO)
    assert isinstance(ev, Event)
    assert ev.name == "hello" and ev.t == 12
    assert ev["proto"] == 1 and ev.get("threaded") is True and ev.get("absent", 7) == 7
    assert "ev" not in ev.fields and "t" not in ev.fields
    assert ev.raw == HELLO[:-1].decode()


def test_crlf_is_tolerated() -> None:
    [ev] = LineDecoder().feed(b'{"ev":"log","t":5,"msg":"hi"}\r\n')
    assert isinstance(ev, Event) and ev.raw == '{"ev":"log","t":5,"msg":"hi"}'


def test_partial_line_is_held_until_its_newline() -> None:
    dec = LineDecoder()
    assert dec.feed(b'{"ev":"log",') == []
    assert dec.pending == len(b'{"ev":"log",')
    [ev] = dec.feed(b'"t":1}\n')
    assert isinstance(ev, Event) and ev.name == "log"


# -- noise ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        (b"\xff\xfe boot \x00\n", "not_utf8"),
        (b"Device OS booting...\n", "not_json"),
        (b"\n", "not_json"),
        (b"[1,2,3]\n", "not_object"),
        (b'"ev"\n', "not_object"),
        (b'{"t":1}\n', "missing_keys"),
        (b'{"ev":"x"}\n', "missing_keys"),
        (b'{"ev":3,"t":1}\n', "missing_keys"),
        (b'{"ev":"x","t":"soon"}\n', "missing_keys"),
        (b'{"ev":"x","t":true}\n', "missing_keys"),
        (b'{"cmd":"ping","id":1}\n', "missing_keys"),
    ],
)
def test_noise_reasons(line: bytes, reason: str) -> None:
    [entry] = LineDecoder().feed(line)
    assert isinstance(entry, Noise)
    assert entry.reason == reason
    assert entry.raw == line[:-1]


def test_flush_reports_a_partial_line_once() -> None:
    dec = LineDecoder()
    dec.feed(b'{"ev":"app","t":9')
    assert dec.flush() == [Noise("partial", b'{"ev":"app","t":9')]
    assert dec.flush() == []


def test_line_limit_counts_the_terminator() -> None:
    def line(total: int, end: bytes = b"\n") -> bytes:
        head = b'{"ev":"log","t":1,"msg":"'
        tail = b'"}' + end
        return head + b"a" * (total - len(head) - len(tail)) + tail

    assert isinstance(LineDecoder().feed(line(MAX_LINE))[0], Event)
    assert isinstance(LineDecoder().feed(line(MAX_LINE, b"\r\n"))[0], Event)
    assert LineDecoder().feed(line(MAX_LINE + 1))[0].reason == "too_long"  # type: ignore[union-attr]
    assert LineDecoder().feed(line(MAX_LINE + 1, b"\r\n"))[0].reason == "too_long"  # type: ignore[union-attr]


def test_over_long_line_is_reported_once_and_never_buffered() -> None:
    dec = LineDecoder()
    out = []
    for _ in range(1000):  # 1 MB without a newline, in 1 KB chunks
        out += dec.feed(b"x" * 1024)
        assert dec.pending < MAX_LINE
    out += dec.feed(b'yyy\n{"ev":"log","t":2}\n')
    assert [type(e) for e in out] == [Noise, Event]
    assert out[0].reason == "too_long" and out[0].raw == b"x" * MAX_LINE  # type: ignore[union-attr]
    assert dec.flush() == []


def test_over_long_line_then_flush_reports_nothing_more() -> None:
    dec = LineDecoder()
    assert len(dec.feed(b"z" * (3 * MAX_LINE))) == 1
    assert dec.flush() == []
    # and the decoder is usable again afterwards
    assert isinstance(dec.feed(b'{"ev":"a","t":0}\n')[0], Event)


# -- chunking and fuzzing -----------------------------------------------------------------------


def _mixed_stream(rng: random.Random, n: int = 60) -> tuple[bytes, list[Event]]:
    """Valid events interleaved with noise lines; returns the stream and the events in it."""
    parts: list[bytes] = []
    events: list[Event] = []
    for i in range(n):
        kind = rng.randrange(6)
        if kind <= 1:
            obj = {"ev": "app", "t": i, "seq": i, "msg": "é" * rng.randrange(5)}
            text = json.dumps(obj, separators=(",", ":"), ensure_ascii=False)
            parts.append(text.encode() + rng.choice([b"\n", b"\r\n"]))
            events.append(Event("app", i, {"seq": i, "msg": obj["msg"]}, text))
        elif kind == 2:
            parts.append(bytes(rng.randrange(256) for _ in range(rng.randrange(40))).replace(b"\n", b"") + b"\n")
        elif kind == 3:
            parts.append(b"q" * rng.randrange(MAX_LINE, 3 * MAX_LINE) + b"\n")
        elif kind == 4:
            parts.append(b"[0]\n")
        else:
            parts.append(b'{"ev":"app"}\n')
    return b"".join(parts), events


def test_interleaved_noise_does_not_hide_events() -> None:
    for seed in range(20):
        stream, events = _mixed_stream(random.Random(seed))
        out = decode_all(stream)
        assert [e for e in out if isinstance(e, Event)] == events


def test_split_at_every_byte_gives_the_same_entries() -> None:
    stream = HELLO + b"garbage\xff\x00\n" + b"w" * 600 + b'\n{"ev":"boot","t":13}\r\n{"ev":"lo'
    whole = decode_all(stream)
    for cut in range(len(stream) + 1):
        assert decode_all(stream, [cut]) == whole, cut
    one_by_one = LineDecoder()
    singles = [e for i in range(len(stream)) for e in one_by_one.feed(stream[i : i + 1])]
    assert singles + one_by_one.flush() == whole
    assert whole[-1] == Noise("partial", b'{"ev":"lo')


@settings(max_examples=200, deadline=None, database=None)
@given(data=st.binary(max_size=4000), cuts=st.lists(st.integers(0, 4000), max_size=30))
def test_random_bytes_never_raise_and_chunking_does_not_matter(data: bytes, cuts: list[int]) -> None:
    whole = decode_all(data)
    assert decode_all(data, [c for c in cuts if c <= len(data)]) == whole
    for entry in whole:
        assert isinstance(entry, (Event, Noise))
        assert len(entry.raw) <= MAX_LINE


@settings(max_examples=100, deadline=None, database=None)
@given(seed=st.integers(0, 2**32 - 1), cuts=st.lists(st.integers(0, 100_000), max_size=50))
def test_mixed_stream_survives_random_chunking(seed: int, cuts: list[int]) -> None:
    stream, events = _mixed_stream(random.Random(seed), n=30)
    out = decode_all(stream, [c for c in cuts if c <= len(stream)])
    assert [e for e in out if isinstance(e, Event)] == events


def test_seeded_binary_noise_with_nul_and_ff() -> None:
    rng = random.Random(1234)
    for _ in range(200):
        blob = bytes(rng.choice([0x00, 0xFF, 0x0A, 0x0D, 0x7B, rng.randrange(256)]) for _ in range(rng.randrange(2000)))
        entries = decode_all(blob, [rng.randrange(len(blob) + 1) for _ in range(5)])
        assert all(len(e.raw) <= MAX_LINE for e in entries)


# -- commands and versions ------------------------------------------------------------------------


def test_encode_command_is_one_compact_line() -> None:
    line = encode_command("workload", 1, state="busy")
    assert line == b'{"cmd":"workload","id":1,"state":"busy"}\n'
    assert json.loads(encode_command("sleep", 7, mode="stop", seconds=30, network_standby=True)) == {
        "cmd": "sleep",
        "id": 7,
        "mode": "stop",
        "seconds": 30,
        "network_standby": True,
    }
    assert encode_command("log", 2, msg="é\n").endswith(b'"msg":"\\u00e9\\n"}\n')  # one ASCII line


@pytest.mark.parametrize(
    ("args", "keys"),
    [(("", 1), {}), (("ping", "1"), {}), (("ping", True), {}), (("ping", 1), {"x": object()}),
     (("ping", 1), {"x": float("nan")}), (("ping", 1), {"blob": "a" * MAX_LINE})],
)
def test_encode_command_rejects_bad_input(args: tuple, keys: dict) -> None:
    with pytest.raises(ValueError):
        encode_command(*args, **keys)


def test_check_hello() -> None:
    [hello] = LineDecoder().feed(HELLO)
    assert check_hello(hello) is hello
    assert PROTOCOL_VERSION == 1


def test_check_hello_names_both_versions() -> None:
    [ev] = LineDecoder().feed(b'{"ev":"hello","t":1,"proto":2,"agent":"otarig-companion"}\n')
    with pytest.raises(ProtocolError, match=r"version 2.*version 1"):
        check_hello(ev)


@pytest.mark.parametrize(
    "line",
    [b"Particle Device OS\n", b'{"ev":"boot","t":1}\n', b'{"ev":"hello","t":1}\n',
     b'{"ev":"hello","t":1,"proto":1,"agent":"tinker"}\n'],
)
def test_check_hello_rejects_other_firmware(line: bytes) -> None:
    [entry] = LineDecoder().feed(line)
    with pytest.raises(ProtocolError, match="not an otarig companion"):
        check_hello(entry)


def test_escape_bytes_is_one_printable_line() -> None:
    assert escape_bytes(b"ok \\ \x00\xff\n") == "ok \\\\ \\x00\\xff\\x0a"
