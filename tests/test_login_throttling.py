"""Sign-in throttling: a username and address pair is locked out after repeated failures."""

import pytest
from django.test import override_settings

from conversations.models import AuditLog

pytestmark = pytest.mark.django_db

PASSWORD = "correct horse battery staple"  # staff_user's


def sign_in(client, password: str, address: str = "198.51.100.7"):
    return client.post(
        "/accounts/login/",
        {"username": "agent", "password": password},
        REMOTE_ADDR=address,
    )


@override_settings(AXES_FAILURE_LIMIT=3)
def test_a_user_is_locked_out_from_one_address_after_repeated_failures_and_it_is_audited(
    client, staff_user
):
    for _ in range(2):
        assert sign_in(client, "wrong").status_code == 200  # the form again, with its error
    locked = sign_in(client, "wrong")
    assert locked.status_code == 429
    assert "Too many attempts" in locked.content.decode()
    assert sign_in(client, PASSWORD).status_code == 429  # even the right password, for now

    assert sign_in(client, PASSWORD, address="203.0.113.5").status_code == 302  # elsewhere
    failed = AuditLog.objects.filter(action="login_failed")
    assert failed.count() == 4
    assert {entry.detail for entry in failed} == {"username 'agent'"}
    # One entry for the attempt that locked the pair out, one for the attempt made while locked.
    lockouts = AuditLog.objects.filter(action="lockout")
    assert [(e.ip, e.detail) for e in lockouts] == 2 * [
        ("198.51.100.7", "username 'agent' from 198.51.100.7")
    ]


@override_settings(AXES_FAILURE_LIMIT=3)
def test_signing_in_resets_the_count_of_failures(client, staff_user):
    for _ in range(2):
        sign_in(client, "wrong")
    assert sign_in(client, PASSWORD).status_code == 302
    client.logout()
    for _ in range(2):
        assert sign_in(client, "wrong").status_code == 200
    assert not AuditLog.objects.filter(action="lockout").exists()
