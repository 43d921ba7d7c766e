"""Admin for topics and their document links."""

from django.contrib import admin

from study.models import StudyTopic, TopicDocument


class TopicDocumentInline(admin.TabularInline):
    model = TopicDocument
    extra = 0
    raw_id_fields = ("document", "user")


@admin.register(StudyTopic)
class StudyTopicAdmin(admin.ModelAdmin):
    list_display = ("name", "study_type", "user", "created_at", "deleted_at")
    list_filter = ("study_type", ("deleted_at", admin.EmptyFieldListFilter), "user")
    search_fields = ("name", "description")
    raw_id_fields = ("user",)
    inlines = [TopicDocumentInline]
    ordering = ("-created_at", "-id")


@admin.register(TopicDocument)
class TopicDocumentAdmin(admin.ModelAdmin):
    list_display = ("topic", "document", "user", "created_at")
    raw_id_fields = ("topic", "document", "user")
    list_select_related = ("topic", "document", "user")
