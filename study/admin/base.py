"""The ModelAdmin the study admins share for soft-deletable rows."""

from django.contrib import admin, messages
from django.contrib.admin.utils import model_ngettext
from django.db import models, transaction
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.text import capfirst


class SoftDeleteModelAdmin(admin.ModelAdmin):
    """A ModelAdmin whose delete button and "delete selected (soft)" action call `soft_delete`.

    Django's own delete would remove the row and everything cascading from it, behind the soft delete
    and without the publish request its service records.
    """

    actions = ["soft_delete_selected"]

    def soft_delete(self, obj: models.Model) -> None:
        """Soft-delete one live row through its service."""
        raise NotImplementedError

    def get_actions(self, request: HttpRequest) -> dict:
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)
        return actions

    def get_deleted_objects(self, objs, request: HttpRequest) -> tuple[list, dict, set, list]:
        # Only the rows themselves change: Django's collector would list (and ask delete permission for)
        # every related row a hard delete would cascade to, none of which a soft delete touches.
        objs = list(objs)
        described = [f"{capfirst(self.opts.verbose_name)}: {obj}" for obj in objs]
        return described, {self.opts.verbose_name_plural: len(objs)}, set(), []

    def delete_model(self, request: HttpRequest, obj: models.Model) -> None:
        if obj.deleted_at is None:  # deleting again would move deleted_at and publish for nothing
            self.soft_delete(obj)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet) -> None:
        with transaction.atomic():
            for obj in queryset.filter(deleted_at__isnull=True):
                self.soft_delete(obj)

    @admin.action(description="Delete selected %(verbose_name_plural)s (soft)", permissions=["delete"])
    def soft_delete_selected(self, request: HttpRequest, queryset: QuerySet) -> None:
        live = list(queryset.filter(deleted_at__isnull=True))
        with transaction.atomic():
            for obj in live:
                self.soft_delete(obj)
                self.log_change(request, obj, "Deleted (soft).")  # the history Django's own bulk delete keeps
        self.message_user(request, f"Deleted {len(live)} {model_ngettext(self.opts, len(live))}.", messages.SUCCESS)
