"""Static files as production serves them: collected, content-hashed, compressed, cached."""

import re
import urllib.error
import urllib.request
from pathlib import Path

import pytest

CLIENT = Path(__file__).resolve().parent.parent / "static" / "dist" / "client.js"

pytestmark = pytest.mark.django_db(transaction=True)

A_YEAR_OR_MORE = re.compile(r"max-age=(\d+)")


def get(url: str, **headers: str) -> tuple[bytes, dict[str, str]]:
    request = urllib.request.Request(url, headers=headers)
    with urllib.request.urlopen(request, timeout=10) as response:
        return response.read(), {k.lower(): v for k, v in response.headers.items()}


def test_pages_link_hashed_bundles_served_compressed_and_cached_for_a_year(server_without_demo):
    page, _ = get(f"http://{server_without_demo}/accounts/login/")
    (css,) = re.findall(rb'href="(/static/dist/app\.[0-9a-f]{12}\.css)"', page)

    body, headers = get(
        f"http://{server_without_demo}{css.decode()}", **{"Accept-Encoding": "gzip"}
    )

    assert headers["content-encoding"] == "gzip"
    assert headers["content-type"].startswith("text/css")
    assert "immutable" in headers["cache-control"]
    assert int(A_YEAR_OR_MORE.search(headers["cache-control"]).group(1)) >= 365 * 24 * 3600
    assert body[:2] == b"\x1f\x8b"


def test_the_reference_client_is_still_served_under_the_name_shops_link(server_without_demo):
    body, headers = get(f"http://{server_without_demo}/static/dist/client.js")

    assert headers["content-type"].startswith("text/javascript")
    assert body == CLIENT.read_bytes()
    # A plain name may change content at the next release: it must not be cached for a year.
    assert "immutable" not in headers.get("cache-control", "")


def test_a_bundle_revalidates_with_304_and_keeps_the_security_headers(server_without_demo):
    page, _ = get(f"http://{server_without_demo}/accounts/login/")
    (css,) = re.findall(rb'href="(/static/dist/app\.[0-9a-f]{12}\.css)"', page)
    url = f"http://{server_without_demo}{css.decode()}"
    _, headers = get(url)
    assert headers["x-content-type-options"] == "nosniff"

    request = urllib.request.Request(url, headers={"If-None-Match": headers["etag"]})
    with pytest.raises(urllib.error.HTTPError) as not_modified:
        urllib.request.urlopen(request, timeout=10)
    assert not_modified.value.code == 304
    assert not_modified.value.read() == b""


def test_a_static_path_that_names_no_file_is_djangos_404(server_without_demo):
    with pytest.raises(urllib.error.HTTPError) as missing:
        get(f"http://{server_without_demo}/static/dist/no-such-bundle.js")
    assert missing.value.code == 404
