from django.core.management.base import BaseCommand, CommandError

from conversations.keys import ingest_key_create
from conversations.models import IngestKey


class Command(BaseCommand):
    help = "Create an ingest key for a source; the key is printed alone on the last line."

    def add_arguments(self, parser) -> None:
        parser.add_argument("name", help="A name for the source, e.g. the shop's domain.")

    def handle(self, *args, name: str, **options) -> None:
        if IngestKey.objects.filter(name=name).exists():
            raise CommandError(f"an ingest key named {name!r} already exists")
        try:
            key, raw_key = ingest_key_create(name=name)
        except ValueError as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(f"Created ingest key {key.name!r}. It is shown only this once:")
        self.stdout.write(raw_key)
