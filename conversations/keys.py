"""Ingest keys: create, authenticate, revoke."""

from django.apps import apps
from django.db import transaction
from django.utils import timezone

from conversations.models import IngestKey


def ingest_key_create(*, name: str) -> tuple[IngestKey, str]:
    """Create a key named `name`; return it with the raw key, which is shown only once."""
    if app := IngestKey.owning_app(name):
        raise ValueError(f"the key name {name!r} is reserved for the {app!r} app")
    raw_key = IngestKey.new_raw_key()
    key = IngestKey(name=name)
    key.set_key(raw_key)
    key.save()
    return key, raw_key


def ingest_key_authenticate(raw_key: str) -> IngestKey | None:
    """Return the active key matching `raw_key`, or None; an app's own key only with its app."""
    return ingest_keys_authenticate([raw_key]).get(raw_key)


def ingest_keys_authenticate(raw_keys: list[str]) -> dict[str, IngestKey]:
    """The active keys matching `raw_keys`, by raw key, in one query; the others are left out."""
    hashes = {IngestKey.hash_key(raw): raw for raw in set(raw_keys) if raw and len(raw) <= 200}
    if not hashes:
        return {}
    found = {}
    for key in IngestKey.objects.active().filter(key_hash__in=list(hashes)):
        # An app's own key has a public value (the demo shop's is in its pages): it opens the
        # door only while that app is installed, whatever an earlier run with the app left.
        if (app := IngestKey.owning_app(key.name)) and not apps.is_installed(app):
            continue
        found[hashes[key.key_hash]] = key
    return found


@transaction.atomic
def ingest_key_revoke(*, key: IngestKey) -> None:
    """Revoke a key: connections that present it are refused from now on."""
    if key.revoked_at is None:
        key.revoked_at = timezone.now()
        key.save(update_fields=["revoked_at"])
