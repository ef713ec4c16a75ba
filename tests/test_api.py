"""The staff read API."""

import json

import pytest

from conversations import ingest
from tests import factories as f

pytestmark = pytest.mark.django_db


def apply(*frames: dict) -> None:
    ingest.items_apply([ingest.item_from_text(f.dumps(fr)) for fr in frames], source=None)


def test_anonymous_visitor_gets_401(client):
    assert client.get("/api/conversations/").status_code == 401
    assert client.get("/api/conversations/x/recording/").status_code == 401


def test_staff_without_view_permission_gets_403(client, django_user_model):
    user = django_user_model.objects.create_user(username="intern", password="pw", is_staff=True)
    client.force_login(user)
    assert client.get("/api/conversations/").status_code == 403


def test_unknown_conversation_is_404(exporter_client):
    assert exporter_client.get("/api/conversations/nope/").status_code == 404
    assert exporter_client.get("/api/conversations/nope/recording/").status_code == 404


def test_list_is_newest_first_and_pages_by_cursor(staff_client, django_assert_max_num_queries):
    uuids = [f.new_uuid() for _ in range(5)]
    for uuid in uuids:
        apply(f.new_conversation(uuid))
    with django_assert_max_num_queries(5):  # session, user, 2 x permissions, page
        first = staff_client.get("/api/conversations/?limit=2").json()
    assert [c["conversation_uuid"] for c in first["results"]] == uuids[::-1][:2]
    second = staff_client.get(first["next"]).json()
    assert [c["conversation_uuid"] for c in second["results"]] == uuids[::-1][2:4]
    third = staff_client.get(second["next"]).json()
    assert [c["conversation_uuid"] for c in third["results"]] == uuids[::-1][4:]
    assert third["next"] is None


def test_detail_has_participants_messages_with_edits_and_events_by_protocol_names(exporter_client):
    uuid = f.new_uuid()
    message = f.message(uuid, "Two kettles please", message_uuid="m-1")
    edit = {**message["message"], "body": "Three kettles please"}
    apply(
        f.new_conversation(uuid),
        message,
        f.event("updated message", uuid, event_updated_message=edit),
        f.event(
            "add coupon", uuid, event_add_coupon={"agent_name": "Bob", "coupon_code": "KETTLE"}
        ),
    )
    data = exporter_client.get(f"/api/conversations/{uuid}/").json()
    assert data["conversation_uuid"] == uuid
    assert data["merchant_id"] == "DEMO"
    assert [p["conversation_participant_name"] for p in data["participants"]] == ["Ada Shopper"]
    (sent,) = data["messages"]
    assert sent["conversation_message_uuid"] == "m-1"
    assert sent["body"] == "Two kettles please"
    assert sent["current_body"] == "Three kettles please"
    assert [e["body"] for e in sent["edits"]] == ["Three kettles please"]
    coupon = next(e for e in data["events"] if e["event_type"] == "add coupon")
    assert coupon["envelope"]["event_add_coupon"]["coupon_code"] == "KETTLE"


def test_recording_returns_every_event_in_order_with_segments(exporter_client):
    uuid = f.new_uuid()
    page_one = f.rrweb_events(start=f.T0)
    moves = f.incremental_events(start=f.T0 + 2000)
    page_two = f.rrweb_events(start=f.T0 + 60_000, href="https://shop.example/cart")
    apply(
        f.rrweb_frame(uuid, 2, page_two, kind="init"),
        f.rrweb_frame(uuid, 0, page_one, kind="init"),
        f.rrweb_frame(uuid, 1, moves),
    )
    response = exporter_client.get(f"/api/conversations/{uuid}/recording/")
    body = json.loads(b"".join(response.streaming_content))
    assert body["events"] == page_one + moves + page_two
    assert [(s["segment"], s["href"], s["event_count"]) for s in body["segments"]] == [
        (1, "https://shop.example/", len(page_one) + len(moves)),
        (2, "https://shop.example/cart", len(page_two)),
    ]
    assert [b["event_index"] for b in body["batches"]] == [0, 1, 2]


def test_list_takes_the_list_pages_filters_and_keeps_them_in_its_next_link(staff_client):
    uuids = []
    for n in range(3):
        uuid = f.new_uuid()
        customer = f.participant("Ada Shopper")
        apply(f.new_conversation(uuid, participants=[customer]), f.message(uuid, f"Hello {n}"))
        uuids.append(uuid)
    apply(f.new_conversation(f.new_uuid()))  # without messages
    staff_client.get(f"/conversations/{uuids[0]}/")

    first = staff_client.get("/api/conversations/?limit=1&messages=1&unwatched=1").json()
    assert [c["conversation_uuid"] for c in first["results"]] == [uuids[2]]
    assert first["results"][0]["first_customer_message_body"] == "Hello 2"
    assert first["results"][0]["watched_dts"] is None
    second = staff_client.get(first["next"]).json()
    assert [c["conversation_uuid"] for c in second["results"]] == [uuids[1]]
    assert second["next"] is None

    everything = staff_client.get("/api/conversations/").json()["results"]
    assert len(everything) == 4
    assert next(c for c in everything if c["conversation_uuid"] == uuids[0])["watched_dts"]


def test_list_counts_each_recording_s_console_errors_and_failed_requests(staff_client):
    uuid = f.new_uuid()
    events = f.rrweb_events() + [
        f.console_event(f.T0 + 900, "TypeError: cart is undefined"),
        f.network_event(f.T0 + 950, "https://shop.example/api/stock", status=503),
        f.network_event(f.T0 + 990, "https://shop.example/api/pay", status=0, error="Failed"),
    ]
    apply(f.rrweb_frame(uuid, 0, events, kind="init"))
    (row,) = staff_client.get("/api/conversations/").json()["results"]
    assert (row["recording"]["console_errors"], row["recording"]["network_errors"]) == (1, 2)
