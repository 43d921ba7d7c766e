"""The users' and groups' admin: Django's, with a delete that copes with a learner's data (study.services.accounts),
and no way for staff who are not superusers to raise anyone's rights, their own included.

Django documents "change user" as as powerful as a superuser: with it, staff could tick `is_superuser` on their
own account, give themselves any permission or group, and set a superuser's password; with "change group", add any
permission to a group they are in; with a colleague's password, act as that colleague. Here only a superuser changes
or deletes a superuser or another staff member, anyone's staff or superuser status, groups or permissions, and a
group's permissions beyond the editor's own.
"""

from django import forms
from django.contrib import admin
from django.contrib.auth import get_user_model
from django.contrib.auth.admin import GroupAdmin, UserAdmin
from django.contrib.auth.models import Group
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import QuerySet
from django.http import HttpRequest

from study.services.accounts import user_delete

User = get_user_model()

RIGHTS = ("is_staff", "is_superuser", "groups", "user_permissions")  # (staff status: admin sign-in)


def _superuser_only(request: HttpRequest, obj) -> bool:
    """Whether `obj` (a user) is one that only a superuser may change or delete: a superuser, or staff other than
    the one asking."""
    if obj is None or request.user.is_superuser:
        return False
    return obj.is_superuser or (obj.is_staff and obj.pk != request.user.pk)


class StudyUserAdmin(UserAdmin):
    def get_readonly_fields(self, request: HttpRequest, obj=None) -> tuple[str, ...]:
        fields = tuple(super().get_readonly_fields(request, obj))
        return fields if request.user.is_superuser else fields + RIGHTS

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        # (also the password form: Django's checks this permission for it)
        return not _superuser_only(request, obj) and super().has_change_permission(request, obj)

    def has_delete_permission(self, request: HttpRequest, obj=None) -> bool:
        return not _superuser_only(request, obj) and super().has_delete_permission(request, obj)

    def delete_model(self, request: HttpRequest, obj) -> None:
        user_delete(user=obj)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet) -> None:
        with transaction.atomic():  # all of them or none, as Django's own bulk delete
            for user in queryset.order_by("pk"):
                user_delete(user=user)


class GroupForm(forms.ModelForm):
    granted_by = None  # the staff user editing the group; set by StudyGroupAdmin.get_form

    def clean_permissions(self):
        permissions = self.cleaned_data["permissions"]
        by = self.granted_by
        if by is None or by.is_superuser:
            return permissions
        before = set(self.instance.permissions.values_list("pk", flat=True)) if self.instance.pk else set()
        added = [p for p in permissions if p.pk not in before]
        beyond = [p for p in added if not by.has_perm(f"{p.content_type.app_label}.{p.codename}")]
        if beyond:
            names = ", ".join(sorted(f"{p.content_type.app_label}.{p.codename}" for p in beyond))
            raise ValidationError(f"Only a superuser can grant a permission you do not hold: {names}.",
                                  code="permission_not_held")
        return permissions


class StudyGroupAdmin(GroupAdmin):
    form = GroupForm

    def get_form(self, request: HttpRequest, obj=None, change: bool = False, **kwargs):
        form = super().get_form(request, obj, change=change, **kwargs)
        return type(form.__name__, (form,), {"granted_by": request.user})


for model, model_admin in ((User, StudyUserAdmin), (Group, StudyGroupAdmin)):
    if admin.site.is_registered(model):
        admin.site.unregister(model)
    admin.site.register(model, model_admin)
