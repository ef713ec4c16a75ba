"""The asset proxy: guarded fetches, content-hash storage, rewritten recordings, strict CSP."""

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.test import Client, override_settings
from django.urls import reverse

from conversations import assets, exports, ingest
from conversations.models import AssetContent, AssetSource
from tests import factories as f

pytestmark = pytest.mark.django_db

PNG = b"\x89PNG\r\n\x1a\n" + b"pixel" * 10


class Handler(BaseHTTPRequestHandler):
    def log_message(self, *args) -> None:
        pass

    def _send(self, status: int, body: bytes = b"", **headers: str) -> None:
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name.replace("_", "-"), value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:  # noqa: N802 (the name http.server calls)
        port = self.server.server_address[1]
        routes = {
            "/pixel.png": lambda: self._send(200, PNG, Content_Type="image/png"),
            "/copy.png": lambda: self._send(200, PNG, Content_Type="image/png; charset=binary"),
            "/page.html": lambda: self._send(200, b"<h1>hi</h1>", Content_Type="text/html"),
            "/big.png": lambda: self._send(200, b"x" * 5000, Content_Type="image/png"),
            "/style.css": lambda: self._send(
                200, b"body{background:url(img/dot.png)}", Content_Type="text/css"
            ),
            "/to-pixel": lambda: self._send(302, Location="/pixel.png"),
            "/to-localhost": lambda: self._send(302, Location=f"http://localhost:{port}/pixel.png"),
            "/to-private": lambda: self._send(302, Location="http://10.0.0.1/pixel.png"),
            "/missing.png": lambda: self._send(404),
        }
        if self.path == "/slow.png":
            time.sleep(1.5)
            self._send(200, PNG, Content_Type="image/png")
        elif self.path in routes:
            routes[self.path]()
        else:
            self._send(404)


@pytest.fixture
def shop_server():
    """A local web server standing for a shop's host; 127.0.0.1 allow-listed, localhost not."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        with override_settings(
            REPLAY_ASSET_ALLOW_HOSTS=["127.0.0.1"],
            REPLAY_ASSET_MAX_BYTES=1000,
            REPLAY_ASSET_TIMEOUT=1.0,
        ):
            yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_an_allowed_image_is_fetched_and_stored_once_by_content_hash(shop_server):
    content = assets.asset_get(f"{shop_server}/pixel.png")
    assert (bytes(content.data), content.content_type) == (PNG, "image/png")
    assert assets.asset_get(f"{shop_server}/copy.png") == content  # same bytes, one copy
    assert assets.asset_get(f"{shop_server}/to-pixel") == content  # a redirect on the host
    assert AssetContent.objects.count() == 1
    assert AssetSource.objects.count() == 3


@pytest.mark.parametrize(
    ("path", "reason"),
    [
        ("/page.html", "type 'text/html' is not fetched"),
        ("/big.png", "larger than 1000 bytes"),
        ("/slow.png", "could not be fetched: timed out"),
        ("/to-localhost", "localhost is at 127.0.0.1, not a public address"),
        ("/to-private", "10.0.0.1 is at 10.0.0.1, not a public address"),
        ("/missing.png", "answered HTTP 404"),
    ],
)
def test_the_fetcher_refuses_what_is_not_a_small_public_asset(shop_server, path, reason):
    with pytest.raises(assets.AssetRefused, match=reason):
        assets.asset_fetch_remote(f"{shop_server}{path}")


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("http://127.0.0.1:9/x.png", "not a public address"),  # not allow-listed here
        ("http://[::1]/x.png", "not a public address"),
        ("http://169.254.169.254/latest/meta-data", "not a public address"),
        ("http://0.0.0.0/x.png", "not a public address"),
        ("file:///etc/passwd", "not an http"),
        ("ftp://example.com/x.png", "not an http"),
        ("http://user:pw@example.com/x.png", "credentials"),
    ],
)
def test_without_the_allow_list_private_addresses_and_other_schemes_are_refused(url, reason):
    with pytest.raises(assets.AssetRefused, match=reason):
        assets.asset_fetch_remote(url)


def test_a_failed_fetch_is_remembered_and_not_retried_at_once(shop_server):
    url = f"{shop_server}/missing.png"
    assert assets.asset_get(url) is None
    assert "HTTP 404" in AssetSource.objects.get().failure
    with override_settings(REPLAY_ASSET_ALLOW_HOSTS=[]):  # a retry now would be refused
        assert assets.asset_get(url) is None
    assert "HTTP 404" in AssetSource.objects.get().failure


def test_the_asset_view_serves_staff_from_our_origin_and_a_pixel_when_unfetchable(
    shop_server, staff_client
):
    url = reverse(
        "conversations:asset", kwargs={"token": assets.asset_token(f"{shop_server}/pixel.png")}
    )
    response = staff_client.get(url)
    assert (response.status_code, response.content, response["Content-Type"]) == (
        200,
        PNG,
        "image/png",
    )
    assert "sandbox" in response["Content-Security-Policy"]
    assert response["X-Content-Type-Options"] == "nosniff"

    missing = assets.proxied(f"{shop_server}/page.html")
    assert staff_client.get(missing).content == assets.PLACEHOLDER
    assert staff_client.get(url[:-3] + "abc").status_code == 404  # a forged token
    assert Client().get(url).status_code == 302  # sign in first


def test_a_style_sheets_own_urls_are_proxied_too(shop_server, staff_client):
    css = staff_client.get(assets.proxied(f"{shop_server}/style.css")).content.decode()
    assert "url(img/dot.png)" not in css
    token = css.split('url("/assets/')[1].split('"')[0]
    assert assets.asset_url_from_token(token) == f"{shop_server}/img/dot.png"


def page_with_assets(shop: str) -> list[dict]:
    events = f.rrweb_events(count=0)
    body = events[1]["data"]["node"]["childNodes"][0]["childNodes"][0]
    body["attributes"] = {"style": f"background: url('{shop}/bg.png')"}
    body["childNodes"] += [
        {
            "type": 2,
            "tagName": "img",
            "id": 20,
            "attributes": {
                "src": f"{shop}/pixel.png",
                "srcset": f"{shop}/a.png 1x, {shop}/b.png 2x",
            },
            "childNodes": [],
        },
        {
            "type": 2,
            "tagName": "link",
            "id": 21,
            "attributes": {"rel": "stylesheet", "href": "//fonts.example/css"},
            "childNodes": [],
        },
        {
            "type": 2,
            "tagName": "style",
            "id": 22,
            "attributes": {},
            "childNodes": [
                {
                    "type": 3,
                    "id": 23,
                    "isStyle": True,
                    "textContent": f"@font-face{{src:url({shop}/f.woff2)}}",
                }
            ],
        },
        {
            "type": 2,
            "tagName": "a",
            "id": 24,
            "attributes": {"href": f"{shop}/cart"},
            "childNodes": [],
        },
        {"type": 2, "tagName": "img", "id": 25, "attributes": {"src": "data:,"}, "childNodes": []},
    ]
    return events


def test_recordings_are_served_with_every_loaded_url_pointing_at_our_origin(staff_client):
    uuid = f.new_uuid()
    shop = "https://shop.example"
    ingest.items_apply(
        [
            ingest.item_from_text(
                f.dumps(f.rrweb_frame(uuid, 0, page_with_assets(shop), kind="init"))
            )
        ],
        source=None,
    )
    response = staff_client.get(f"/conversations/{uuid}/recording/events.json")
    text = json.dumps(json.loads(response.content)["events"])
    loaded = [f"{shop}/{name}" for name in ("bg.png", "pixel.png", "a.png", "b.png", "f.woff2")]
    for url in loaded + ["https://fonts.example/css"]:
        assert url not in text
        assert json.dumps(assets.proxied(url))[1:-1] in text
    assert f"{shop}/cart" in text  # a link is only followed, never loaded: kept
    assert '"src": "data:,"' in text


def test_the_replay_page_lets_no_third_party_host_serve_images_fonts_or_media(staff_client):
    uuid = f.new_uuid()
    ingest.items_apply([ingest.item_from_text(f.dumps(f.new_conversation(uuid)))], source=None)
    policy = staff_client.get(f"/conversations/{uuid}/")["Content-Security-Policy"]
    for directive in ("img-src", "font-src", "media-src"):
        sources = policy.split(f"{directive} ")[1].split(";")[0].split()
        assert "*" not in sources and "'self'" in sources, policy


def test_the_standalone_replay_embeds_cached_assets_and_a_placeholder_for_the_rest(shop_server):
    uuid = f.new_uuid()
    events = page_with_assets(shop_server)
    ingest.items_apply(
        [ingest.item_from_text(f.dumps(f.rrweb_frame(uuid, 0, events, kind="init")))], source=None
    )
    page = b"".join(exports.standalone_html_chunks(uuid)).decode()
    assert shop_server not in page.replace(f"{shop_server}/cart", "")
    pixel = assets._data_uri(PNG, "image/png")
    assert pixel in page
    assert assets._data_uri(assets.PLACEHOLDER, assets.PLACEHOLDER_TYPE) in page  # bg.png: 404
