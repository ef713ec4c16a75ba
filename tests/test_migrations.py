"""Migrations that rewrite stored data: what was stored before reads the same after."""

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

BEFORE = ("conversations", "0012_journal_sha256")
AFTER = ("conversations", "0013_storage_compaction")

SUMMARY = {"conversation_uuid": "c-1", "closed": True, "participants": [{"name": "Ada"}]}
ORIGINAL = {"conversation_message_uuid": "m-1", "body": "Grüße \u2028 🫖", "message_epoch": 1}
ENVELOPE = {"type": "event", "event_type": "conversation closed", "n": [1, 2.5, None]}


def migrate(target: tuple[str, str] | None):
    """Migrate to `target` (None: the latest) and return the models as they are there."""
    executor = MigrationExecutor(connection)
    targets = [target] if target else executor.loader.graph.leaf_nodes("conversations")
    executor.migrate(targets)
    return executor.loader.project_state(targets).apps


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
        new = migrate(AFTER)  # read as of AFTER: later migrations may add columns
        assert new.get_model("conversations", "Conversation").objects.get().summary == SUMMARY
        assert new.get_model("conversations", "Message").objects.get().original == ORIGINAL
        assert new.get_model("conversations", "TimelineEvent").objects.get().envelope == ENVELOPE
        with connection.cursor() as cursor:
            cursor.execute("SELECT envelope FROM conversations_timelineevent")
            assert bytes(cursor.fetchone()[0]).startswith(b"\x01")

        back = migrate(BEFORE)  # and back: JSON columns again
        assert back.get_model("conversations", "TimelineEvent").objects.get().envelope == ENVELOPE
    finally:
        migrate(None)
