from django.apps import AppConfig


class StudyConfig(AppConfig):
    name = "study"
    verbose_name = "Study"

    def ready(self) -> None:
        from . import checks  # noqa: F401 - registers the Celery checks
