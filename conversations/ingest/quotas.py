"""Quotas at the ingest door, per ingest key and per connection, kept by each server process.

A shop's key is public (every page carries it), so anyone may send with it: each key gets
rates (frames and bytes per second), a number of open connections and of new conversations
per minute, and each connection a rate of its own, so that one sender exhausts its own
allowance long before its key's. What is over a rate closes the connection with 4429; a
frame over the new-conversation quota is kept aside with its reason. The counts are per
server process: with N processes behind a proxy, a key may use N times each number.
"""

import time
from collections import OrderedDict, deque
from dataclasses import dataclass, field

from conversations import conf


class TokenBucket:
    """`rate` tokens a second, holding at most `burst`; take() fails when they run out."""

    def __init__(self, rate: float, burst: float) -> None:
        self.rate = rate
        self.burst = burst
        self.tokens = burst
        self.at = time.monotonic()

    def take(self, amount: float = 1.0) -> bool:
        now = time.monotonic()
        self.tokens = min(self.burst, self.tokens + (now - self.at) * self.rate)
        self.at = now
        if self.tokens < amount:
            return False
        self.tokens -= amount
        return True


def _bucket(rate_setting: str) -> TokenBucket:
    rate = conf.get(rate_setting)
    return TokenBucket(rate, rate * conf.get("REPLAY_QUOTA_BURST_SECONDS"))


@dataclass
class KeyUsage:
    """What one ingest key uses in this process."""

    connections: int = 0
    frames: TokenBucket = field(default_factory=lambda: _bucket("REPLAY_KEY_FRAMES_PER_SECOND"))
    bytes: TokenBucket = field(default_factory=lambda: _bucket("REPLAY_KEY_BYTES_PER_SECOND"))
    # Conversation keys seen lately, oldest first, and when new ones were first seen.
    seen: OrderedDict[str, float] = field(default_factory=OrderedDict)
    new_at: deque[float] = field(default_factory=deque)


_usage: dict[int, KeyUsage] = {}


def key_usage(key_id: int) -> KeyUsage:
    usage = _usage.get(key_id)
    if usage is None:
        usage = _usage[key_id] = KeyUsage()
    return usage


class Over(Exception):
    """A quota is exceeded; the message names it and its setting."""


def connection_open(key_id: int) -> KeyUsage:
    """Count a new connection of the key, or raise Over."""
    usage = key_usage(key_id)
    limit = conf.get("REPLAY_KEY_MAX_CONNECTIONS")
    if usage.connections >= limit:
        raise Over(
            f"this ingest key has {usage.connections} connections open to this server, "
            f"its limit (REPLAY_KEY_MAX_CONNECTIONS={limit})"
        )
    usage.connections += 1
    return usage


def connection_closed(key_id: int) -> None:
    usage = _usage.get(key_id)
    if usage is not None:
        usage.connections = max(0, usage.connections - 1)


@dataclass
class ConnectionRates:
    """One connection's own rates, beside its key's."""

    frames: TokenBucket = field(
        default_factory=lambda: _bucket("REPLAY_CONNECTION_FRAMES_PER_SECOND")
    )
    bytes: TokenBucket = field(
        default_factory=lambda: _bucket("REPLAY_CONNECTION_BYTES_PER_SECOND")
    )


def frame_admit(usage: KeyUsage, rates: ConnectionRates, size: int) -> None:
    """Take one frame of `size` bytes from the connection's and the key's rates, or raise Over."""
    if not rates.frames.take():
        raise Over(
            "this connection sends more than "
            f"{rates.frames.rate:g} frames/s (REPLAY_CONNECTION_FRAMES_PER_SECOND)"
        )
    if not rates.bytes.take(size):
        raise Over(
            "this connection sends more than "
            f"{rates.bytes.rate:g} bytes/s (REPLAY_CONNECTION_BYTES_PER_SECOND)"
        )
    if not usage.frames.take():
        raise Over(
            f"this ingest key sends more than {usage.frames.rate:g} frames/s "
            "(REPLAY_KEY_FRAMES_PER_SECOND)"
        )
    if not usage.bytes.take(size):
        raise Over(
            f"this ingest key sends more than {usage.bytes.rate:g} bytes/s "
            "(REPLAY_KEY_BYTES_PER_SECOND)"
        )


def conversation_admit(usage: KeyUsage, conversation_key: str) -> str:
    """ "" if a frame of this conversation may pass, else why not (too many new ones)."""
    if not conversation_key:
        return ""
    now = time.monotonic()
    if conversation_key in usage.seen:
        usage.seen[conversation_key] = now
        usage.seen.move_to_end(conversation_key)
        return ""
    while usage.new_at and usage.new_at[0] < now - 60:
        usage.new_at.popleft()
    limit = conf.get("REPLAY_KEY_NEW_CONVERSATIONS_PER_MINUTE")
    if len(usage.new_at) >= limit:
        return (
            f"this ingest key started more than {limit} conversations in the last minute "
            "(REPLAY_KEY_NEW_CONVERSATIONS_PER_MINUTE)"
        )
    usage.new_at.append(now)
    usage.seen[conversation_key] = now
    # Remember conversations for ten minutes, and at most ten minutes' worth of new ones.
    while usage.seen and (
        len(usage.seen) > limit * 10 or next(iter(usage.seen.values())) < now - 600
    ):
        usage.seen.popitem(last=False)
    return ""
