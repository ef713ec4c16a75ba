"""Ingest: frames go from the socket into a durable journal, and workers apply them.

- journal.py:    the socket's side: append frames in group commits; a ping waits for them.
- worker.py:     claim journal entries by conversation and apply them, in journal order.
- apply.py:      apply a group of frames in one transaction, each in its own savepoint.
- items.py:      frames as the services see them (Item, Outcome, Status, Rejection).
- conversations.py, messages.py, timeline.py, batches.py, parts.py: one service each.
- rejections.py: frames kept aside with their reason.
- sql.py:        lean SQL for the hot paths, and the counters kept per conversation.
"""

from conversations.ingest.apply import frame_apply, items_apply, items_store
from conversations.ingest.batches import batch_store
from conversations.ingest.items import (
    Context,
    Item,
    Outcome,
    Rejection,
    Status,
    item_from_binary,
    item_from_text,
)
from conversations.ingest.parts import pending_expire
from conversations.ingest.timeline import queue_position_for

STORED = Status.STORED
DUPLICATE = Status.DUPLICATE
PENDING = Status.PENDING
REJECTED = Status.REJECTED

__all__ = [
    "DUPLICATE",
    "PENDING",
    "REJECTED",
    "STORED",
    "Context",
    "Item",
    "Outcome",
    "Rejection",
    "Status",
    "batch_store",
    "frame_apply",
    "item_from_binary",
    "item_from_text",
    "items_apply",
    "items_store",
    "pending_expire",
    "queue_position_for",
]
