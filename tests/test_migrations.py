"""Migrations that rewrite stored data: what was stored before reads the same after."""

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

BEFORE = ("conversations", "0012_journal_sha256")
AFTER = ("conversations", "0013_storage_compaction")

SUMMARY = {"conversation_uuid": "c-1", "closed": True, "participants": [{"name": "Ada"}]}
ORIGINAL = {"conversation_message_uuid": "m-1", "body": "Grüße \u2028 🫖", "message_epoch": 1}
ENVELOPE = {"type": "event", "event_type": "conversation closed", "n": [1, 2.5, None]}


def migrate(target: tuple[str, str]):
    executor = MigrationExecutor(connection)
    executor.migrate([target])
    return executor.loader.project_state([target]).apps


def migrate_to_latest() -> None:
    executor = MigrationExecutor(connection)
    executor.migrate(executor.loader.graph.leaf_nodes())


@pytest.mark.django_db(transaction=True)
def test_payloads_stored_as_json_columns_read_the_same_once_compressed():
    old = migrate(BEFORE)
    conversation = old.get_model("conversations", "Conversation").objects.create(
        uuid="c-1", summary=SUMMARY
    )
    old.get_model("conversations", "Message").objects.create(
        conversation_id=conversation.pk, message_uuid="m-1", original=ORIGINAL
    )
    old.get_model("conversations", "TimelineEvent").objects.create(
        conversation_id=conversation.pk, event_type="x", envelope=ENVELOPE, envelope_sha256="s"
    )
    try:
        new = migrate(AFTER)
        assert new.get_model("conversations", "Conversation").objects.get().summary == SUMMARY
        assert new.get_model("conversations", "Message").objects.get().original == ORIGINAL
        assert new.get_model("conversations", "TimelineEvent").objects.get().envelope == ENVELOPE
        with connection.cursor() as cursor:
            cursor.execute("SELECT envelope FROM conversations_timelineevent")
            assert bytes(cursor.fetchone()[0]).startswith(b"\x01")

        back = migrate(BEFORE)  # and back: JSON columns again
        assert back.get_model("conversations", "TimelineEvent").objects.get().envelope == ENVELOPE
    finally:
        migrate_to_latest()


@pytest.mark.django_db(transaction=True)
def test_the_list_page_migration_finds_first_pages_in_packs_and_past_views_in_the_audit_log(
    packed_conversation, staff_user
):
    from conversations.audit import audit_record
    from conversations.models import AuditLog, Conversation, ConversationView

    conversation = packed_conversation(pages=2)
    unwatched = packed_conversation(pages=2, site="other.example")
    audit_record(user=staff_user, action=AuditLog.Action.VIEW, conversation=conversation)
    audit_record(user=staff_user, action=AuditLog.Action.VIEW, conversation=conversation)
    audit_record(user=None, action=AuditLog.Action.VIEW, conversation=unwatched)
    try:
        migrate(("conversations", "0013_storage_compaction"))
        migrate(("conversations", "0014_list_page"))
        assert dict(Conversation.objects.values_list("uuid", "first_href")) == {
            conversation.uuid: "https://shop.example/p0",
            unwatched.uuid: "https://other.example/p0",
        }
        view = ConversationView.objects.get()
        assert (view.user, view.conversation_id) == (staff_user, conversation.pk)
        assert view.first_viewed_at < view.last_viewed_at
    finally:
        migrate_to_latest()
