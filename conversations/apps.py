from django.apps import AppConfig


class ConversationsConfig(AppConfig):
    name = "conversations"
    verbose_name = "Conversations"

    def ready(self) -> None:
        from axes.signals import user_locked_out
        from django.contrib.auth.signals import user_login_failed

        from conversations.audit import lockout_record, login_failed_record

        user_login_failed.connect(login_failed_record, dispatch_uid="audit-login-failed")
        user_locked_out.connect(lockout_record, dispatch_uid="audit-lockout")
