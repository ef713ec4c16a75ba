"""Console errors and failed requests of a stored batch: counted, and kept for the replay page."""

from conversations import rrweb
from conversations.ingest.items import Context
from conversations.ingest.sql import bump
from conversations.models import Conversation, PageError


def page_errors_count(ctx: Context, conversation: Conversation, batch: rrweb.DecodedBatch) -> None:
    """Add a batch's errors to its conversation's counters (written with the others)."""
    if batch.console_errors:
        bump(ctx, conversation, "console_error_total", batch.console_errors)
    if batch.network_errors:
        bump(ctx, conversation, "network_error_total", batch.network_errors)


def page_errors_insert(
    *, conversation_id: int, event_index: int, batch: rrweb.DecodedBatch
) -> None:
    """Keep a stored batch's errors as rows; call it once the batch's own row is written.

    A page logging in a loop is counted in full but listed only up to MAX_ERRORS_PER_BATCH
    rows a batch. A row already there (the same event) is left as it is.
    """
    if not batch.errors:
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
            for error in batch.errors[: rrweb.MAX_ERRORS_PER_BATCH]
        ],
        ignore_conflicts=True,
    )
