"""Import: archives and zips of them, idempotent, broken archives refused with the reason."""

import io
import json
import zipfile

import pytest
from django.core.management import call_command

from conversations import exports
from conversations.imports import REFUSED, SKIPPED, archive_import
from conversations.models import Conversation
from conversations.retention import conversation_delete
from tests.test_exports import recorded_conversation

pytestmark = pytest.mark.django_db


def run_import(*paths) -> tuple[str, str]:
    out, err = io.StringIO(), io.StringIO()
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


def test_archive_of_a_stored_conversation_is_skipped():
    conversation = recorded_conversation()
    result = archive_import(exports.archive_bytes(conversation))
    assert (result.status, result.reason) == (SKIPPED, "already stored")


@pytest.mark.parametrize(
    ("damage", "reason"),
    [
        (lambda a: b"{not json", "not valid JSON"),
        (lambda a: json.dumps({"format": "something else"}).encode(), "not a conversation archive"),
        (lambda a: a.replace(b'"version":1', b'"version":99'), "version 99 is not supported"),
        (
            lambda a: a.replace(b'"message_uuid"', b'"message_id"'),
            "messages[0] has no 'message_uuid'",
        ),
        (lambda a: a.replace(b"Blue kettle", b"Blue kettlf"), "do not match events_sha256"),
        (lambda a: a.replace(b'"first_seen_at":"', b'"first_seen_at":"x'), "not an ISO 8601"),
        (lambda a: b"\x28\xb5\x2f\xfd" + b"garbage", "not a valid zstd file"),
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

    out, err = run_import(bundle)

    assert "Created 1, skipped 1, refused 2." in out
    assert "refused ? (mixed.zip:broken.json): not a conversation archive" in err
    assert "not a .json or .json.zst archive" in err
    assert Conversation.objects.filter(uuid=gone.uuid).exists()
