"""The users' admin: Django's, with a delete that copes with a learner's data (study.services.accounts)."""

from django.contrib import admin
from django.contrib.auth import get_user_model
from django.contrib.auth.admin import UserAdmin
from django.db import transaction
from django.db.models import QuerySet
from django.http import HttpRequest

from study.services.accounts import user_delete

User = get_user_model()


class StudyUserAdmin(UserAdmin):
    def delete_model(self, request: HttpRequest, obj) -> None:
        user_delete(user=obj)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet) -> None:
        with transaction.atomic():  # all of them or none, as Django's own bulk delete
            for user in queryset.order_by("pk"):
                user_delete(user=user)


if admin.site.is_registered(User):
    admin.site.unregister(User)
admin.site.register(User, StudyUserAdmin)
