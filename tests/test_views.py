"""The staff pages: who may see them, the list's search and filters, the recording endpoints."""

import gzip
import json

import pytest
from django.contrib.auth.models import Permission
from django.urls import reverse

from conversations import ingest
from tests import factories as f

pytestmark = pytest.mark.django_db


def apply(*frames: dict) -> None:
    ingest.items_apply([ingest.item_from_text(f.dumps(fr)) for fr in frames], source=None)


def conversation(
    body: str = "Hello", *, name: str = "Ada Shopper", email: str = "", **extra
) -> str:
    uuid = f.new_uuid()
    apply(
        f.new_conversation(uuid, participants=[f.participant(name, email=email)], **extra),
        f.message(uuid, body, author=name),
    )
    return uuid


def recorded(batches: int = 3, first_events: int = 20) -> str:
    uuid = conversation("With a recording")
    apply(f.rrweb_frame(uuid, 0, f.rrweb_events(start=f.T0, count=first_events), kind="init"))
    for index in range(1, batches):
        apply(f.rrweb_frame(uuid, index, f.incremental_events(start=f.T0 + index * 10_000)))
    return uuid


def with_errors() -> str:
    """A recorded conversation whose page logged an error and had a request fail."""
    uuid = conversation("Something went wrong")
    events = f.rrweb_events(start=f.T0) + [
        f.console_event(f.T0 + 2_000, "TypeError: cart is undefined"),
        f.network_event(f.T0 + 3_000, "https://shop.example/api/stock", status=503),
    ]
    apply(f.rrweb_frame(uuid, 0, events, kind="init"))
    return uuid


def test_anonymous_visitors_are_sent_to_sign_in(client):
    uuid = conversation()
    for url in ("/", f"/conversations/{uuid}/"):
        response = client.get(url)
        assert response.status_code == 302
        assert response["Location"].startswith("/accounts/login/?next=")


@pytest.mark.parametrize("is_staff, with_permission", [(False, True), (True, False)])
def test_signed_in_users_without_staff_and_permission_are_refused(
    client, django_user_model, is_staff, with_permission
):
    user = django_user_model.objects.create_user(username="x", password="pw", is_staff=is_staff)
    if with_permission:
        user.user_permissions.add(Permission.objects.get(codename="view_conversation"))
    client.force_login(user)
    uuid = recorded()
    assert client.get("/").status_code == 403
    assert client.get(f"/conversations/{uuid}/").status_code == 403
    assert client.get(f"/conversations/{uuid}/recording/index.json").status_code == 403


def test_login_page_signs_staff_in(client, staff_user):
    response = client.post(
        "/accounts/login/", {"username": "agent", "password": "correct horse battery staple"}
    )
    assert response.status_code == 302 and response["Location"] == "/"


def test_list_shows_newest_first_with_a_fixed_number_of_queries(
    staff_client, django_assert_max_num_queries
):
    uuids = [conversation(f"message {n}") for n in range(5)]
    with django_assert_max_num_queries(8):
        response = staff_client.get("/")
    body = response.content.decode()
    positions = [body.index(uuid) for uuid in reversed(uuids)]
    assert positions == sorted(positions)
    assert "message 4" in body


def test_list_pages_by_cursor_without_repeating_rows(staff_client, monkeypatch):
    monkeypatch.setattr("conversations.views.PAGE_SIZE", 2)
    uuids = [conversation() for _ in range(5)]
    seen: list[str] = []
    url = "/"
    while url:
        response = staff_client.get(url)
        seen += [u for u in uuids if u in response.content.decode()]
        url = response.context["next_url"]
    assert sorted(seen) == sorted(uuids) and len(seen) == 5


@pytest.mark.parametrize(
    "query, expected",
    [
        ("q=kettle", "kettle"),
        ("q=ada%40example.com", "email"),
        ("q=Grace", "name"),
        ("participant=grace", "name"),
        ("status=closed", "closed"),
        ("recording=yes", "recorded errors"),
        ("medium=sms", "sms"),
        ("errors=1", "errors"),
    ],
)
def test_list_filters_from_the_url(staff_client, query, expected):
    made = {
        "kettle": conversation("Is the blue kettle in stock?"),
        "email": conversation("hi", name="Ada", email="ada@example.com"),
        "name": conversation("hello", name="Grace Hopper"),
        "closed": conversation("bye", closed=True),
        "recorded": recorded(),
        "sms": conversation("text me", medium="sms"),
        "errors": with_errors(),
    }
    body = staff_client.get(f"/?{query}").content.decode()
    shown = {key for key, uuid in made.items() if uuid in body}
    assert shown == set(expected.split())


def test_list_shows_how_many_errors_a_conversation_had(staff_client):
    errored, clean = with_errors(), recorded()
    response = staff_client.get("/")
    rows = {row["conversation"].uuid: row for row in response.context["rows"]}
    assert rows[errored]["conversation"].error_total == 2
    body = response.content.decode()
    assert body.count('class="badge errors"') == 1
    assert "1 console error, 1 failed request" in body
    assert rows[clean]["conversation"].error_total == 0


def test_replay_page_lists_console_errors_and_failed_requests_in_time_order(staff_client):
    uuid = with_errors()
    body = staff_client.get(f"/conversations/{uuid}/").content.decode()
    console = body.index("TypeError: cart is undefined")
    request = body.index("GET https://shop.example/api/stock")
    assert console < request
    assert f'data-ts="{f.T0 + 2_000}"' in body and f'data-ts="{f.T0 + 3_000}"' in body
    assert '<span class="console-level">503</span>' in body


def test_replay_page_of_a_clean_recording_says_nothing_was_recorded(staff_client):
    body = staff_client.get(f"/conversations/{recorded()}/").content.decode()
    assert "No console errors or failed requests recorded." in body
    assert "console-entry" not in body


def test_replay_page_lists_messages_with_recording_times_and_a_strict_policy(staff_client):
    uuid = recorded()
    response = staff_client.get(f"/conversations/{uuid}/")
    body = response.content.decode()
    assert 'data-message-uuid="' in body and "data-epoch=" in body
    policy = response["Content-Security-Policy"]
    assert "script-src 'self'" in policy and "object-src 'none'" in policy
    assert "frame-ancestors 'none'" in policy
    assert 'id="replay-config"' in body


def test_export_links_show_only_with_the_export_permission(staff_client, staff_user):
    uuid = recorded()
    assert "Download" not in staff_client.get(f"/conversations/{uuid}/").content.decode()


def test_recording_index_lists_batches_and_full_snapshots(staff_client):
    uuid = recorded(batches=4)
    index = staff_client.get(f"/conversations/{uuid}/recording/index.json").json()
    assert [b[0] for b in index["batches"]] == [0, 1, 2, 3]
    assert [b[4] > 0 for b in index["batches"]] == [True, False, False, False]
    assert index["segments"][0]["href"] == "https://shop.example/"


def test_recording_chunks_are_gzipped_and_resume_where_they_stop(staff_client):
    uuid = recorded(batches=4, first_events=120)
    url = f"/conversations/{uuid}/recording/events.json"
    response = staff_client.get(url, {"from": 0, "max": 100}, HTTP_ACCEPT_ENCODING="gzip")
    assert response["Content-Encoding"] == "gzip"
    first = json.loads(gzip.decompress(response.content))
    assert first["events"][0]["type"] == 4
    assert first["next"] is not None
    rest = staff_client.get(url, {"from": first["next"]}).json()
    assert rest["next"] is None
    assert len(first["events"]) + len(rest["events"]) == 122 + 3 * 5


def test_an_unknown_conversation_is_404(staff_client):
    assert staff_client.get("/conversations/nope/").status_code == 404
    assert (
        staff_client.get(reverse("conversations:recording-index", args=["nope"])).status_code == 404
    )
