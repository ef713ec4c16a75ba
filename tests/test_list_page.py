"""The list page's columns, filters, saved filters and watched marks, on either database."""

import re

import pytest
from django.urls import reverse

from conversations import exports, imports, ingest
from conversations.models import Conversation, ConversationView, SavedFilter
from conversations.retention import conversation_delete
from tests import factories as f

pytestmark = pytest.mark.django_db


def apply(*frames: dict) -> None:
    ingest.items_apply([ingest.item_from_text(f.dumps(frame)) for frame in frames], source=None)


def chat(*, customer_says: str = "Do you ship to Norway?") -> str:
    """A conversation where the agent speaks first and the customer (who joined first) second."""
    uuid = f.new_uuid()
    apply(
        f.new_conversation(
            uuid,
            participants=[
                f.participant("Ada Shopper", joined_dts="2026-11-25T10:00:00Z"),
                f.participant("Bo Agent", joined_dts="2026-11-25T10:00:05Z"),
            ],
        ),
        f.message(uuid, "Hi! Ask away.", author="Bo Agent", epoch=f.T0 + 100),
        f.message(uuid, customer_says, author="Ada Shopper", epoch=f.T0 + 200),
        f.message(uuid, "And to Iceland?", author="Ada Shopper", epoch=f.T0 + 300),
    )
    return uuid


def silent() -> str:
    """A conversation with a recording and no chat message."""
    uuid = f.new_uuid()
    apply(
        f.new_conversation(uuid, participants=[f.participant("Cy Browser")]),
        f.rrweb_frame(uuid, 0, f.rrweb_events(href="https://shop.example/kettles"), kind="init"),
    )
    return uuid


def _text(html: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


def rows(response, cell: str = "") -> dict[str, str]:
    """Each listed conversation's uuid and the text of its row (or of one cell, by class)."""
    html = response.content.decode()
    found = {}
    for row in re.findall(r"<tr>(.*?)</tr>", html, flags=re.S):
        link = re.search(r'href="/conversations/([^/"]+)/"', row)
        if link:
            if cell:
                row = re.search(rf'<td class="{cell}">(.*?)</td>', row, flags=re.S).group(1)
            found[link.group(1)] = _text(row)
    return found


# Columns --------------------------------------------------------------------------------------


def test_the_customers_first_message_is_shown_even_when_the_agent_spoke_first(staff_client):
    uuid = chat()
    row = rows(staff_client.get("/"), "first-message")[uuid]
    assert "Do you ship to Norway?" in row
    assert "Hi! Ask away." not in row
    assert "And to Iceland?" not in row


def test_the_customer_is_the_first_to_join_whatever_order_participants_were_sent_in(
    staff_client,
):
    uuid = f.new_uuid()
    apply(
        f.new_conversation(
            uuid,
            participants=[
                f.participant("Bo Agent", joined_dts="2026-11-25T10:00:05Z"),
                f.participant("Ada Shopper", joined_dts="2026-11-25T10:00:00Z"),
                f.participant("Bot", joined_dts=None),
            ],
        ),
        f.message(uuid, "Bot here.", author="Bot", epoch=f.T0 + 50),
        f.message(uuid, "Agent here.", author="Bo Agent", epoch=f.T0 + 100),
        f.message(uuid, "Customer here.", author="Ada Shopper", epoch=f.T0 + 200),
    )
    row = rows(staff_client.get("/"), "first-message")[uuid]
    assert "Customer here." in row and "Agent here." not in row and "Bot here." not in row


def test_a_long_first_message_is_cut_short(staff_client):
    uuid = chat(customer_says="kettle " * 100)
    row = rows(staff_client.get("/"), "first-message")[uuid]
    assert "kettle " * 10 in row
    assert "kettle " * 20 not in row
    assert "…" in row


def test_the_page_column_shows_where_the_recording_began(staff_client):
    uuid = silent()
    assert rows(staff_client.get("/"), "page-url")[uuid] == " shop.example/kettles "


@pytest.mark.parametrize("one_group", [True, False], ids=["one group", "frame by frame"])
def test_the_first_page_is_the_lowest_batch_even_when_batches_arrive_out_of_order(one_group):
    uuid = f.new_uuid()
    later = f.rrweb_frame(uuid, 4, f.rrweb_events(href="https://shop.example/cart"), kind="init")
    first = f.rrweb_frame(uuid, 0, f.rrweb_events(href="https://shop.example/"), kind="init")
    middle = f.rrweb_frame(uuid, 2, f.incremental_events(start=f.T0 + 1000))
    if one_group:
        apply(f.new_conversation(uuid), later, middle, first)
    else:
        for frame in (f.new_conversation(uuid), later, middle, first):
            apply(frame)
    assert Conversation.objects.get(uuid=uuid).first_href == "https://shop.example/"


def test_the_first_page_stays_once_the_recording_is_packed(staff_client, packed_conversation):
    conversation = packed_conversation(pages=3)
    row = rows(staff_client.get("/"), "page-url")[conversation.uuid]
    assert row == " shop.example/p0 "


def test_an_imported_conversation_has_its_first_page():
    uuid = silent()
    archive = exports.archive_bytes(Conversation.objects.get(uuid=uuid))
    conversation_delete(conversation=Conversation.objects.get(uuid=uuid))
    assert imports.archive_import(archive).status == imports.CREATED
    assert Conversation.objects.get(uuid=uuid).first_href == "https://shop.example/kettles"


def test_the_list_takes_the_same_number_of_queries_for_one_row_or_many(
    staff_client, staff_user, django_assert_max_num_queries, django_assert_num_queries
):
    chat()
    SavedFilter.objects.create(user=staff_user, name="Open", query="status=open")
    with django_assert_max_num_queries(8) as one:
        staff_client.get("/")
    for _ in range(5):
        chat()
        silent()
    with django_assert_num_queries(len(one.captured_queries)):
        response = staff_client.get("/")
    assert len(rows(response)) == 11


# Filters --------------------------------------------------------------------------------------


@pytest.mark.parametrize("value, listed", [("1", {"chat"}), ("0", {"silent"}), ("", None)])
def test_the_messages_filter_keeps_conversations_with_or_without_chat(staff_client, value, listed):
    made = {"chat": chat(), "silent": silent()}
    shown = set(rows(staff_client.get("/", {"messages": value})))
    expected = {made[name] for name in listed} if listed else set(made.values())
    assert shown == expected


# Watched --------------------------------------------------------------------------------------


def test_a_replayed_conversation_shows_as_watched_for_whoever_replayed_it(
    client, staff_client, role_user
):
    watched, other = chat(), chat()
    assert staff_client.get(f"/conversations/{watched}/").status_code == 200
    listed = rows(staff_client.get("/"))
    assert "Watched" in listed[watched]
    assert "Watched" not in listed[other]

    client.force_login(role_user("viewer", "someone-else"))
    assert "Watched" not in rows(client.get("/"))[watched]


def test_the_unwatched_filter_hides_what_the_user_replayed(staff_client):
    watched, other = chat(), silent()
    staff_client.get(f"/conversations/{watched}/")
    assert set(rows(staff_client.get("/", {"unwatched": "1"}))) == {other}
    assert set(rows(staff_client.get("/"))) == {watched, other}


def test_replaying_again_keeps_the_first_view_and_moves_the_last(staff_client, staff_user):
    uuid = chat()
    staff_client.get(f"/conversations/{uuid}/")
    first = ConversationView.objects.get()
    staff_client.get(f"/conversations/{uuid}/")
    again = ConversationView.objects.get()
    assert again.first_viewed_at == first.first_viewed_at
    assert again.last_viewed_at > first.last_viewed_at
    assert again.user == staff_user


# Saved filters --------------------------------------------------------------------------------


def save(client, name: str, query: str):
    return client.post(reverse("conversations:filter-save"), {"name": name, "query": query})


def test_a_saved_filter_is_listed_and_applies_its_query(staff_client, staff_user):
    response = save(staff_client, "Open chats", "status=open&messages=1&cursor=abc")
    assert response.status_code == 302
    assert response["Location"] == "/?messages=1&status=open"
    page = staff_client.get("/").content.decode()
    assert 'href="/?messages=1&amp;status=open"' in page
    assert "Open chats" in page
    saved = SavedFilter.objects.get(user=staff_user)
    assert (saved.name, saved.query) == ("Open chats", "messages=1&status=open")


def test_saving_under_a_used_name_replaces_that_filter(staff_client, staff_user):
    save(staff_client, "Mine", "status=open")
    save(staff_client, "Mine", "status=closed")
    assert list(SavedFilter.objects.values_list("name", "query")) == [("Mine", "status=closed")]


def test_a_filter_needs_a_name(staff_client):
    response = save(staff_client, "   ", "status=open")
    assert response.status_code == 400
    assert "Give the filter a name." in response.content.decode()
    assert not SavedFilter.objects.exists()


def test_saved_filters_are_each_staff_members_own(client, staff_client, role_user):
    save(staff_client, "Ada's", "status=open")
    saved = SavedFilter.objects.get()
    client.force_login(role_user("viewer", "someone-else"))
    assert "Ada&#x27;s" not in client.get("/").content.decode()
    delete = reverse("conversations:filter-delete", kwargs={"pk": saved.pk})
    assert client.post(delete).status_code == 404
    assert SavedFilter.objects.filter(pk=saved.pk).exists()


def test_deleting_a_saved_filter_removes_it_and_keeps_the_list_as_it_was(staff_client):
    save(staff_client, "Closed", "status=closed")
    saved = SavedFilter.objects.get()
    response = staff_client.post(
        reverse("conversations:filter-delete", kwargs={"pk": saved.pk}), {"query": "medium=sms"}
    )
    assert response.status_code == 302 and response["Location"] == "/?medium=sms"
    assert not SavedFilter.objects.exists()
    assert "Closed</a>" not in staff_client.get("/").content.decode()


def test_saving_and_deleting_need_a_post_with_a_csrf_token(staff_user):
    from django.test import Client

    client = Client(enforce_csrf_checks=True)
    client.force_login(staff_user)
    assert client.get(reverse("conversations:filter-save")).status_code == 405
    assert save(client, "Mine", "status=open").status_code == 403
    assert not SavedFilter.objects.exists()


def test_a_watched_conversation_and_a_user_with_saved_filters_can_still_be_deleted(
    staff_client, staff_user
):
    uuid = chat()
    staff_client.get(f"/conversations/{uuid}/")
    save(staff_client, "Mine", "status=open")
    conversation_delete(conversation=Conversation.objects.get(uuid=uuid))
    assert not ConversationView.objects.exists()
    staff_client.get(f"/conversations/{chat()}/")
    staff_user.delete()
    assert not ConversationView.objects.exists() and not SavedFilter.objects.exists()


def test_a_filter_too_long_to_keep_is_refused_and_a_name_is_shown_as_text(staff_client):
    response = save(staff_client, "Long", "q=" + "x" * 2_100)
    assert response.status_code == 400
    assert "These filters are too long to save." in response.content.decode()
    save(staff_client, "<b>mine</b>", "status=open")
    page = staff_client.get("/").content.decode()
    assert "&lt;b&gt;mine&lt;/b&gt;" in page and "<b>mine</b>" not in page
