"""Export permission and the audit trail: who did what to which conversation, from where."""

import io

import pytest
from django.core.management import call_command
from django.urls import reverse

from conversations.audit import audit_record
from conversations.models import AuditLog
from tests.test_exports import recorded_conversation

pytestmark = pytest.mark.django_db


def export_url(uuid: str, fmt: str) -> str:
    return reverse("conversations:export", kwargs={"uuid": uuid, "fmt": fmt})


def test_staff_without_the_export_permission_gets_403(staff_client):
    conversation = recorded_conversation()
    response = staff_client.post(export_url(conversation.uuid, "archive"))
    assert response.status_code == 403
    assert not AuditLog.objects.exists()


def test_anonymous_visitor_is_sent_to_sign_in(client):
    conversation = recorded_conversation()
    response = client.post(export_url(conversation.uuid, "txt"))
    assert response.status_code == 302
    assert "/accounts/login/" in response["Location"]


@pytest.mark.parametrize(
    ("fmt", "content_type", "filename_end"),
    [
        ("archive", "application/json", ".json"),
        ("archive-zst", "application/zstd", ".json.zst"),
        ("html", "text/html; charset=utf-8", ".html"),
        ("txt", "text/plain; charset=utf-8", ".txt"),
        ("csv", "text/csv; charset=utf-8", ".csv"),
    ],
)
def test_exporter_downloads_each_format_as_a_file(
    client, exporter_user, fmt, content_type, filename_end
):
    conversation = recorded_conversation()
    client.force_login(exporter_user)
    response = client.post(export_url(conversation.uuid, fmt), HTTP_USER_AGENT="Firefox/140")

    assert response.status_code == 200
    assert response["Content-Type"] == content_type
    assert response["Content-Disposition"].endswith(f'{filename_end}"')
    assert b"".join(response)
    entry = AuditLog.objects.get()
    assert (entry.user, entry.action, entry.conversation_uuid) == (
        exporter_user,
        "export",
        conversation.uuid,
    )
    assert entry.detail == f"format {fmt}"
    assert (entry.ip, entry.user_agent) == ("127.0.0.1", "Firefox/140")


def test_print_page_is_shown_in_the_browser_with_nothing_allowed_to_run(client, exporter_user):
    conversation = recorded_conversation()
    client.force_login(exporter_user)
    response = client.post(export_url(conversation.uuid, "print"))
    assert response.status_code == 200
    assert "Content-Disposition" not in response
    assert "default-src 'none'" in response["Content-Security-Policy"]
    assert b"Yes, 12 left." in b"".join(response)


def test_unknown_format_and_unknown_conversation_are_404(client, exporter_user):
    conversation = recorded_conversation()
    client.force_login(exporter_user)
    assert client.post(export_url(conversation.uuid, "pdf")).status_code == 404
    assert client.post(export_url("no-such-conversation", "txt")).status_code == 404


def test_replay_view_recorded_by_audit_record_keeps_who_and_where(rf, staff_user):
    conversation = recorded_conversation()
    request = rf.get("/", HTTP_USER_AGENT="Safari", REMOTE_ADDR="203.0.113.9")
    audit_record(user=staff_user, action="view", conversation=conversation, request=request)
    entry = AuditLog.objects.get()
    assert (entry.username, entry.action, entry.ip, entry.user_agent) == (
        "agent",
        "view",
        "203.0.113.9",
        "Safari",
    )


def test_audit_record_refuses_an_unknown_action(staff_user):
    with pytest.raises(ValueError, match="unknown audit action"):
        audit_record(user=staff_user, action="peek")


def test_audit_records_cannot_be_changed_or_deleted(staff_user):
    entry = audit_record(user=staff_user, action="view", conversation="abc")
    entry.detail = "nothing happened"
    with pytest.raises(PermissionError):
        entry.save()
    with pytest.raises(PermissionError):
        entry.delete()
    assert AuditLog.objects.get().detail == ""


def test_audit_record_outlives_the_deleted_user(staff_user):
    audit_record(user=staff_user, action="view", conversation="abc")
    staff_user.delete()
    entry = AuditLog.objects.get()
    assert (entry.user, entry.username) == (None, "agent")


def test_commands_record_exports_and_imports(tmp_path):
    conversation = recorded_conversation()
    out = tmp_path / "a.zip"
    call_command("export_conversations", "--out", str(out), stdout=io.StringIO())
    assert list(AuditLog.objects.values_list("action", "conversation_uuid", "user")) == [
        ("export", conversation.uuid, None)
    ]
    from conversations.retention import conversation_delete

    conversation_delete(conversation=conversation)
    call_command("import_conversations", str(out), stdout=io.StringIO())
    assert (
        AuditLog.objects.filter(action="import", conversation_uuid=conversation.uuid).count() == 1
    )
