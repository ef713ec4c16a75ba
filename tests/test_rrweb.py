"""Decoding, summarising and compressing rrweb batches; the fixture generator tests rely on."""

import hashlib
import json
import shutil
import subprocess
import zlib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bench.rrweb_fixtures import batch_text, make_session, rrweb_frames, split_parts
from conversations import rrweb
from conversations.protocol import ProtocolError
from conversations.rrweb import EventType, RRWebError, decode_batch
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
        ('[{"type": 3, "timestamp": NaN}]', "events", E + "event 0 has no numeric timestamp"),
        ('[{"type": 3, "timestamp": Infinity}]', "events", E + "event 0 has no numeric"),
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


def test_zlib_bomb_is_refused(monkeypatch):
    monkeypatch.setattr(rrweb, "MAX_UNPACKED_BYTES", 1000)
    bomb = zlib.compress(b" " * 5000 + b"{}").decode("latin-1")
    with pytest.raises(RRWebError, match="inflates to more than 1000 bytes"):
        decode_batch(bomb, kind="events")


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
