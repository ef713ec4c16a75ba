"""The Redis channel layer, with a connection pool that waits rather than fails when full.

channels_redis builds redis-py's plain pool, which holds 100 connections and raises
MaxConnectionsError on the 101st request. A burst of sockets closing at once (a staff
member's browser quitting with many replay tabs open, a proxy restarting) asks for more:
each leaving socket's group_discard then failed, and the page stayed a member of its
conversation's group until the group expired a day later, sent every update meanwhile.
redis-py's blocking pool makes such a request wait for a connection to come back instead.
"""

import redis.asyncio
from channels_redis.core import RedisChannelLayer as _RedisChannelLayer


class RedisChannelLayer(_RedisChannelLayer):
    def create_pool(self, index: int) -> redis.asyncio.BlockingConnectionPool:
        host = dict(self.hosts[index])
        if "address" not in host:  # sentinels and the like: channels_redis's own pool
            return super().create_pool(index)
        return redis.asyncio.BlockingConnectionPool.from_url(host.pop("address"), **host)
