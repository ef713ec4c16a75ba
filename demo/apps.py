from django.apps import AppConfig
from django.core.management.base import OutputWrapper
from django.urls import reverse


class DemoConfig(AppConfig):
    """The demo shop and agent console: installed only when the demo is on (replay/settings.py).

    The product never imports this app; what it offers the product goes through Django's app
    registry (the `first_run` hook below) and its reserved key name (REPLAY_APP_INGEST_KEYS).
    """

    name = "demo"
    verbose_name = "Demo shop"

    def first_run(self, *, base: str, stdout: OutputWrapper) -> list[str]:
        """Make the demo's ingest key, saying so when it changed; return where to go."""
        from demo.keys import DEMO_KEY_NAME, demo_key_ensure

        _, raw_key, changed = demo_key_ensure()
        if changed:
            stdout.write(f"The ingest key '{DEMO_KEY_NAME}', used by the demo shop: {raw_key}")
        return [
            f"  Demo shop:      {base}{reverse('demo:home')}   (browse, chat, check out)",
            f"  Agent console:  {base}{reverse('demo:agent-index')}   (answer the shopper)",
        ]
