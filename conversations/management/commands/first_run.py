import os
import secrets

from django.apps import apps
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = "Make sure a staff account exists, let installed apps do their part, say where to go."

    def handle(self, *args, **options) -> None:
        user_model = get_user_model()
        password = None
        if not user_model.objects.filter(is_superuser=True).exists():
            password = os.environ.get("DJANGO_SUPERUSER_PASSWORD") or secrets.token_urlsafe(12)
            user_model.objects.create_superuser(username="admin", email="", password=password)
            self.stdout.write("Created the staff account 'admin'.")
        base = f"http://{os.environ.get('HOST', '127.0.0.1')}:{os.environ.get('PORT', '8000')}"
        # An installed app with a part of its own (the demo shop makes its ingest key) has a
        # `first_run(base=, stdout=)` method on its AppConfig that returns where to go; the
        # product names no such app.
        places = []
        for config in apps.get_app_configs():
            if hasattr(config, "first_run"):
                places += config.first_run(base=base, stdout=self.stdout)
        self.stdout.write("")
        for line in places:
            self.stdout.write(line)
        self.stdout.write(f"  Staff pages:    {base}/   (watch live, replay, export)")
        if password is None:
            self.stdout.write("  Sign in as your staff account ('admin' unless you made another).")
        elif "DJANGO_SUPERUSER_PASSWORD" in os.environ:
            self.stdout.write("  Sign in as 'admin' with DJANGO_SUPERUSER_PASSWORD.")
        else:
            self.stdout.write(f"  Sign in as 'admin', password {password}   (shown only once)")
        self.stdout.write(f"  Ingest socket:  ws://{base.removeprefix('http://')}/ws/ingest/?key=…")
        self.stdout.write("")
