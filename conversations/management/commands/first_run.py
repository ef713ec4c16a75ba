import os
import secrets

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand

from conversations.demo import DEMO_KEY_NAME, demo_enabled, demo_key_ensure


class Command(BaseCommand):
    help = "Make sure a staff account and a demo ingest key exist, and say where to go."

    def handle(self, *args, **options) -> None:
        user_model = get_user_model()
        password = None
        if not user_model.objects.filter(is_superuser=True).exists():
            password = os.environ.get("DJANGO_SUPERUSER_PASSWORD") or secrets.token_urlsafe(12)
            user_model.objects.create_superuser(username="admin", email="", password=password)
            self.stdout.write("Created the staff account 'admin'.")
        # The demo key's value is public: it exists only for a server that serves the demo.
        if demo_enabled():
            _, raw_key, changed = demo_key_ensure()
            if changed:
                self.stdout.write(
                    f"The ingest key '{DEMO_KEY_NAME}', used by the demo shop: {raw_key}"
                )
        base = f"http://{os.environ.get('HOST', '127.0.0.1')}:{os.environ.get('PORT', '8000')}"
        self.stdout.write("")
        if demo_enabled():
            self.stdout.write(f"  Demo shop:      {base}/demo/   (browse, chat, check out)")
            self.stdout.write(f"  Agent console:  {base}/demo/agent/   (answer the shopper)")
        else:
            self.stdout.write("  Demo shop:      off (set REPLAY_DEMO=1 to serve it at /demo/)")
        self.stdout.write(f"  Staff pages:    {base}/   (watch live, replay, export)")
        if password is None:
            self.stdout.write("  Sign in as your staff account ('admin' unless you made another).")
        elif "DJANGO_SUPERUSER_PASSWORD" in os.environ:
            self.stdout.write("  Sign in as 'admin' with DJANGO_SUPERUSER_PASSWORD.")
        else:
            self.stdout.write(f"  Sign in as 'admin', password {password}   (shown only once)")
        self.stdout.write(f"  Ingest socket:  ws://{base.removeprefix('http://')}/ws/ingest/?key=…")
        self.stdout.write("")
