"""Staff pages, API, exports and the live socket work for any uuid the archive may hold.

The protocol refuses uuids outside its alphabet, but imports and data stored before it did
may hold anything: a slash once made the conversation list answer 500 for every staff member.
"""

import json

import pytest
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator
from django.contrib.auth.models import Permission
from django.urls import reverse

from conversations.converters import ConversationUUIDConverter, conversation_key
from conversations.live import live_path
from conversations.models import Conversation
from conversations.views import EXPORT_FORMATS
from tests import factories as f

MARKUP = '<script>alert("x")</script>'
UUIDS = [
    "a/b",
    MARKUP,
    "x y",
    "%2F",
    "/".join(["ab"] * 34)[:100],
    "会話-ü-😀",
    "~YQ",
    "..",
    "?q=1#frag",
    "c0a80001-0000-4000-8000-000000000001",
]
IDS = ["slash", "markup", "space", "percent", "100 chars", "unicode", "tilde", "dots", "query"]
IDS.append("plain")


@pytest.fixture
def exporter_client(client, django_user_model):
    """Staff who may view and export (no password: hashing one costs a second a test)."""
    user = django_user_model.objects.create(username="exporter", is_staff=True)
    user.user_permissions.add(
        *Permission.objects.filter(codename__in=["view_conversation", "export_conversation"])
    )
    client.force_login(user)
    return client


@pytest.fixture
def admin_client(client, django_user_model):
    client.force_login(
        django_user_model.objects.create(username="root", is_staff=True, is_superuser=True)
    )
    return client


@pytest.fixture(params=["orm", "factory"])
def conversation(request, db):
    """The conversation under each uuid: a bare row, and one with a transcript and recording."""
    uuid = request.node.callspec.params["uuid"]
    if request.param == "orm":
        return Conversation.objects.create(uuid=uuid)
    return f.stored_conversation(uuid, body=MARKUP, name=f"Ada {MARKUP}")


def body_of(response) -> bytes:
    return b"".join(response) if response.streaming else response.content


def assert_escaped(content: bytes) -> None:
    assert MARKUP.encode() not in content


@pytest.mark.parametrize("uuid", UUIDS, ids=IDS)
def test_the_list_links_every_conversation_to_its_replay(exporter_client, conversation, uuid):
    response = exporter_client.get("/")
    assert response.status_code == 200
    link = reverse("conversations:replay", kwargs={"uuid": uuid})
    assert f'href="{link}"'.encode() in response.content
    assert_escaped(response.content)
    assert exporter_client.get(link).status_code == 200


@pytest.mark.parametrize("uuid", UUIDS, ids=IDS)
def test_replay_page_and_its_recording_load_for_any_uuid(exporter_client, conversation, uuid):
    response = exporter_client.get(reverse("conversations:replay", kwargs={"uuid": uuid}))
    assert response.status_code == 200
    assert_escaped(response.content)
    html = response.content.decode()
    start = html.index('<script id="replay-config" type="application/json">')
    config = json.loads(html[start:].split(">", 1)[1].split("</script>", 1)[0])
    assert config["uuid"] == uuid
    assert config["livePath"] == live_path(uuid)

    index = exporter_client.get(config["indexUrl"])
    assert index.status_code == 200
    events = exporter_client.get(config["eventsUrl"])
    assert events.status_code == 200
    count = len(json.loads(events.content)["events"])
    assert count == conversation.rrweb_event_total


@pytest.mark.parametrize("uuid", UUIDS, ids=IDS)
def test_api_serves_any_uuid(exporter_client, conversation, uuid):
    listed = exporter_client.get("/api/conversations/").json()["results"]
    assert [c["conversation_uuid"] for c in listed] == [uuid]
    detail = exporter_client.get(reverse("conversations:api-detail", kwargs={"uuid": uuid}))
    assert detail.status_code == 200
    assert detail.json()["conversation_uuid"] == uuid
    recording = exporter_client.get(reverse("conversations:api-recording", kwargs={"uuid": uuid}))
    assert recording.status_code == 200
    assert json.loads(body_of(recording))["conversation_uuid"] == uuid


@pytest.mark.parametrize("uuid", UUIDS, ids=IDS)
@pytest.mark.filterwarnings("ignore:StreamingHttpResponse must consume asynchronous iterators")
def test_every_export_downloads_for_any_uuid(exporter_client, conversation, uuid):
    replay = exporter_client.get(reverse("conversations:replay", kwargs={"uuid": uuid}))
    for fmt, label in EXPORT_FORMATS:
        url = reverse("conversations:export", kwargs={"uuid": uuid, "fmt": fmt})
        assert f'action="{url}"'.encode() in replay.content, label
        response = exporter_client.post(url)
        assert response.status_code == 200, fmt
        content = body_of(response)
        assert content
        if fmt in ("html", "print"):
            assert_escaped(content)
        if "Content-Disposition" in response:
            assert "/" not in response["Content-Disposition"].split("filename=")[1]


@pytest.mark.parametrize("uuid", UUIDS, ids=IDS)
def test_the_admin_shows_any_uuid_with_its_export_links(admin_client, conversation, uuid):
    assert admin_client.get("/admin/conversations/conversation/").status_code == 200
    response = admin_client.get(f"/admin/conversations/conversation/{conversation.pk}/change/")
    assert response.status_code == 200
    assert_escaped(response.content)
    url = reverse("conversations:export", kwargs={"uuid": uuid, "fmt": "txt"})
    assert f'action="{url}"'.encode() in response.content


@pytest.mark.parametrize("uuid", UUIDS, ids=IDS)
def test_the_demo_agent_console_lists_and_opens_any_uuid(exporter_client, conversation, uuid):
    response = exporter_client.get(reverse("demo:agent-index"))
    assert response.status_code == 200
    assert_escaped(response.content)
    console = reverse("demo:agent", kwargs={"uuid": uuid})
    assert f'href="{console}"'.encode() in response.content
    assert exporter_client.get(console).status_code == 200


@pytest.mark.parametrize("uuid", ["a/b", "x y", "%2F", "会話", "..", ""])
def test_a_uuid_outside_the_alphabet_is_one_escaped_path_segment_and_back(uuid):
    key = conversation_key(uuid)
    assert key.startswith("~")
    assert key[1:].replace("-", "").replace("_", "").isalnum() or key == "~"
    assert ConversationUUIDConverter().to_python(key) == uuid


def test_a_uuid_in_the_alphabet_is_its_own_path_segment():
    uuid = "c0a80001-0000-4000-8000-000000000001"
    assert conversation_key(uuid) == uuid
    assert reverse("conversations:replay", kwargs={"uuid": uuid}) == f"/conversations/{uuid}/"


@pytest.mark.django_db
@pytest.mark.parametrize(
    "path",
    [
        "/conversations/~!!!/",  # not base64
        "/conversations/~_w/",  # base64 of bytes that are not UTF-8
        "/conversations/a/b/",  # a slash spelled out is not one segment
        "/conversations/~YS9i/recording/index.json/extra/",
        "/api/conversations/~YS9i/",  # "a/b", not stored
    ],
)
def test_addresses_that_name_no_stored_conversation_are_404(exporter_client, path):
    assert exporter_client.get(path).status_code == 404


def test_an_older_link_spelling_a_uuid_out_still_opens_it(exporter_client, db):
    Conversation.objects.create(uuid="x y")
    assert exporter_client.get("/conversations/x%20y/").status_code == 200


@pytest.mark.django_db(transaction=True)
async def test_the_live_socket_of_any_uuid_is_routed_to_its_watchers(exporter_client):
    from replay.asgi import application

    uuid = "a/b?c#d"
    await sync_to_async(Conversation.objects.create)(uuid=uuid)
    session = exporter_client.cookies["sessionid"].value
    comm = WebsocketCommunicator(
        application,
        live_path(uuid),
        headers=[(b"origin", b"http://localhost"), (b"cookie", f"sessionid={session}".encode())],
    )
    connected, _ = await comm.connect()
    assert connected
    await comm.disconnect()
