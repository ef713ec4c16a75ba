"""What each staff member keeps for themselves: saved list filters, conversations watched."""

from urllib.parse import urlencode

from django.db import IntegrityError, transaction
from django.utils import timezone

from conversations.models import Conversation, ConversationView, SavedFilter

# The list's own paging is not part of a filter.
_NOT_FILTERS = {"cursor"}


class SavedFilterError(ValueError):
    """A filter that cannot be saved under that name; the message says why."""


def filter_query(params) -> str:
    """The query string of a filter set: the list URL's non-empty filters, in a stable order."""
    kept = sorted(
        (key, value) for key, value in params.items() if value and key not in _NOT_FILTERS
    )
    return urlencode(kept)


def saved_filter_create(*, user, name: str, query: str) -> SavedFilter:
    """Save `query` under `name` for `user`; saving again under a name replaces its query."""
    name = " ".join(name.split())[:100]
    if not name:
        raise SavedFilterError("Give the filter a name.")
    if len(query) > SavedFilter._meta.get_field("query").max_length:
        raise SavedFilterError("These filters are too long to save.")
    try:
        with transaction.atomic():
            saved, _ = SavedFilter.objects.update_or_create(
                user=user, name=name, defaults={"query": query}
            )
    except IntegrityError:  # saved under that name at the same moment, by another tab
        saved = SavedFilter.objects.get(user=user, name=name)
    return saved


def saved_filter_delete(*, user, pk: int) -> bool:
    """Delete one of `user`'s saved filters; False if they have none with that id."""
    deleted, _ = SavedFilter.objects.filter(user=user, pk=pk).delete()
    return bool(deleted)


def saved_filter_list(*, user) -> list[SavedFilter]:
    return list(SavedFilter.objects.filter(user=user))


def conversation_view_record(*, user, conversation: Conversation) -> None:
    """Remember that `user` opened `conversation`'s replay: first and latest time."""
    at = timezone.now()
    # One statement on both databases, and two tabs opening it at once cannot collide.
    ConversationView.objects.bulk_create(
        [
            ConversationView(
                user=user, conversation=conversation, first_viewed_at=at, last_viewed_at=at
            )
        ],
        update_conflicts=True,
        unique_fields=["user", "conversation"],
        update_fields=["last_viewed_at"],
    )
