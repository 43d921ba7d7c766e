from django.apps import AppConfig


class StudyConfig(AppConfig):
    name = "study"
    verbose_name = "Study"

    def ready(self) -> None:
        from django.conf import settings
        from django.db.models.signals import pre_save

        from studyserver.passwords import revoke_tokens_when_password_login_is_turned_off

        from . import checks  # noqa: F401 - registers the Celery checks

        pre_save.connect(revoke_tokens_when_password_login_is_turned_off, sender=settings.AUTH_USER_MODEL,
                         dispatch_uid="revoke_tokens_when_password_login_is_turned_off")
