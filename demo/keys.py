"""The demo shop's ingest key, whose value anyone may know: it is derived, not stored."""

from django.db import IntegrityError
from django.utils.crypto import salted_hmac

from conversations.models import IngestKey

# Reserved by the product (REPLAY_APP_INGEST_KEYS) for this app: nobody else may take the
# name, and ingest refuses the key whenever this app is not installed.
DEMO_KEY_NAME = "demo"


def demo_raw_key() -> str:
    """The demo key's value, derived from SECRET_KEY so the server can hand it to its pages.

    It is public by design: every visitor of the demo shop gets it, as every visitor of a real
    shop gets the key its widget sends with.
    """
    # The salt keeps the name of the module this began in: a new one would change the value.
    digest = salted_hmac("conversations.demo.ingest-key", DEMO_KEY_NAME, algorithm="sha256")
    return IngestKey.PREFIX + digest.hexdigest()


def demo_key_ensure() -> tuple[IngestKey, str, bool]:
    """Make the `demo` key hold the derived value; return it, its value and whether it changed.

    A revoked demo key stays revoked: the shop's chat then says it is unavailable.
    """
    raw_key = demo_raw_key()
    key = IngestKey.objects.filter(name=DEMO_KEY_NAME).first()
    if key is not None and key.key_hash == IngestKey.hash_key(raw_key):
        return key, raw_key, False
    if key is None:
        key = IngestKey(name=DEMO_KEY_NAME)
        key.set_key(raw_key)
        try:
            key.save()
        except IntegrityError:  # another request created it first
            return IngestKey.objects.get(name=DEMO_KEY_NAME), raw_key, False
    else:
        key.set_key(raw_key)
        key.save(update_fields=["key_hash", "hint"])
    return key, raw_key, True
