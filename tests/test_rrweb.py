"""Decoding, summarising and compressing rrweb batches; the fixture generator tests rely on."""

import hashlib
import json
import os
import shutil
import subprocess
import sys
import zlib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from django.test import override_settings
from hypothesis import given, settings
from hypothesis import strategies as st

from bench.rrweb_fixtures import batch_text, make_session, rrweb_frames, split_parts
from conversations import rrweb
from conversations.protocol import ProtocolError
from conversations.rrweb import EventType, RRWebError, decode_batch
from tests import factories as f
from tests.conftest import require

ROOT = Path(__file__).resolve().parent.parent
PACK_SCRIPT = ROOT / "tests" / "js" / "pack.mjs"

META = {"type": 4, "data": {"href": "https://shop.example.com/", "width": 1440, "height": 900}}
SNAPSHOT = {
    "type": 2,
    "data": {
        "node": {"type": 0, "childNodes": [], "compatMode": "CSS1Compat", "id": 1},
        "initialOffset": {"left": 0, "top": 0},
    },
}


def at(event: dict, ts: float) -> dict:
    return {**event, "timestamp": ts}


def scroll(ts: float, y: int = 100) -> dict:
    return {"type": 3, "data": {"source": 3, "id": 1, "x": 0, "y": y}, "timestamp": ts}


INIT = [at(META, 1_700_000_000_000), at(SNAPSHOT, 1_700_000_000_010), scroll(1_700_000_000_500)]


@pytest.fixture(scope="module")
def session() -> list:
    return make_session(minutes=1.5, seed=7, pages=2)


@pytest.fixture(scope="module")
def real_pack():
    """pack() from the real @rrweb/packer, run by node."""
    node = shutil.which("node")
    require(node is not None, "node is not installed")
    require(
        (ROOT / "node_modules" / "@rrweb" / "packer").is_dir(),
        "node_modules missing: run npm ci",
    )

    def pack(events: list) -> dict:
        done = subprocess.run(
            [node, str(PACK_SCRIPT)],
            input=json.dumps(events).encode(),
            capture_output=True,
            check=True,
            timeout=60,
            cwd=ROOT,
        )
        return json.loads(done.stdout)

    return pack


# -- JSON input ---------------------------------------------------------------------------------


def test_single_json_object_is_stored_wrapped_in_an_array():
    text = json.dumps(scroll(5))
    batch = decode_batch(text, kind="events")
    assert batch.encoding == "json-object"
    assert batch.events_json == b"[" + text.encode() + b"]"
    assert rrweb.load_events(batch.events_json) == [scroll(5)]


def test_json_array_is_stored_exactly_as_sent():
    text = json.dumps(INIT, indent=2, ensure_ascii=False) + "\n"
    batch = decode_batch(text, kind="init")
    assert batch.encoding == "json-array"
    assert batch.events_json == text.encode()


def test_non_ascii_json_is_stored_as_utf8():
    event = {"type": 3, "data": {"source": 5, "text": "café ☕ 🛒", "id": 9}, "timestamp": 1}
    text = json.dumps([event], ensure_ascii=False)
    batch = decode_batch(text, kind="events")
    assert batch.events_json == text.encode("utf-8")
    assert rrweb.load_events(batch.events_json) == [event]


def test_summary_counts_events_snapshots_and_timestamp_range():
    events = [
        at(META, 2_000),
        at(SNAPSHOT, 2_001),
        scroll(2_500.75),
        scroll(1_999),  # clocks go backwards sometimes: min and max, not first and last
        at(SNAPSHOT, 3_000),
        at({"type": 4, "data": {"href": "https://shop.example.com/other"}}, 3_001),
    ]
    batch = decode_batch(json.dumps(events), kind="init")
    assert (batch.count, batch.first_ts, batch.last_ts) == (6, 1_999, 3_001)
    assert batch.full_snapshots == 2
    assert batch.href == "https://shop.example.com/"


def test_summary_counts_console_errors_and_failed_requests_but_not_warnings_or_logs():
    events = [
        *INIT,
        f.console_event(1_700_000_001_000, "Payment failed:", {"code": 402}),
        f.console_event(1_700_000_002_000, "Slow image", level="warn"),
        f.console_event(1_700_000_002_500, "hello", level="log"),
        f.network_event(1_700_000_003_000, "https://shop.example/api/cart", status=404),
        f.network_event(
            1_700_000_004_000, "https://pay.example/", status=0, error="Failed to fetch"
        ),
        f.network_event(1_700_000_004_500, "https://shop.example/ok", status=200),
        at({"type": 6, "data": {"plugin": "someone/else@1", "payload": {"level": "error"}}}, 5),
    ]
    batch = decode_batch(json.dumps(events), kind="init")
    assert (batch.console_errors, batch.network_errors) == (1, 2)
    assert [(e.position, e.kind, e.level, e.message) for e in batch.errors] == [
        (3, "console", "error", 'Payment failed: {"code": 402}'),
        (4, "console", "warn", "Slow image"),
        (6, "network", "error", "GET https://shop.example/api/cart 404"),
        (7, "network", "error", "GET https://pay.example/ Failed to fetch"),
    ]
    assert (batch.errors[2].status, batch.errors[2].duration_ms) == (404, 42)
    assert batch.errors[3].status is None
    assert batch.errors[0].ts == 1_700_000_001_000


@pytest.mark.parametrize(
    "data",
    [
        {"plugin": "rrweb/console@1", "payload": {"level": ["error"], "payload": ["x"]}},
        {"plugin": "rrweb/console@1", "payload": {"level": "error", "payload": [1, {}, "{"]}},
        {"plugin": "rrweb/console@1", "payload": "error"},
        {"plugin": ["rrweb/console@1"], "payload": {}},
        {"plugin": "replay/network@1", "payload": {"url": 5, "status": "404", "method": []}},
        {"plugin": "replay/network@1", "payload": {"status": -1, "duration": 1e300}},
    ],
)
def test_malformed_plugin_events_are_stored_and_listed_at_most_as_far_as_they_make_sense(data):
    events = [*INIT, at({"type": 6, "data": data}, 1_700_000_001_000)]
    batch = decode_batch(json.dumps(events), kind="init")
    assert batch.count == 4
    for error in batch.errors:
        assert isinstance(error.message, str) and error.message
        assert error.status is None


def test_a_clean_batch_counts_no_errors():
    batch = decode_batch(json.dumps(INIT), kind="init")
    assert (batch.errors, batch.console_errors, batch.network_errors) == ((), 0, 0)


@pytest.mark.parametrize(
    "events",
    [
        [scroll(1)],
        [at({"type": 4, "data": {"width": 1}}, 1)],
        [at({"type": 4, "data": "not an object"}, 1)],
        [at({"type": 4, "data": {"href": 42}}, 1)],
    ],
)
def test_href_is_none_without_a_meta_event_holding_one(events):
    assert decode_batch(json.dumps(events), kind="events").href is None


def test_every_event_type_is_accepted():
    events = [{"type": int(t), "data": {}, "timestamp": i} for i, t in enumerate(EventType)]
    assert decode_batch(json.dumps(events), kind="events").count == 7


def test_generated_session_decodes_with_its_summary(session):
    decoded = [decode_batch(batch_text(b), kind=b["type"]) for b in session]
    inits = [d for d in decoded if d.full_snapshots]
    assert len(inits) == 2 and all(d.href.startswith("https://shop.example.com/") for d in inits)
    assert sum(d.count for d in decoded) == sum(len(b["events"]) for b in session)
    assert all(a.last_ts <= b.first_ts for a, b in zip(decoded, decoded[1:], strict=False))


# -- packer input (the real @rrweb/packer) --------------------------------------------------------


def test_packed_single_event_is_unpacked_without_the_version_mark(real_pack):
    event = {"type": 3, "data": {"source": 5, "text": "naïve 🛒", "id": 3}, "timestamp": 9}
    packed = real_pack([event])["single"][0]
    batch = decode_batch(packed, kind="events")
    assert batch.encoding == "packed"
    assert rrweb.load_events(batch.events_json) == [event]


def test_packed_array_is_unpacked_in_index_order(real_pack, session):
    events = session[0]["events"] + session[1]["events"]
    assert len(events) > 10  # "10" must come after "9", not after "1"
    batch = decode_batch(real_pack(events)["array"], kind="init")
    assert batch.encoding == "packed"
    assert rrweb.load_events(batch.events_json) == events
    assert batch.count == len(events)
    assert batch.full_snapshots == 1


def test_json_array_of_packed_events_is_unpacked(real_pack):
    packed = real_pack(INIT)["single"]
    batch = decode_batch(json.dumps(packed), kind="init")
    assert batch.encoding == "packed"
    assert rrweb.load_events(batch.events_json) == INIT
    assert batch.href == "https://shop.example.com/"


def test_json_string_holding_packed_output_is_unpacked(real_pack):
    packed = real_pack(INIT)["array"]
    batch = decode_batch(json.dumps(packed), kind="init")
    assert rrweb.load_events(batch.events_json) == INIT


def test_packed_and_json_give_the_same_events(real_pack, session):
    events = session[2]["events"]
    packed = real_pack(events)
    as_json = decode_batch(json.dumps(events), kind="events")
    for text in (packed["array"], json.dumps(packed["single"])):
        batch = decode_batch(text, kind="events")
        assert rrweb.load_events(batch.events_json) == rrweb.load_events(as_json.events_json)
        assert (batch.count, batch.first_ts, batch.last_ts) == (
            as_json.count,
            as_json.first_ts,
            as_json.last_ts,
        )


def test_packed_empty_array_is_an_empty_batch(real_pack):
    with pytest.raises(RRWebError, match="holds no events"):
        decode_batch(real_pack([])["array"], kind="events")


# -- errors -------------------------------------------------------------------------------------


def packed(value: object) -> str:
    """What pack() would produce for a JSON value (for malformed cases the packer can't make)."""
    return zlib.compress(json.dumps(value).encode()).decode("latin-1")


def events_with(bad: dict, at_index: int = 5) -> str:
    events = [scroll(i) for i in range(at_index)] + [bad]
    return json.dumps(events)


NEITHER = "event_rrweb.data is neither JSON nor @rrweb/packer output: "
E = "event_rrweb.data: "


@pytest.mark.parametrize(
    ("text", "kind", "message"),
    [
        ("", "events", "event_rrweb.data is empty"),
        ("  \n", "events", "event_rrweb.data is empty"),
        ("[]", "events", E + "the batch holds no events"),
        ("{not json", "events", NEITHER + "JSON: Expecting property name"),
        ("[" * 100_000, "events", NEITHER + "JSON: nested too deeply"),
        ("x\x9cnot zlib at all", "events", NEITHER + "JSON: Expecting value at character 0; "),
        ("x€", "events", NEITHER + "JSON: Expecting value at character 0; packer: character 1"),
        (packed(scroll(1))[:-3], "events", NEITHER + "JSON: Expecting value at character 0; "),
        (zlib.compress(b"{nope").decode("latin-1"), "events", NEITHER),
        (zlib.compress(b"\xff\xfe").decode("latin-1"), "events", NEITHER),
        (packed([scroll(1)]), "events", NEITHER),
        ("42", "events", "event_rrweb.data must be an rrweb event, an array of events or"),
        ("null", "events", "event_rrweb.data must be an rrweb event, an array of events or"),
        ('"hello"', "events", "event_rrweb.data is a JSON string but not @rrweb/packer output"),
        ('["hello"]', "events", E + "item 0 is not @rrweb/packer output: "),
        ("[1]", "events", E + "event 0 is JSON number, not an object"),
        ("[[]]", "events", E + "event 0 is JSON array, not an object"),
        ('[{"timestamp": 1}]', "events", E + "event 0 has no integer type"),
        ('[{"type": "3", "timestamp": 1}]', "events", E + "event 0 has no integer type"),
        ('[{"type": true, "timestamp": 1}]', "events", E + "event 0 has no integer type"),
        ('[{"type": 3.0, "timestamp": 1}]', "events", E + "event 0 has no integer type"),
        ('[{"type": 7, "timestamp": 1}]', "events", E + "event 0 has unknown type 7"),
        ('[{"type": -1, "timestamp": 1}]', "events", E + "event 0 has unknown type -1"),
        (events_with({"type": 3}), "events", E + "event 5 has no numeric timestamp"),
        (events_with({"type": 3, "timestamp": "9"}), "events", E + "event 5 has no numeric"),
        (events_with({"type": 3, "timestamp": None}), "events", E + "event 5 has no numeric"),
        (events_with({"type": 3, "timestamp": False}), "events", E + "event 5 has no numeric"),
        ('[{"type": 3, "timestamp": NaN}]', "events", NEITHER + "JSON: NaN is not a JSON value"),
        (
            '[{"type": 3, "timestamp": 1, "data": {"x": -Infinity}}]',
            "events",
            NEITHER + "JSON: -Infinity is not a JSON value",
        ),
        ('[{"type": 3, "timestamp": -1}]', "events", E + "event 0 has timestamp -1 out of range"),
        ('[{"type": 3, "timestamp": 1e300}]', "events", E + "event 0 has timestamp 1e+300 out"),
        (
            json.dumps([scroll(1)]),
            "init",
            E + "init batch must begin with a Meta event (type 4), got type 3",
        ),
        (
            json.dumps([at(META, 1), scroll(2), at(SNAPSHOT, 3)]),
            "init",
            E + "init batch has incremental event 1 before any FullSnapshot (type 2)",
        ),
        (json.dumps([at(META, 1)]), "init", E + "init batch has no FullSnapshot (type 2)"),
        (json.dumps([scroll(1)]), "bogus", "event_rrweb.type must be 'init' or 'events'"),
    ],
)
def test_invalid_batch_is_rejected_with_the_reason(text, kind, message):
    with pytest.raises(RRWebError) as caught:
        decode_batch(text, kind=kind)
    assert str(caught.value).startswith(message), str(caught.value)


def test_rrweb_error_is_a_protocol_error():
    assert issubclass(RRWebError, ProtocolError)


def test_lone_surrogate_in_text_is_refused():
    with pytest.raises(RRWebError, match="lone surrogate"):
        decode_batch('[{"type": 3, "timestamp": 1, "x": "\ud800"}]', kind="events")


def test_escaped_lone_surrogate_survives_unpacking():
    event = {"type": 3, "data": {"text": "\ud800"}, "timestamp": 1}
    batch = decode_batch(packed(event), kind="events")
    assert rrweb.load_events(batch.events_json) == [event]


def json_values():
    scalars = st.none() | st.booleans() | st.integers() | st.floats() | st.text()
    return st.recursive(
        scalars,
        lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
        max_leaves=20,
    )


def event_like():
    return st.fixed_dictionaries(
        {},
        optional={
            "type": st.integers(-2, 9) | json_values(),
            "timestamp": st.integers(-5, 2**60) | st.floats() | json_values(),
            "data": json_values(),
        },
    )


texts = st.one_of(
    st.text(),
    st.text(alphabet=st.characters(max_codepoint=255)).map(lambda s: "x\x9c" + s),
    st.binary().map(lambda b: zlib.compress(b).decode("latin-1")),
    json_values().map(json.dumps),
    st.lists(event_like(), max_size=5).map(json.dumps),
    st.lists(event_like(), max_size=5).map(packed),
    st.lists(event_like().map(packed) | json_values(), max_size=4).map(json.dumps),
)


@settings(max_examples=400, deadline=None)
@given(text=texts, kind=st.sampled_from(["init", "events", "other"]))
def test_arbitrary_text_raises_nothing_but_rrweb_error(text, kind):
    try:
        batch = decode_batch(text, kind=kind)
    except RRWebError:
        return
    assert batch.count == len(rrweb.load_events(batch.events_json))


# -- storage ------------------------------------------------------------------------------------


def test_load_events_refuses_what_is_not_a_json_array():
    with pytest.raises(RRWebError, match="not JSON"):
        rrweb.load_events(b"\xff")
    with pytest.raises(RRWebError, match="must be a JSON array"):
        rrweb.load_events(b"{}")


def test_compress_round_trips_without_base(session):
    for batch in session:
        blob = batch_text(batch).encode()
        assert rrweb.decompress(rrweb.compress(blob)) == blob


@pytest.mark.parametrize("level", [1, 3, rrweb.DEFAULT_LEVEL, 19])
def test_compress_round_trips_with_base(session, level):
    base = batch_text(session[0]).encode()
    for batch in session[1:]:
        blob = batch_text(batch).encode()
        assert rrweb.decompress(rrweb.compress(blob, base=base, level=level), base=base) == blob


def test_base_shrinks_a_batch_that_repeats_the_snapshot(session):
    base = batch_text(session[0]).encode()
    repeat = batch_text(
        {"type": "events", "events": [scroll(1), *session[0]["events"][1:]]}
    ).encode()
    with_base = rrweb.compress(repeat, base=base)
    assert len(with_base) * 10 < len(rrweb.compress(repeat))
    with pytest.raises(RRWebError, match="corrupt"):
        rrweb.decompress(with_base)


def test_decompress_refuses_garbage():
    with pytest.raises(RRWebError, match="corrupt"):
        rrweb.decompress(b"not zstd")


def test_compress_is_safe_across_threads(session):
    base = batch_text(session[0]).encode()
    blobs = [batch_text(b).encode() for b in session[1:]] * 4

    def round_trip(blob: bytes) -> bool:
        return rrweb.decompress(rrweb.compress(blob, base=base), base=base) == blob

    with ThreadPoolExecutor(max_workers=4) as pool:
        assert all(pool.map(round_trip, blobs))


def test_segment_round_trips_and_beats_batch_by_batch(session):
    batches = [batch_text(b).encode() for b in session]
    blob = rrweb.compress_segment(batches, base=batches[0], level=9)
    assert rrweb.decompress_segment(blob, base=batches[0]) == batches
    assert len(blob) < sum(len(rrweb.compress(b, base=batches[0])) for b in batches)
    assert rrweb.decompress_segment(rrweb.compress_segment([])) == []


def test_decompress_segment_refuses_a_broken_header():
    with pytest.raises(RRWebError, match="broken header"):
        rrweb.decompress_segment(rrweb.compress(b"\x01"))
    with pytest.raises(RRWebError, match="lengths do not match"):
        rrweb.decompress_segment(rrweb.compress(b"\x01\x00\x00\x00\x05\x00\x00\x00abc"))


# -- the fixture generator ----------------------------------------------------------------------


def test_session_is_deterministic_per_seed():
    assert make_session(minutes=1, seed=3) == make_session(minutes=1, seed=3)
    assert make_session(minutes=1, seed=3) != make_session(minutes=1, seed=4)


def test_session_looks_like_a_browser_recording(session):
    assert [b["type"] for b in session].count("init") == 2
    assert session[0]["type"] == "init"
    snapshot = session[0]["events"][1]["data"]["node"]
    ids: list[int] = []

    def walk(node: dict) -> None:
        ids.append(node["id"])
        for child in node.get("childNodes", ()):
            walk(child)

    walk(snapshot)
    assert 500 <= len(ids) <= 2000
    assert ids == sorted(ids) and len(set(ids)) == len(ids)  # pre-order ids, as rrweb gives
    sources = {e["data"]["source"] for b in session for e in b["events"] if e["type"] == 3}
    assert {0, 1, 2, 3, 5} <= sources
    stamps = [e["timestamp"] for b in session for e in b["events"]]
    assert stamps == sorted(stamps)


@pytest.mark.parametrize("limit", [4, 5, 7, 64])
def test_split_parts_respects_the_byte_limit_on_character_boundaries(limit):
    text = "ab€cd🛒e" * 20 + "é"
    parts = split_parts(text, limit)
    assert "".join(parts) == text
    assert all(0 < len(p.encode()) <= limit for p in parts)


def test_split_parts_of_empty_text_is_one_empty_part():
    assert split_parts("", 10) == [""]


def test_frames_carry_parts_and_hashes(session):
    frames = rrweb_frames("c-1", session[:2], start_index=10, part_bytes=8 * 1024)
    first = [f["event_rrweb"] for f in frames if f["event_rrweb"]["event_index"] == 10]
    assert len(first) == first[0]["data_total_parts"] > 1
    assert [p["data_part"] for p in first] == list(range(1, len(first) + 1))
    text = "".join(p["data"] for p in first)
    assert text == batch_text(session[0])
    assert first[0]["data_total_sha256"] == hashlib.sha256(text.encode()).hexdigest()
    assert all(p["data_sha256"] == hashlib.sha256(p["data"].encode()).hexdigest() for p in first)
    assert {f["type"] for f in frames} == {"event"}
    assert {f["event_type"] for f in frames} == {"rrweb"}
    assert frames[-1]["event_rrweb"]["event_index"] == 11


# -- limits: what a batch may unpack to ----------------------------------------------------------

MIB = 1024 * 1024
BOMB_SCRIPT = r"""
import json, resource, sys, tracemalloc, zlib
from conversations.rrweb import RRWebError, decode_batch

# 256 MiB of one repeated JSON pattern, as one packed event: zlib squeezes it below 1 MB.
pattern = b'{"id":12345,"text":"the blue kettle, 39 EUR","x":100,"y":200},'
head = b'{"type":3,"timestamp":1700000000000,"data":{"source":0,"texts":['
tail = b'{}]},"v":"v1"}'
chunk = pattern * (1024 * 1024 // len(pattern))
packer = zlib.compressobj(9)
parts = [packer.compress(head)]
for _ in range(256 * 1024 * 1024 // len(chunk)):
    parts.append(packer.compress(chunk))
parts.append(packer.compress(tail))
parts.append(packer.flush())
bomb = b"".join(parts).decode("latin-1")
del parts, chunk
text = json.dumps([bomb]) if sys.argv[1] == "array" else bomb

rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
tracemalloc.start()
try:
    decode_batch(text, kind="events")
    reason = None
except RRWebError as error:
    reason = str(error)
peak = tracemalloc.get_traced_memory()[1]
tracemalloc.stop()
rss_growth = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss_before
print(json.dumps({"bomb": len(bomb), "reason": reason, "peak": peak, "rss": rss_growth * 1024}))
"""


@pytest.mark.parametrize("shape", ["string", "array"])
def test_packer_bomb_of_256_mib_is_refused_without_inflating_it(shape):
    """A sub-megabyte packer string that inflates to 256 MiB is refused within its cap."""
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
    done = subprocess.run(
        [sys.executable, "-c", BOMB_SCRIPT, shape],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    result = json.loads(done.stdout)
    assert result["bomb"] < MIB
    assert result["reason"] == (
        "event_rrweb.data: a @rrweb/packer string inflates to more than 8388608 bytes "
        "(REPLAY_PACKED_MAX_STRING_BYTES)"
    )
    # The cap is 8 MiB: nothing near the 256 MiB the bomb holds is ever allocated.
    assert result["peak"] < 24 * MIB, result
    assert result["rss"] < 64 * MIB, result


def packed_array(events: list) -> str:
    """What pack(events) produces: the array spread into an object of index keys."""
    return packed({**{str(i): event for i, event in enumerate(events)}, "v": "v1"})


def repeated_event(size: int) -> dict:
    return {**scroll(1), "data": {"source": 0, "text": "a" * size}}


@override_settings(REPLAY_PACKED_MAX_STRING_BYTES=100_000, REPLAY_PACKED_MAX_BATCH_BYTES=MIB)
def test_a_packer_string_over_its_setting_is_refused_naming_it():
    decode_batch(packed(repeated_event(90_000)), kind="events")
    with pytest.raises(RRWebError) as caught:
        decode_batch(packed(repeated_event(110_000)), kind="events")
    assert str(caught.value) == (
        "event_rrweb.data: a @rrweb/packer string inflates to more than 100000 bytes "
        "(REPLAY_PACKED_MAX_STRING_BYTES)"
    )


@override_settings(REPLAY_PACKED_MAX_STRING_BYTES=MIB, REPLAY_PACKED_MAX_BATCH_BYTES=300_000)
def test_packer_strings_of_a_batch_over_the_batch_setting_are_refused_naming_it():
    three = json.dumps([packed(repeated_event(90_000)) for _ in range(3)])
    assert decode_batch(three, kind="events").count == 3
    four = json.dumps([packed(repeated_event(90_000)) for _ in range(4)])
    with pytest.raises(RRWebError) as caught:
        decode_batch(four, kind="events")
    assert str(caught.value) == (
        "event_rrweb.data: the batch's @rrweb/packer strings inflate to more than 300000 bytes "
        "in all (REPLAY_PACKED_MAX_BATCH_BYTES)"
    )


@override_settings(REPLAY_PACKED_MAX_STRING_BYTES=64 * MIB, REPLAY_PACKED_MAX_BATCH_BYTES=64 * MIB)
def test_a_packer_string_inflating_past_the_ratio_is_refused_but_small_ones_are_not():
    small = packed(repeated_event(MIB - 1000))  # under the floor: any ratio goes
    assert len(small) * 100 < MIB
    decode_batch(small, kind="events")
    big = packed(repeated_event(3 * MIB))
    with pytest.raises(RRWebError) as caught:
        decode_batch(big, kind="events")
    assert str(caught.value) == (
        f"event_rrweb.data: a @rrweb/packer string of {len(big)} bytes inflates more than "
        "100 times (REPLAY_PACKED_MAX_RATIO)"
    )
    with override_settings(REPLAY_PACKED_MAX_RATIO=10_000):
        decode_batch(big, kind="events")


@pytest.mark.parametrize(
    "text",
    [
        json.dumps([scroll(i) for i in range(11)]),
        packed_array([scroll(i) for i in range(11)]),
        json.dumps(
            [
                packed_array([scroll(i) for i in range(6)]),
                packed_array([scroll(i) for i in range(5)]),
            ]
        ),
        json.dumps([packed(scroll(i)) for i in range(11)]),
    ],
    ids=["json", "packed array", "packed arrays", "packed events"],
)
@override_settings(REPLAY_BATCH_MAX_EVENTS=10)
def test_a_batch_of_more_events_than_the_setting_is_refused_naming_it(text):
    with pytest.raises(RRWebError) as caught:
        decode_batch(text, kind="events")
    assert str(caught.value) == (
        "event_rrweb.data: the batch holds more than 10 events (REPLAY_BATCH_MAX_EVENTS)"
    )
    with override_settings(REPLAY_BATCH_MAX_EVENTS=11):
        assert decode_batch(text, kind="events").count == 11


def test_limits_are_read_from_settings_at_each_call():
    assert rrweb.limits_now() == rrweb.Limits(
        string_bytes=8 * MIB, batch_bytes=16 * MIB, ratio=100, events=100_000
    )
    with override_settings(REPLAY_BATCH_MAX_EVENTS=5):
        assert rrweb.limits_now().events == 5


def nested(depth: int) -> dict:
    value: object = 1
    for _ in range(depth):
        value = [value]
    return {**scroll(1), "data": {"source": 0, "deep": value}}


def nested_text(depth: int) -> str:
    event = json.dumps(scroll(1))[:-1] + ', "deep": ' + "[" * depth + "]" * depth + "}"
    return "[" + event + "]"


@pytest.mark.parametrize("depth", [10, 900, 2_000, 10_000, 100_000])
@pytest.mark.parametrize("packer", [False, True], ids=["json", "packed"])
def test_deeply_nested_events_are_stored_or_refused_as_nested_too_deeply(depth, packer):
    text = nested_text(depth)
    if packer:
        text = zlib.compress(('{"0":' + nested_text(depth)[1:-1] + ',"v":"v1"}').encode()).decode(
            "latin-1"
        )
    try:
        batch = decode_batch(text, kind="events")
    except RRWebError as error:
        assert "nested too deeply" in str(error)
        return
    assert batch.count == 1


def test_packed_array_with_enormous_index_keys_is_ordered_not_a_crash():
    value = {"9" * 5000: scroll(2), "1": scroll(1), "v": "v1"}
    text = zlib.compress(json.dumps(value).encode()).decode("latin-1")
    batch = decode_batch(text, kind="events")
    assert [e["timestamp"] for e in rrweb.load_events(batch.events_json)] == [1, 2]


def test_packed_event_with_a_number_too_large_for_json_is_refused():
    text = zlib.compress(b'{"type":3,"timestamp":1,"data":{"x":1e999},"v":"v1"}').decode("latin-1")
    with pytest.raises(RRWebError, match="events cannot be stored as JSON"):
        decode_batch(text, kind="events")


# Shared text, for compression dictionaries -----------------------------------------------------

SHARED = b'{"type":2,"tagName":"header","attributes":{"class":"site-header sticky"},"childNodes":['


def page(visitor: bytes) -> bytes:
    return SHARED + b'{"type":3,"textContent":"Signed in as ' + visitor + b'"}]}' + SHARED


def test_shared_text_keeps_what_enough_samples_contain_and_nothing_one_alone_does():
    samples = [page(name) for name in (b"Ada Lovelace", b"Grace Hopper", b"Alan Turing")]
    text = rrweb.shared_text(samples, keep=2, min_share=3)
    assert SHARED in text
    assert not any(name in text for name in (b"Ada", b"Lovelace", b"Grace", b"Hopper"))
    assert rrweb.shared_text(samples, keep=2, min_share=4) == b""  # only three samples


def test_shared_text_of_two_visits_by_the_same_visitor_needs_a_third_to_keep_them():
    samples = [page(b"Ada Lovelace"), page(b"Ada Lovelace"), page(b"Alan Turing")]
    assert b"Lovelace" not in rrweb.shared_text(samples, min_share=3)
    assert b"Lovelace" in rrweb.shared_text(samples, min_share=2)


def test_a_shared_text_dictionary_compresses_a_new_page_of_the_same_site_smaller():
    texts = [batch_text(batch).encode() for batch in make_session(minutes=1, seed=7)]
    samples = [
        b"".join(batch_text(b).encode() for b in make_session(minutes=1, seed=s)) for s in range(4)
    ]
    dictionary = rrweb.shared_text(samples)
    with_dictionary = rrweb.compress_segment(texts, base=dictionary)
    assert len(with_dictionary) < 0.8 * len(rrweb.compress_segment(texts))
    assert rrweb.decompress_segment(with_dictionary, base=dictionary) == texts
