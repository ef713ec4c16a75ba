"""Conversation search at 100,000 conversations on PostgreSQL, with and without its indexes.

Fills a scratch PostgreSQL database with 100,000 conversations, 300,000 messages and their
participants, then times the list page's search query (the first page of results) with
the full-text indexes of migration 0004 and, as the baseline, with them dropped.

    DATABASE_URL=postgres://user@host:5432/db .venv/bin/python bench/search.py
"""

import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.harness import scratch_postgres_django  # noqa: E402

QUERIES = ["kettles 42", "p77@example.com", "hello there"]


def fill(cursor) -> None:
    cursor.execute(
        """INSERT INTO conversations_conversation (uuid, arn, merchant_id, medium, closed,
             last_message_body, last_participant_arn, last_participant_name, summary_rank,
             message_total, event_total, rrweb_batch_total, rrweb_event_total, scrubbed_total,
             first_seen_at, updated_at, legal_hold, tags)
           SELECT 'c' || g, '', '', 'websocket', false, '', '', '', '', 3, 0, 0, 0, 0,
             now() - g * interval '1 minute', now(), false, ''
           FROM generate_series(1, 100000) g"""
    )
    cursor.execute(
        """INSERT INTO conversations_message (conversation_id, message_uuid, client_message_id,
             author_arn, author_name, body, message_type, type, language_iso_code, media_urls,
             translations, transport_statuses, original_sha256, edit_count, received_at)
           SELECT (g % 100000) + 1, 'm' || g, '', '', 'Ada',
             'hello there number ' || g || ' about kettles ' || (g % 997), '', 'message', '',
             '[]', '[]', '[]', '', 0, now()
           FROM generate_series(1, 300000) g"""
    )
    cursor.execute(
        """INSERT INTO conversations_participant (conversation_id, key, arn, participant_uuid,
             name, email, sms_phone_number, profile_image_url, language_iso_code, timezone,
             status, raw, updated_at)
           SELECT g, 'k' || g, '', '', 'Person ' || g, 'p' || g || '@example.com', '', '', '',
             '', '', '{}', now()
           FROM generate_series(1, 100000) g"""
    )
    cursor.execute("ANALYZE")


def timed(search, query: str) -> float:
    samples = []
    for _ in range(5):
        started = time.perf_counter()
        list(search(query))
        samples.append(time.perf_counter() - started)
    return statistics.median(samples) * 1000


def main() -> None:
    label, cleanup = scratch_postgres_django("search.py", "measures PostgreSQL's full-text search")
    from django.core.management import call_command
    from django.db import connection

    from conversations import selectors
    from conversations.models import Conversation

    def search(query: str):
        queryset = selectors._conversation_search(Conversation.objects.all(), query)
        return queryset.order_by("-first_seen_at", "-id")[:50]

    try:
        call_command("migrate", verbosity=0)
        with connection.cursor() as cursor:
            fill(cursor)
        indexed = {query: timed(search, query) for query in QUERIES}
        call_command("migrate", "conversations", "0003", verbosity=0)  # drops the indexes
        plain = {query: timed(search, query) for query in QUERIES}
        print(f"database: {label}; 100,000 conversations, 300,000 messages; median of 5")
        for query in QUERIES:
            print(
                f"{query!r:22} indexed {indexed[query]:7.1f} ms | without indexes "
                f"{plain[query]:7.1f} ms | ratio {indexed[query] / plain[query]:.3f}"
            )
    finally:
        connection.close()
        cleanup()


if __name__ == "__main__":
    main()
