"""Model fields of our own."""

import json
import threading
from typing import Any

import zstandard
from django.db import models

# What payloads of the chat protocol are made of: its names, in the shapes frames have. The
# compression dictionary of every CompressedJSONField value written with tag 1; stored values
# depend on these exact bytes, so a change means a new tag (tests pin their SHA-256).
PAYLOAD_DICTIONARY_1 = (
    b'{"type":"message","conversation_uuid":"","conversation_arn":"arn:","message":{'
    b'"author_conversation_participant_arn":"","author_conversation_participant_name":"",'
    b'"body":"","client_message_id":"","conversation_message_uuid":"","delay_until_dts":null,'
    b'"language_iso_code":"en","media_urls":[],"merchant_id":"","message_dts":"",'
    b'"message_epoch":0,"message_type":"","translations":[{"body":"","language_iso_code":""}],'
    b'"transport_statuses":[{"conversation_participant_arn":"","status":"delivered"}],'
    b'"type":"message","upload_keys":[]}}'
    b'{"type":"event","event_type":"typing","conversation_uuid":"","event_typing":{'
    b'"author_conversation_participant_arn":"","author_conversation_participant_name":"",'
    b'"value":true},"event_read_message":{"conversation_message_uuid":"","message_dts":"",'
    b'"message_epoch":0},"event_queue_position":{"available":true,"position":0},'
    b'"event_add_coupon":{"agent_arn":"","agent_name":"","coupon_code":""},'
    b'"event_add_item":{"agent_arn":"","agent_name":"","items":[]},'
    b'"event_webchat_context":{"cart_id":"","ucacid":"","url":"https://"},'
    b'"event_engage_customer":{},"event_updated_message":{},"event_new_message":{},'
    b'"event_participant_update":{},"event_participant_join":{},"event_participant_left":{},'
    b'"event_participant_join_participant":{},"event_participant_left_participant":{}}'
    b'{"type":"event","event_type":"new conversation","conversation_uuid":"",'
    b'"conversation_arn":"arn:conversation:","event_new_conversation":{}}'
    b'{"type":"event","event_type":"conversation closed","conversation_uuid":"",'
    b'"event_conversation_closed":{"closed":true,"conversation_arn":"arn:conversation:",'
    b'"conversation_uuid":"","customer_first_message_unresponded_to_dts":null,'
    b'"last_conversation_message_body":"","last_conversation_participant_arn":"arn:participant:",'
    b'"last_conversation_participant_name":"","last_interactive_message_dts":"",'
    b'"last_message_dts":"","medium":"websocket","merchant_id":"","message_count":0,'
    b'"participants":[{"conversation_participant_arn":"arn:participant:",'
    b'"conversation_participant_name":"","conversation_participant_uuid":"","email":"",'
    b'"joined_dts":"2025-01-01T00:00:00Z","language_iso_code":"en","last_message_dts":"",'
    b'"left_dts":null,"profile_image_url":"https://","sms_phone_number":"","status":"active",'
    b'"timezone":"","unread_messages":0}],"sentiment":null,"start_dts":"",'
    b'"unread_messages":false,"visible":true}}'
)
_TAG_1 = b"\x01"  # a zstd frame compressed against PAYLOAD_DICTIONARY_1 follows


class CompressedJSONField(models.BinaryField):
    """A JSON value kept as compact JSON text, zstd-compressed (a BLOB, or bytea).

    For payloads kept as sent (a frame, a summary, a message): always read whole, never
    queried inside, so they need no JSON column. Compressed against a dictionary of the
    protocol's names, a few hundred bytes of JSON take about a third of their size; at level
    3, since such small inputs gain nothing from higher ones. A value stored as JSON text
    (before the column held compressed text) reads as well.
    """

    def get_prep_value(self, value: Any) -> bytes | None:
        if value is None:
            return None
        try:
            text = json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()
        except UnicodeEncodeError:  # a lone surrogate survives only as an escape
            text = json.dumps(value, separators=(",", ":")).encode()
        return _TAG_1 + _codecs.compressor.compress(text)

    def from_db_value(self, value: Any, expression: Any, connection: Any) -> Any:
        if value is None:
            return None
        if isinstance(value, str):
            return json.loads(value)
        data = bytes(value)
        if data.startswith(_TAG_1):  # JSON text never starts with a control character
            data = _codecs.decompressor.decompress(data[1:])
        return json.loads(data)

    def to_python(self, value: Any) -> Any:
        return value

    def value_to_string(self, obj: models.Model) -> Any:
        return self.value_from_object(obj)  # as JSONField: serializers write the value


class _Codecs(threading.local):
    """zstd objects are not thread-safe, and making one costs more than a payload's work."""

    def __init__(self) -> None:
        dictionary = zstandard.ZstdCompressionDict(
            PAYLOAD_DICTIONARY_1, dict_type=zstandard.DICT_TYPE_RAWCONTENT
        )
        # Small frames: no checksum, since parsing the JSON notices damage.
        self.compressor = zstandard.ZstdCompressor(
            level=3, dict_data=dictionary, write_checksum=False, write_dict_id=False
        )
        self.decompressor = zstandard.ZstdDecompressor(dict_data=dictionary)


_codecs = _Codecs()
