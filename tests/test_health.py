"""/healthz, as a load balancer asks it: the database answers and the journal keeps up."""

import pytest
from django.test import override_settings
from django.utils import timezone

from conversations.ingest.journal import journal_append
from conversations.models import JournalEntry

pytestmark = pytest.mark.django_db


def entry(age_seconds: float) -> tuple:
    received = timezone.now() - timezone.timedelta(seconds=age_seconds)
    return ("c1", None, received, b'{"type":"message"}', False, 18, "", "", "")


def test_healthz_is_200_with_an_empty_journal_and_needs_no_sign_in(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"ok": True, "journal_entries": 0, "journal_lag_seconds": 0.0}


@override_settings(REPLAY_HEALTH_MAX_LAG=30)
def test_healthz_turns_503_when_the_oldest_journal_entry_is_too_old(client):
    journal_append([entry(5), entry(1)])
    fresh = client.get("/healthz")
    assert fresh.status_code == 200 and fresh.json()["journal_entries"] == 2
    JournalEntry.objects.all().delete()
    journal_append([entry(45), entry(1)])
    stale = client.get("/healthz")
    assert stale.status_code == 503
    assert "limit 30 s" in stale.json()["error"]


def test_the_admin_shows_the_journal_lag(admin_client):
    journal_append([entry(3)])
    response = admin_client.get("/admin/conversations/journalentry/")
    assert response.status_code == 200
    assert b"1 journal entries wait for a worker" in response.content
