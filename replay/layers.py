"""The Redis channel layer, with a connection pool that waits rather than fails when full,
and a way to ask which groups have members (live.py sends updates to watched ones only).

channels_redis builds redis-py's plain pool, which holds 100 connections and raises
MaxConnectionsError on the 101st request. A burst of sockets closing at once (a staff
member's browser quitting with many replay tabs open, a proxy restarting) asks for more:
each leaving socket's group_discard then failed, and the page stayed a member of its
conversation's group until the group expired a day later, sent every update meanwhile.
redis-py's blocking pool makes such a request wait for a connection to come back instead.
"""

from collections import defaultdict

import redis.asyncio
from channels_redis.core import RedisChannelLayer as _RedisChannelLayer


class RedisChannelLayer(_RedisChannelLayer):
    def create_pool(self, index: int) -> redis.asyncio.BlockingConnectionPool:
        host = dict(self.hosts[index])
        if "address" not in host:  # sentinels and the like: channels_redis's own pool
            return super().create_pool(index)
        return redis.asyncio.BlockingConnectionPool.from_url(host.pop("address"), **host)

    async def groups_watched(self, groups: list[str]) -> set[str]:
        """Which of `groups` have members: one pipelined round trip per Redis host.

        A member that left without saying so (a process killed) counts until it expires."""
        by_host: dict[int, list[str]] = defaultdict(list)
        for group in groups:
            by_host[self.consistent_hash(group)].append(group)
        watched: set[str] = set()
        for index, mine in by_host.items():
            pipe = self.connection(index).pipeline(transaction=False)
            for group in mine:
                pipe.zcard(self._group_key(group))
            counts = await pipe.execute()
            watched.update(group for group, count in zip(mine, counts, strict=True) if count)
        return watched
