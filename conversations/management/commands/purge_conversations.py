"""Delete conversations older than REPLAY_RETENTION_DAYS (those under legal hold are kept),
then rejected frames past their own limits."""

from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandParser

from conversations.retention import conversations_purge


class Command(BaseCommand):
    help = (
        "Delete conversations past the retention limit (REPLAY_RETENTION_DAYS), "
        "then rejected frames past theirs."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--dry-run", action="store_true", help="List what would be deleted; delete nothing."
        )

    def handle(self, *args, **options) -> None:
        result = conversations_purge(dry_run=options["dry_run"])
        if result.cutoff is None:
            self.stdout.write("REPLAY_RETENTION_DAYS is not set: every conversation is kept.")
        else:
            verb = "Would delete" if result.dry_run else "Deleted"
            for uuid in result.purged:
                self.stdout.write(f"{verb} {uuid}")
            self.stdout.write(
                f"{verb} {len(result.purged)} conversation(s) last active before "
                f"{result.cutoff:%Y-%m-%d %H:%M} UTC; kept {result.held} under legal hold."
            )
        if result.dictionaries:
            self.stdout.write(
                f"Deleted {result.dictionaries} shared compression dictionary(ies) no pack uses."
            )
        # Rejected frames have their own limits; one scheduled purge keeps both in bounds.
        call_command("purge_rejected_frames", dry_run=options["dry_run"], stdout=self.stdout)
