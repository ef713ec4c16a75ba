"""Staff annotations of a conversation: notes pinned to a moment of its replay, and tags.

Services check what is written and write it; who may write is asked by the views, through
conversations.permissions, and each write is audited there.
"""

from django.db import transaction
from django.db.models import F

from conversations import conf
from conversations.models import Conversation, ConversationNote
from conversations.scrub import scrub_text

NOTE_MAX_CHARS = 2000
TAG_MAX_CHARS = 40
TAGS_MAX_CHARS = Conversation._meta.get_field("tags").max_length


class AnnotationError(ValueError):
    """A note or tag that cannot be stored; the message says why, for the person typing."""


def note_text_clean(text: object) -> str:
    if not isinstance(text, str):
        raise AnnotationError("a note's text must be a string")
    # PostgreSQL's text refuses U+0000; nobody types it.
    text = text.replace("\x00", "").strip()
    if not text:
        raise AnnotationError("a note cannot be empty")
    if len(text) > NOTE_MAX_CHARS:
        raise AnnotationError(f"a note is at most {NOTE_MAX_CHARS} characters")
    return text


def note_offset_clean(offset_ms: object) -> int:
    if isinstance(offset_ms, bool) or not isinstance(offset_ms, int | float):
        raise AnnotationError("offset_ms must be a number of milliseconds")
    if not 0 <= offset_ms < 2**53:
        raise AnnotationError("offset_ms must be a moment of the recording, from 0")
    return int(offset_ms)


@transaction.atomic
def note_create(
    *, conversation: Conversation, author, offset_ms: object, text: object
) -> ConversationNote:
    """Pin a note by `author` at `offset_ms` from the start of the conversation's recording."""
    offset_ms = note_offset_clean(offset_ms)
    text = note_text_clean(text)
    masked = 0
    if conf.get("REPLAY_SCRUB"):
        # Staff quote what customers wrote, and notes travel in every export: a card number
        # is masked here as ingest masks it in messages, and counted the same way.
        text, masked = scrub_text(text)
    note = ConversationNote.objects.create(
        conversation=conversation,
        author=author,
        author_name=author.get_username(),
        offset_ms=offset_ms,
        text=text,
    )
    if masked:
        Conversation.objects.filter(pk=conversation.pk).update(
            scrubbed_total=F("scrubbed_total") + masked
        )
    return note


def note_delete(*, note: ConversationNote) -> None:
    note.delete()


def tag_clean(tag: object) -> str:
    """A tag as stored: trimmed, lower case, one line, no commas (they separate tags)."""
    if not isinstance(tag, str):
        raise AnnotationError("a tag must be a string")
    tag = " ".join(tag.split()).lower()
    if not tag:
        raise AnnotationError("a tag cannot be empty")
    if "," in tag or not tag.isprintable():
        raise AnnotationError("a tag cannot hold commas or control characters")
    if len(tag) > TAG_MAX_CHARS:
        raise AnnotationError(f"a tag is at most {TAG_MAX_CHARS} characters")
    return tag


def _tags_save(conversation: Conversation, tags: list[str]) -> list[str]:
    text = ", ".join(tags)
    if len(text) > TAGS_MAX_CHARS:
        raise AnnotationError(f"a conversation's tags take at most {TAGS_MAX_CHARS} characters")
    conversation.tags = text
    conversation.save(update_fields=["tags"])
    return tags


@transaction.atomic
def conversation_tag_add(*, conversation: Conversation, tag: object) -> list[str]:
    """Add `tag` (once; tags compare in lower case); the conversation's tags after."""
    tag = tag_clean(tag)
    conversation = Conversation.objects.select_for_update().get(pk=conversation.pk)
    tags = conversation.tag_list
    if tag in (existing.lower() for existing in tags):
        return tags
    return _tags_save(conversation, [*tags, tag])


@transaction.atomic
def conversation_tag_remove(*, conversation: Conversation, tag: object) -> list[str]:
    """Remove `tag`, however it was written; the conversation's tags after."""
    tag = tag_clean(tag)
    conversation = Conversation.objects.select_for_update().get(pk=conversation.pk)
    return _tags_save(conversation, [t for t in conversation.tag_list if t.lower() != tag])
