from django.core.management.base import BaseCommand, CommandError

from conversations.ingest.page_errors import page_errors_recount
from conversations.models import Conversation


class Command(BaseCommand):
    help = (
        "Count and list the console errors and failed requests of stored recordings again, "
        "from their batches: for recordings stored before these were counted. Safe to repeat."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument(
            "uuids", nargs="*", metavar="UUID", help="Only these conversations (default: all)."
        )

    def handle(self, *args, uuids: list[str], **options) -> None:
        conversations = Conversation.objects.filter(rrweb_batch_total__gt=0)
        if uuids:
            conversations = conversations.filter(uuid__in=uuids)
            missing = set(uuids) - set(conversations.values_list("uuid", flat=True))
            if missing:
                raise CommandError(f"no recording for {', '.join(sorted(missing))}")
        ids = list(conversations.order_by("pk").values_list("pk", flat=True))
        console = network = 0
        for done, conversation_id in enumerate(ids, 1):
            errors, failed = page_errors_recount(conversation_id)
            console += errors
            network += failed
            if done % 100 == 0:
                self.stdout.write(f"{done} of {len(ids)} recordings…")
        self.stdout.write(
            f"Recounted {len(ids)} recording(s): {console} console error(s), "
            f"{network} failed request(s)."
        )
