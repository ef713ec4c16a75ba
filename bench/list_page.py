"""The list page's query at 100,000 conversations on PostgreSQL, against the list before it.

Fills a scratch PostgreSQL database as bench/search.py does (100,000 conversations, 300,000
messages), gives each conversation a customer and an agent who speaks first, and a page,
and marks half of them watched by one staff member. Then times what the list page reads
for one page of 50 rows (the rows and their participants): as it was before the customer's
first message and the watched mark (the baseline), as it is now, and with the chat and
unwatched filters on, on the first page and 200 pages deep.

    DATABASE_URL=postgres://user@host:5432/db .venv/bin/python bench/list_page.py
"""

import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.harness import scratch_postgres_django  # noqa: E402
from bench.search import fill  # noqa: E402


def roles(cursor, user_id: int) -> None:
    """Customers who joined first, agents who answer first, a page each, half watched."""
    cursor.execute(
        "UPDATE conversations_participant SET arn = 'arn:c' || conversation_id, "
        "joined_dts = now() - interval '1 hour'"
    )
    cursor.execute(
        """INSERT INTO conversations_participant (conversation_id, key, arn, participant_uuid,
             name, email, sms_phone_number, profile_image_url, language_iso_code, timezone,
             status, raw, updated_at, joined_dts)
           SELECT g, 'a' || g, 'arn:a' || g, '', 'Agent', '', '', '', '', '', '', '{}', now(),
             now()
           FROM generate_series(1, 100000) g"""
    )
    # The first 100,000 messages are each conversation's first: the agent's greeting.
    cursor.execute(
        "UPDATE conversations_message SET message_epoch = id, author_arn = CASE "
        "WHEN id <= 100000 THEN 'arn:a' ELSE 'arn:c' END || conversation_id"
    )
    cursor.execute(
        "UPDATE conversations_conversation SET first_href = 'https://shop.example/p' || id"
    )
    cursor.execute(
        """INSERT INTO conversations_conversationview (user_id, conversation_id,
             first_viewed_at, last_viewed_at)
           SELECT %s, g, now(), now() FROM generate_series(2, 100000, 2) g""",
        [user_id],
    )
    cursor.execute("ANALYZE")


def timed_pair(baseline, read, rounds: int = 15) -> tuple[float, float]:
    """Median milliseconds of each, run alternately so a busy machine weighs on both."""
    baseline(), read()
    samples: tuple[list[float], list[float]] = ([], [])
    for _ in range(rounds):
        for function, into in ((baseline, samples[0]), (read, samples[1])):
            started = time.perf_counter()
            function()
            into.append(time.perf_counter() - started)
    return statistics.median(samples[0]) * 1000, statistics.median(samples[1]) * 1000


def main() -> None:
    label, cleanup = scratch_postgres_django(
        "list_page.py", "measures the list at scale on PostgreSQL"
    )
    from django.contrib.auth import get_user_model
    from django.core.management import call_command
    from django.db import connection
    from django.db.models import TextField, Value

    from conversations import selectors
    from conversations.models import Conversation

    cursors = {False: ""}

    def page(user, before: bool = False, deep: bool = False, **filters) -> int:
        queryset = selectors.conversation_filter(
            selectors.ConversationFilters(**filters), user=user
        )
        items = selectors.conversation_page(queryset=queryset, cursor=cursors[deep], limit=50).items
        for item in items:
            list(item.participants.all())
        assert before or all(item.first_customer_message for item in items), "no first message"
        return len(items)

    real = selectors._first_customer_message

    def before(**kwargs) -> None:
        # The list as it was: no first customer message, no watched mark.
        selectors._first_customer_message = lambda: Value("", output_field=TextField())
        try:
            page(None, before=True, **kwargs)
        finally:
            selectors._first_customer_message = real

    try:
        call_command("migrate", verbosity=0)
        user = get_user_model().objects.create_user("bench", is_staff=True)
        with connection.cursor() as cursor:
            fill(cursor)
            roles(cursor, user.pk)
        moment, pk = Conversation.objects.order_by("-first_seen_at", "-id").values_list(
            "first_seen_at", "id"
        )[10_000]
        cursors[True] = selectors._encode_cursor(Conversation(first_seen_at=moment, pk=pk))
        cases = [
            ("first page", {}, {}),
            ("200 pages deep", {"deep": True}, {"deep": True}),
            ("chat and unwatched filters", {}, {"has_messages": True, "unwatched": True}),
        ]
        print(
            f"database: {label}; 100,000 conversations, 300,000 messages; median of 15, alternated"
        )
        for name, old, new in cases:
            baseline, now = timed_pair(
                lambda old=old: before(**old), lambda new=new: page(user, **new)
            )
            print(
                f"{name:28} before {baseline:7.1f} ms | now {now:7.1f} ms | "
                f"ratio {now / baseline:.2f}"
            )
    finally:
        connection.close()
        cleanup()


if __name__ == "__main__":
    main()
