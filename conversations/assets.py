"""The asset proxy: what a recorded page loads (images, fonts, styles, media) comes from us.

A replay that loaded a shop's images from the shop would make each staff browser contact
third parties, which could see who watches and when. Instead, when recordings are served, the
URLs in their events are rewritten to signed `/assets/…` URLs of ours; the first request for
one fetches the asset on the server, with guards against being turned on our own network
(public addresses only unless allow-listed, each redirect checked again, the connection pinned
to the address that was checked, caps on size, type and time), and stores it by content hash.
What cannot be fetched is served as a transparent pixel. The standalone export embeds cached
assets as data: URIs.
"""

import base64
import functools
import hashlib
import http.client
import ipaddress
import re
import socket
import ssl
import time
from collections.abc import Callable
from datetime import timedelta
from urllib.parse import urljoin, urlsplit

from django.conf import settings
from django.core import signing
from django.db import IntegrityError, transaction
from django.urls import get_script_prefix, reverse
from django.utils import timezone

from conversations import conf
from conversations.models import AssetContent, AssetSource

# What may be fetched: the types a page loads as images, fonts, styles and media.
ALLOWED_TYPES = (
    "image/",
    "font/",
    "text/css",
    "audio/",
    "video/",
    "application/font-",
    "application/x-font-",
    "application/vnd.ms-fontobject",
)
PLACEHOLDER_TYPE = "image/gif"
PLACEHOLDER = base64.b64decode("R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7")
_SALT = "conversations.assets"
_REDIRECTS = {301, 302, 303, 307, 308}


class AssetRefused(Exception):
    """An asset the proxy will not fetch, or could not; the message says why."""


# Fetching ----------------------------------------------------------------------------------


class _PinnedHTTPConnection(http.client.HTTPConnection):
    """HTTP to an address checked beforehand: DNS is not asked again (no rebinding)."""

    def __init__(self, host: str, port: int, *, address: str, timeout: float) -> None:
        super().__init__(host, port, timeout=timeout)
        self.address = address

    def connect(self) -> None:
        self.sock = socket.create_connection((self.address, self.port), self.timeout)


class _PinnedHTTPSConnection(http.client.HTTPSConnection):
    """HTTPS to a checked address, with the certificate checked against the host name."""

    def __init__(self, host: str, port: int, *, address: str, timeout: float) -> None:
        super().__init__(host, port, timeout=timeout, context=ssl.create_default_context())
        self.address = address

    def connect(self) -> None:
        sock = socket.create_connection((self.address, self.port), self.timeout)
        self.sock = self._context.wrap_socket(sock, server_hostname=self.host)


def _address_for(host: str, port: int) -> str:
    """An address of `host` to connect to: every address it has must be public, or the host
    allow-listed (as written in the URL)."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise AssetRefused(f"{host} does not resolve: {exc}") from None
    addresses = [info[4][0] for info in infos]
    if host not in conf.get("REPLAY_ASSET_ALLOW_HOSTS"):
        for address in addresses:
            ip = ipaddress.ip_address(address.split("%")[0])
            if not ip.is_global or ip.is_multicast:
                raise AssetRefused(f"{host} is at {address}, not a public address")
    if not addresses:
        raise AssetRefused(f"{host} has no address")
    return addresses[0]


def _allowed_type(content_type: str) -> bool:
    return content_type.startswith(ALLOWED_TYPES)


def asset_fetch_remote(url: str) -> tuple[bytes, str]:
    """Fetch `url` with the guards; return its bytes and content type, or raise AssetRefused."""
    max_bytes = conf.get("REPLAY_ASSET_MAX_BYTES")
    deadline = time.monotonic() + conf.get("REPLAY_ASSET_TIMEOUT")
    for _ in range(conf.get("REPLAY_ASSET_MAX_REDIRECTS") + 1):
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise AssetRefused(f"not an http(s) URL: {url[:200]}")
        if parts.username or parts.password:
            raise AssetRefused("URLs with credentials are not fetched")
        try:
            port = parts.port or (443 if parts.scheme == "https" else 80)
        except ValueError:
            raise AssetRefused(f"bad port in {url[:200]}") from None
        address = _address_for(parts.hostname, port)
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise AssetRefused("took too long")
        kind = _PinnedHTTPSConnection if parts.scheme == "https" else _PinnedHTTPConnection
        connection = kind(parts.hostname, port, address=address, timeout=remaining)
        try:
            path = parts.path or "/"
            connection.request(
                "GET",
                f"{path}?{parts.query}" if parts.query else path,
                headers={"Accept": "image/*,font/*,text/css,audio/*,video/*;q=0.9,*/*;q=0.1"},
            )
            response = connection.getresponse()
            if response.status in _REDIRECTS and response.getheader("Location"):
                url = urljoin(url, response.getheader("Location"))
                continue  # checked again from the top: no redirect into our network
            if response.status != 200:
                raise AssetRefused(f"answered HTTP {response.status}")
            content_type = (response.getheader("Content-Type") or "").split(";")[0].strip()
            content_type = content_type.lower()
            if not _allowed_type(content_type):
                raise AssetRefused(f"type {content_type or 'unknown'!r} is not fetched")
            length = response.getheader("Content-Length")
            if length and length.isdigit() and int(length) > max_bytes:
                raise AssetRefused(f"larger than {max_bytes} bytes")
            body = bytearray()
            while chunk := response.read(64 * 1024):
                body += chunk
                if len(body) > max_bytes:
                    raise AssetRefused(f"larger than {max_bytes} bytes")
                if time.monotonic() > deadline:
                    raise AssetRefused("took too long")
            return bytes(body), content_type
        except (OSError, http.client.HTTPException) as exc:
            raise AssetRefused(f"could not be fetched: {exc}") from None
        finally:
            connection.close()
    raise AssetRefused("too many redirects")


def _url_sha256(url: str) -> str:
    return hashlib.sha256(url.encode("utf-8", "surrogatepass")).hexdigest()


def asset_get(url: str, *, fetch: bool = True) -> AssetContent | None:
    """The stored content of `url`, fetched now if it never was (or failed a while ago)."""
    source = AssetSource.objects.select_related("content").filter(url_sha256=_url_sha256(url))
    found = source.first()
    retry_after = timedelta(seconds=conf.get("REPLAY_ASSET_RETRY_AFTER"))
    if found is not None and (
        found.content is not None or not fetch or found.fetched_at > timezone.now() - retry_after
    ):
        return found.content
    if not fetch:
        return None
    try:
        data, content_type = asset_fetch_remote(url)
    except AssetRefused as exc:
        content, failure = None, str(exc)
    else:
        content, failure = _content_store(data, content_type), ""
    AssetSource.objects.update_or_create(
        url_sha256=_url_sha256(url),
        defaults={"url": url, "content": content, "failure": failure, "fetched_at": timezone.now()},
    )
    return content


def _content_store(data: bytes, content_type: str) -> AssetContent:
    digest = hashlib.sha256(data).hexdigest()
    try:
        with transaction.atomic():
            content, _ = AssetContent.objects.get_or_create(
                sha256=digest,
                defaults={"content_type": content_type, "size": len(data), "data": data},
            )
    except IntegrityError:  # stored by a concurrent fetch of another URL with these bytes
        content = AssetContent.objects.get(sha256=digest)
    return content


# Signed URLs -------------------------------------------------------------------------------


def asset_token(url: str) -> str:
    """A token naming `url` that only this server can make: /assets/ is no open proxy."""
    return signing.Signer(salt=_SALT).sign_object(url, compress=True)


def asset_url_from_token(token: str) -> str | None:
    try:
        url = signing.Signer(salt=_SALT).unsign_object(token)
    except (signing.BadSignature, ValueError):
        return None
    return url if isinstance(url, str) else None


def proxied(url: str) -> str:
    """Where staff pages load `url` from: our origin (absolute URLs only; others as they are)."""
    if url.startswith("//"):
        url = "https:" + url
    if not re.match(r"https?://", url, re.IGNORECASE):
        return url
    return _proxied_path(url, settings.SECRET_KEY, get_script_prefix())


# A page's snapshot names the same URLs again and again, and signing each costs more than the
# rest of serving it: the path depends on nothing else than these three.
@functools.lru_cache(maxsize=4096)
def _proxied_path(url: str, secret_key: str, script_prefix: str) -> str:
    return reverse("conversations:asset", kwargs={"token": asset_token(url)})


def embedded(url: str) -> str:
    """`url` as a data: URI of its cached content (fetched if need be), or the placeholder."""
    if url.startswith("//"):
        url = "https:" + url
    if not re.match(r"https?://", url, re.IGNORECASE):
        return url if url.startswith(("data:", "#")) else _data_uri(PLACEHOLDER, PLACEHOLDER_TYPE)
    content = asset_get(url)
    if content is None:
        return _data_uri(PLACEHOLDER, PLACEHOLDER_TYPE)
    return _data_uri(bytes(content.data), content.content_type)


def _data_uri(data: bytes, content_type: str) -> str:
    return f"data:{content_type};base64,{base64.b64encode(data).decode()}"


# Rewriting recorded events -----------------------------------------------------------------

# Attributes whose value is a URL the browser loads (not links it would only follow).
_URL_ATTRIBUTES = {"src", "poster", "background", "data", "xlink:href"}
_LOADED_HREF = {"link", "image", "use"}
_CSS_URL = re.compile(r"""url\(\s*(['"]?)([^'")]*)\1\s*\)""", re.IGNORECASE)
_CSS_IMPORT = re.compile(r"""@import\s+(['"])([^'"]+)\1""", re.IGNORECASE)


def rewrite_css(css: str, to: Callable[[str], str]) -> str:
    """CSS with the URLs it loads (url(), @import) replaced by `to(url)`."""
    css = _CSS_URL.sub(lambda m: f'url("{to(m.group(2).strip())}")', css)
    return _CSS_IMPORT.sub(lambda m: f'@import "{to(m.group(2))}"', css)


def _rewrite_srcset(value: str, to: Callable[[str], str]) -> str:
    candidates = []
    for candidate in value.split(","):
        words = candidate.strip().split(None, 1)
        if words:
            candidates.append(" ".join([to(words[0]), *words[1:]]))
    return ", ".join(candidates)


def _rewrite_attributes(tag: str, attributes: dict, to: Callable[[str], str]) -> None:
    for name, value in list(attributes.items()):
        if not isinstance(value, str):
            continue
        key = name.lower()
        if key in _URL_ATTRIBUTES or (key == "href" and tag in _LOADED_HREF):
            attributes[name] = to(value)
        elif key in ("srcset", "imagesrcset"):
            attributes[name] = _rewrite_srcset(value, to)
        elif key in ("style", "_csstext"):
            attributes[name] = rewrite_css(value, to)


def _rewrite_node(node: object, to: Callable[[str], str]) -> None:
    stack = [node]
    while stack:
        item = stack.pop()
        if not isinstance(item, dict):
            continue
        attributes = item.get("attributes")
        if isinstance(attributes, dict):
            _rewrite_attributes(str(item.get("tagName", "")).lower(), attributes, to)
        if item.get("isStyle") and isinstance(item.get("textContent"), str):
            item["textContent"] = rewrite_css(item["textContent"], to)
        children = item.get("childNodes")
        if isinstance(children, list):
            stack.extend(children)


def rewrite_events(events: list, to: Callable[[str], str] = proxied) -> None:
    """Point the URLs that decoded rrweb `events` load at `to(url)`, in place."""
    for event in events:
        data = event.get("data") if isinstance(event, dict) else None
        if not isinstance(data, dict):
            continue
        if event.get("type") == 2:
            _rewrite_node(data.get("node"), to)
        elif event.get("type") == 3 and data.get("source") == 0:
            for added in data.get("adds") or []:
                if isinstance(added, dict):
                    _rewrite_node(added.get("node"), to)
            for changed in data.get("attributes") or []:
                if isinstance(changed, dict) and isinstance(changed.get("attributes"), dict):
                    # The tag is not in a mutation: treat a changed href as loaded (harmless).
                    _rewrite_attributes("link", changed["attributes"], to)
        elif event.get("type") == 3 and data.get("source") == 8:
            for rule in data.get("adds") or []:
                if isinstance(rule, dict) and isinstance(rule.get("rule"), str):
                    rule["rule"] = rewrite_css(rule["rule"], to)
