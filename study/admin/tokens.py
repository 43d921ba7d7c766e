"""Admin for API tokens: staff create and revoke them, and see only a prefix of each key.

DRF's own TokenAdmin lists every full key to anyone who may view tokens; it is replaced here. A new token's
key is shown once, in the message after it is created. Only a superuser makes the key of another staff member or
superuser: the key reaches its owner's study data, so "add API token" alone must not be a way into theirs.
"""

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.exceptions import DisallowedModelAdminToField
from django.contrib.admin.options import IS_POPUP_VAR
from django.core.exceptions import ValidationError
from django.db.models.constants import LOOKUP_SEP
from django.http import HttpRequest
from rest_framework.authtoken import admin as drf_token_admin
from rest_framework.authtoken.models import TokenProxy

from study.models import ApiToken
from study.models.tokens import key_prefix

admin.site.unregister(TokenProxy)


class ApiTokenForm(forms.ModelForm):
    requested_by = None  # the staff user creating the token; set by ApiTokenAdmin.get_form

    def clean_user(self):
        user = self.cleaned_data["user"]
        by = self.requested_by
        if by is not None and not by.is_superuser and user.pk != by.pk and (user.is_staff or user.is_superuser):
            raise ValidationError(
                "Only a superuser can create the key of another staff member or superuser.", code="staff_key")
        return user


@admin.register(ApiToken)
class ApiTokenAdmin(drf_token_admin.TokenAdmin):
    """DRF's TokenAdmin (objects addressed by user id) with the key shown as a prefix and nothing to edit."""

    list_display = ("key_shown", "user", "created")
    list_display_links = ("key_shown",)
    list_select_related = ("user",)
    raw_id_fields = ("user",)
    form = ApiTokenForm

    @admin.display(description="key")
    def key_shown(self, obj: ApiToken) -> str:
        return key_prefix(obj.key)

    def get_fields(self, request: HttpRequest, obj: ApiToken | None = None) -> tuple[str, ...]:
        return ("user",) if obj is None else ("key_shown", "user", "created")

    def get_form(self, request: HttpRequest, obj: ApiToken | None = None, change: bool = False, **kwargs):
        form = super().get_form(request, obj, change=change, **kwargs)
        return type(form.__name__, (form,), {"requested_by": request.user})

    def get_readonly_fields(self, request: HttpRequest, obj: ApiToken | None = None) -> tuple[str, ...]:
        return () if obj is None else ("key_shown", "user", "created")

    def lookup_allowed(self, lookup: str, value: str, request: HttpRequest) -> bool:
        # The changelist filters by any of the model's own fields from the URL: `?key__startswith=ab` (or `pk__…`,
        # the key is the primary key) would tell whoever may view tokens each key a character at a time.
        return lookup.split(LOOKUP_SEP, 1)[0] not in {"key", "pk"} and super().lookup_allowed(lookup, value, request)

    def changelist_view(self, request: HttpRequest, extra_context=None):
        # A popup's rows carry each row's primary key for the opener (`data-popup-opener`), and a token's is its
        # key; no field of the site points at a token, so the list is never needed as a popup.
        if IS_POPUP_VAR in request.GET:
            raise DisallowedModelAdminToField("The API tokens list is not offered as a popup.")  # a 400
        return super().changelist_view(request, extra_context)

    def to_field_allowed(self, request: HttpRequest, to_field: str) -> bool:
        # A primary key is always allowed by Django: `?_popup=1&_to_field=key` would put every whole key in the
        # list's popup links.
        return to_field != "key" and super().to_field_allowed(request, to_field)

    def has_change_permission(self, request: HttpRequest, obj: ApiToken | None = None) -> bool:
        return False  # a token is created for a user and revoked (deleted); it never moves to another user

    def save_model(self, request: HttpRequest, obj: ApiToken, form: forms.ModelForm, change: bool) -> None:
        super().save_model(request, obj, form, change)
        if not change:
            self.message_user(
                request,
                f"The new key of {obj.user}: {obj.key} — copy it now; it is not shown again.",
                messages.WARNING,
            )
