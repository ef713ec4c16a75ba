from django.apps import AppConfig
from django.urls import register_converter

from conversations.converters import ConversationUUIDConverter


class ConversationsConfig(AppConfig):
    name = "conversations"
    verbose_name = "Conversations"

    def ready(self) -> None:
        # Once, before the URLconf and the WebSocket routes are built.
        register_converter(ConversationUUIDConverter, "conversation")
