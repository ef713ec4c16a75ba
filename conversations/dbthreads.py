"""Threads that keep a database connection of their own and query many times a second.

Django's close_old_connections() (which database_sync_to_async calls before and after each
call) also marks the connection for a health check, so with CONN_HEALTH_CHECKS the next query
is preceded by a round trip of its own (SELECT 1). The journal writer, the live reads and the
worker each query on their own thread tens to hundreds of times a second; for them a
connection is closed only once it has failed, and a call that finds it lost (the server
restarted since) runs once more on a new one. Any other failure raises to its caller,
which decides what the client is told.
"""

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from asgiref.sync import sync_to_async
from django.db import InterfaceError, OperationalError, connection


def connection_drop_if_failed() -> None:
    """Close this thread's connection if it broke, or if an error left it unusable."""
    raw = connection.connection
    if raw is None:
        return
    # psycopg says so itself when the server went away, even outside Django's cursors (a
    # worker waiting for notifications); an error through Django's cursors sets
    # errors_occurred, and then a check decides.
    if getattr(raw, "broken", False) or getattr(raw, "closed", False):
        connection.close()
    elif connection.errors_occurred:
        connection.close_if_unusable_or_obsolete()


def checked(function: Callable) -> Callable:
    """`function`, on a thread that keeps its connection: dropped if failed, retried if lost."""

    def call(*args: Any, **kwargs: Any) -> Any:
        connection_drop_if_failed()
        try:
            return function(*args, **kwargs)
        except (OperationalError, InterfaceError):
            # Most likely the server went away since this thread's last call (a restart):
            # without a health check that is learnt only now. Once more, on a new connection
            # (a second failure raises); if the lost call had committed after all, a journal
            # append is then made twice, which applying makes harmless (a frame sent again
            # is stored once).
            connection.close()
            return function(*args, **kwargs)
        finally:
            connection_drop_if_failed()

    return call


def on_thread(function: Callable, executor: ThreadPoolExecutor) -> Callable:
    """`function`, awaitable, run on `executor`'s thread with the connection kept between calls."""
    return sync_to_async(checked(function), thread_sensitive=False, executor=executor)
