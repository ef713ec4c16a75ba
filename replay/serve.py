"""Serve the project with Daphne, with the WebSocket limits the ingest protocol relies on.

    python -m replay.serve -b 127.0.0.1 -p 8000 [any other daphne option]

Daphne's own message limit is raised to the hard cap (REPLAY_HARD_MAX_FRAME_BYTES), above
the protocol's frame limit (REPLAY_MAX_FRAME_BYTES): a frame between the two reaches the
application, which keeps it aside with its reason while the connection goes on. A frame
over the hard cap is refused by Daphne with close code 1009 and a reason; by default Daphne
drops the TCP connection instead, which a client cannot tell from a network failure, so
here the WebSocket closing handshake is kept.
"""

import os
import sys

import daphne.server
from daphne.ws_protocol import WebSocketFactory


class ClosingWebSocketFactory(WebSocketFactory):
    """Daphne's factory, failing connections with a close frame rather than a dropped socket."""

    def setProtocolOptions(self, **options) -> None:  # noqa: N802 (autobahn's name)
        super().setProtocolOptions(failByDrop=False, **options)


def daphne_arguments(args: list[str]) -> list[str]:
    """`args` with the message and frame limits added, unless they are given."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "replay.settings")
    from conversations import conf

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
