"""Admin for study sessions and their assets."""

from django import forms
from django.contrib import admin

from study.models import SessionAsset, StudySession

from .base import OwnerSetOnceMixin, SameOwnerForm

OTHER_OWNER_MESSAGE = "This document belongs to another user than the session."


class SessionAssetForm(forms.ModelForm):
    """A session's assets are documents of its own owner (the API offers nothing else). PostgreSQL refuses
    anything else too (trigger study_sessionasset_same_owner)."""

    class Meta:
        model = SessionAsset
        fields = ("session", "document", "asset_type", "role", "sort_order")

    def clean(self) -> dict:
        data = super().clean()
        # In the session's inline, `session` is the parent form's session (not saved yet on the add page).
        session, document = data.get("session"), data.get("document")
        if document is not None and "document" in self.changed_data and document.deleted_at is not None:
            self.add_error("document", "This document is deleted.")
        elif session is not None and document is not None and session.user_id not in (None, document.user_id):
            self.add_error("document", OTHER_OWNER_MESSAGE)
        return data


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
