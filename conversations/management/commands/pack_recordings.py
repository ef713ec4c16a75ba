from django.core.management.base import BaseCommand

from conversations.packing import recordings_pack


class Command(BaseCommand):
    help = "Recompress finished page loads of recordings together (about half the space)."

    def add_arguments(self, parser) -> None:
        parser.add_argument(
            "--all", action="store_true", help="Pack every page load, finished or not."
        )

    def handle(self, *args, all: bool = False, **options) -> None:
        packed = recordings_pack(finished_only=not all)
        self.stdout.write(f"Packed {packed} page load(s).")
