"""The demo app: the shop and agent console, its key, both chat sides, and a product without it.

The test run has the demo app installed (tests/settings.py); the tests of the product without
it take the app out of INSTALLED_APPS, or start a server whose settings leave it out.
"""

import ast
import asyncio
import io
import json
import os
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from django.apps import apps
from django.core.management import CommandError, call_command
from django.urls import reverse
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from conversations import ingest
from conversations.keys import ingest_key_authenticate, ingest_key_create, ingest_key_revoke
from conversations.models import IngestKey, Message, Participant
from demo.apps import DemoConfig
from demo.keys import DEMO_KEY_NAME, demo_key_ensure
from tests import factories as f

pytestmark = pytest.mark.django_db
ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def demo_off(settings):
    """This process as if the demo app were not installed (its URLs stay: they load once)."""
    settings.INSTALLED_APPS = [app for app in settings.INSTALLED_APPS if app != "demo"]
    assert not apps.is_installed("demo")
    return settings


def client_config(response) -> dict:
    html = response.content.decode()
    start = html.index('<script id="demo-client-config" type="application/json">')
    body = html[start:].split(">", 1)[1].split("</script>", 1)[0]
    return json.loads(body)


def shopper_conversation(client) -> str:
    """Open the shop as a shopper would and start the conversation the page offers."""
    uuid = client_config(client.get(reverse("demo:home")))["conversationUuid"]
    ingest.frame_apply(f.dumps(f.new_conversation(uuid)))
    ingest.frame_apply(f.dumps(f.message(uuid, "Hello, is the kettle in stock?")))
    return uuid


@pytest.mark.parametrize(
    "path", ["/demo/", "/demo/products/copper-kettle/", "/demo/cart/", "/demo/checkout/"]
)
def test_every_shop_page_embeds_the_client_with_a_key_the_ingest_socket_accepts(client, path):
    response = client.get(path)
    assert response.status_code == 200
    assert b"dist/client.js" in response.content
    config = client_config(response)
    assert ingest_key_authenticate(config["key"]).name == DEMO_KEY_NAME


def test_the_demo_key_is_stable_and_an_old_random_one_is_replaced():
    earlier = IngestKey(name=DEMO_KEY_NAME)  # as an earlier first run made it
    earlier.set_key(IngestKey.new_raw_key())
    earlier.save()
    _, raw_key, changed = demo_key_ensure()
    assert changed
    assert demo_key_ensure() == (IngestKey.objects.get(name=DEMO_KEY_NAME), raw_key, False)
    assert ingest_key_authenticate(raw_key) is not None


def test_a_revoked_demo_key_stays_revoked():
    key, raw_key, _ = demo_key_ensure()
    ingest_key_revoke(key=key)
    demo_key_ensure()
    assert ingest_key_authenticate(raw_key) is None


def test_adding_to_the_cart_and_checking_out_never_echoes_the_card(client):
    client.post("/demo/cart/add/", {"product": "oak-board", "quantity": "2"})
    cart = client.get("/demo/cart/")
    assert b"Oak serving board" in cart.content and "€112.00" in cart.content.decode()
    response = client.post(
        "/demo/checkout/",
        {"name": "Ada", "email": "ada@example.com", "card": "4000 0566 5566 5556", "cvc": "123"},
    )
    assert response.status_code == 302
    thanks = client.get(response["Location"]).content.decode()
    assert "Thank you, Ada" in thanks and "€118.00" in thanks
    assert "5566" not in thanks and "4000" not in thanks
    assert "Oak serving board" not in client.get("/demo/cart/").content.decode()


def test_an_agent_answer_is_stored_as_a_message_and_reaches_the_shopper(
    client, staff_client, staff_user
):
    uuid = shopper_conversation(client)
    page = staff_client.get(f"/demo/agent/{uuid}/")
    assert page.status_code == 200 and b"Hello, is the kettle in stock?" in page.content

    for answer in ("Yes, twelve left.", "Anything else?"):
        response = staff_client.post(f"/demo/agent/{uuid}/reply/", {"body": answer})
        assert response.status_code == 201

    stored = Message.objects.filter(conversation__uuid=uuid, author_arn="arn:agent:agent")
    assert sorted(stored.values_list("body", flat=True)) == ["Anything else?", "Yes, twelve left."]
    assert Participant.objects.filter(conversation__uuid=uuid, arn="arn:agent:agent").count() == 1
    messages = client.get(f"/demo/chat/{uuid}/messages.json").json()["messages"]
    assert [(m["body"], m["customer"]) for m in messages] == [
        ("Hello, is the kettle in stock?", True),
        ("Yes, twelve left.", False),
        ("Anything else?", False),
    ]


def test_a_shopper_cannot_read_another_browsers_chat(client):
    from django.test import Client

    uuid = shopper_conversation(client)
    stranger = Client()
    stranger.get("/demo/")
    assert stranger.get(f"/demo/chat/{uuid}/messages.json").status_code == 403


def test_the_agent_console_is_for_staff_only(client, django_user_model):
    uuid = shopper_conversation(client)
    for path in ("/demo/agent/", f"/demo/agent/{uuid}/"):
        assert "/accounts/login/" in client.get(path)["Location"]
    assert client.post(f"/demo/agent/{uuid}/reply/", {"body": "hi"}).status_code == 302
    client.force_login(django_user_model.objects.create_user(username="shopper", password="pw"))
    assert client.get(f"/demo/agent/{uuid}/").status_code == 403
    assert client.post(f"/demo/agent/{uuid}/reply/", {"body": "hi"}).status_code == 403
    assert not Message.objects.filter(body="hi").exists()


def test_an_empty_answer_is_refused(client, staff_client):
    uuid = shopper_conversation(client)
    response = staff_client.post(f"/demo/agent/{uuid}/reply/", {"body": "   "})
    assert response.status_code == 400
    assert Message.objects.filter(conversation__uuid=uuid).count() == 1


def test_the_agent_console_lists_open_chats_first(client, staff_client):
    uuid = shopper_conversation(client)
    page = staff_client.get(reverse("demo:agent-index")).content.decode()
    assert f"/demo/agent/{uuid}/" in page and f"/conversations/{uuid}/" in page


def test_first_run_says_where_to_go_and_how_to_sign_in(monkeypatch):
    from io import StringIO

    monkeypatch.delenv("DJANGO_SUPERUSER_PASSWORD", raising=False)
    out = StringIO()
    call_command("first_run", stdout=out)
    text = out.getvalue()
    assert "Created the staff account 'admin'" in text
    password = text.split("Sign in as 'admin', password ")[1].split()[0]
    assert "/demo/" in text and "/demo/agent/" in text and "http://127.0.0.1:8000/ " in text
    from django.contrib.auth import get_user_model

    assert get_user_model().objects.get(username="admin").check_password(password)
    assert f"ingest key '{DEMO_KEY_NAME}'" in text

    again = StringIO()
    call_command("first_run", stdout=again)
    assert password not in again.getvalue()
    assert "Created" not in again.getvalue()
    assert "/demo/" in again.getvalue()


def test_ingest_refuses_the_demo_key_once_the_demo_app_is_not_installed(settings):
    _, raw_key, _ = demo_key_ensure()
    assert ingest_key_authenticate(raw_key) is not None
    settings.INSTALLED_APPS = [app for app in settings.INSTALLED_APPS if app != "demo"]
    assert ingest_key_authenticate(raw_key) is None


def test_first_run_without_the_demo_app_makes_the_admin_and_no_demo_key(monkeypatch, demo_off):
    monkeypatch.delenv("DJANGO_SUPERUSER_PASSWORD", raising=False)
    out = io.StringIO()
    call_command("first_run", stdout=out)
    text = out.getvalue()
    assert "Created the staff account 'admin'" in text
    assert "http://127.0.0.1:8000/ " in text and "Sign in as 'admin', password " in text
    assert "demo" not in text.lower()
    assert not IngestKey.objects.filter(name=DEMO_KEY_NAME).exists()


def test_the_demo_key_name_is_reserved_for_the_demo_app(demo_off):
    assert IngestKey.owning_app(DEMO_KEY_NAME) == DemoConfig.name
    with pytest.raises(ValueError, match="reserved"):
        ingest_key_create(name=DEMO_KEY_NAME)
    with pytest.raises(CommandError, match="reserved"):
        call_command("create_ingest_key", DEMO_KEY_NAME, stdout=io.StringIO())


# The product without the demo ------------------------------------------------------------

PRODUCT = [ROOT / "conversations", ROOT / "replay"]
# The project's wiring, which installs the demo app and mounts its URLs when it is on.
WIRING = {ROOT / "replay" / "settings.py", ROOT / "replay" / "urls.py"}


def _imports_of_demo(path: Path) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0:
            names = [node.module or ""]
        else:
            continue
        found += [
            f"{path.relative_to(ROOT)}:{node.lineno}"
            for name in names
            if name == "demo" or name.startswith("demo.")
        ]
    return found


def test_the_product_never_imports_the_demo():
    sources = [p for root in PRODUCT for p in root.rglob("*.py") if p not in WIRING]
    assert len(sources) > 30
    assert [found for path in sources for found in _imports_of_demo(path)] == []


def test_with_the_demo_off_every_product_module_loads_without_it():
    script = """
import importlib, pkgutil, sys
import django
django.setup()
import conversations, replay
from django.apps import apps
for package in (conversations, replay):
    for module in pkgutil.walk_packages(package.__path__, package.__name__ + "."):
        importlib.import_module(module.name)
print(apps.is_installed("demo"), sorted(m for m in sys.modules if m.split(".")[0] == "demo"))
"""
    env = {"DJANGO_SETTINGS_MODULE": "replay.settings", "REPLAY_DEMO": "0", "DEBUG": "0"}
    done = subprocess.run(
        [sys.executable, "-c", script],
        cwd=ROOT,
        env={**_plain_environment(), **env},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[-1] == "False []"


def _plain_environment() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k not in ("REPLAY_DEMO", "DEBUG")}


def _get(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code


@pytest.fixture
def demo_key_made_earlier(transactional_db) -> str:
    """The demo key a run with the demo on left in the database."""
    return demo_key_ensure()[1]


@pytest.mark.django_db(transaction=True)
async def test_a_server_without_the_demo_serves_the_product_and_neither_the_shop_nor_its_key(
    demo_key_made_earlier, source, server_without_demo
):
    base = f"http://{server_without_demo}"
    for path in ("/demo/", "/demo/agent/", "/demo/cart/"):
        assert await asyncio.to_thread(_get, base + path) == 404
    assert await asyncio.to_thread(_get, base + "/accounts/login/") == 200
    assert await asyncio.to_thread(_get, base + "/healthz") == 200

    ingest_url = f"ws://{server_without_demo}/ws/ingest/?key="
    async with connect(ingest_url + demo_key_made_earlier) as ws:
        with pytest.raises(ConnectionClosed) as closed:
            await asyncio.wait_for(ws.recv(), 10)
    assert closed.value.rcvd.code == 4401
    async with connect(ingest_url + source.raw_key) as ws:
        await ws.send('{"type":"ping"}')
        assert json.loads(await asyncio.wait_for(ws.recv(), 10)) == {"type": "ping"}
