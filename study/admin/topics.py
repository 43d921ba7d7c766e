"""Admin for topics and their document links."""

from django import forms
from django.contrib import admin
from django.http import HttpRequest

from study.api.common import NFCFormCharField
from study.models import StudyTopic, TopicDocument
from study.services.topics import topic_create, topic_delete, topic_update
from studyserver.errors import Conflict, NotFound

from .base import (
    OWNER_FILTER,
    DocumentLinkForm,
    LoadedLinksInline,
    NFCSearchMixin,
    OwnerSetOnceMixin,
    RefusableSaveAdmin,
    ShownValuesForm,
    SoftDeleteModelAdmin,
    take_row,
)

DUPLICATE_NAME_MESSAGE = "This user already has an active topic with this name."
TOPIC_EDITABLE_FIELDS = ("name", "study_type", "description")


class StudyTopicForm(ShownValuesForm):
    """A duplicate active name is a form error: on the change form the owner is read-only, so Django's own
    check of the partial unique constraint skips it and the save would fail with an IntegrityError."""

    class Meta:
        model = StudyTopic
        fields = ("user", *TOPIC_EDITABLE_FIELDS)
        # NFC as the API stores names (an NFD spelling is the same name), before max_length counts it
        field_classes = {"name": NFCFormCharField}

    def clean(self) -> dict:
        data = super().clean()
        name = data.get("name")
        user = data.get("user")
        user_id = user.pk if user is not None else self.instance.user_id
        if name and user_id is not None:
            taken = StudyTopic.objects.live().filter(user_id=user_id, name=name).exclude(pk=self.instance.pk)
            if taken.exists():
                self.add_error("name", DUPLICATE_NAME_MESSAGE)
        return data


class TopicDocumentForm(DocumentLinkForm):
    """A topic holds live documents of its own owner only (trigger study_topicdocument_same_owner); the link's
    `user` is the topic's."""

    parent_field = "topic"

    class Meta:
        model = TopicDocument
        fields = ("topic", "document")

    def owner_checked(self, user_id: int) -> None:
        self.instance.user_id = user_id


class TopicDocumentInline(LoadedLinksInline):
    model = TopicDocument
    form = TopicDocumentForm
    extra = 0
    fields = ("document", "created_at")
    readonly_fields = ("created_at",)
    raw_id_fields = ("document",)
    defer_fields = ("document__extracted_text",)


@admin.register(StudyTopic)
class StudyTopicAdmin(NFCSearchMixin, OwnerSetOnceMixin, SoftDeleteModelAdmin):
    form = StudyTopicForm
    list_display = ("name", "study_type", "user", "created_at", "deleted_at")
    list_filter = ("study_type", ("deleted_at", admin.EmptyFieldListFilter), OWNER_FILTER)
    search_fields = ("name", "description")
    raw_id_fields = ("user",)
    inlines = [TopicDocumentInline]
    inline_conflicts = (
        (TopicDocument, "study_topicdocument_topic_document_uniq",
         "Two links of this topic would hold one document (rows that swapped their documents, or a link added "
         "meanwhile): change them one at a time."),
    )
    ordering = ("-created_at", "-id")
    fields = ("user", *TOPIC_EDITABLE_FIELDS, "deleted_at", "created_at", "updated_at")
    readonly_fields = ("deleted_at", "created_at", "updated_at")

    def has_change_permission(self, request: HttpRequest, obj: StudyTopic | None = None) -> bool:
        # A deleted topic is gone for the learner and the feed (a tombstone): shown, not edited, nor given links
        # through its inline (as a deleted question is shown).
        if obj is not None and obj.deleted_at is not None:
            return False
        return super().has_change_permission(request, obj)

    def save_model(self, request: HttpRequest, obj: StudyTopic, form: forms.ModelForm, change: bool) -> None:
        if not change:
            try:
                topic = topic_create(user=obj.user, name=obj.name, study_type=obj.study_type,
                                     description=obj.description)
            except Conflict:  # another request took the name after the form checked it
                self.refuse_save(request, f"{DUPLICATE_NAME_MESSAGE} Nothing was added.")
                return
            take_row(obj, topic)
            return
        data = {field: getattr(obj, field) for field in TOPIC_EDITABLE_FIELDS if field in form.changed_data}
        if not data:
            return
        try:
            topic_update(topic=obj, data=data)
        except Conflict:  # another request took the name after the form checked it
            self.refuse_save(request, f"{DUPLICATE_NAME_MESSAGE} Nothing was changed.")
        except NotFound:  # deleted while the form was open
            self.refuse_save(request, "This topic was deleted meanwhile; nothing was changed.")

    def soft_delete(self, obj: StudyTopic) -> bool:
        return topic_delete(topic=obj)


@admin.register(TopicDocument)
class TopicDocumentAdmin(RefusableSaveAdmin):
    form = TopicDocumentForm
    list_display = ("topic", "document", "user", "created_at")
    fields = ("topic", "document", "user", "created_at")
    readonly_fields = ("user", "created_at")  # the topic's owner, set by the form
    raw_id_fields = ("topic", "document")
    list_select_related = ("topic", "document", "user")

    def save_model(self, request: HttpRequest, obj: TopicDocument, form: forms.ModelForm, change: bool) -> None:
        if self.topic_kept_live(request, obj, form, change, field="topic"):
            super().save_model(request, obj, form, change)
