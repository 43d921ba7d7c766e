from django.apps import AppConfig


class StudyConfig(AppConfig):
    name = "study"
    verbose_name = "Study"

    def ready(self) -> None:
        from django.conf import settings
        from django.db.models.signals import post_migrate, pre_save

        from studyserver.migration_operations import validate_not_valid_constraints_of_empty_tables
        from studyserver.passwords import revoke_tokens_when_password_login_is_turned_off

        from . import checks  # noqa: F401 - registers the Celery checks

        pre_save.connect(revoke_tokens_when_password_login_is_turned_off, sender=settings.AUTH_USER_MODEL,
                         dispatch_uid="revoke_tokens_when_password_login_is_turned_off")
        post_migrate.connect(validate_not_valid_constraints_of_empty_tables, sender=self,
                             dispatch_uid="validate_not_valid_constraints_of_empty_tables")
