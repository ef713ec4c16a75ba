"""GET /healthz for load balancers: the database answers and the journal keeps up."""

from django.db import DatabaseError
from django.http import HttpRequest, JsonResponse
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from conversations import conf
from conversations.ingest.worker import journal_lag


@never_cache
@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    """200 while the database answers and the journal's oldest entry is recent; else 503."""
    try:
        waiting, oldest = journal_lag()
    except DatabaseError as exc:
        return JsonResponse({"ok": False, "error": f"database: {exc}"}, status=503)
    lag = (timezone.now() - oldest).total_seconds() if oldest else 0.0
    limit = conf.get("REPLAY_HEALTH_MAX_LAG")
    ok = lag <= limit
    body = {"ok": ok, "journal_entries": waiting, "journal_lag_seconds": round(lag, 3)}
    if not ok:
        body["error"] = f"the journal's oldest entry is {lag:.0f} s old (limit {limit} s)"
    return JsonResponse(body, status=200 if ok else 503)
