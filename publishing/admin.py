"""Admin for the published read model and the outbox: both read-only."""

from django.contrib import admin

from .models import Published, PublishOutbox


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


@admin.register(Published)
class PublishedAdmin(ReadOnlyAdmin):
    list_display = ("seq", "kind", "source_id", "pub_id", "deleted", "user", "updated_at")
    list_filter = ("kind", "deleted")
    search_fields = ("pub_id__exact",)  # a whole pub_id, along its unique index (a substring scanned the feed)
    list_select_related = ("user",)  # nullable (a deleted user's tombstones): Django would not join it itself
    ordering = ("-seq",)
    changelist_defer = ("payload", "item")  # not shown; a sort carried them along
    show_full_result_count = False


@admin.register(PublishOutbox)
class PublishOutboxAdmin(ReadOnlyAdmin):
    """The changelist shows the undrained count and the oldest row's age (template change_list.html)."""

    list_display = ("id", "kind", "source_id", "created_at")
    list_filter = ("kind",)
    ordering = ("id",)
    show_full_result_count = False
