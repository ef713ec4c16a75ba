"""Project settings with their defaults, read at call time so tests can override them."""

from typing import Any

from django.conf import settings
from django.core.signals import setting_changed

DEFAULTS: dict[str, Any] = {
    # A frame larger than this is rejected (its first bytes are kept with the reason).
    "REPLAY_MAX_FRAME_BYTES": 1024 * 1024,
    # Above this, the server (replay/serve.py sets Daphne's limit to it) closes with 1009.
    "REPLAY_HARD_MAX_FRAME_BYTES": 16 * 1024 * 1024,
    # A socket is no longer read while this much of it waits for the application (replay/serve.py).
    "REPLAY_SOCKET_QUEUE_BYTES": 8 * 1024 * 1024,
    # How much of a rejected frame's text is kept.
    "REPLAY_REJECTED_KEEP_BYTES": 1024 * 1024,
    # Incomplete multi-part rrweb batches: seconds before they expire, and bounds.
    "REPLAY_PART_TTL": 3600,
    "REPLAY_PENDING_MAX_BATCHES_PER_CONVERSATION": 64,
    "REPLAY_PENDING_MAX_BYTES_PER_CONVERSATION": 64 * 1024 * 1024,
    "REPLAY_PENDING_MAX_BYTES": 512 * 1024 * 1024,
    "REPLAY_PENDING_MAX_BYTES_PER_SOURCE": 128 * 1024 * 1024,
    # Quotas at the ingest door (conversations/ingest/quotas.py), per server process. Rates
    # may run ahead by REPLAY_QUOTA_BURST_SECONDS' worth; over a rate the connection is
    # closed with 4429, as is a connection beyond the key's limit; a frame that would start
    # a conversation over the key's quota is kept aside with its reason.
    "REPLAY_QUOTA_BURST_SECONDS": 10,
    "REPLAY_KEY_FRAMES_PER_SECOND": 4000,
    "REPLAY_KEY_BYTES_PER_SECOND": 64 * 1024 * 1024,
    "REPLAY_KEY_MAX_CONNECTIONS": 2000,
    "REPLAY_KEY_NEW_CONVERSATIONS_PER_MINUTE": 600,
    "REPLAY_CONNECTION_FRAMES_PER_SECOND": 1000,
    "REPLAY_CONNECTION_BYTES_PER_SECOND": 16 * 1024 * 1024,
    # Open sockets of a revoked key are closed (4401) within this many seconds.
    "REPLAY_KEY_CHECK_INTERVAL": 5,
    # A connection that sends this many rejected frames within the window is cut off (4429).
    "REPLAY_REJECT_LIMIT": 100,
    "REPLAY_REJECT_WINDOW": 60,
    # Frames are written in groups: at most this many per transaction, and a group waits at
    # most this long (seconds) for more frames before it is written even without a ping.
    # A chat frame (anything small but an rrweb batch) is written at once, with the group
    # before it, so staff watching live see it without that wait.
    "REPLAY_FLUSH_MAX_FRAMES": 200,
    "REPLAY_FLUSH_MAX_BYTES": 8 * 1024 * 1024,
    "REPLAY_FLUSH_DELAY": 0.05,
    # What one rrweb batch may unpack to (conversations/rrweb.py): @rrweb/packer strings are
    # zlib, which inflates a 0.5 MB string to 256 MiB if nothing stops it. Bytes one packer
    # string inflates to, bytes all of a batch's strings inflate to, the inflated/compressed
    # ratio (held only past 1 MiB), and events in a batch, packed or JSON.
    "REPLAY_PACKED_MAX_STRING_BYTES": 8 * 1024 * 1024,
    "REPLAY_PACKED_MAX_BATCH_BYTES": 16 * 1024 * 1024,
    "REPLAY_PACKED_MAX_RATIO": 100,
    "REPLAY_BATCH_MAX_EVENTS": 100_000,
    # zstd level for rrweb batches as they arrive. Against a dictionary, level 3 costs
    # ~0.01 ms a batch and level 6 ~0.4 ms (measured in bench/compression_study.py); finished
    # page loads are recompressed as a whole later, which is where the storage ratio comes from.
    "REPLAY_ZSTD_LEVEL": 3,
    # Packing finished page loads (conversations/packing.py): zstd level, and how long a
    # page load must be quiet to count as finished when no later one has begun.
    "REPLAY_PACK_LEVEL": 17,
    "REPLAY_PACK_IDLE": 15 * 60,
    # Each ingest process packs what is finished this often (seconds); 0 turns that off.
    "REPLAY_PACK_INTERVAL": 60,
    # A conversation's first pack is compressed against a dictionary of what the first packs
    # of this many recent conversations share (a shop's markup and styles), built again
    # every so many days; 0 days turns dictionaries off.
    "REPLAY_PACK_DICTIONARY_SAMPLES": 16,
    "REPLAY_PACK_DICTIONARY_DAYS": 30,
    # Ingest workers (conversations/ingest/worker.py): at most this many journal entries and
    # bytes per round (one transaction), and how long an idle worker waits (seconds) before
    # looking at the journal again when no append is announced.
    "REPLAY_WORKER_MAX_ENTRIES": 500,
    "REPLAY_WORKER_MAX_BYTES": 16 * 1024 * 1024,
    "REPLAY_WORKER_IDLE_WAIT": 0.5,
    # Run one worker inside each server process (the one-command default). Production turns
    # it off and runs `manage.py ingest_worker` processes instead.
    "REPLAY_EMBEDDED_WORKER": True,
    # A live update's rows up to this size (bytes of JSON) are read once by the worker and
    # passed through the channel layer to every page watching; larger ones each page reads.
    "REPLAY_LIVE_PUSH_MAX_BYTES": 256 * 1024,
    # /healthz answers 503 once the oldest journal entry is older than this (seconds).
    "REPLAY_HEALTH_MAX_LAG": 30,
    # Mask card numbers (and REPLAY_SCRUB_PATTERNS) in everything stored: conversations/scrub.py.
    "REPLAY_SCRUB": True,
    # Conversations with no activity for this many days are purged by purge_conversations;
    # None or 0 keeps them forever. Conversations under legal hold are always kept.
    "REPLAY_RETENTION_DAYS": None,
    # Rejected frames are kept for review this many days, and the oldest go once their stored
    # bytes add up to more than the budget; None or 0 turns a limit off. Those of
    # conversations under legal hold are always kept (purge_rejected_frames).
    "REPLAY_REJECTED_RETENTION_DAYS": 30,
    "REPLAY_REJECTED_MAX_BYTES": 1024 * 1024 * 1024,
    # Ingest keys an app makes for itself, by name, with the app that owns each. Their values
    # are public (the demo shop's is in its pages), so no one else may take the name, and
    # ingest refuses such a key whenever its app is not installed.
    "REPLAY_APP_INGEST_KEYS": {"demo": "demo"},
    # The asset proxy (conversations/assets.py): images, fonts, styles and media a recorded
    # page referenced are fetched by the server and served from our origin. Only public
    # addresses are fetched, except hosts named here exactly as in the URL (e.g. an intranet
    # shop, or 127.0.0.1 in tests). Caps per fetch: bytes, seconds in all, redirects.
    "REPLAY_ASSET_ALLOW_HOSTS": [],
    "REPLAY_ASSET_MAX_BYTES": 5 * 1024 * 1024,
    "REPLAY_ASSET_TIMEOUT": 5.0,
    "REPLAY_ASSET_MAX_REDIRECTS": 3,
    # A failed fetch is tried again after this many seconds; a fetched asset is kept.
    "REPLAY_ASSET_RETRY_AFTER": 3600,
    # Masked by conversations/scrub.py after card numbers: (regular expression, replacement)
    # pairs, e.g. [(r"\b\d{3}-\d{2}-\d{4}\b", "***-**-****")] for US social security numbers.
    "REPLAY_SCRUB_PATTERNS": [],
}


_cache: dict[str, Any] = {}


def get(name: str) -> Any:
    """Return the project setting `name`, falling back to its default.

    Cached: a setting left at its default costs an AttributeError inside Django's settings
    object on every read (~8 us), and the ingest worker reads tens per frame. Changing a
    setting (override_settings, pytest-django's `settings`) clears the cache.
    """
    try:
        return _cache[name]
    except KeyError:
        value = _cache[name] = getattr(settings, name, DEFAULTS[name])
        return value


def _forget(**kwargs: Any) -> None:
    _cache.clear()


setting_changed.connect(_forget)
