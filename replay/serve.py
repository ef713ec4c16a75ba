"""Serve the project with Daphne, with the WebSocket limits the ingest protocol relies on.

    python -m replay.serve -b 127.0.0.1 -p 8000 [any other daphne option]

Daphne's own message limit is raised to the hard cap (REPLAY_HARD_MAX_FRAME_BYTES), above
the protocol's frame limit (REPLAY_MAX_FRAME_BYTES): a frame between the two reaches the
application, which keeps it aside with its reason while the connection goes on. A frame
over the hard cap is refused by Daphne with close code 1009 and a reason; by default Daphne
drops the TCP connection instead, which a client cannot tell from a network failure, so
here the WebSocket closing handshake is kept.

Daphne reads each socket as fast as data comes and queues the messages for the application
without limit: while the database stalls (a restart, a lock), a consumer waiting for its
commits stops taking messages, and one client could push a gigabyte into the server's memory
in five seconds. Here a socket is no longer read while its queue holds
REPLAY_SOCKET_QUEUE_BYTES (or 1,000 messages), and is read again once half of that is taken:
TCP then slows the client down, as it would for any server busy elsewhere.
"""

import os
import sys

import daphne.server
from daphne.ws_protocol import WebSocketFactory, WebSocketProtocol
from twisted.internet import reactor

from conversations import conf

# How often a paused socket looks whether its queue has been taken down (seconds).
_RESUME_POLL = 0.005
_QUEUE_MAX_MESSAGES = 1000


def _message_size(message: dict) -> int:
    return len(message.get("text") or message.get("bytes") or "")


class FlowControlledWebSocketProtocol(WebSocketProtocol):
    """Daphne's WebSocket protocol, which stops reading a socket while its queue is full."""

    reading_paused = False

    def _queue_full(self, share: float) -> bool:
        queue = getattr(self, "application_queue", None)
        if queue is None or queue.empty():
            return False  # the common case: the application keeps up
        if queue.qsize() >= _QUEUE_MAX_MESSAGES * share:
            return True
        limit = conf.get("REPLAY_SOCKET_QUEUE_BYTES") * share
        # Daphne hands the application this asyncio.Queue's get(), so its items are read
        # here from the queue's own deque: fewer than _QUEUE_MAX_MESSAGES of them.
        return sum(_message_size(message) for message in queue._queue) >= limit

    def onMessage(self, payload, isBinary):  # noqa: N802, N803 (autobahn's names)
        super().onMessage(payload, isBinary)
        if not self.reading_paused and self._queue_full(1.0):
            self.reading_paused = True
            self.transport.pauseProducing()
            reactor.callLater(_RESUME_POLL, self._resume_when_taken)

    def _resume_when_taken(self) -> None:
        if not self.reading_paused:
            return
        # A socket being closed is read again at once: its closing handshake needs the
        # client's reply, and an application that closed it takes nothing more.
        if self.state != self.STATE_OPEN or not self._queue_full(0.5):
            self.reading_paused = False
            if self.state != self.STATE_CLOSED:
                self.transport.resumeProducing()
            return
        reactor.callLater(_RESUME_POLL, self._resume_when_taken)


class ClosingWebSocketFactory(WebSocketFactory):
    """Daphne's factory, failing connections with a close frame rather than a dropped socket.

    Its sockets stop being read while the application has too much of theirs to take.
    """

    protocol = FlowControlledWebSocketProtocol

    def setProtocolOptions(self, **options) -> None:  # noqa: N802 (autobahn's name)
        super().setProtocolOptions(failByDrop=False, **options)


def daphne_arguments(args: list[str]) -> list[str]:
    """`args` with the message and frame limits added, unless they are given."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "replay.settings")
    hard_cap = str(conf.get("REPLAY_HARD_MAX_FRAME_BYTES"))
    extra = []
    if not any(a.startswith("--websocket-max-message-size") for a in args):
        extra += ["--websocket-max-message-size", hard_cap]
    if not any(a.startswith("--websocket-max-frame-size") for a in args):
        extra += ["--websocket-max-frame-size", hard_cap]
    if not any(a.endswith(":application") for a in args):
        args = [*args, "replay.asgi:application"]
    return extra + args


def main(argv: list[str]) -> None:
    from daphne.cli import CommandLineInterface

    daphne.server.WebSocketFactory = ClosingWebSocketFactory
    CommandLineInterface().run(daphne_arguments(argv))


if __name__ == "__main__":
    main(sys.argv[1:])
