from django.apps import AppConfig
from django.urls import register_converter
from django.urls.converters import get_converters

from conversations.converters import ConversationUUIDConverter


class ConversationsConfig(AppConfig):
    name = "conversations"
    verbose_name = "Conversations"

    def ready(self) -> None:
        # Once, before the URLconf and the WebSocket routes are built (ready() runs again when
        # a test changes INSTALLED_APPS).
        if "conversation" not in get_converters():
            register_converter(ConversationUUIDConverter, "conversation")

        from axes.signals import user_locked_out
        from django.contrib.auth.signals import user_login_failed

        from conversations.audit import lockout_record, login_failed_record

        user_login_failed.connect(login_failed_record, dispatch_uid="audit-login-failed")
        user_locked_out.connect(lockout_record, dispatch_uid="audit-lockout")
