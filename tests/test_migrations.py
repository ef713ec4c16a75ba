"""Migrations that rewrite stored data: what was stored before reads the same after."""

from datetime import UTC, datetime

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from conversations import ingest
from conversations.models import Conversation
from conversations.packing import recordings_pack
from tests import factories as f

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
        migrate(None)


@pytest.mark.django_db(transaction=True)
def test_recordings_stored_before_the_clock_offset_was_kept_get_it_from_rows_and_packs():
    uuid, skew = f.new_uuid(), 42_000
    first = f.rrweb_events(start=f.T0, count=5)
    later = f.incremental_events(start=f.T0 + 5_000, count=5)
    second_page = f.rrweb_events(start=f.T0 + 9_000, count=3, href="https://shop.example/cart")

    def store(index: int, events: list, kind: str, delay: int) -> None:
        received = datetime.fromtimestamp((events[-1]["timestamp"] + skew + delay) / 1000, tz=UTC)
        frame = f.dumps(f.rrweb_frame(uuid, index, events, kind=kind))
        ingest.items_apply([ingest.item_from_text(frame, received_at=received)], source=None)

    store(0, first, "init", 700)
    store(1, later, "events", 250)  # the tightest sample, packed
    assert recordings_pack() == 1
    store(2, second_page, "init", 900)  # in a row
    try:
        migrate(AFTER)
        migrate(None)
        assert Conversation.objects.get(uuid=uuid).clock_offset_ms == skew + 250
    finally:
        migrate(None)
