"""A path converter that carries any stored conversation uuid in one URL segment."""

import base64
import binascii

from conversations.protocol import UUID_RULE

ESCAPE = "~"


def conversation_key(uuid: str) -> str:
    """The uuid as one path segment: itself in the protocol's alphabet, else "~" + base64url.

    The protocol lets in only uuids of its alphabet, which read as themselves in an address.
    Others reach the archive by import, or were stored before uuids were checked, and may hold
    "/", "%", spaces or anything; encoded, they still make exactly one segment. "~" is outside
    the alphabet, so the two forms never collide. "." and ".." are escaped too: a browser
    would resolve them as dot segments.
    """
    if UUID_RULE.pattern.fullmatch(uuid) and uuid.strip("."):
        return uuid
    encoded = base64.urlsafe_b64encode(uuid.encode("utf-8", "surrogatepass"))
    return ESCAPE + encoded.decode("ascii").rstrip("=")


class ConversationUUIDConverter:
    """`<conversation:uuid>`: conversation_key() both ways; a bad escape matches nothing."""

    regex = "[^/]+"

    def to_python(self, value: str) -> str:
        if not value.startswith(ESCAPE):
            return value  # as linked, or an older link that spelled the uuid out
        encoded = value[len(ESCAPE) :]
        try:
            raw = base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4))
            return raw.decode("utf-8", "surrogatepass")
        except (binascii.Error, UnicodeDecodeError) as exc:
            raise ValueError(f"not an escaped conversation uuid: {value!r}") from exc

    def to_url(self, value: str) -> str:
        return conversation_key(value)
