"""Write a zip of conversation archives, streaming, whatever the number of conversations."""

from datetime import UTC, datetime, time, timedelta
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError, CommandParser

from conversations.audit import audit_record
from conversations.exports import archives_zip_chunks
from conversations.models import AuditLog, Conversation


def _moment(value: str, *, end_of_day: bool = False) -> datetime:
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise CommandError(f"{value!r} is not a date (YYYY-MM-DD) or ISO 8601 date-time") from None
    if len(value) == 10 and end_of_day:
        moment = datetime.combine(moment.date(), time.min) + timedelta(days=1)
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


class Command(BaseCommand):
    help = "Export conversations as a zip of archives (one .json per conversation)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--since", help="First seen on or after this date (UTC).")
        parser.add_argument("--until", help="First seen on or before this date (UTC).")
        parser.add_argument("--closed", action="store_true", help="Closed conversations only.")
        parser.add_argument("--out", required=True, help="The zip file to write.")

    def handle(self, *args, **options) -> None:
        conversations = Conversation.objects.order_by("id")
        if options["since"]:
            conversations = conversations.filter(first_seen_at__gte=_moment(options["since"]))
        if options["until"]:
            until = _moment(options["until"], end_of_day=True)
            conversations = conversations.filter(first_seen_at__lt=until)
        if options["closed"]:
            conversations = conversations.filter(closed=True)
        out = Path(options["out"])
        count = 0

        def exported(conversation: Conversation) -> None:
            nonlocal count
            count += 1
            audit_record(
                user=None,
                action=AuditLog.Action.EXPORT,
                conversation=conversation,
                detail=f"export_conversations archive into {out.name}",
            )

        with out.open("wb") as file:
            # Only ids and uuids are held, a chunk at a time; each archive reads its own rows.
            rows = conversations.only("id", "uuid").iterator(chunk_size=100)
            for chunk in archives_zip_chunks(rows, on_each=exported):
                file.write(chunk)
        self.stdout.write(f"Exported {count} conversation(s) to {out}.")
