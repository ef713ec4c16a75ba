"""Shared fixtures. Services a test needs are required, not optional, when CI says so."""

import os

import pytest

from conversations.keys import ingest_key_create

REQUIRE_SERVICES = os.environ.get("REPLAY_REQUIRE_SERVICES") == "1"


def require(condition: bool, reason: str) -> None:
    """Skip when `condition` is false; in CI (REPLAY_REQUIRE_SERVICES=1) fail instead."""
    if condition:
        return
    if REQUIRE_SERVICES:
        pytest.fail(f"required service missing: {reason}")
    pytest.skip(reason)


@pytest.fixture
def source(db):
    """An ingest key and its raw value."""
    key, raw_key = ingest_key_create(name="shop.example")
    key.raw_key = raw_key
    return key


@pytest.fixture
def staff_user(db, django_user_model):
    from django.contrib.auth.models import Permission

    user = django_user_model.objects.create_user(
        username="agent", password="correct horse battery staple", is_staff=True
    )
    user.user_permissions.add(Permission.objects.get(codename="view_conversation"))
    return user


@pytest.fixture
def staff_client(client, staff_user):
    client.force_login(staff_user)
    return client
