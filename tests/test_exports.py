"""Exports: the archive round trip, transcripts, CSVs and the bulk zip in constant memory."""

import csv
import io
import json
import re
import tracemalloc
import zipfile
from datetime import UTC, datetime

import pytest
import zstandard
from django.core.management import call_command
from django.utils import timezone

from conversations import exports, ingest
from conversations.imports import CREATED, archive_import
from conversations.models import Conversation, ConversationNote, Message, RRWebBatch
from conversations.retention import conversation_delete
from conversations.storage import row_events_json
from tests import factories as f

pytestmark = pytest.mark.django_db

INJECTION = "</script><script>window.pwned=1</script><!-- <script>window.pwned=2</script>"


def apply(*frames: dict | str) -> list[ingest.Outcome]:
    items = [ingest.item_from_text(fr if isinstance(fr, str) else f.dumps(fr)) for fr in frames]
    return ingest.items_apply(items, source=None)


def recorded_conversation(
    uuid: str | None = None, *, body: str = "Is the blue kettle in stock?", page_text: str = ""
) -> Conversation:
    """A conversation as a shop sends it: summary, messages with an edit, events, recording."""
    uuid = uuid or f.new_uuid()
    first = f.rrweb_events(start=f.T0, count=3)
    later = f.incremental_events(start=f.T0 + 1_000, count=4)
    second_page = f.rrweb_events(start=f.T0 + 3_000, count=2, href="https://shop.example/cart")
    if page_text:
        # On both pages: a replay that has already played on to the second page still shows it.
        for page in (first, second_page):
            page_body = page[1]["data"]["node"]["childNodes"][0]["childNodes"][0]
            page_body["childNodes"][0]["textContent"] = page_text
    message_uuid = f.new_uuid()
    agent = f.participant("Bo Agent")
    frames = [
        f.new_conversation(uuid, participants=[f.participant(), agent]),
        f.message(uuid, body, message_uuid=message_uuid, epoch=f.T0 + 500),
        f.message(uuid, "Yes, 12 left.", author="Bo Agent", epoch=f.T0 + 2_500),
        f.event(
            "updated message",
            uuid,
            event_updated_message=f.message(uuid, body + " (EU plug)", message_uuid=message_uuid)[
                "message"
            ],
        ),
        f.event(
            "typing",
            uuid,
            event_typing={"author_conversation_participant_name": "Bo Agent", "value": "Yes"},
        ),
        f.rrweb_frame(uuid, 0, first, kind="init"),
        # Spaced JSON, as some clients send it: the archive stores one canonical spelling.
        f.rrweb_frame(uuid, 1, json.dumps(later)),
        *f.rrweb_parts(uuid, 2, second_page, parts=3, kind="init"),
    ]
    outcomes = apply(*frames)
    assert [o.status for o in outcomes if o.status == ingest.REJECTED] == []
    conversation = Conversation.objects.get(uuid=uuid)
    conversation.tags = "refund, vip"
    conversation.save(update_fields=["tags"])
    ConversationNote.objects.create(
        conversation=conversation,
        author_name="lee",
        offset_ms=1_500,
        text="Customer hesitates over the plug type",
        created_at=timezone.now().replace(microsecond=123456),
    )
    return conversation


def wipe() -> None:
    for conversation in Conversation.objects.all():
        conversation_delete(conversation=conversation)


def test_archive_imported_into_an_empty_database_exports_byte_for_byte_the_same():
    conversation = recorded_conversation()
    first = exports.archive_bytes(conversation)
    wipe()
    assert Conversation.objects.count() == 0

    result = archive_import(first, name="one.json", trust=True)

    assert result.status == CREATED, result.reason
    assert exports.archive_bytes(conversation.uuid) == first


def test_archive_holds_conversation_messages_edits_events_and_recording():
    conversation = recorded_conversation()
    archive = json.loads(exports.archive_bytes(conversation))

    assert archive["format"] == "conversation-replay-archive"
    assert archive["version"] == 2
    assert archive["conversation"]["tags"] == "refund, vip"
    [note] = archive["notes"]
    assert (note["offset_ms"], note["text"], note["author_name"]) == (
        1_500,
        "Customer hesitates over the plug type",
        "lee",
    )
    assert [p["name"] for p in archive["participants"]] == ["Ada Shopper", "Bo Agent"]
    first = archive["messages"][0]
    assert first["body"].endswith("(EU plug)")
    assert [edit["body"] for edit in first["edits"]] == [first["body"]]
    assert [e["event_type"] for e in archive["events"]].count("typing") == 1
    assert [b["event_index"] for b in archive["batches"]] == [0, 1, 2]
    assert [s["segment"] for s in archive["segments"]] == [1, 2]
    stored = [json.loads(row_events_json(b)) for b in conversation.rrweb_batches.all()]
    assert [b["events"] for b in archive["batches"]] == stored


def test_compressed_archive_round_trips_through_import():
    conversation = recorded_conversation()
    plain = exports.archive_bytes(conversation)
    packed = b"".join(exports.archive_zst_chunks(conversation))
    assert zstandard.ZstdDecompressor().stream_reader(packed).read() == plain
    wipe()

    assert archive_import(packed, name="one.json.zst", trust=True).status == CREATED
    assert exports.archive_bytes(conversation.uuid) == plain
    restored = Conversation.objects.get(uuid=conversation.uuid)
    assert restored.rrweb_batch_total == 3
    assert RRWebBatch.objects.filter(conversation=restored, base__isnull=False).count() == 1


def test_text_transcript_lists_every_message_with_its_edit():
    conversation = recorded_conversation(body="Hello there")
    text = b"".join(exports.transcript_txt_chunks(conversation)).decode()

    assert f"Conversation {conversation.uuid}" in text
    assert "Participants: Ada Shopper, Bo Agent" in text
    assert "Ada Shopper: Hello there (EU plug)" in text
    assert "(edited; first sent as: Hello there)\n" in text
    assert "Bo Agent: Yes, 12 left." in text


def test_csv_transcript_reads_back_as_one_row_a_message():
    conversation = recorded_conversation(body='=HYPERLINK("http://evil")')
    data = b"".join(exports.transcript_csv_chunks(conversation)).decode()
    rows = list(csv.DictReader(io.StringIO(data)))

    assert list(rows[0]) == [
        *["time", "author", "body", "edited", "original_body", "edits"],
        *["kind", "offset_ms"],  # added later, at the end: scripts read the first six
    ]
    rows = [r for r in rows if r["kind"] == "message"]
    assert [r["author"] for r in rows] == ["Ada Shopper", "Bo Agent"]
    # A body that a spreadsheet would run as a formula is kept as text.
    assert rows[0]["body"] == '\'=HYPERLINK("http://evil") (EU plug)'
    # An edited message keeps its history: flagged, with the body it was first sent with.
    assert (rows[0]["edited"], rows[0]["original_body"]) == ("yes", '\'=HYPERLINK("http://evil")')
    assert (rows[1]["edited"], rows[1]["original_body"]) == ("no", "Yes, 12 left.")
    assert [e["body"] for e in json.loads(rows[0]["edits"])] == [
        '=HYPERLINK("http://evil") (EU plug)'
    ]
    assert rows[1]["body"] == "Yes, 12 left."
    assert rows[0]["time"] == "2026-11-25T10:00:01.000000Z"


def test_csv_transcript_of_a_message_known_only_by_its_edit_is_flagged_edited():
    uuid = f.new_uuid()
    edit = f.message(uuid, "Actually, two kettles")["message"]
    apply(f.new_conversation(uuid), f.event("updated message", uuid, event_updated_message=edit))
    data = b"".join(exports.transcript_csv_chunks(uuid)).decode()
    [row] = list(csv.DictReader(io.StringIO(data)))
    assert (row["body"], row["edited"], row["original_body"]) == (
        "Actually, two kettles",
        "yes",
        "",
    )


def test_print_page_escapes_message_bodies():
    conversation = recorded_conversation(body=INJECTION)
    page = exports.print_page(conversation)

    assert "<script>window.pwned" not in page
    assert "&lt;/script&gt;&lt;script&gt;window.pwned=1" in page
    assert "Yes, 12 left." in page


def with_notes() -> Conversation:
    """The recorded conversation with three notes: lee's at 1.5 s, one whose text looks like
    markup at 2 s, one past the recording's end; the second message moved to 10:00:03, and
    the clocks set so that 1.5 s into the recording is 10:00:02 on the server's."""
    conversation = recorded_conversation()
    Message.objects.filter(conversation=conversation, body="Yes, 12 left.").update(
        message_dts=datetime(2026, 11, 25, 10, 0, 3, tzinfo=UTC)
    )
    server_ms = int(datetime(2026, 11, 25, 10, 0, 2, tzinfo=UTC).timestamp() * 1000)
    conversation.clock_offset_ms = server_ms - (conversation.recording_start_ms + 1_500)
    conversation.save(update_fields=["clock_offset_ms"])
    for author, offset, text in [("sam", 2_000, INJECTION), ("kim", 60_000, "After the end")]:
        ConversationNote.objects.create(
            conversation=conversation, author_name=author, offset_ms=offset, text=text
        )
    return conversation


def test_text_transcript_lists_the_notes_after_the_messages_at_their_offset():
    text = b"".join(exports.transcript_txt_chunks(with_notes())).decode()

    messages, notes = text.split("\nNotes (time into the recording):\n")
    assert "Bo Agent: Yes, 12 left." in messages
    assert notes == (
        "[0:01] lee: Customer hesitates over the plug type\n"
        f"[0:02] sam: {INJECTION}\n"
        "[1:00] kim: After the end\n"
    )


def test_csv_transcript_has_notes_as_rows_among_the_messages_in_time_order():
    data = b"".join(exports.transcript_csv_chunks(with_notes())).decode()
    rows = list(csv.DictReader(io.StringIO(data)))

    assert [(r["kind"], r["author"], r["offset_ms"]) for r in rows] == [
        ("message", "Ada Shopper", ""),
        ("note", "lee", "1500"),
        ("note", "sam", "2000"),
        ("message", "Bo Agent", ""),
        ("note", "kim", "60000"),  # past the recording's end: no moment to sort it by
    ]
    lee, sam, kim = (r for r in rows if r["kind"] == "note")
    assert lee == {
        "time": "2026-11-25T10:00:02.000000Z",
        "author": "lee",
        "body": "Customer hesitates over the plug type",
        "edited": "no",
        "original_body": "",
        "edits": "[]",
        "kind": "note",
        "offset_ms": "1500",
    }
    assert (sam["time"], sam["body"]) == ("2026-11-25T10:00:02.500000Z", INJECTION)
    assert kim["time"] == ""
    # Sorting by time, as a spreadsheet would, keeps notes beside the messages around them.
    timed = [r for r in rows if r["time"]]
    assert sorted(timed, key=lambda r: r["time"]) == timed


def html_pages(conversation: Conversation) -> tuple[str, str]:
    """The two exports that show the transcript as HTML: the print page, the standalone file."""
    standalone = b"".join(exports.standalone_html_chunks(conversation)).decode()
    return exports.print_page(conversation), standalone


def notes_section(page: str) -> str:
    [section] = re.findall(r'<ol class="notes">.*?</ol>', page, re.DOTALL)
    return section


def test_print_page_and_standalone_file_list_the_notes_at_their_offset_as_text():
    conversation = with_notes()
    for page in html_pages(conversation):
        assert "<dt>Notes</dt><dd>3</dd>" in page
        notes = notes_section(page)
        assert (
            '<li data-offset="1500" title="Play from here">\n'
            '    <time datetime="2026-11-25T10:00:02.000000Z">0:01</time>\n'
            '    <strong class="author">lee</strong>\n'
            '    <p class="body">Customer hesitates over the plug type</p>'
        ) in notes
        assert '<li data-offset="2000" title="Play from here">' in notes
        assert '<strong class="author">sam</strong>' in notes
        # Written by staff, shown as text: the markup in a note never becomes markup.
        assert "<script>window.pwned" not in page
        assert "&lt;/script&gt;&lt;script&gt;window.pwned=1&lt;/script&gt;&lt;!--" in notes
        # Past the recording's end there is no moment to play from.
        assert '<li>\n    <time>1:00</time>\n    <strong class="author">kim</strong>' in notes


def with_page_errors() -> Conversation:
    conversation = recorded_conversation()
    events = [
        f.console_event(f.T0 + 2_000, "TypeError: cart is undefined"),
        f.network_event(f.T0 + 2_500, "https://shop.example/api/stock", status=503),
    ]
    apply(f.rrweb_frame(conversation.uuid, 3, events))
    return Conversation.objects.get(pk=conversation.pk)


def test_print_page_and_standalone_file_list_console_errors_at_their_offset():
    conversation = with_page_errors()
    for page in html_pages(conversation):
        assert "Console &amp; network" in page
        assert 'data-offset="2000" title="Play from here">' in page
        assert "TypeError: cart is undefined" in page
        assert "GET https://shop.example/api/stock 503" in page


def test_an_imported_archive_counts_and_lists_its_console_errors_again():
    conversation = with_page_errors()
    archive = exports.archive_bytes(conversation)
    wipe()
    assert archive_import(archive).status == CREATED
    imported = Conversation.objects.get(uuid=conversation.uuid)
    assert (imported.console_error_total, imported.network_error_total) == (1, 1)
    assert imported.page_errors.count() == 2


def test_summary_csv_has_one_row_a_conversation_with_response_time_and_recording_length():
    talked = recorded_conversation()
    silent = f.new_uuid()
    apply(f.new_conversation(silent))
    data = b"".join(exports.summary_csv_chunks(Conversation.objects.all())).decode()
    rows = {r["conversation_uuid"]: r for r in csv.DictReader(io.StringIO(data))}

    row = rows[talked.uuid]
    assert row["participants"] == "Ada Shopper; Bo Agent"
    assert row["message_count"] == "2"
    assert row["first_response_seconds"] == "0.0"  # both messages carry the same message_dts
    assert float(row["recording_seconds"]) == (talked.recording_end_ms - f.T0) / 1000
    assert row["tags"] == "refund, vip"
    assert rows[silent]["message_count"] == "0"
    assert rows[silent]["first_response_seconds"] == ""


def test_export_command_writes_a_zip_that_import_command_restores(tmp_path):
    conversations = [recorded_conversation() for _ in range(3)]
    originals = {c.uuid: exports.archive_bytes(c) for c in conversations}
    out = tmp_path / "all.zip"
    output = io.StringIO()
    call_command("export_conversations", "--out", str(out), stdout=output)
    assert "Exported 3 conversation(s)" in output.getvalue()
    with zipfile.ZipFile(out) as bundle:
        assert len(bundle.namelist()) == 3
    wipe()

    output = io.StringIO()
    call_command(
        "import_conversations", "--trust-archive", str(out), stdout=output, stderr=io.StringIO()
    )

    assert "Created 3, skipped 0, refused 0." in output.getvalue()
    assert {uuid: exports.archive_bytes(uuid) for uuid in originals} == originals


def test_export_command_filters_by_date_and_closed(tmp_path):
    old, recent, closed = (recorded_conversation() for _ in range(3))
    Conversation.objects.filter(pk=old.pk).update(
        first_seen_at=timezone.now() - timezone.timedelta(days=40)
    )
    Conversation.objects.filter(pk=closed.pk).update(closed=True)
    since = (timezone.now() - timezone.timedelta(days=7)).date().isoformat()

    out = tmp_path / "recent.zip"
    call_command("export_conversations", "--since", since, "--out", str(out), stdout=io.StringIO())
    with zipfile.ZipFile(out) as bundle:
        assert sorted(bundle.namelist()) == sorted(
            exports.archive_name(c) for c in (recent, closed)
        )
    out = tmp_path / "closed.zip"
    call_command("export_conversations", "--closed", "--out", str(out), stdout=io.StringIO())
    with zipfile.ZipFile(out) as bundle:
        assert bundle.namelist() == [exports.archive_name(closed)]


def _peak_exporting(tmp_path, count: int) -> tuple[int, int]:
    """Peak traced memory while exporting `count` conversations, and the archives' total size."""
    Conversation.objects.all().delete() if not RRWebBatch.objects.exists() else wipe()
    session = f.rrweb_events(count=300)
    frames = []
    for _ in range(count):
        uuid = f.new_uuid()
        frames += [
            f.new_conversation(uuid),
            f.message(uuid, "Where is my order? " * 20),
            f.rrweb_frame(uuid, 0, session, kind="init"),
            f.rrweb_frame(uuid, 1, f.incremental_events(start=f.T0 + 5_000, count=40)),
        ]
    ingest.items_apply([ingest.item_from_text(f.dumps(fr)) for fr in frames], source=None)
    out = tmp_path / f"{count}.zip"
    tracemalloc.start()
    try:
        call_command("export_conversations", "--out", str(out), stdout=io.StringIO())
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    with zipfile.ZipFile(out) as bundle:
        assert len(bundle.namelist()) == count
        total = sum(info.file_size for info in bundle.infolist())
    return peak, total


def test_bulk_export_memory_stays_flat_as_the_number_of_conversations_grows(tmp_path):
    small, _ = _peak_exporting(tmp_path, 20)
    large, archives = _peak_exporting(tmp_path, 200)
    per_conversation = (large - small) / 180
    per_archive = archives / 200
    print(
        f"export peak: 20 conversations {small} B, 200 conversations {large} B; "
        f"{per_conversation:.0f} B more per conversation, archives {per_archive:.0f} B each"
    )
    # What grows is the zip's central directory (one entry per archive, written at the end
    # by the format's design): a few KB a conversation, never the archives themselves.
    assert per_conversation < 8 * 1024
    assert per_conversation < per_archive / 4


def test_a_message_plays_from_where_the_replay_page_puts_it_when_the_clocks_disagree():
    """The customer's clock runs seven minutes behind the server's; messages carry the server's."""
    from conversations import selectors

    skew = 7 * 60_000
    uuid = f.new_uuid()
    events = f.rrweb_events(start=f.T0, count=30)  # three seconds on the customer's clock
    received = datetime.fromtimestamp((events[-1]["timestamp"] + skew + 150) / 1000, tz=UTC)
    ingest.items_apply(
        [
            ingest.item_from_text(f.dumps(f.new_conversation(uuid))),
            ingest.item_from_text(
                f.dumps(f.rrweb_frame(uuid, 0, events, kind="init")), received_at=received
            ),
            ingest.item_from_text(
                f.dumps(f.message(uuid, "Still there?", epoch=f.T0 + skew + 1_200))
            ),
        ],
        source=None,
    )
    conversation = Conversation.objects.get(uuid=uuid)
    data = selectors.replay_data(uuid=uuid)
    [item] = [i for i in data.items if i["kind"] == "message"]
    on_the_page = item["epoch"] - conversation.recording_start_ms
    assert abs(on_the_page - 1_200) <= 200  # the page's estimate of the clocks' difference
    for page in html_pages(conversation):
        assert f'<li data-offset="{on_the_page}" title="Play from here">' in page
