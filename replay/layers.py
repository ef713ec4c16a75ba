"""The channel layers: each can say which groups have members (live.py reads and sends
updates for watched conversations only), and the Redis one has a connection pool that waits
rather than fails when full and sends to many groups at once.

channels_redis builds redis-py's plain pool, which holds 100 connections and raises
MaxConnectionsError on the 101st request. A burst of sockets closing at once (a staff
member's browser quitting with many replay tabs open, a proxy restarting) asks for more:
each leaving socket's group_discard then failed, and the page stayed a member of its
conversation's group until the group expired a day later, sent every update meanwhile.
redis-py's blocking pool makes such a request wait for a connection to come back instead.
"""

import logging
import time
from collections import defaultdict

import redis.asyncio
from channels.layers import InMemoryChannelLayer as _InMemoryChannelLayer
from channels_redis.core import RedisChannelLayer as _RedisChannelLayer

logger = logging.getLogger(__name__)

# channels_redis's group_send script for one key: add the message unless the key is full.
_ADD_UNLESS_FULL = """
if redis.call('ZCOUNT', KEYS[1], '-inf', '+inf') < tonumber(ARGV[2]) then
    redis.call('ZADD', KEYS[1], ARGV[3], ARGV[1])
    redis.call('EXPIRE', KEYS[1], ARGV[4])
    return 0
end
return 1
"""


class InMemoryChannelLayer(_InMemoryChannelLayer):
    async def groups_watched(self, groups: list[str]) -> set[str]:
        """Which of `groups` have members."""
        return {group for group in groups if self.groups.get(group)}


class RedisChannelLayer(_RedisChannelLayer):
    def create_pool(self, index: int) -> redis.asyncio.BlockingConnectionPool:
        host = dict(self.hosts[index])
        if "address" not in host:  # sentinels and the like: channels_redis's own pool
            return super().create_pool(index)
        return redis.asyncio.BlockingConnectionPool.from_url(host.pop("address"), **host)

    def _by_host(self, groups) -> dict[int, list[str]]:
        """`groups` by the index of the Redis host that keeps each."""
        by_host: dict[int, list[str]] = defaultdict(list)
        for group in groups:
            by_host[self.consistent_hash(group)].append(group)
        return by_host

    async def groups_watched(self, groups: list[str]) -> set[str]:
        """Which of `groups` have members: one pipelined round trip per Redis host.

        A member that left without saying so (a process killed) counts until it expires."""
        watched: set[str] = set()
        for index, mine in self._by_host(groups).items():
            pipe = self.connection(index).pipeline(transaction=False)
            for group in mine:
                pipe.zcard(self._group_key(group))
            counts = await pipe.execute()
            watched.update(group for group, count in zip(mine, counts, strict=True) if count)
        return watched

    async def group_send_many(self, messages: dict[str, dict]) -> None:
        """group_send of each group's message, with the same effect, in three pipelined round
        trips a Redis host rather than four a group: a worker announcing a round's updates
        to a hundred watched conversations spent more time on Redis than on storing them."""
        members: dict[str, list[str]] = {}
        for index, groups in self._by_host(messages).items():
            pipe = self.connection(index).pipeline(transaction=False)
            for group in groups:  # as group_send: members gone for group_expiry leave first
                pipe.zremrangebyscore(
                    self._group_key(group), min=0, max=int(time.time()) - self.group_expiry
                )
                pipe.zrange(self._group_key(group), 0, -1)
            answers = await pipe.execute()
            for group, names in zip(groups, answers[1::2], strict=True):
                members[group] = [name.decode("utf8") for name in names]
        sends: dict[int, list[tuple[str, bytes, int, str]]] = defaultdict(list)
        for group, message in messages.items():
            hosts, texts, capacities = self._map_channel_keys_to_connection(members[group], message)
            for index, keys in hosts.items():
                sends[index] += [(key, texts[key], capacities[key], group) for key in keys]
        for index, entries in sends.items():
            pipe = self.connection(index).pipeline(transaction=False)
            for key, text, capacity, _ in entries:  # as group_send: expired messages leave
                pipe.zremrangebyscore(key, min=0, max=int(time.time()) - int(self.expiry))
                pipe.eval(_ADD_UNLESS_FULL, 1, key, text, capacity, time.time(), self.expiry)
            answers = await pipe.execute()
            for (key, _, _, group), full in zip(entries, answers[1::2], strict=True):
                if full:
                    logger.warning("channel %s is full: a message to group %s is lost", key, group)
