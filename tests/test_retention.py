"""Retention: purge conversations past REPLAY_RETENTION_DAYS, never those under legal hold."""

import io

import pytest
from django.core.management import call_command
from django.db.models import RestrictedError
from django.test import override_settings
from django.utils import timezone

from conversations.models import (
    AuditLog,
    Conversation,
    Message,
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


@override_settings(REPLAY_RETENTION_DAYS=30)
def test_purge_deletes_a_conversation_whose_page_loads_are_packed(packed_conversation):
    old, kept = packed_conversation(), packed_conversation()
    age(old, 31)

    output = purge()

    assert f"Deleted {old.uuid}" in output
    assert not Conversation.objects.filter(pk=old.pk).exists()
    assert not RecordingPack.objects.filter(conversation_id=old.pk).exists()
    assert RecordingPack.objects.filter(conversation=kept).count() >= 3


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
