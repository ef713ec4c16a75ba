"""Notes pinned to a moment and tags: who may write them, what is refused, search and filters."""

import json

import pytest
from django.test import Client
from django.urls import reverse

from conversations.models import AuditLog, Conversation, ConversationNote
from tests import factories as f

pytestmark = pytest.mark.django_db


def signed_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def post_json(client: Client, url: str, data: dict):
    return client.post(url, json.dumps(data), content_type="application/json")


def notes_url(uuid: str) -> str:
    return reverse("conversations:note-create", kwargs={"uuid": uuid})


def tags_url(uuid: str) -> str:
    return reverse("conversations:tags", kwargs={"uuid": uuid})


def stored(uuid: str | None = None) -> Conversation:
    return f.stored_conversation(uuid or f.new_uuid())


def test_a_viewer_can_neither_add_notes_nor_change_tags(role_user):
    conversation = stored()
    viewer = signed_in(role_user("viewer"))

    note = post_json(viewer, notes_url(conversation.uuid), {"offset_ms": 1000, "text": "hm"})
    tag = post_json(viewer, tags_url(conversation.uuid), {"add": "refund"})

    assert (note.status_code, tag.status_code) == (403, 403)
    conversation.refresh_from_db()
    assert (conversation.notes.count(), conversation.tags) == (0, "")
    # And the page offers a viewer no form to try with.
    page = viewer.get(reverse("conversations:replay", kwargs={"uuid": conversation.uuid}))
    assert b'id="note-form"' not in page.content and b'id="tag-form"' not in page.content


def test_an_anonymous_request_is_asked_to_sign_in(client):
    conversation = stored()
    response = post_json(client, notes_url(conversation.uuid), {"offset_ms": 0, "text": "x"})
    assert response.status_code == 401


@pytest.mark.parametrize("role", ["exporter", "administrator"])
def test_exporters_and_administrators_add_notes_and_each_one_is_audited(role_user, role):
    conversation = stored()
    user = role_user(role)

    response = post_json(
        signed_in(user), notes_url(conversation.uuid), {"offset_ms": 83_500, "text": " Refund? "}
    )

    assert response.status_code == 201
    assert response.json() | {"id": 0, "created_dts": ""} == {
        "id": 0,
        "offset_ms": 83_500,
        "text": "Refund?",
        "author": role,
        "created_dts": "",
        "can_delete": True,
    }
    note = ConversationNote.objects.get(conversation=conversation)
    assert (note.author, note.offset_ms) == (user, 83_500)
    audit = AuditLog.objects.get(action=AuditLog.Action.NOTE_ADD)
    assert (audit.username, audit.conversation_uuid) == (role, conversation.uuid)
    assert "Refund?" in audit.detail


def test_a_card_number_in_a_note_is_masked_before_it_is_stored_and_counted(role_user):
    conversation = stored()
    text = "Customer read out 4111 1111 1111 1111, order 1234567890123 (not a card)"

    response = post_json(
        signed_in(role_user("exporter")),
        notes_url(conversation.uuid),
        {"offset_ms": 0, "text": text},
    )

    masked = "Customer read out **** **** **** 1111, order 1234567890123 (not a card)"
    assert response.json()["text"] == masked
    assert ConversationNote.objects.get(conversation=conversation).text == masked
    assert "4111 1111 1111 1111" not in AuditLog.objects.get(action=AuditLog.Action.NOTE_ADD).detail
    conversation.refresh_from_db()
    assert conversation.scrubbed_total == 1


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ({"offset_ms": 1000, "text": "   "}, "cannot be empty"),
        ({"offset_ms": -1, "text": "x"}, "from 0"),
        ({"offset_ms": "12", "text": "x"}, "number of milliseconds"),
        ({"offset_ms": True, "text": "x"}, "number of milliseconds"),
        ({"offset_ms": 1000, "text": "x" * 2001}, "at most 2000"),
        ({"offset_ms": 1000}, "must be a string"),
    ],
)
def test_a_note_that_cannot_be_stored_is_refused_with_the_reason(role_user, body, reason):
    conversation = stored()
    response = post_json(signed_in(role_user("exporter")), notes_url(conversation.uuid), body)
    assert response.status_code == 400
    assert reason in response.json()["error"]
    assert not ConversationNote.objects.exists()


def test_a_note_is_deleted_by_its_author_or_an_administrator_only(role_user):
    conversation = stored()
    author, other = role_user("exporter"), role_user("exporter", "other-exporter")
    viewer, admin = role_user("viewer"), role_user("administrator")
    made = [
        post_json(signed_in(author), notes_url(conversation.uuid), {"offset_ms": n, "text": "x"})
        for n in (1000, 2000)
    ]
    first, second = (f"{notes_url(conversation.uuid)}{r.json()['id']}/" for r in made)

    assert signed_in(other).delete(first).status_code == 403
    assert signed_in(viewer).delete(first).status_code == 403
    assert signed_in(author).delete(first).status_code == 200
    assert signed_in(admin).delete(second).status_code == 200

    assert not ConversationNote.objects.exists()
    deletions = AuditLog.objects.filter(action=AuditLog.Action.NOTE_DELETE)
    assert sorted(deletions.values_list("username", flat=True)) == ["administrator", "exporter"]


def test_the_replay_page_lets_only_the_author_or_an_administrator_delete(role_user):
    conversation = stored()
    author, other, admin = (
        role_user("exporter"),
        role_user("exporter", "other"),
        role_user("administrator"),
    )
    post_json(signed_in(author), notes_url(conversation.uuid), {"offset_ms": 5, "text": "x"})
    page = reverse("conversations:replay", kwargs={"uuid": conversation.uuid})

    def offered(user) -> bool:
        [note] = signed_in(user).get(page).context["config"]["notes"]
        return note["can_delete"]

    assert (offered(author), offered(other), offered(admin)) == (True, False, True)


def test_tags_are_added_once_in_lower_case_removed_in_any_case_and_audited(role_user):
    conversation = stored()
    exporter = signed_in(role_user("exporter"))
    url = tags_url(conversation.uuid)

    assert post_json(exporter, url, {"add": "Refund"}).json() == {"tags": ["refund"]}
    assert post_json(exporter, url, {"add": " refund "}).json() == {"tags": ["refund"]}
    assert post_json(exporter, url, {"add": "VIP  customer"}).json() == {
        "tags": ["refund", "vip customer"]
    }
    assert post_json(exporter, url, {"remove": "REFUND"}).json() == {"tags": ["vip customer"]}

    conversation.refresh_from_db()
    assert conversation.tags == "vip customer"
    assert AuditLog.objects.filter(action=AuditLog.Action.TAGS).count() == 4


@pytest.mark.parametrize("tag", ["a,b", "", "x" * 41, "bell\x07"])
def test_a_tag_that_cannot_be_stored_is_refused(role_user, tag):
    conversation = stored()
    exporter = signed_in(role_user("exporter"))
    response = post_json(exporter, tags_url(conversation.uuid), {"add": tag})
    assert response.status_code == 400
    conversation.refresh_from_db()
    assert conversation.tags == ""


def test_the_list_finds_conversations_by_the_text_of_their_notes(staff_client):
    noted, other = stored(), stored()
    ConversationNote.objects.create(
        conversation=noted, author_name="lee", offset_ms=0, text="Customer wants a refund quickly"
    )

    body = staff_client.get("/?q=refund+quickly").content.decode()

    assert noted.uuid in body and other.uuid not in body
    assert other.uuid not in staff_client.get("/?q=refund+slowly").content.decode()


@pytest.mark.parametrize(
    ("tags", "shown"),
    [
        ("refund", True),
        ("vip, refund", True),
        ("VIP,Refund , late", True),
        ("refunded", False),
        ("no refund", False),
        ("", False),
    ],
)
def test_the_list_filters_by_one_whole_tag(staff_client, tags, shown):
    conversation = stored()
    conversation.tags = tags
    conversation.save(update_fields=["tags"])

    body = staff_client.get("/?tag=Refund").content.decode()

    assert (conversation.uuid in body) is shown


def test_the_list_filters_by_a_tag_with_characters_that_mean_something_in_a_pattern(
    staff_client,
):
    exact, lookalike = stored(), stored()
    Conversation.objects.filter(pk=exact.pk).update(tags="a.b (c)+")
    Conversation.objects.filter(pk=lookalike.pk).update(tags="axb (c)")

    body = staff_client.get("/", {"tag": "a.b (c)+"}).content.decode()

    assert exact.uuid in body and lookalike.uuid not in body


def test_the_list_shows_each_conversations_tags_as_links_to_its_filter(staff_client):
    conversation = stored()
    Conversation.objects.filter(pk=conversation.pk).update(tags="refund, vip")
    body = staff_client.get("/").content.decode()
    assert 'href="?tag=refund"' in body and 'href="?tag=vip"' in body


def test_the_api_gives_a_conversations_tags_and_notes_in_recording_order(exporter_client):
    conversation = stored()
    Conversation.objects.filter(pk=conversation.pk).update(tags="refund, vip")
    for offset, text in [(9_000, "later"), (1_000, "first")]:
        ConversationNote.objects.create(
            conversation=conversation, author_name="lee", offset_ms=offset, text=text
        )

    data = exporter_client.get(f"/api/conversations/{conversation.uuid}/").json()

    assert data["tags"] == ["refund", "vip"]
    assert [(n["offset_ms"], n["text"], n["author"]) for n in data["notes"]] == [
        (1_000, "first", "lee"),
        (9_000, "later", "lee"),
    ]
