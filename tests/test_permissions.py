"""Roles: what a viewer, an exporter and an administrator may do, and what is audited."""

import pytest
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from django.contrib.auth.models import Group
from django.test import Client
from django.urls import reverse

from conversations.consumers import LiveConsumer
from conversations.models import AuditLog, Conversation, IngestKey, RejectedFrame
from conversations.permissions import ROLES, roles_ensure
from tests.test_exports import recorded_conversation

pytestmark = pytest.mark.django_db


def signed_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_the_migration_made_the_three_roles_as_permissions_lists():
    made = {
        group.name: sorted(
            f"{p.content_type.app_label}.{p.codename}" for p in group.permissions.all()
        )
        for group in Group.objects.prefetch_related("permissions__content_type")
    }
    assert made == {name: sorted(permissions) for name, permissions in ROLES.items()}
    roles_ensure()  # and bringing them up to date changes nothing
    assert Group.objects.count() == 3


def whole_conversation_urls(uuid: str) -> list[str]:
    return [f"/api/conversations/{uuid}/", f"/api/conversations/{uuid}/recording/"]


def test_a_viewer_replays_but_cannot_read_a_whole_conversation_or_download(role_user):
    viewer = signed_in(role_user("viewer"))
    uuid = recorded_conversation().uuid

    page = viewer.get(f"/conversations/{uuid}/")
    assert page.status_code == 200
    assert "Download" not in page.content.decode()
    # The replay page's own data stays open to viewers.
    assert viewer.get(f"/conversations/{uuid}/recording/index.json").status_code == 200
    assert viewer.get(f"/conversations/{uuid}/recording/events.json").status_code == 200
    assert viewer.get("/api/conversations/").status_code == 200
    for url in whole_conversation_urls(uuid):
        assert viewer.get(url).status_code == 403, url
    for fmt in ("archive", "html", "csv"):
        assert viewer.post(reverse("conversations:export", args=[uuid, fmt])).status_code == 403
    assert list(AuditLog.objects.values_list("action", "detail")) == [("view", "replay page")]


def test_an_exporter_reads_whole_conversations_and_each_read_is_audited(role_user):
    exporter = signed_in(role_user("exporter"))
    uuid = recorded_conversation().uuid
    for url in whole_conversation_urls(uuid):
        response = exporter.get(url)
        assert response.status_code == 200
        if response.streaming:
            b"".join(response.streaming_content)
    entries = AuditLog.objects.order_by("id")
    assert [(e.username, e.action, e.conversation_uuid, e.detail) for e in entries] == [
        ("exporter", "export", uuid, "API: conversation"),
        ("exporter", "export", uuid, "API: recording"),
    ]
    assert all(entry.at is not None for entry in entries)


def test_the_replay_page_offers_downloads_as_forms_with_a_csrf_token(role_user):
    exporter = Client(enforce_csrf_checks=True)
    exporter.force_login(role_user("exporter"))
    uuid = recorded_conversation().uuid
    page = exporter.get(f"/conversations/{uuid}/").content.decode()
    url = reverse("conversations:export", args=[uuid, "txt"])
    assert f'<form method="post" action="{url}">' in page
    assert 'name="csrfmiddlewaretoken"' in page

    assert exporter.get(url).status_code == 405  # a link or a prefetch exports nothing
    assert exporter.post(url).status_code == 403  # nor a form on another site
    token = exporter.cookies["csrftoken"].value
    assert exporter.post(url, {"csrfmiddlewaretoken": token}).status_code == 200
    assert AuditLog.objects.filter(action="export").count() == 1


@pytest.mark.parametrize(("role", "allowed"), [("viewer", False), ("administrator", True)])
def test_only_administrators_revoke_keys_and_each_revocation_is_audited(role_user, role, allowed):
    client = signed_in(role_user(role))
    key = IngestKey.objects.create(name="relay", key_hash="0" * 64, hint="rk_abcd")
    client.post(
        reverse("admin:conversations_ingestkey_changelist"),
        {"action": "revoke", "_selected_action": [key.pk]},
    )
    key.refresh_from_db()
    assert (key.revoked_at is not None) == allowed
    assert AuditLog.objects.filter(action="revoke_key").exists() == allowed


def test_reapplying_rejected_frames_is_for_administrators_and_audited(role_user):
    frame = RejectedFrame.objects.create(kind="invalid", reason="bad", size=2, text="{}")
    url = reverse("admin:conversations_rejectedframe_changelist")
    exporter = signed_in(role_user("exporter"))
    assert (
        exporter.post(url, {"action": "reapply", "_selected_action": [frame.pk]}).status_code == 403
    )
    assert not AuditLog.objects.filter(action="reapply").exists()

    administrator = signed_in(role_user("administrator"))
    administrator.post(url, {"action": "reapply", "_selected_action": [frame.pk]})
    assert AuditLog.objects.get(action="reapply").username == "administrator"


def test_only_administrators_set_legal_hold_and_it_is_audited(role_user):
    conversation = recorded_conversation()
    url = reverse("admin:conversations_conversation_change", args=[conversation.pk])
    management = {
        f"{prefix}-{field}": "0"
        for prefix in ("participants", "messages", "events")
        for field in ("TOTAL_FORMS", "INITIAL_FORMS")
    }
    exporter = signed_in(role_user("exporter"))
    assert 'name="legal_hold"' not in exporter.get(url).content.decode()
    exporter.post(url, {"legal_hold": "on", **management})
    assert not Conversation.objects.get(pk=conversation.pk).legal_hold

    administrator = signed_in(role_user("administrator"))
    response = administrator.post(url, {"legal_hold": "on", "tags": "", **management})
    assert response.status_code == 302
    assert Conversation.objects.get(pk=conversation.pk).legal_hold
    entry = AuditLog.objects.get(action="legal_hold")
    assert (entry.username, entry.conversation_uuid, entry.detail) == (
        "administrator",
        conversation.uuid,
        "set",
    )


def test_the_admin_offers_exports_as_forms_to_exporters_only(role_user):
    conversation = recorded_conversation()
    url = reverse("admin:conversations_conversation_change", args=[conversation.pk])
    export = reverse("conversations:export", args=[conversation.uuid, "html"])
    assert export not in signed_in(role_user("viewer")).get(url).content.decode()
    page = signed_in(role_user("exporter")).get(url).content.decode()
    assert f'<form method="post" action="{export}"' in page


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(("role", "allowed"), [("viewer", True), (None, False)])
async def test_the_live_socket_asks_the_same_permission_as_the_replay_page(
    django_user_model, role_user, role, allowed
):
    if role:
        user = await database_sync_to_async(role_user)(role)
    else:  # staff, but in no role
        user = await database_sync_to_async(django_user_model.objects.create_user)(
            username="intern", password="pw", is_staff=True
        )
    comm = WebsocketCommunicator(LiveConsumer.as_asgi(), "/ws/live/abc/")
    comm.scope["user"] = user
    comm.scope["url_route"] = {"kwargs": {"uuid": "abc"}}
    connected, _ = await comm.connect()
    assert connected == allowed
    await comm.disconnect()
