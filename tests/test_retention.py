"""Retention: purge conversations past REPLAY_RETENTION_DAYS, never those under legal hold."""

import io

import pytest
from django.core.management import call_command
from django.db.models import ProtectedError, RestrictedError
from django.test import override_settings
from django.utils import timezone

from conversations import storage
from conversations.models import (
    AuditLog,
    Conversation,
    Message,
    RecordingDictionary,
    RecordingPack,
    RejectedFrame,
    RRWebBatch,
)
from conversations.retention import LegalHoldError, conversation_remove
from tests.test_exports import recorded_conversation

pytestmark = pytest.mark.django_db


def age(conversation: Conversation, days: int) -> None:
    Conversation.objects.filter(pk=conversation.pk).update(
        updated_at=timezone.now() - timezone.timedelta(days=days)
    )


def purge(*args: str) -> str:
    out = io.StringIO()
    call_command("purge_conversations", *args, stdout=out)
    return out.getvalue()


@override_settings(REPLAY_RETENTION_DAYS=30)
def test_purge_deletes_old_conversations_with_all_they_own_but_keeps_held_and_recent():
    old, held, recent = (recorded_conversation() for _ in range(3))
    age(old, 31)
    age(held, 400)
    Conversation.objects.filter(pk=held.pk).update(legal_hold=True)
    RejectedFrame.objects.create(kind="invalid", reason="x", size=1, conversation_uuid=old.uuid)

    output = purge()

    assert f"Deleted {old.uuid}" in output
    assert "kept 1 under legal hold" in output
    assert set(Conversation.objects.values_list("uuid", flat=True)) == {held.uuid, recent.uuid}
    assert not RRWebBatch.objects.filter(conversation_id=old.pk).exists()
    assert not Message.objects.filter(conversation_id=old.pk).exists()
    assert not RejectedFrame.objects.filter(conversation_uuid=old.uuid).exists()
    entry = AuditLog.objects.get()
    assert (entry.action, entry.conversation_uuid, entry.user) == ("purge", old.uuid, None)


@override_settings(REPLAY_RETENTION_DAYS=30)
def test_dry_run_lists_what_would_go_and_deletes_nothing():
    old = recorded_conversation()
    age(old, 90)
    output = purge("--dry-run")
    assert f"Would delete {old.uuid}" in output
    assert Conversation.objects.filter(pk=old.pk).exists()
    assert not AuditLog.objects.exists()


@pytest.mark.parametrize("days", [None, 0])
def test_without_a_retention_limit_everything_is_kept(days):
    old = recorded_conversation()
    age(old, 3650)
    with override_settings(REPLAY_RETENTION_DAYS=days):
        assert "every conversation is kept" in purge()
    assert Conversation.objects.filter(pk=old.pk).exists()


# --- Rejected frames: their own age and byte budget ---------------------------------------------


def rejected(days_old: float, *, text: str = "x" * 1000, binary: bytes | None = None, uuid=""):
    return RejectedFrame.objects.create(
        kind="invalid",
        reason="invalid JSON",
        size=len(text.encode()) + len(binary or b""),
        text=text,
        binary=binary,
        conversation_uuid=uuid,
        received_at=timezone.now() - timezone.timedelta(days=days_old),
    )


def purge_rejected(*args: str) -> str:
    out = io.StringIO()
    call_command("purge_rejected_frames", *args, stdout=out)
    return out.getvalue()


def kept() -> set[int]:
    return set(RejectedFrame.objects.values_list("pk", flat=True))


@override_settings(REPLAY_REJECTED_RETENTION_DAYS=30, REPLAY_REJECTED_MAX_BYTES=None)
def test_rejected_frames_older_than_their_retention_are_deleted_and_audited():
    old, older, recent = rejected(31), rejected(400), rejected(29)

    output = purge_rejected()

    assert kept() == {recent.pk}
    assert "Rejected frames: deleted 2 received before" in output
    assert "(2000 bytes; REPLAY_REJECTED_RETENTION_DAYS)" in output
    entry = AuditLog.objects.get()
    assert (entry.action, entry.user, entry.conversation_uuid) == ("purge", None, "")
    assert entry.detail.startswith("rejected frames: 2 received before")
    assert {old.pk, older.pk}.isdisjoint(kept())


@override_settings(REPLAY_REJECTED_RETENTION_DAYS=None, REPLAY_REJECTED_MAX_BYTES=2500)
def test_the_oldest_rejected_frames_beyond_the_byte_budget_are_deleted_newest_kept():
    frames = [rejected(days) for days in (1, 2, 3, 4, 5)]  # 1000 bytes each, newest first

    output = purge_rejected()

    assert kept() == {frames[0].pk, frames[1].pk}
    assert (
        "deleted 3 oldest beyond the newest 2500 bytes (3000 bytes; REPLAY_REJECTED_MAX_BYTES)"
        in (output)
    )
    assert "REPLAY_REJECTED_MAX_BYTES" in AuditLog.objects.get().detail


@override_settings(REPLAY_REJECTED_RETENTION_DAYS=None, REPLAY_REJECTED_MAX_BYTES=2000)
def test_the_byte_budget_counts_stored_bytes_of_text_and_binary():
    binary = rejected(1, text="", binary=b"\x00" * 1000)
    accented = rejected(2, text="é" * 500)  # 500 characters, 1000 bytes
    ascii_ = rejected(3, text="x" * 1)

    purge_rejected()

    assert kept() == {binary.pk, accented.pk}
    assert ascii_.pk not in kept()


@override_settings(REPLAY_REJECTED_RETENTION_DAYS=None, REPLAY_REJECTED_MAX_BYTES=1500)
def test_frames_received_at_the_same_moment_are_cut_by_arrival_order():
    at = timezone.now() - timezone.timedelta(days=1)
    first, second = rejected(1), rejected(1)
    RejectedFrame.objects.update(received_at=at)
    purge_rejected()
    assert kept() == {second.pk}
    assert first.pk not in kept()


@override_settings(REPLAY_REJECTED_RETENTION_DAYS=30, REPLAY_REJECTED_MAX_BYTES=1000)
def test_rejected_frames_of_a_conversation_under_legal_hold_are_kept_and_not_counted():
    Conversation.objects.create(uuid="held-1", legal_hold=True)
    held = [rejected(days, uuid="held-1") for days in (1, 400)]
    newest, other = rejected(2, uuid="someone"), rejected(3)

    output = purge_rejected()

    assert kept() == {held[0].pk, held[1].pk, newest.pk}
    assert other.pk not in kept()
    assert "kept 2 of conversations under legal hold" in output


@override_settings(REPLAY_REJECTED_RETENTION_DAYS=30, REPLAY_REJECTED_MAX_BYTES=1000)
def test_rejected_frames_dry_run_counts_what_would_go_and_deletes_nothing():
    frames = [rejected(days) for days in (1, 2, 90)]
    output = purge_rejected("--dry-run")
    assert "Rejected frames: would delete 1 received before" in output
    assert "1 oldest beyond the newest 1000 bytes (1000 bytes;" in output
    assert kept() == {frame.pk for frame in frames}
    assert not AuditLog.objects.exists()


@override_settings(REPLAY_REJECTED_RETENTION_DAYS=None, REPLAY_REJECTED_MAX_BYTES=0)
def test_without_rejected_frame_limits_every_one_is_kept():
    frame = rejected(3650)
    assert "every rejected frame is kept" in purge_rejected()
    assert kept() == {frame.pk}


@override_settings(REPLAY_RETENTION_DAYS=None)
def test_purge_conversations_also_purges_rejected_frames_with_their_defaults():
    old, recent = rejected(31), rejected(1)
    output = purge("--dry-run")
    assert "every conversation is kept" in output
    assert "Rejected frames: would delete 1 received before" in output
    assert kept() == {old.pk, recent.pk}

    output = purge()

    assert "Rejected frames: deleted 1 received before" in output
    assert "beyond the newest 1073741824 bytes" in output
    assert kept() == {recent.pk}


@override_settings(REPLAY_RETENTION_DAYS=30)
def test_purge_deletes_a_conversation_whose_page_loads_are_packed(packed_conversation):
    old, kept = packed_conversation(), packed_conversation()
    age(old, 31)

    output = purge()

    assert f"Deleted {old.uuid}" in output
    assert not Conversation.objects.filter(pk=old.pk).exists()
    assert not RecordingPack.objects.filter(conversation_id=old.pk).exists()
    assert RecordingPack.objects.filter(conversation=kept).count() >= 3


@override_settings(REPLAY_RETENTION_DAYS=30)
def test_a_shared_dictionary_goes_once_no_kept_pack_uses_it(packed_conversation):
    old, kept = packed_conversation(), packed_conversation()
    used, unused, newest = (storage.dictionary_create(b"x" * 64, sample_count=2) for _ in "abc")
    RecordingPack.objects.filter(conversation=old, base=None).update(dictionary=unused)
    RecordingPack.objects.filter(conversation=kept, base=None).update(dictionary=used)
    age(old, 31)

    output = purge()

    assert set(RecordingDictionary.objects.values_list("pk", flat=True)) == {used.pk, newest.pk}
    assert "Deleted 1 shared compression dictionary(ies) no pack uses." in output
    with pytest.raises(ProtectedError):
        used.delete()


def test_a_pack_that_is_another_packs_base_cannot_be_deleted_alone(packed_conversation):
    conversation = packed_conversation()
    root = RecordingPack.objects.get(conversation=conversation, base__isnull=True)
    with pytest.raises(RestrictedError):
        root.delete()


def test_a_hold_set_after_the_conversation_was_read_still_wins(staff_user):
    conversation = recorded_conversation()
    Conversation.objects.filter(pk=conversation.pk).update(legal_hold=True)
    with pytest.raises(LegalHoldError):
        conversation_remove(conversation=conversation, user=staff_user)
    assert Conversation.objects.filter(pk=conversation.pk).exists()
    assert not AuditLog.objects.exists()
