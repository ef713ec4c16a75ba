"""Import: archives and zips of them, idempotent, broken archives refused with the reason."""

import io
import json
import os
import subprocess
import sys
import zipfile
from datetime import UTC, datetime
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from bench.import_memory import IMPORT_AND_MEASURE, write_big_archive
from conversations import exports
from conversations.imports import (
    CREATED,
    REFUSED,
    SKIPPED,
    ArchiveError,
    JsonStream,
    archive_import,
)
from conversations.models import Conversation, ConversationNote, RRWebBatch
from conversations.retention import conversation_delete
from tests.test_exports import recorded_conversation

pytestmark = pytest.mark.django_db


def run_import(*paths, refused: bool = False) -> tuple[str, str]:
    out, err = io.StringIO(), io.StringIO()
    if refused:
        with pytest.raises(CommandError, match="refused"):  # the command exits non-zero
            call_command("import_conversations", *map(str, paths), stdout=out, stderr=err)
    else:
        call_command("import_conversations", *map(str, paths), stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def test_importing_the_same_archive_twice_skips_it_the_second_time(tmp_path):
    conversation = recorded_conversation()
    path = tmp_path / "one.json"
    path.write_bytes(exports.archive_bytes(conversation))
    conversation_delete(conversation=conversation)

    first, _ = run_import(path)
    second, _ = run_import(path)

    assert "Created 1, skipped 0, refused 0." in first
    assert "Created 0, skipped 1, refused 0." in second
    assert Conversation.objects.count() == 1


def test_notes_come_back_at_the_same_moment_with_their_author_as_a_name_only(staff_user):
    conversation = recorded_conversation()
    ConversationNote.objects.filter(conversation=conversation).update(author=staff_user)
    archive = exports.archive_bytes(conversation)
    conversation_delete(conversation=conversation)

    assert archive_import(archive).status == CREATED

    [note] = Conversation.objects.get(uuid=conversation.uuid).notes.all()
    assert (note.offset_ms, note.text) == (1_500, "Customer hesitates over the plug type")
    # Accounts are per installation: an archive cannot make anyone here a note's author.
    assert (note.author_name, note.author) == ("lee", None)


def test_a_version_1_archive_without_notes_is_still_imported():
    conversation = recorded_conversation()
    archive = json.loads(exports.archive_bytes(conversation))
    archive["version"] = 1
    del archive["notes"]
    conversation_delete(conversation=conversation)

    result = archive_import(json.dumps(archive).encode())

    assert result.status == CREATED, result.reason
    assert Conversation.objects.get(uuid=conversation.uuid).tag_list == ["refund", "vip"]
    assert not ConversationNote.objects.exists()


def test_an_imported_recording_has_the_clock_offset_it_had_when_exported(tmp_path):
    conversation = recorded_conversation()
    offset = Conversation.objects.get(pk=conversation.pk).clock_offset_ms
    path = tmp_path / "one.json"
    path.write_bytes(exports.archive_bytes(conversation))
    conversation_delete(conversation=conversation)

    run_import(path)

    assert offset is not None
    assert Conversation.objects.get().clock_offset_ms == offset


def test_archive_of_a_stored_conversation_is_skipped():
    conversation = recorded_conversation()
    result = archive_import(exports.archive_bytes(conversation))
    assert (result.status, result.reason) == (SKIPPED, "already stored")


@pytest.mark.parametrize(
    ("damage", "reason"),
    [
        (lambda a: b"{not json", "not valid JSON"),
        (lambda a: json.dumps({"format": "something else"}).encode(), "not a conversation archive"),
        (lambda a: a.replace(b'"version":2', b'"version":99'), "version 99 is not supported"),
        (
            lambda a: a.replace(b'"message_uuid"', b'"message_id"'),
            "messages[0] has no 'message_uuid'",
        ),
        (lambda a: a.replace(b"Blue kettle", b"Blue kettlf"), "do not match events_sha256"),
        (lambda a: a.replace(b'"first_seen_at":"', b'"first_seen_at":"x'), "not an ISO 8601"),
        (lambda a: b"\x28\xb5\x2f\xfd" + b"garbage", "not a valid zstd file"),
        (lambda a: a.replace(b'"offset_ms":1500', b'"offset_ms":-1'), "breaks"),
        (lambda a: a.replace(b'"notes":[', b'"notez":['), "archive.notes must be a list"),
    ],
)
def test_broken_archive_is_refused_with_a_clear_reason_and_nothing_stored(damage, reason):
    conversation = recorded_conversation()
    archive = exports.archive_bytes(conversation)
    conversation_delete(conversation=conversation)

    result = archive_import(damage(archive), name="broken.json")

    assert result.status == REFUSED
    assert reason in result.reason
    assert Conversation.objects.count() == 0


def test_zip_import_reports_created_skipped_and_refused(tmp_path):
    kept, gone = recorded_conversation(), recorded_conversation()
    bundle = tmp_path / "mixed.zip"
    with zipfile.ZipFile(bundle, "w") as archive:
        archive.writestr("kept.json", exports.archive_bytes(kept))
        archive.writestr("gone.json.zst", b"".join(exports.archive_zst_chunks(gone)))
        archive.writestr("broken.json", b"[]")
        archive.writestr("notes.txt", b"hello")
    conversation_delete(conversation=gone)

    out, err = run_import(bundle, refused=True)

    assert "Created 1, skipped 1, refused 2." in out
    assert "refused ? (mixed.zip:broken.json): not a conversation archive" in err
    assert "not a .json or .json.zst archive" in err
    assert Conversation.objects.filter(uuid=gone.uuid).exists()


def test_an_archive_cannot_set_its_own_legal_hold_or_retention_dates_unless_trusted(tmp_path):
    conversation = recorded_conversation()
    Conversation.objects.filter(pk=conversation.pk).update(
        legal_hold=True, updated_at=datetime(2999, 1, 1, tzinfo=UTC)
    )
    path = tmp_path / "held.json"
    path.write_bytes(exports.archive_bytes(conversation))
    conversation_delete(conversation=conversation)

    run_import(path)
    imported = Conversation.objects.get(uuid=conversation.uuid)
    assert not imported.legal_hold
    assert imported.updated_at.year < 2999 and imported.first_seen_at.year < 2999

    conversation_delete(conversation=imported)
    run_import("--trust-archive", path)
    trusted = Conversation.objects.get(uuid=conversation.uuid)
    assert trusted.legal_hold
    assert trusted.updated_at == datetime(2999, 1, 1, tzinfo=UTC)


@pytest.mark.parametrize("chunk", [1, 2, 3, 7, 64])
def test_the_stream_reader_parses_values_cut_anywhere(monkeypatch, chunk):
    monkeypatch.setattr(JsonStream, "CHUNK", chunk)
    document = {"n": 12345678, "f": -1.5e10, "t": True, "z": None, "s": 'é€😀 "q"', "l": []}
    text = json.dumps({**document, "batches": [1, {"a": [2, 3]}, "x"], "after": 10**20})
    reader = JsonStream(io.BytesIO(f" {text} ".encode()))
    keys = reader.members()
    head = {}
    for key in keys:
        if key == "batches":
            break
        head[key] = reader.value()
    assert head == document
    assert list(reader.items("batches")) == [1, {"a": [2, 3]}, "x"]
    assert [(key, reader.value()) for key in keys] == [("after", 10**20)]


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        (b'{"a": 1,}', "not valid JSON"),
        (b'{"a": 1} {}', "more text after the archive"),
        (b'{"a": 1', "expected ',' or '}'"),
        (b'{"a": "\xff"}', "not UTF-8 text at byte 7"),
    ],
)
def test_the_stream_reader_says_where_json_is_broken(text, reason):
    reader = JsonStream(io.BytesIO(text))
    with pytest.raises(ArchiveError, match=reason):
        for _ in reader.members():
            reader.value()


@pytest.mark.django_db(transaction=True)
def test_a_200_mb_archive_is_imported_in_bounded_memory(tmp_path):
    from tests.conftest import database_url_for_subprocess

    conversation = recorded_conversation()
    template = exports.archive_bytes(conversation)
    small, big = tmp_path / "small.zip", tmp_path / "big.zip"
    with zipfile.ZipFile(small, "w") as bundle:
        bundle.writestr("small.json", template)
    write_big_archive(big, template, megabytes=200)
    assert big.stat().st_size > 200_000_000
    conversation_delete(conversation=conversation)
    env = {**os.environ, "DATABASE_URL": database_url_for_subprocess()}

    def max_rss_mib(path) -> float:
        done = subprocess.run(
            [sys.executable, "-c", IMPORT_AND_MEASURE, str(path)],
            cwd=Path(__file__).resolve().parent.parent,
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert done.returncode == 0, done.stderr[-3000:]
        imported = Conversation.objects.get()
        stored.append(RRWebBatch.objects.filter(conversation=imported).count())
        conversation_delete(conversation=imported)
        return int(done.stdout.split("VmHWM")[1]) / 1024

    stored: list[int] = []

    baseline = max_rss_mib(small)
    used = max_rss_mib(big)
    print(f"import: {baseline:.0f} MiB for a small archive, {used:.0f} MiB for 200 MB")
    assert used - baseline < 64
    assert stored == [3, 203]
