import asyncio
import gc
import os
import signal

from django.core.management.base import BaseCommand

from conversations.ingest.worker import Worker, journal_drain


class Command(BaseCommand):
    help = "Apply the ingest journal to the archive until stopped (run one per core)."

    def add_arguments(self, parser) -> None:
        parser.add_argument(
            "--drain", action="store_true", help="Apply what is in the journal, then exit."
        )
        parser.add_argument(
            "--nice",
            type=int,
            default=10,
            help="Scheduling niceness (default 10): on a machine shared with the servers, "
            "answering pings comes first and storing catches up in the gaps.",
        )

    def handle(self, *args, drain: bool = False, nice: int = 10, **options) -> None:
        if nice:
            os.nice(nice)
        # A round parses thousands of events into short-lived objects that reference counting
        # frees (JSON holds no cycles), yet they set off the cyclic collector: draining 3,500
        # frames took 140 collections, one a full pass over all of Django's objects (35 ms),
        # 6% of the worker's CPU. What start-up made is frozen out of the collector's passes,
        # and young collections come less often.
        gc.freeze()
        gc.set_threshold(20_000, 20, 20)
        if drain:
            self.stdout.write(f"Applied {journal_drain()} journal entries.")
            return
        self.stdout.write("Applying the ingest journal; stop with Ctrl-C or SIGTERM.")
        asyncio.run(self._run())

    async def _run(self) -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stop.set)  # finish the round, then stop
        await Worker().run(stop=stop, listen=True)
