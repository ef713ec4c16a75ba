"""Import conversation archives, or zips of them; already stored conversations are skipped."""

from collections import Counter
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError, CommandParser

from conversations.audit import audit_record
from conversations.imports import CREATED, REFUSED, path_import
from conversations.models import AuditLog


class Command(BaseCommand):
    help = "Import archives (.json, .json.zst) or zips of them made by export_conversations."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("files", nargs="+", help="Archive or zip files.")
        parser.add_argument(
            "--trust-archive",
            action="store_true",
            help="Take the archives' legal hold and first-seen and last-activity times as they "
            "are (by default a hold is not set and both times are now).",
        )

    def handle(self, *args, **options) -> None:
        counts: Counter[str] = Counter()
        for name in options["files"]:
            for result in path_import(Path(name), trust=options["trust_archive"]):
                counts[result.status] += 1
                stream = self.stderr if result.status == REFUSED else self.stdout
                stream.write(str(result))
                if result.status == CREATED:
                    audit_record(
                        user=None,
                        action=AuditLog.Action.IMPORT,
                        conversation=result.conversation_uuid,
                        detail=f"import_conversations from {result.name}",
                    )
        self.stdout.write(
            f"Created {counts['created']}, skipped {counts['skipped']}, "
            f"refused {counts['refused']}."
        )
        if counts[REFUSED]:
            raise CommandError(f"refused {counts[REFUSED]} archive(s): see above for why")
