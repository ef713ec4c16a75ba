"""A recorded page's pixel, background, font and video, replayed in Chromium from our origin.

A local web server stands in for the shop's host (allow-listed, as only a test may do).
"""

import struct
import threading
import zlib
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from conversations import exports
from tests import factories as f
from tests.conftest import running_daphne
from tests.test_browser import _wait_for_first_frame, apply, browser, in_thread, open_page  # noqa: F401

pytestmark = pytest.mark.django_db(transaction=True)


def png(width: int, height: int) -> bytes:
    """A real, opaque PNG of the given size."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    rows = b"".join(b"\x00" + b"\x20\x80\xc0" * width for _ in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


FILES = {
    "/pixel.png": (png(3, 2), "image/png"),
    "/bg.png": (png(5, 5), "image/png"),
    "/brand.woff2": (b"wOF2" + b"\x00" * 60, "font/woff2"),
    "/clip.mp4": (b"\x00\x00\x00\x18ftypmp42" + b"\x00" * 40, "video/mp4"),
}


class Shop(BaseHTTPRequestHandler):
    def log_message(self, *args) -> None:
        pass

    def do_GET(self) -> None:  # noqa: N802 (the name http.server calls)
        body, kind = FILES.get(self.path, (b"", "text/plain"))
        self.send_response(200 if body else 404)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture
def shop():
    server = ThreadingHTTPServer(("127.0.0.1", 0), Shop)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def recorded_page(shop: str) -> list[dict]:
    events = f.rrweb_events(start=f.T0, count=3, href="https://shop.example/kettle")
    html = events[1]["data"]["node"]["childNodes"][0]
    body = html["childNodes"][0]
    body["attributes"] = {"style": f"background: url('{shop}/bg.png')"}
    body["childNodes"] += [
        {
            "type": 2,
            "tagName": "img",
            "id": 20,
            "attributes": {"id": "pixel", "src": f"{shop}/pixel.png"},
            "childNodes": [],
        },
        {
            "type": 2,
            "tagName": "style",
            "id": 21,
            "attributes": {},
            "childNodes": [
                {
                    "type": 3,
                    "id": 22,
                    "isStyle": True,
                    "textContent": "@font-face{font-family:Brand;"
                    f"src:url({shop}/brand.woff2)}}body{{font-family:Brand}}",
                }
            ],
        },
        {
            "type": 2,
            "tagName": "video",
            "id": 23,
            "attributes": {"id": "clip", "src": f"{shop}/clip.mp4"},
            "childNodes": [],
        },
    ]
    return events


def test_a_recorded_pixel_background_font_and_video_replay_from_our_origin_only(
    browser,  # noqa: F811
    shop,
    staff_client,
    tmp_path,
):
    uuid = f.new_uuid()
    in_thread(apply, f.new_conversation(uuid))
    in_thread(apply, f.rrweb_frame(uuid, 0, recorded_page(shop), kind="init"))
    with running_daphne(REPLAY_ASSET_ALLOW_HOSTS="127.0.0.1") as server:
        ours = f"http://{server.address}/"
        page = open_page(browser, server.address, staff_client)
        requested: list[str] = []
        page.on("request", lambda request: requested.append(request.url))
        page.goto(f"{ours}conversations/{uuid}/")
        _wait_for_first_frame(page)
        frame = page.frame_locator("#stage iframe")
        frame.locator("#pixel").wait_for()
        # The shop's own 3×2 image, not the 1×1 placeholder: fetched by the server, served by us.
        page.wait_for_function(
            "() => document.querySelector('#stage iframe').contentDocument"
            ".querySelector('#pixel').naturalWidth === 3",
            timeout=15_000,
        )
        found = page.evaluate(
            """() => {
                const doc = document.querySelector('#stage iframe').contentDocument;
                return {
                    background: doc.defaultView.getComputedStyle(doc.body).backgroundImage,
                    video: doc.querySelector('#clip').getAttribute('src'),
                    style: doc.querySelector('style').textContent,
                };
            }"""
        )
        assert "/assets/" in found["background"] and shop not in found["background"]
        assert found["video"].startswith(f"{ours}assets/") or found["video"].startswith("/assets/")
        assert "/assets/" in found["style"] and shop not in found["style"]
        for url in (found["video"], found["style"].split("url(")[1].split(")")[0].strip("'\"")):
            response = page.request.get(url if url.startswith("http") else ours + url.lstrip("/"))
            assert response.status == 200
        assert [url for url in requested if not url.startswith(ours)] == []

    # The standalone file of the same conversation, from disk with the network off.
    path = tmp_path / "replay.html"
    path.write_bytes(b"".join(in_thread(lambda: list(exports.standalone_html_chunks(uuid)))))
    context = browser.new_context(offline=True)
    offline = context.new_page()
    elsewhere: list[str] = []
    offline.on(
        "request",
        lambda r: (
            None if r.url.startswith(("file:", "data:", "blob:")) else elsewhere.append(r.url)
        ),
    )
    offline.goto(path.as_uri(), wait_until="domcontentloaded")
    offline.wait_for_selector("html[data-replay=ready]", timeout=10_000)
    offline.wait_for_function(
        "() => { const f = document.querySelector('.replayer-wrapper iframe');"
        " const img = f && f.contentDocument.querySelector('#pixel');"
        " return img && img.naturalWidth === 3; }",
        timeout=15_000,
    )
    assert elsewhere == []
    context.close()


def test_a_viewer_replays_in_chromium_but_gets_403_from_the_whole_conversation_api_and_downloads(
    browser,  # noqa: F811
    daphne_server,
    client,
    role_user,
):
    from django.urls import reverse

    viewer = in_thread(role_user, "viewer")
    client.force_login(viewer)
    uuid = f.new_uuid()
    in_thread(apply, f.new_conversation(uuid))
    in_thread(apply, f.rrweb_frame(uuid, 0, f.rrweb_events(count=5), kind="init"))
    ours = f"http://{daphne_server}"
    page = open_page(browser, daphne_server, client)
    page.goto(f"{ours}/conversations/{uuid}/")
    _wait_for_first_frame(page)
    assert page.locator("form[action*='/export/']").count() == 0  # no download menu
    for path in (f"/api/conversations/{uuid}/", f"/api/conversations/{uuid}/recording/"):
        assert page.request.get(ours + path).status == 403, path
    # A valid CSRF token, so the refusal below is the permission's, not the token's.
    page.goto(f"{ours}/accounts/password_change/")
    token = page.evaluate("() => document.cookie.match(/csrftoken=([^;]+)/)?.[1] || ''")
    assert token
    for fmt in ("archive", "html", "csv"):
        url = ours + reverse("conversations:export", args=[uuid, fmt])
        response = page.request.post(url, headers={"X-CSRFToken": token, "Referer": ours + "/"})
        assert response.status == 403, fmt
        assert "CSRF" not in response.text()
