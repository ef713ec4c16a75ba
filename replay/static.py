"""Static files served on the server's event loop, WhiteNoise deciding what to send.

WhiteNoise's Django middleware is synchronous, so under Daphne each static request would
go through the one thread Django keeps for synchronous code: the replay page's style sheets
and bundle one after another, and behind any page or API request being served. Here the
same WhiteNoise (its table of files, compressed variants, ETags, caching headers, ranges)
answers them before Django is entered; only opening and reading a file goes to a thread
of its own. Paths WhiteNoise does not know go on to Django as before.
"""

import asyncio

from django.conf import settings
from whitenoise.middleware import WhiteNoiseMiddleware

_CHUNK = 256 * 1024


def _security_headers(secure: bool) -> list[tuple[bytes, bytes]]:
    """What Django's SecurityMiddleware adds to its responses, for a file as well."""
    headers = []
    if secure and settings.SECURE_HSTS_SECONDS:
        hsts = f"max-age={settings.SECURE_HSTS_SECONDS}"
        if settings.SECURE_HSTS_INCLUDE_SUBDOMAINS:
            hsts += "; includeSubDomains"
        if settings.SECURE_HSTS_PRELOAD:
            hsts += "; preload"
        headers.append((b"strict-transport-security", hsts.encode()))
    if settings.SECURE_CONTENT_TYPE_NOSNIFF:
        headers.append((b"x-content-type-options", b"nosniff"))
    if settings.SECURE_REFERRER_POLICY:
        policy = settings.SECURE_REFERRER_POLICY
        if not isinstance(policy, str):
            policy = ",".join(policy)
        headers.append((b"referrer-policy", policy.encode()))
    if settings.SECURE_CROSS_ORIGIN_OPENER_POLICY:
        headers.append(
            (b"cross-origin-opener-policy", settings.SECURE_CROSS_ORIGIN_OPENER_POLICY.encode())
        )
    return headers


def _secure(scope: dict, environ: dict[str, str]) -> bool:
    """Whether the request came over HTTPS, as Django's request.is_secure() decides."""
    if settings.SECURE_PROXY_SSL_HEADER:
        name, value = settings.SECURE_PROXY_SSL_HEADER
        forwarded = environ.get(name)
        if forwarded is not None:
            return forwarded.split(",")[0].strip() == value
    return scope.get("scheme") == "https"


def _environ(scope: dict) -> dict[str, str]:
    """The request headers as WhiteNoise reads them (WSGI environ names)."""
    environ = {}
    for name, value in scope.get("headers", ()):
        key = "HTTP_" + name.decode("latin-1").upper().replace("-", "_")
        environ[key] = value.decode("latin-1")
    return environ


class StaticFiles:
    """An ASGI application: static files from WhiteNoise's table, everything else to `app`."""

    def __init__(self, app) -> None:
        self.app = app
        self.whitenoise = WhiteNoiseMiddleware(get_response=None)

    async def __call__(self, scope, receive, send) -> None:
        path = scope.get("path", "")
        if (
            scope["type"] != "http"
            or scope.get("method") not in ("GET", "HEAD")
            or not path.startswith(self.whitenoise.static_prefix)
        ):
            return await self.app(scope, receive, send)
        if self.whitenoise.autorefresh:  # development: the files are looked up on every request
            static_file = await asyncio.to_thread(self.whitenoise.find_file, path)
        else:
            static_file = self.whitenoise.files.get(path)
        environ = _environ(scope)
        secure = _secure(scope, environ)
        if static_file is None or (settings.SECURE_SSL_REDIRECT and not secure):
            return await self.app(scope, receive, send)  # Django's, or its redirect to HTTPS
        response = await asyncio.to_thread(static_file.get_response, scope["method"], environ)
        headers = [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in response.headers]
        await send(
            {
                "type": "http.response.start",
                "status": int(response.status),
                "headers": headers + _security_headers(secure),
            }
        )
        if response.file is None:
            await send({"type": "http.response.body", "body": b""})
            return
        try:
            while True:
                chunk = await asyncio.to_thread(response.file.read, _CHUNK)
                more = len(chunk) == _CHUNK
                await send({"type": "http.response.body", "body": chunk, "more_body": more})
                if not more:
                    break
        finally:
            response.file.close()
