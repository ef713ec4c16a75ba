import os
import secrets

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand

from conversations.keys import ingest_key_create
from conversations.models import IngestKey

DEMO_KEY_NAME = "demo"


class Command(BaseCommand):
    help = "Make sure a staff account and a demo ingest key exist, and say how to sign in."

    def handle(self, *args, **options) -> None:
        user_model = get_user_model()
        if not user_model.objects.filter(is_superuser=True).exists():
            password = os.environ.get("DJANGO_SUPERUSER_PASSWORD") or secrets.token_urlsafe(12)
            user_model.objects.create_superuser(username="admin", email="", password=password)
            self.stdout.write("Created the staff account 'admin'.")
            if "DJANGO_SUPERUSER_PASSWORD" not in os.environ:
                self.stdout.write(f"Its password, shown only this once: {password}")
        if not IngestKey.objects.filter(name=DEMO_KEY_NAME).exists():
            _, raw_key = ingest_key_create(name=DEMO_KEY_NAME)
            self.stdout.write(f"Created the ingest key '{DEMO_KEY_NAME}': {raw_key}")
        host = os.environ.get("HOST", "127.0.0.1")
        port = os.environ.get("PORT", "8000")
        self.stdout.write(
            f"Open http://{host}:{port}/ and sign in; ingest at ws://{host}:{port}/ws/ingest/?key=…"
        )
