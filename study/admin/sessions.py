"""Admin for study sessions and their assets."""

from django import forms
from django.contrib import admin
from django.db import transaction
from django.db.models import QuerySet
from django.http import HttpRequest

from study.api.common import NFCFormCharField
from study.models import SessionAsset, StudySession
from study.services.sessions import NFC_FIELDS, session_links_replaced, sessions_ocr_text_forget
from studyserver.admin import JSONObjectFormField

from .base import (
    OWNER_FILTER,
    DocumentLinkForm,
    LoadedLinksFormSet,
    LoadedLinksInline,
    NFCSearchMixin,
    OwnerSetOnceMixin,
    RefusableSaveAdmin,
    SameOwnerForm,
    save_changed_fields,
)

# What a list of sessions does not show, and may be large: strokes alone can be hundreds of KB a session.
SESSION_TEXTS = ("strokes_json", "ocr_text", "source_text", "user_corrected_text", "ai_summary", "metadata")


class SessionAssetForm(DocumentLinkForm):
    """A session's assets are live documents of its own owner (trigger study_sessionasset_same_owner)."""

    parent_field = "session"

    class Meta:
        model = SessionAsset
        fields = ("session", "document", "asset_type", "role", "sort_order")


class StudySessionForm(SameOwnerForm):
    """The session's topic, like its assets, belongs to the session's owner; the texts /groups groups by are
    stored NFC, as the API stores them."""

    owner_links = ("study_topic",)

    class Meta:
        model = StudySession
        fields = "__all__"
        field_classes = {
            **dict.fromkeys(NFC_FIELDS, NFCFormCharField),  # normalised before max_length is checked
            # Objects, as the API takes and documents them: a list or a text here reached every app's next sync.
            "metadata": JSONObjectFormField,
            "strokes_json": JSONObjectFormField,
        }


class SessionAssetFormSet(LoadedLinksFormSet):
    """One link per (document, asset type, role) of a session, an empty role being one value
    (study_sessionasset_link_uniq, over COALESCE(role, '')), as a row error: in an inline Django checks no
    constraint naming the parent, so a duplicate reached the database (an IntegrityError, a 500)."""

    def clean(self) -> None:
        super().clean()
        rows = [form for form in self.forms if form.has_changed() or form.instance.pk is not None]
        kept = [form for form in rows if not (self.can_delete and self._should_delete_form(form))]
        shown = [form.instance.pk for form in rows if form.instance.pk is not None]
        taken = set()
        if self.instance.pk is not None:  # links not in the page (added meanwhile) keep their key too
            others = SessionAsset.objects.filter(session=self.instance).exclude(pk__in=shown)
            taken = {(document, asset_type, role or "") for document, asset_type, role
                     in others.values_list("document_id", "asset_type", "role")}
        for form in kept:
            data = getattr(form, "cleaned_data", None)
            document = data.get("document") if data else None
            if document is None or not data.get("asset_type"):
                continue  # a row with its own errors
            key = (document.pk, data["asset_type"], data.get("role") or "")
            if key in taken:
                form.add_error(None, "This session already links this document with this asset type and role.")
            taken.add(key)


class SessionAssetInline(LoadedLinksInline):
    model = SessionAsset
    form = SessionAssetForm
    formset = SessionAssetFormSet
    extra = 0
    raw_id_fields = ("document",)
    defer_fields = ("document__extracted_text",)


@admin.register(StudySession)
class StudySessionAdmin(NFCSearchMixin, OwnerSetOnceMixin, RefusableSaveAdmin):
    form = StudySessionForm
    list_display = ("id", "study_type", "mode", "certification", "subject", "topic", "review_state", "user",
                    "created_at")
    list_filter = ("study_type", "mode", "review_state", OWNER_FILTER)
    search_fields = ("certification", "subject", "topic", "source_text", "ocr_text")
    raw_id_fields = ("user", "study_topic")
    list_select_related = ("user",)
    changelist_defer = SESSION_TEXTS
    inlines = [SessionAssetInline]
    inline_conflicts = (
        (SessionAsset, "study_sessionasset_link_uniq",
         "Two links of this session would hold one document with one asset type and role (rows that swapped "
         "their documents, or a link added meanwhile): change them one at a time."),
    )
    ordering = ("-created_at", "-id")

    def save_model(self, request: HttpRequest, obj: StudySession, form: forms.ModelForm, change: bool) -> None:
        # What the page changed (ShownValuesForm): the app and the extraction (OCR text) write sessions meanwhile.
        if self.topic_kept_live(request, obj, form, change):
            save_changed_fields(obj, form, change)

    def save_related(self, request: HttpRequest, form, formsets, change: bool) -> None:
        links = [formset for formset in formsets if formset.model is SessionAsset]
        shown = {link_form.instance.pk: _link_as_shown(link_form) for formset in links
                 for link_form in formset.initial_forms}
        super().save_related(request, form, formsets, change)
        # (refused, nothing was saved: the formsets were not saved, or their writes rolled back with the rest)
        # An unlinked snapshot's text is no longer the session's OCR text, nor one a link was moved away from; a
        # snapshot linked or moved in gives it, as in the API.
        before = [asset for formset in links for asset in getattr(formset, "deleted_objects", ())]
        after = [asset for formset in links for asset in getattr(formset, "new_objects", ())]
        for formset in links:
            for asset, fields in getattr(formset, "changed_objects", ()):
                if {"document", "asset_type"} & set(fields):
                    before.append(shown[asset.pk])
                    after.append(asset)
        if before or after:
            session_links_replaced(before=before, after=after)


def _link_as_shown(link_form: forms.ModelForm) -> SessionAsset:
    """The link as its form was filled in (an unsaved row), before the save changed it. (A session page's inline
    form has no session field: its session is the page's.)"""
    initial = link_form.initial
    return SessionAsset(session_id=initial.get("session", link_form.instance.session_id),
                        document_id=initial.get("document"), asset_type=initial.get("asset_type"))


@admin.register(SessionAsset)
class SessionAssetAdmin(admin.ModelAdmin):
    form = SessionAssetForm
    list_display = ("session", "document", "asset_type", "role", "sort_order", "created_at")
    list_filter = ("asset_type", "role")
    raw_id_fields = ("session", "document")
    list_select_related = ("session", "document")
    changelist_defer = (*(f"session__{name}" for name in SESSION_TEXTS), "document__extracted_text")

    def save_model(self, request: HttpRequest, obj: SessionAsset, form: forms.ModelForm, change: bool) -> None:
        # A snapshot linked, or a link moved to another document, type or session: as in the API, the OCR text
        # follows (save_related of the session page does the same for its inline).
        moved = not change or bool({"session", "document", "asset_type"} & set(form.changed_data))
        shown = _link_as_shown(form) if change else None  # (read before the save moves the instance)
        with transaction.atomic():
            super().save_model(request, obj, form, change)
            if moved:
                session_links_replaced(before=[shown] if shown else [], after=[obj])

    # An unlinked snapshot's text is no longer its session's OCR text, as in the API.
    def delete_model(self, request: HttpRequest, obj: SessionAsset) -> None:
        with transaction.atomic():
            super().delete_model(request, obj)
            sessions_ocr_text_forget(assets=[obj])

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[SessionAsset]) -> None:
        with transaction.atomic():
            assets = list(queryset.only("document_id", "session_id", "asset_type"))
            super().delete_queryset(request, queryset)
            sessions_ocr_text_forget(assets=assets)
