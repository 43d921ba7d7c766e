from django.apps import AppConfig


class PublishingConfig(AppConfig):
    name = "publishing"
    verbose_name = "Publishing (viewer read model)"

    def ready(self) -> None:
        from django.conf import settings
        from django.db.models.signals import pre_delete

        from .signals import user_pre_delete

        pre_delete.connect(user_pre_delete, sender=settings.AUTH_USER_MODEL, dispatch_uid="publishing_user_pre_delete")
