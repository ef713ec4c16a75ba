"""The admin: conversations with their parts, keys shown once, re-applying rejected frames."""

import io
import zipfile

import pytest
from django.urls import reverse

from conversations.models import (
    AuditLog,
    Conversation,
    IngestKey,
    Message,
    RecordingPack,
    RejectedFrame,
)
from tests import factories as f
from tests.test_exports import recorded_conversation

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_client(client, django_user_model):
    user = django_user_model.objects.create_superuser("boss", "boss@example.com", "pw-123456789")
    client.force_login(user)
    return client


def test_conversation_page_shows_participants_messages_edits_events_and_export_links(
    admin_client,
):
    conversation = recorded_conversation(body="Hello <b>there</b>")
    response = admin_client.get(
        reverse("admin:conversations_conversation_change", args=[conversation.pk])
    )
    page = response.content.decode()
    assert response.status_code == 200
    assert "Bo Agent" in page
    assert "Hello &lt;b&gt;there&lt;/b&gt; (EU plug)" in page
    assert "typing" in page
    assert reverse("conversations:export", args=[conversation.uuid, "html"]) in page


def test_legal_hold_and_tags_are_editable(admin_client):
    conversation = recorded_conversation()
    url = reverse("admin:conversations_conversation_change", args=[conversation.pk])
    response = admin_client.post(
        url, {"legal_hold": "on", "tags": "dispute"} | _inline_management()
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    conversation.refresh_from_db()
    assert (conversation.legal_hold, conversation.tags) == (True, "dispute")


def _inline_management() -> dict:
    data = {}
    for prefix in ("participants", "messages", "events"):
        data |= {f"{prefix}-TOTAL_FORMS": "0", f"{prefix}-INITIAL_FORMS": "0"}
    return data


def test_message_page_shows_the_raw_message_read_only(admin_client):
    conversation = recorded_conversation()
    message = conversation.messages.first()
    url = reverse("admin:conversations_message_change", args=[message.pk])
    page = admin_client.get(url).content.decode()
    assert "conversation_message_uuid" in page
    assert admin_client.post(url, {}).status_code == 403


def test_new_ingest_key_is_shown_once_and_revoke_action_revokes(admin_client):
    response = admin_client.post(
        reverse("admin:conversations_ingestkey_add"), {"name": "relay"}, follow=True
    )
    page = response.content.decode()
    key = IngestKey.objects.get(name="relay")
    assert key.hint in page and "copy it now" in page
    again = admin_client.get(reverse("admin:conversations_ingestkey_change", args=[key.pk]))
    assert "copy it now" not in again.content.decode()

    admin_client.post(
        reverse("admin:conversations_ingestkey_changelist"),
        {"action": "revoke", "_selected_action": [key.pk]},
    )
    key.refresh_from_db()
    assert key.revoked_at is not None


def test_reapply_stores_frames_that_now_pass_and_keeps_the_rest_with_the_new_reason(
    admin_client,
):
    uuid = f.new_uuid()
    good = RejectedFrame.objects.create(
        kind="error",
        reason="server error (since fixed)",
        text=f.dumps(f.message(uuid, "Hi")),
        size=10,
        conversation_uuid=uuid,
    )
    bad = RejectedFrame.objects.create(kind="error", reason="old reason", text="{not json", size=9)
    response = admin_client.post(
        reverse("admin:conversations_rejectedframe_changelist"),
        {"action": "reapply", "_selected_action": [good.pk, bad.pk]},
        follow=True,
    )
    page = response.content.decode()
    assert f"Now stored, removed from rejected: #{good.pk}" in page
    assert f"Still rejected #{bad.pk}" in page
    assert Message.objects.get(conversation__uuid=uuid).body == "Hi"
    remaining = RejectedFrame.objects.get()
    assert remaining.text == "{not json"
    assert remaining.kind == "invalid" and remaining.reason != "old reason"


def test_rejected_frame_page_shows_the_raw_frame(admin_client):
    frame = RejectedFrame.objects.create(
        kind="invalid", reason="bad", text='{"type": "<script>"}', size=20
    )
    page = admin_client.get(
        reverse("admin:conversations_rejectedframe_change", args=[frame.pk])
    ).content.decode()
    assert "{&quot;type&quot;: &quot;&lt;script&gt;&quot;}" in page


def test_export_action_streams_a_zip_and_is_audited(admin_client):
    conversations = [recorded_conversation(), recorded_conversation()]
    response = admin_client.post(
        reverse("admin:conversations_conversation_changelist"),
        {"action": "export_archives", "_selected_action": [c.pk for c in conversations]},
    )
    assert response["Content-Type"] == "application/zip"
    with zipfile.ZipFile(io.BytesIO(b"".join(response))) as bundle:
        assert len(bundle.namelist()) == 2
    assert AuditLog.objects.filter(action="export", username="boss").count() == 2


def test_summary_csv_action_downloads_one_row_a_conversation(admin_client):
    conversations = [recorded_conversation(), recorded_conversation()]
    response = admin_client.post(
        reverse("admin:conversations_conversation_changelist"),
        {"action": "export_summary_csv", "_selected_action": [c.pk for c in conversations]},
    )
    assert b"".join(response).decode().count("\n") == 3


def test_audit_log_is_read_only_even_for_superusers(admin_client):
    AuditLog.objects.create(action="view", conversation_uuid="abc", username="someone")
    entry = AuditLog.objects.get()
    assert admin_client.get(reverse("admin:conversations_auditlog_changelist")).status_code == 200
    assert admin_client.get(reverse("admin:conversations_auditlog_add")).status_code == 403
    change = reverse("admin:conversations_auditlog_change", args=[entry.pk])
    assert admin_client.post(change, {"detail": "x"}).status_code == 403
    delete = reverse("admin:conversations_auditlog_delete", args=[entry.pk])
    assert admin_client.post(delete, {"post": "yes"}).status_code == 403
    assert AuditLog.objects.get().detail == ""


def test_conversations_cannot_be_added_by_hand(admin_client):
    assert admin_client.get(reverse("admin:conversations_conversation_add")).status_code == 403
    assert Conversation.objects.count() == 0


def test_deleting_a_packed_conversation_in_the_admin_removes_it_and_is_audited(
    admin_client, packed_conversation
):
    conversation = packed_conversation()
    url = reverse("admin:conversations_conversation_delete", args=[conversation.pk])
    confirm = admin_client.get(url)
    assert confirm.status_code == 200
    assert "Are you sure" in confirm.content.decode()

    response = admin_client.post(url, {"post": "yes"})

    assert response.status_code == 302
    assert not Conversation.objects.filter(pk=conversation.pk).exists()
    assert not RecordingPack.objects.filter(conversation_id=conversation.pk).exists()
    entry = AuditLog.objects.get(action="delete")
    assert (entry.conversation_uuid, entry.username) == (conversation.uuid, "boss")


def test_the_admin_refuses_to_delete_a_conversation_under_legal_hold(
    admin_client, packed_conversation
):
    held, free = packed_conversation(), recorded_conversation()
    Conversation.objects.filter(pk=held.pk).update(legal_hold=True)
    url = reverse("admin:conversations_conversation_delete", args=[held.pk])
    assert "legal hold" in admin_client.get(url).content.decode()

    admin_client.post(url, {"post": "yes"})
    admin_client.post(
        reverse("admin:conversations_conversation_changelist"),
        {"action": "delete_selected", "_selected_action": [held.pk, free.pk], "post": "yes"},
    )

    assert Conversation.objects.filter(pk=held.pk).exists()
    assert Conversation.objects.filter(pk=free.pk).exists()
    assert not AuditLog.objects.filter(action="delete").exists()
