"""Console errors and failed requests of a stored batch: counted, and kept for the replay page."""

import json

from django.db import transaction

from conversations import rrweb, storage
from conversations.ingest.items import Context
from conversations.ingest.sql import bump
from conversations.models import Conversation, PageError
from conversations.selectors import recording_batch_list


def page_errors_count(ctx: Context, conversation: Conversation, batch: rrweb.DecodedBatch) -> None:
    """Add a batch's errors to its conversation's counters (written with the others)."""
    if batch.console_errors:
        bump(ctx, conversation, "console_error_total", batch.console_errors)
    if batch.network_errors:
        bump(ctx, conversation, "network_error_total", batch.network_errors)


def page_errors_insert(
    *, conversation_id: int, event_index: int, errors: tuple[rrweb.PageError, ...]
) -> None:
    """Keep a stored batch's errors as rows; call it once the batch's own row is written.

    A page logging in a loop is counted in full but listed only up to MAX_ERRORS_PER_BATCH
    rows a batch. A row already there (the same event) is left as it is.
    """
    if not errors:
        return
    PageError.objects.bulk_create(
        [
            PageError(
                conversation_id=conversation_id,
                event_index=event_index,
                position=error.position,
                ts=error.ts,
                kind=error.kind,
                level=error.level,
                message=error.message,
                url=error.url,
                method=error.method,
                status=error.status,
                duration_ms=error.duration_ms,
            )
            for error in errors[: rrweb.MAX_ERRORS_PER_BATCH]
        ],
        ignore_conflicts=True,
    )


def page_errors_recount(conversation_id: int) -> tuple[int, int]:
    """Count and list a stored recording's errors again, from its batches; (console, network).

    For recordings stored before ingest counted them: their counters say 0 and the replay
    page lists nothing. The counters are set, not added to, so running it twice (or on a
    recording ingest already counted) changes nothing. The conversation's row is locked
    first: the worker updates that row in the transaction that stores a batch, so a batch
    arriving meanwhile is counted either here or by the worker after, never twice or lost.
    """
    console = network = 0
    with transaction.atomic():
        Conversation.objects.select_for_update().filter(pk=conversation_id).exists()
        for batch, events_json in storage.events_json_each(recording_batch_list(conversation_id)):
            errors = rrweb.page_errors_of(json.loads(events_json))
            console += rrweb.console_error_count(errors)
            network += rrweb.network_error_count(errors)
            page_errors_insert(
                conversation_id=conversation_id,
                event_index=batch.event_index,
                errors=errors,
            )
        Conversation.objects.filter(pk=conversation_id).update(
            console_error_total=console, network_error_total=network
        )
    return console, network
