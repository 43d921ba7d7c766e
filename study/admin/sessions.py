"""Admin for study sessions and their assets."""

from django.contrib import admin

from study.models import SessionAsset, StudySession

from .base import DocumentLinkForm, OwnerSetOnceMixin, SameOwnerForm


class SessionAssetForm(DocumentLinkForm):
    """A session's assets are live documents of its own owner (trigger study_sessionasset_same_owner)."""

    parent_field = "session"

    class Meta:
        model = SessionAsset
        fields = ("session", "document", "asset_type", "role", "sort_order")


class StudySessionForm(SameOwnerForm):
    """The session's topic, like its assets, belongs to the session's owner."""

    owner_links = ("study_topic",)

    class Meta:
        model = StudySession
        fields = "__all__"


class SessionAssetInline(admin.TabularInline):
    model = SessionAsset
    form = SessionAssetForm
    extra = 0
    raw_id_fields = ("document",)


@admin.register(StudySession)
class StudySessionAdmin(OwnerSetOnceMixin, admin.ModelAdmin):
    form = StudySessionForm
    list_display = ("id", "study_type", "mode", "certification", "subject", "topic", "review_state", "user",
                    "created_at")
    list_filter = ("study_type", "mode", "review_state", "user")
    search_fields = ("certification", "subject", "topic", "source_text", "ocr_text")
    raw_id_fields = ("user", "study_topic")
    list_select_related = ("user",)
    inlines = [SessionAssetInline]
    ordering = ("-created_at", "-id")


@admin.register(SessionAsset)
class SessionAssetAdmin(admin.ModelAdmin):
    form = SessionAssetForm
    list_display = ("session", "document", "asset_type", "role", "sort_order", "created_at")
    list_filter = ("asset_type", "role")
    raw_id_fields = ("session", "document")
