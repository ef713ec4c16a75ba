"""Delete rejected frames past REPLAY_REJECTED_RETENTION_DAYS or REPLAY_REJECTED_MAX_BYTES."""

from django.core.management.base import BaseCommand, CommandParser

from conversations.retention import rejected_frames_purge, rejected_purge_summary


class Command(BaseCommand):
    help = "Delete rejected frames past their retention age and byte budget."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--dry-run", action="store_true", help="Count what would be deleted; delete nothing."
        )

    def handle(self, *args, **options) -> None:
        result = rejected_frames_purge(dry_run=options["dry_run"])
        if result.cutoff is None and result.max_bytes is None:
            self.stdout.write(
                "REPLAY_REJECTED_RETENTION_DAYS and REPLAY_REJECTED_MAX_BYTES are not set: "
                "every rejected frame is kept."
            )
            return
        verb = "would delete" if result.dry_run else "deleted"
        self.stdout.write(f"Rejected frames: {verb} {rejected_purge_summary(result)}.")
