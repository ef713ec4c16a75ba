"""The archive's schema; its unique constraints are what make re-sent frames harmless."""

import hashlib
import secrets

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.utils.timezone import now

from conversations import conf
from conversations.fields import CompressedJSONField


class IngestKeyQuerySet(models.QuerySet):
    def active(self) -> "IngestKeyQuerySet":
        return self.filter(revoked_at__isnull=True)


class IngestKey(models.Model):
    """A credential that lets one source (a shop's widget or a relay) stream frames in."""

    PREFIX = "rk_"

    name = models.CharField(max_length=100, unique=True)
    key_hash = models.CharField(max_length=64, unique=True, editable=False)
    hint = models.CharField(max_length=16, editable=False, help_text="The key's first characters.")
    created_at = models.DateTimeField(default=now, editable=False)
    revoked_at = models.DateTimeField(null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True, editable=False)

    objects = IngestKeyQuerySet.as_manager()

    class Meta:
        ordering = ["name"]
        permissions = [("revoke_ingestkey", "Can revoke ingest keys")]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        if self._state.adding and (app := self.owning_app(self.name)):
            raise ValidationError({"name": f"{self.name!r} is reserved for the {app!r} app."})

    @staticmethod
    def owning_app(name: str) -> str | None:
        """The app that makes the key named `name` for itself, if any (REPLAY_APP_INGEST_KEYS)."""
        return conf.get("REPLAY_APP_INGEST_KEYS").get(name)

    @staticmethod
    def hash_key(raw_key: str) -> str:
        # Keys are 256 random bits, so a fast hash is enough: there is nothing to brute-force.
        return hashlib.sha256(raw_key.encode("utf-8")).hexdigest()

    @classmethod
    def new_raw_key(cls) -> str:
        return cls.PREFIX + secrets.token_urlsafe(32)

    def set_key(self, raw_key: str) -> None:
        self.key_hash = self.hash_key(raw_key)
        self.hint = raw_key[: len(self.PREFIX) + 4]

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None


class Conversation(models.Model):
    """One chat, created on first sight of its uuid and completed as frames arrive."""

    uuid = models.CharField(max_length=100, unique=True)
    arn = models.CharField(max_length=255, blank=True)
    merchant_id = models.CharField(max_length=100, blank=True)
    medium = models.CharField(max_length=20, blank=True)
    start_dts = models.DateTimeField(null=True, blank=True)
    closed = models.BooleanField(default=False)
    closed_dts = models.DateTimeField(null=True, blank=True)
    visible = models.BooleanField(null=True)
    unread_messages = models.BooleanField(null=True)
    last_message_dts = models.DateTimeField(null=True, blank=True)
    last_interactive_message_dts = models.DateTimeField(null=True, blank=True)
    customer_first_message_unresponded_to_dts = models.DateTimeField(null=True, blank=True)
    last_message_body = models.TextField(blank=True)
    last_participant_arn = models.CharField(max_length=255, blank=True)
    last_participant_name = models.CharField(max_length=255, blank=True)
    summary_message_count = models.IntegerField(null=True, blank=True)
    sentiment = models.JSONField(null=True, blank=True)
    summary = CompressedJSONField(null=True, blank=True, help_text="The newest summary, as sent.")
    summary_rank = models.CharField(max_length=64, blank=True, editable=False)
    # Counters kept by the ingest services, so lists need no aggregate queries.
    message_total = models.IntegerField(default=0)
    event_total = models.IntegerField(default=0)
    rrweb_batch_total = models.IntegerField(default=0)
    rrweb_event_total = models.IntegerField(default=0)
    scrubbed_total = models.IntegerField(
        default=0, help_text="Card numbers and the like masked out before they were stored."
    )
    console_error_total = models.IntegerField(
        default=0, help_text="Console errors the recording holds (warnings not counted)."
    )
    network_error_total = models.IntegerField(
        default=0, help_text="Failed requests the recording holds (network errors, status 400+)."
    )
    recording_start_ms = models.BigIntegerField(null=True, blank=True)
    recording_end_ms = models.BigIntegerField(null=True, blank=True)
    # The page the customer was on: the href of the lowest-numbered batch that has one, kept
    # as batches arrive (in any order), since packed batches leave no row to query.
    first_href = models.TextField(blank=True, default="", db_default="")
    first_href_index = models.BigIntegerField(null=True, blank=True, editable=False)
    # Server minus browser clock (ms), kept as batches arrive: see conversations.clock.
    clock_offset_ms = models.BigIntegerField(null=True, blank=True)
    first_seen_at = models.DateTimeField(default=now, db_index=True)
    updated_at = models.DateTimeField(default=now)
    legal_hold = models.BooleanField(
        default=False, help_text="Never purged by the retention policy while set."
    )
    tags = models.CharField(max_length=500, blank=True, help_text="Comma-separated labels.")

    class Meta:
        ordering = ["-first_seen_at", "-id"]
        indexes = [models.Index(fields=["-first_seen_at", "-id"], name="conv_newest")]
        permissions = [
            ("export_conversation", "Can export conversations"),
            ("hold_conversation", "Can set or lift legal hold"),
            ("annotate_conversation", "Can add notes and tags to conversations"),
        ]

    def __str__(self) -> str:
        return self.uuid

    @property
    def tag_list(self) -> list[str]:
        return [tag.strip() for tag in self.tags.split(",") if tag.strip()]

    @property
    def has_recording(self) -> bool:
        return self.rrweb_batch_total > 0

    @property
    def error_total(self) -> int:
        return self.console_error_total + self.network_error_total


class ConversationNote(models.Model):
    """A staff member's note pinned to a moment of a conversation's recording."""

    conversation = models.ForeignKey(Conversation, on_delete=models.CASCADE, related_name="notes")
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # Kept when the account goes, and the only author an imported note has: accounts are per
    # installation, so an archive cannot name one.
    author_name = models.CharField(max_length=150, blank=True)
    offset_ms = models.BigIntegerField(
        help_text="Milliseconds from the start of the recording (what the replay page shows)."
    )
    text = models.TextField()
    created_at = models.DateTimeField(default=now)

    class Meta:
        ordering = ["offset_ms", "created_at", "id"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(offset_ms__gte=0), name="note_offset_not_negative"
            )
        ]

    def __str__(self) -> str:
        return f"{self.author_name or 'someone'} at {self.offset_ms} ms: {self.text[:40]}"


class Participant(models.Model):
    """Someone in a conversation: the customer, an agent, a bot."""

    conversation = models.ForeignKey(
        Conversation, on_delete=models.CASCADE, related_name="participants"
    )
    key = models.CharField(max_length=255, help_text="The participant's arn, else uuid, else name.")
    arn = models.CharField(max_length=255, blank=True)
    participant_uuid = models.CharField(max_length=100, blank=True)
    name = models.CharField(max_length=255, blank=True)
    email = models.CharField(max_length=255, blank=True)
    sms_phone_number = models.CharField(max_length=64, blank=True)
    profile_image_url = models.TextField(blank=True)
    language_iso_code = models.CharField(max_length=16, blank=True)
    timezone = models.CharField(max_length=64, blank=True)
    status = models.CharField(max_length=64, blank=True)
    joined_dts = models.DateTimeField(null=True, blank=True)
    left_dts = models.DateTimeField(null=True, blank=True)
    last_message_dts = models.DateTimeField(null=True, blank=True)
    unread_messages = models.IntegerField(null=True, blank=True)
    raw = models.JSONField(default=dict)
    updated_at = models.DateTimeField(default=now)

    class Meta:
        ordering = ["joined_dts", "id"]
        constraints = [
            models.UniqueConstraint(fields=["conversation", "key"], name="participant_unique_key")
        ]

    def __str__(self) -> str:
        return self.name or self.key


class Message(models.Model):
    """A chat message; `body` is its current text, earlier versions are its edits."""

    conversation = models.ForeignKey(
        Conversation, on_delete=models.CASCADE, related_name="messages"
    )
    message_uuid = models.CharField(max_length=100)
    client_message_id = models.CharField(max_length=255, blank=True)
    author_arn = models.CharField(max_length=255, blank=True)
    author_name = models.CharField(max_length=255, blank=True)
    body = models.TextField(blank=True)
    message_type = models.CharField(max_length=64, blank=True)
    type = models.CharField(max_length=64, blank=True)
    language_iso_code = models.CharField(max_length=16, blank=True)
    message_dts = models.DateTimeField(null=True, blank=True)
    message_epoch = models.BigIntegerField(null=True, blank=True)
    media_urls = models.JSONField(default=list)
    translations = models.JSONField(default=list)
    transport_statuses = models.JSONField(default=list)
    # The `message` frame's payload as sent; null while only edits have been seen.
    original = CompressedJSONField(null=True, blank=True)
    original_sha256 = models.CharField(max_length=64, blank=True)
    edit_count = models.IntegerField(default=0)
    received_at = models.DateTimeField(default=now)
    source = models.ForeignKey(IngestKey, null=True, blank=True, on_delete=models.SET_NULL)

    class Meta:
        ordering = ["message_epoch", "message_dts", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["conversation", "message_uuid"], name="message_unique_uuid"
            )
        ]

    def __str__(self) -> str:
        return f"{self.author_name}: {self.body[:40]}"


class MessageEdit(models.Model):
    """One `updated message` version of a message, in the order it was received."""

    message = models.ForeignKey(Message, on_delete=models.CASCADE, related_name="edits")
    body = models.TextField(blank=True)
    payload = models.JSONField()
    payload_sha256 = models.CharField(max_length=64)
    received_at = models.DateTimeField(default=now)
    source = models.ForeignKey(IngestKey, null=True, blank=True, on_delete=models.SET_NULL)

    class Meta:
        ordering = ["received_at", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["message", "payload_sha256"], name="edit_unique_payload"
            )
        ]

    def __str__(self) -> str:
        return f"edit of {self.message_id}: {self.body[:40]}"


class TimelineEvent(models.Model):
    """Any `event` frame that is not an rrweb batch: typing, queue, joins, coupons, unknowns."""

    conversation = models.ForeignKey(
        Conversation, on_delete=models.CASCADE, related_name="events", null=True, blank=True
    )
    event_type = models.CharField(max_length=64)
    known = models.BooleanField(default=True, help_text="False for event types we do not model.")
    at = models.DateTimeField(default=now, help_text="When the server received it.")
    event_dts = models.DateTimeField(
        null=True, blank=True, help_text="Its own time, if it has one."
    )
    actor_arn = models.CharField(max_length=255, blank=True)
    actor_name = models.CharField(max_length=255, blank=True)
    summary = models.TextField(blank=True, help_text="A one-line description for the timeline.")
    envelope = CompressedJSONField(help_text="The whole frame, as sent.")
    envelope_sha256 = models.CharField(max_length=64)
    source = models.ForeignKey(IngestKey, null=True, blank=True, on_delete=models.SET_NULL)

    class Meta:
        ordering = ["at", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["conversation", "envelope_sha256"], name="event_unique_envelope"
            )
        ]
        indexes = [models.Index(fields=["conversation", "at"], name="event_by_time")]

    def __str__(self) -> str:
        return f"{self.event_type}: {self.summary[:60]}"


class PageError(models.Model):
    """A console entry or a failed request the customer's browser met, from the recording.

    Derived at ingest from the rrweb plugin events (conversations.rrweb.page_errors) and kept
    here so the replay page lists them without reading the recording; the events themselves
    stay in their batch. (conversation, event_index, position) is the event's place there.
    """

    class Kind(models.TextChoices):
        CONSOLE = "console", "Console"
        NETWORK = "network", "Network"

    conversation = models.ForeignKey(
        Conversation, on_delete=models.CASCADE, related_name="page_errors"
    )
    event_index = models.IntegerField()
    position = models.IntegerField(help_text="The event's place in its batch.")
    ts = models.BigIntegerField(help_text="When, on the recording's clock (epoch ms).")
    kind = models.CharField(max_length=16, choices=Kind.choices)
    level = models.CharField(max_length=16)
    message = models.TextField()
    url = models.TextField(blank=True)
    method = models.CharField(max_length=16, blank=True)
    status = models.IntegerField(null=True, blank=True, help_text="None when no answer came.")
    duration_ms = models.IntegerField(null=True, blank=True)

    class Meta:
        ordering = ["ts", "event_index", "position"]
        constraints = [
            models.UniqueConstraint(
                fields=["conversation", "event_index", "position"], name="page_error_unique_event"
            )
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.level}: {self.message[:60]}"


class QueueStatus(models.Model):
    """A `queue status update`: the queue's agents and waiting customers at one moment."""

    queue_name = models.CharField(max_length=255, blank=True)
    received_at = models.DateTimeField(default=now, db_index=True)
    agent_available_count = models.IntegerField(null=True)
    payload = models.JSONField()

    class Meta:
        ordering = ["-received_at", "-id"]

    def __str__(self) -> str:
        return f"{self.queue_name or 'queue'} at {self.received_at:%Y-%m-%d %H:%M:%S}"


class RecordingDictionary(models.Model):
    """Text the recordings of many conversations share, the dictionary of their first packs.

    A conversation's first page load has no earlier page of its own to be compressed
    against; a shop's pages share most of their markup and styles with other visitors'
    pages. Built by the packing job from the first packs of recent conversations, keeping
    only what several of them contain (rrweb.shared_text), never what one visitor saw alone.
    A new one is built every REPLAY_PACK_DICTIONARY_DAYS; one that no pack uses any more is
    deleted by the retention purge.
    """

    data = models.BinaryField(help_text="The dictionary's text, zstd-compressed.")
    size = models.IntegerField(help_text="Bytes of the dictionary's text.")
    sample_count = models.IntegerField(help_text="Conversations it was built from.")
    created_at = models.DateTimeField(default=now)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name_plural = "recording dictionaries"

    def __str__(self) -> str:
        return f"dictionary {self.pk} ({self.size} bytes, {self.created_at:%Y-%m-%d})"


class RecordingPack(models.Model):
    """The events of a finished page load's batches, recompressed together as one zstd frame.

    Batches arrive a few KB at a time and are stored as they come; once their page load is
    over, compressing them together (at a higher level) takes about half the space. Their
    rows go too: a row and its index entry weigh as much as a small batch compressed.
    (conversation, first..last event_index) ranges of packs never overlap.
    """

    conversation = models.ForeignKey(
        Conversation, on_delete=models.CASCADE, related_name="recording_packs"
    )
    segment = models.IntegerField()
    first_event_index = models.BigIntegerField()
    last_event_index = models.BigIntegerField()
    batch_count = models.IntegerField()
    raw_size = models.BigIntegerField(help_text="Bytes of the batches' events JSON.")
    stored_size = models.IntegerField()
    data = models.BinaryField(help_text="The batches' events JSON, packed and zstd-compressed.")
    index = models.BinaryField(
        help_text="The batches' own fields (as RRWebBatch has them), JSON, zstd-compressed."
    )
    base = models.ForeignKey(
        "self",
        null=True,
        blank=True,
        # RESTRICT, not PROTECT: a base cannot go while a pack that needs it stays, but a
        # conversation's delete takes all its packs at once, bases included.
        on_delete=models.RESTRICT,
        related_name="+",
        db_index=False,
        help_text="A pack of the same conversation whose first batch is this one's dictionary: "
        "pages of one shop share most of their markup and styles.",
    )
    dictionary = models.ForeignKey(
        RecordingDictionary,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        db_index=False,
        help_text="The shared dictionary of a conversation's first pack (which has no base).",
    )
    created_at = models.DateTimeField(default=now)

    class Meta:
        ordering = ["conversation", "first_event_index"]

    def __str__(self) -> str:
        return f"{self.conversation_id} segment {self.segment} ({self.batch_count} batches)"


class RRWebBatch(models.Model):
    """One batch of rrweb events, stored zstd-compressed; (conversation, event_index) is unique."""

    KIND_INIT = "init"
    KIND_EVENTS = "events"

    # The unique (conversation, event_index) index serves lookups by conversation; the other
    # foreign keys are followed rarely (deletes), so they carry no index of their own: each
    # index costs tens of bytes on every one of many small rows.
    conversation = models.ForeignKey(
        Conversation, on_delete=models.CASCADE, related_name="rrweb_batches", db_index=False
    )
    event_index = models.BigIntegerField()
    kind = models.CharField(max_length=8, choices=[("init", "init"), ("events", "events")])
    segment = models.IntegerField(default=0, help_text="Page load number, counted by init batches.")
    first_ts = models.BigIntegerField(help_text="First event timestamp (ms, browser clock).")
    last_ts = models.BigIntegerField(help_text="Last event timestamp (ms, browser clock).")
    event_count = models.IntegerField()
    full_snapshots = models.IntegerField(default=0)
    href = models.TextField(blank=True)
    raw_size = models.IntegerField(help_text="Bytes of the batch text as sent, parts joined.")
    sha256 = models.CharField(max_length=64, help_text="SHA-256 of the batch text as sent.")
    stored_size = models.IntegerField()
    data = models.BinaryField(help_text="The events as a JSON array, zstd-compressed.")
    base = models.ForeignKey(
        "self",
        null=True,
        blank=True,
        on_delete=models.RESTRICT,  # as RecordingPack.base
        related_name="+",
        db_index=False,
        help_text="The batch whose events are the compression dictionary of this one.",
    )
    received_at = models.DateTimeField(default=now)
    source = models.ForeignKey(
        IngestKey, null=True, blank=True, on_delete=models.SET_NULL, db_index=False
    )

    class Meta:
        ordering = ["conversation", "event_index"]
        constraints = [
            models.UniqueConstraint(
                fields=["conversation", "event_index"], name="rrweb_batch_unique_index"
            )
        ]

    def __str__(self) -> str:
        return f"{self.conversation_id}#{self.event_index} ({self.kind})"


class PendingPart(models.Model):
    """A part of a multi-part rrweb batch waiting for its siblings."""

    conversation = models.ForeignKey(
        Conversation, on_delete=models.CASCADE, related_name="pending_parts"
    )
    event_index = models.BigIntegerField()
    kind = models.CharField(max_length=8)
    part = models.IntegerField()
    total_parts = models.IntegerField()
    total_sha256 = models.CharField(max_length=64)
    sha256 = models.CharField(max_length=64)
    text = models.TextField(help_text="The whole frame as sent.")
    size = models.IntegerField(help_text="Bytes of this part's data.")
    received_at = models.DateTimeField(default=now, db_index=True)
    source = models.ForeignKey(IngestKey, null=True, blank=True, on_delete=models.SET_NULL)

    class Meta:
        ordering = ["conversation", "event_index", "part"]
        constraints = [
            models.UniqueConstraint(
                fields=["conversation", "event_index", "part"], name="pending_part_unique"
            )
        ]

    def __str__(self) -> str:
        return f"part {self.part}/{self.total_parts} of #{self.event_index}"


class RejectedFrame(models.Model):
    """A frame that could not be stored as sent, kept with the reason, never silently dropped."""

    class Kind(models.TextChoices):
        INVALID = "invalid", "Invalid frame"
        CONFLICT = "conflict", "Conflicts with stored data"
        TOO_LARGE = "too_large", "Frame too large"
        BINARY = "binary", "Binary frame"
        EXPIRED = "expired", "Incomplete batch expired"
        EVICTED = "evicted", "Incomplete batch evicted"
        ERROR = "error", "Server error"
        QUOTA = "quota", "Over a quota"

    kind = models.CharField(max_length=16, choices=Kind.choices)
    reason = models.TextField()
    received_at = models.DateTimeField(default=now, db_index=True)
    source = models.ForeignKey(IngestKey, null=True, blank=True, on_delete=models.SET_NULL)
    source_name = models.CharField(max_length=100, blank=True)
    conversation_uuid = models.CharField(max_length=100, blank=True, db_index=True)
    text = models.TextField(blank=True, help_text="The frame's text (cut at the kept size).")
    binary = models.BinaryField(null=True, blank=True)
    size = models.IntegerField(help_text="The frame's full size in bytes.")
    truncated = models.BooleanField(default=False)
    sha256 = models.CharField(max_length=64, blank=True)

    class Meta:
        ordering = ["-received_at", "-id"]
        permissions = [("reapply_rejectedframe", "Can re-apply rejected frames through ingest")]

    def __str__(self) -> str:
        return f"{self.kind}: {self.reason[:60]}"


class AuditLog(models.Model):
    """Who did what to which conversation, when and from where; written once, never edited."""

    class Action(models.TextChoices):
        VIEW = "view", "Viewed a replay"
        EXPORT = "export", "Exported"
        IMPORT = "import", "Imported"
        PURGE = "purge", "Purged"
        DELETE = "delete", "Deleted by staff"
        LEGAL_HOLD = "legal_hold", "Set or lifted legal hold"
        REVOKE_KEY = "revoke_key", "Revoked an ingest key"
        REAPPLY = "reapply", "Re-applied rejected frames"
        LOGIN_FAILED = "login_failed", "Failed to sign in"
        LOCKOUT = "lockout", "Locked out after failed sign-ins"
        NOTE_ADD = "note_add", "Added a note"
        NOTE_DELETE = "note_delete", "Deleted a note"
        TAGS = "tags", "Changed tags"

    at = models.DateTimeField(default=now, db_index=True, editable=False)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, editable=False
    )
    username = models.CharField(
        max_length=150, blank=True, editable=False, help_text="Kept if the user is deleted."
    )
    action = models.CharField(max_length=16, choices=Action.choices, editable=False)
    # A uuid, not a foreign key: the record outlives a purged conversation.
    conversation_uuid = models.CharField(max_length=100, blank=True, db_index=True, editable=False)
    detail = models.TextField(blank=True, editable=False)
    ip = models.GenericIPAddressField(null=True, blank=True, editable=False)
    user_agent = models.TextField(blank=True, editable=False)

    class Meta:
        ordering = ["-at", "-id"]

    def __str__(self) -> str:
        who = self.username or "system"
        return f"{who} {self.action} {self.conversation_uuid}".strip()

    def save(self, *args, **kwargs) -> None:
        if self.pk is not None:
            raise PermissionError("audit records cannot be changed")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise PermissionError("audit records cannot be deleted")


class JournalEntry(models.Model):
    """A frame as received, kept durably until a worker has applied it to the archive.

    Written by the ingest socket (conversations/ingest/journal.py) and consumed by the
    workers. The frame is kept as bytes and the source as a bare id (no foreign key), so no
    frame content can make an append fail and an append never locks another table's row.
    """

    id = models.BigAutoField(primary_key=True)
    # Frames are claimed by this key: a sanitised conversation uuid, "" when there is none.
    conversation_key = models.CharField(max_length=100, blank=True)
    source_id = models.BigIntegerField(null=True, blank=True)
    received_at = models.DateTimeField()
    data = models.BinaryField(help_text="The frame's bytes as received (text as UTF-8).")
    binary = models.BooleanField(default=False, help_text="Sent as a binary frame.")
    size = models.BigIntegerField(help_text="The frame's full size in bytes.")
    # Set when the socket already knows the frame is to be kept aside (too large, binary).
    reject_kind = models.CharField(max_length=16, blank=True)
    reject_reason = models.TextField(blank=True)
    # The whole frame's SHA-256 when only its first bytes are kept (too large, binary).
    sha256 = models.CharField(max_length=64, blank=True)

    class Meta:
        ordering = ["id"]
        indexes = [models.Index(fields=["conversation_key", "id"], name="journal_by_key")]
        verbose_name_plural = "journal entries"

    def __str__(self) -> str:
        return f"journal #{self.id} ({self.conversation_key or 'no conversation'})"


class AssetContent(models.Model):
    """The bytes of an asset a recorded page referenced, stored once by their SHA-256."""

    sha256 = models.CharField(max_length=64, unique=True)
    content_type = models.CharField(max_length=100)
    size = models.IntegerField()
    data = models.BinaryField()
    created_at = models.DateTimeField(default=now)

    def __str__(self) -> str:
        return f"{self.content_type} {self.sha256[:12]} ({self.size} bytes)"


class AssetSource(models.Model):
    """A URL a recording referenced, and what fetching it gave: content, or why there is none."""

    url = models.TextField()
    url_sha256 = models.CharField(max_length=64, unique=True)
    content = models.ForeignKey(AssetContent, null=True, blank=True, on_delete=models.SET_NULL)
    failure = models.TextField(blank=True, help_text="Why it was not fetched, if it was not.")
    fetched_at = models.DateTimeField(default=now)

    def __str__(self) -> str:
        return self.url[:100]


class SavedFilter(models.Model):
    """A staff member's named set of list filters: the list page's query string."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="saved_filters"
    )
    name = models.CharField(max_length=100)
    query = models.CharField(max_length=2000, blank=True)
    created_at = models.DateTimeField(default=now)

    class Meta:
        ordering = ["name", "id"]
        constraints = [
            models.UniqueConstraint(fields=["user", "name"], name="saved_filter_unique_name")
        ]

    def __str__(self) -> str:
        return f"{self.name}: ?{self.query}"


class ConversationView(models.Model):
    """That a staff member opened a conversation's replay page: when first and last."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    conversation = models.ForeignKey(Conversation, on_delete=models.CASCADE, related_name="views")
    first_viewed_at = models.DateTimeField(default=now)
    last_viewed_at = models.DateTimeField(default=now)

    class Meta:
        ordering = ["-last_viewed_at", "-id"]
        constraints = [
            # Also the index the list's "watched" lookups take, user first.
            models.UniqueConstraint(
                fields=["user", "conversation"], name="conversation_view_unique"
            )
        ]

    def __str__(self) -> str:
        return f"{self.user_id} watched {self.conversation_id}"
