"""Builders for protocol frames and rrweb events, as a real client would send them, and for
conversations stored as the archive may hold them."""

import hashlib
import json
import uuid as uuid_module
from typing import Any

T0 = 1_764_000_000_000  # a browser timestamp (ms) the recordings start from


def new_uuid() -> str:
    return str(uuid_module.uuid4())


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def dumps(frame: dict) -> str:
    return json.dumps(frame, separators=(",", ":"))


def _arn(name: str) -> str:
    return "arn:participant:" + name.lower().replace(" ", "-")


def participant(name: str = "Ada Shopper", *, arn: str | None = None, **extra: Any) -> dict:
    return {
        "conversation_participant_arn": arn or _arn(name),
        "conversation_participant_name": name,
        "conversation_participant_uuid": new_uuid(),
        "joined_dts": "2026-11-25T10:00:00Z",
        "status": "active",
        **extra,
    }


def summary(conversation_uuid: str, **extra: Any) -> dict:
    return {
        "conversation_uuid": conversation_uuid,
        "conversation_arn": f"arn:conversation:{conversation_uuid}",
        "merchant_id": "DEMO",
        "medium": "websocket",
        "start_dts": "2026-11-25T10:00:00Z",
        "closed": False,
        "message_count": 0,
        "participants": [participant()],
        **extra,
    }


def event(event_type: str, conversation_uuid: str | None, **payload: Any) -> dict:
    frame: dict = {"type": "event", "event_type": event_type}
    if conversation_uuid is not None:
        frame["conversation_uuid"] = conversation_uuid
    frame.update(payload)
    return frame


def new_conversation(conversation_uuid: str, **extra: Any) -> dict:
    return event(
        "new conversation",
        conversation_uuid,
        event_new_conversation=summary(conversation_uuid, **extra),
    )


def message(
    conversation_uuid: str,
    body: str = "Hello, is this in stock?",
    *,
    message_uuid: str | None = None,
    epoch: int = T0 + 1000,
    author: str = "Ada Shopper",
    **extra: Any,
) -> dict:
    return {
        "type": "message",
        "conversation_uuid": conversation_uuid,
        "message": {
            "conversation_message_uuid": message_uuid or new_uuid(),
            "author_conversation_participant_arn": _arn(author),
            "author_conversation_participant_name": author,
            "body": body,
            "message_epoch": epoch,
            "message_dts": "2026-11-25T10:00:01Z",
            "type": "message",
            "media_urls": [],
            "translations": [],
            "transport_statuses": [],
            **extra,
        },
    }


def rrweb_events(*, start: int = T0, count: int = 5, href: str = "https://shop.example/") -> list:
    """A page load: Meta, FullSnapshot of a tiny page, then mouse moves."""
    events: list[dict] = [
        {"type": 4, "data": {"href": href, "width": 1280, "height": 800}, "timestamp": start},
        {
            "type": 2,
            "data": {
                "node": {
                    "type": 0,
                    "id": 1,
                    "childNodes": [
                        {
                            "type": 2,
                            "tagName": "html",
                            "id": 2,
                            "attributes": {},
                            "childNodes": [
                                {
                                    "type": 2,
                                    "tagName": "body",
                                    "id": 3,
                                    "attributes": {},
                                    "childNodes": [
                                        {"type": 3, "textContent": "Blue kettle, 39 EUR", "id": 4}
                                    ],
                                }
                            ],
                        }
                    ],
                },
                "initialOffset": {"left": 0, "top": 0},
            },
            "timestamp": start + 5,
        },
    ]
    for i in range(count):
        events.append(
            {
                "type": 3,
                "data": {
                    "source": 1,
                    "positions": [{"x": 10 * i, "y": 20, "id": 3, "timeOffset": 0}],
                },
                "timestamp": start + 100 * (i + 1),
            }
        )
    return events


def incremental_events(*, start: int, count: int = 5) -> list:
    return [
        {
            "type": 3,
            "data": {"source": 1, "positions": [{"x": i, "y": i, "id": 3, "timeOffset": 0}]},
            "timestamp": start + 50 * i,
        }
        for i in range(count)
    ]


def console_event(ts: int, *args: object, level: str = "error") -> dict:
    """What rrweb's console plugin records for console[level](*args)."""
    return {
        "type": 6,
        "data": {
            "plugin": "rrweb/console@1",
            "payload": {
                "level": level,
                "trace": ["checkout.js:12:7"],
                "payload": [json.dumps(arg) for arg in args],
            },
        },
        "timestamp": ts,
    }


def network_event(
    ts: int, url: str, *, status: int = 404, method: str = "GET", error: str = ""
) -> dict:
    """What the reference client's network recorder records for a failed request."""
    payload = {"kind": "fetch", "method": method, "url": url, "status": status, "duration": 42}
    if error:
        payload["error"] = error
    return {"type": 6, "data": {"plugin": "replay/network@1", "payload": payload}, "timestamp": ts}


def rrweb_frame(
    conversation_uuid: str, index: int, events: list | str, *, kind: str = "events"
) -> dict:
    data = events if isinstance(events, str) else json.dumps(events, separators=(",", ":"))
    return event(
        "rrweb",
        conversation_uuid,
        event_rrweb={
            "type": kind,
            "event_index": index,
            "data": data,
            "data_sha256": sha256(data),
            "data_part": 1,
            "data_total_parts": 1,
            "data_total_sha256": sha256(data),
        },
    )


def rrweb_parts(
    conversation_uuid: str, index: int, events: list | str, *, parts: int, kind: str = "events"
) -> list[dict]:
    """Split one batch into `parts` frames, each with its own and the total checksum."""
    data = events if isinstance(events, str) else json.dumps(events, separators=(",", ":"))
    size = -(-len(data) // parts)
    pieces = [data[i * size : (i + 1) * size] for i in range(parts)]
    return [
        event(
            "rrweb",
            conversation_uuid,
            event_rrweb={
                "type": kind,
                "event_index": index,
                "data": piece,
                "data_sha256": sha256(piece),
                "data_part": number,
                "data_total_parts": parts,
                "data_total_sha256": sha256(data),
            },
        )
        for number, piece in enumerate(pieces, start=1)
    ]


def stored_conversation(
    uuid: str,
    *,
    body: str = "Is the blue kettle in stock?",
    name: str = "Ada Shopper",
):
    """A conversation with participants, messages, an edit, events and a recording, stored
    under `uuid` whatever it holds, as an archive import or data stored before uuids were
    checked leaves it. The protocol refuses such uuids, so it is sent under a stand-in first.
    """
    from conversations import ingest
    from conversations.models import Conversation

    stand_in, message_uuid, arn = new_uuid(), new_uuid(), "arn:participant:customer"
    edit = message(stand_in, body + " (edited)", message_uuid=message_uuid)["message"]
    frames = [
        new_conversation(stand_in, participants=[participant(name, arn=arn), participant("Bo")]),
        message(
            stand_in,
            body,
            message_uuid=message_uuid,
            author=name,
            author_conversation_participant_arn=arn,
            epoch=T0 + 500,
        ),
        message(stand_in, "Yes, 12 left.", author="Bo", epoch=T0 + 2_500),
        event("updated message", stand_in, event_updated_message=edit),
        event(
            "typing",
            stand_in,
            event_typing={"value": body, "author_conversation_participant_name": name},
        ),
        rrweb_frame(stand_in, 0, rrweb_events(start=T0, count=3), kind="init"),
        rrweb_frame(stand_in, 1, incremental_events(start=T0 + 1_000, count=4)),
    ]
    outcomes = ingest.items_apply([ingest.item_from_text(dumps(fr)) for fr in frames], source=None)
    refused = [o.reason for o in outcomes if o.status == ingest.REJECTED]
    if refused:
        raise ValueError(f"the stand-in conversation was refused: {refused}")
    Conversation.objects.filter(uuid=stand_in).update(uuid=uuid)
    return Conversation.objects.get(uuid=uuid)
