"""The admin site: Django's, with its login form rate-limited like POST /api/auth/token, and every model admin
registered on it made to answer bad input with a form error or a message instead of a 500 (SturdyAdminMixin)."""

import functools
import json
import math
from collections import Counter

from django import forms
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.contrib.admin.apps import AdminConfig
from django.contrib.admin.options import IncorrectLookupParameters
from django.contrib.admin.utils import model_ngettext, quote
from django.core.exceptions import FieldDoesNotExist
from django.db import DataError, models, router
from django.db.models.constants import LOOKUP_SEP
from django.db.models.deletion import Collector, ProtectedError, RestrictedError, get_candidate_relations_to_delete
from django.http import HttpRequest, HttpResponse
from django.urls import NoReverseMatch, reverse
from django.utils import timezone
from django.utils.html import format_html
from django.utils.text import capfirst

from studyserver.ids import parse_id
from studyserver.parsers import unstorable_json
from studyserver.throttling import SettingsSimpleRateThrottle, SignInLocked
from studyserver.times import EARLIEST_TIME


class BoundedSplitDateTimeField(forms.SplitDateTimeField):
    """A date and time from 1972 (EARLIEST_TIME, the API's bound: earlier ones render with a seconds offset, which
    the API's clients cannot read) to the year 9998: year 1 in a zone east of UTC is a year BC in UTC, which
    PostgreSQL stores and Python then cannot read (every later page of that row was a 500), and SQLite's side of
    Django overflows on it at once."""

    def clean(self, value):
        result = super().clean(value)
        if result is not None and not (EARLIEST_TIME.year <= result.year <= 9998 and result >= EARLIEST_TIME):
            earliest = timezone.localtime(EARLIEST_TIME).strftime("%Y-%m-%d %H:%M")  # (1972-01-01 09:00 in Seoul)
            raise forms.ValidationError(f"Enter a time from {earliest} to the year 9998.", code="out_of_range")
        return result


def _refuse_constant(name: str):
    raise ValueError(f"{name} is not JSON a database can store")


def _finite_float(text: str) -> float:
    number = float(text)
    if math.isinf(number):
        raise ValueError(f"{text} is too large a number")
    return number


class _StrictDecoder(json.JSONDecoder):
    def __init__(self, **kwargs) -> None:
        super().__init__(parse_constant=_refuse_constant, parse_float=_finite_float, **kwargs)


class CheckedJSONFormField(forms.JSONField):
    """JSON that both databases store and give back: no NaN / Infinity, no NUL character, no lone surrogate, at
    most MAX_JSON_DEPTH deep (json.loads raises RecursionError about 1,000 deep). Django's own field let each of
    them through to a 500 or a stored row whose change page then failed."""

    def __init__(self, *args, **kwargs) -> None:
        kwargs["decoder"] = _StrictDecoder
        super().__init__(*args, **kwargs)

    def to_python(self, value):
        try:
            converted = super().to_python(value)
        except RecursionError:
            raise forms.ValidationError("Enter valid JSON (nested too deeply).", code="invalid") from None
        except ValueError as exc:  # NaN or infinity, refused by the decoder
            raise forms.ValidationError(f"Enter valid JSON ({exc}).", code="invalid") from None
        if problem := unstorable_json(converted):
            raise forms.ValidationError(problem, code="invalid")
        return converted

    def bound_data(self, data, initial):
        try:
            return super().bound_data(data, initial)
        except (RecursionError, ValueError):  # too deep, or a number the strict decoder refuses
            return forms.fields.InvalidJSONInput(data)

    def prepare_value(self, value):
        # A form shown again with its errors renders what was sent: escaped if it cannot be encoded as it is.
        text = super().prepare_value(value)
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            return json.dumps(value, cls=self.encoder)
        return text


class JSONObjectFormField(CheckedJSONFormField):
    """A JSON object, as the API's JSONObjectField takes it (a session's metadata and strokes); empty is {}."""

    def clean(self, value):
        result = super().clean(value)
        if result is None:  # (left empty)
            return {}
        if not isinstance(result, dict):
            raise forms.ValidationError('Enter a JSON object, such as {"key": "value"}.', code="not_an_object")
        return result


class SturdyChangeListMixin:
    """A lookup the database or Python cannot evaluate (`created_at__year=99999`, a NUL in a PostgreSQL text
    filter, an id beyond SQLite's integers) is an invalid lookup, which the admin answers with its "?e=1" page.

    A model admin's `changelist_defer` names the large columns its list does not show (a session's strokes, a
    document's extracted text): a page of 100 rows read and decoded 23 MB of handwriting strokes without it."""

    def get_queryset(self, request, exclude_parameters=None):
        try:
            queryset = super().get_queryset(request, exclude_parameters)
        except (ValueError, OverflowError) as exc:
            raise IncorrectLookupParameters(exc) from exc
        deferred = getattr(self.model_admin, "changelist_defer", ())
        return queryset.defer(*deferred) if deferred else queryset

    def get_results(self, request) -> None:
        try:
            super().get_results(request)
        except (DataError, OverflowError, ValueError) as exc:
            raise IncorrectLookupParameters(exc) from exc


BULK_ACTION_MAX = 500  # rows one bulk action takes ("Select all" hands it a whole list): each goes through its service


def too_many_for_one_action(model_admin: admin.ModelAdmin, request: HttpRequest, count: int) -> bool:
    """Refuse (with a message) an action on more than BULK_ACTION_MAX rows: each row costs a few queries, so a
    "select all" of 5,000 rows ran 25,000 queries in one request."""
    if count <= BULK_ACTION_MAX:
        return False
    model_admin.message_user(
        request, f"{count} {model_ngettext(model_admin.opts, count)} are selected; one action takes at most "
        f"{BULK_ACTION_MAX}. Nothing was changed: narrow the list with its filters.", messages.ERROR,
    )
    return True


DELETE_LISTED_MAX = 100  # rows a delete confirmation names one by one; the rest are counted


def change_url(admin_site: admin.AdminSite, obj: models.Model) -> str:
    """The admin change page of `obj`, or "" when its model has none on this site."""
    try:
        return reverse(f"{admin_site.name}:{obj._meta.app_label}_{obj._meta.model_name}_change",
                       args=[quote(obj.pk)])
    except NoReverseMatch:
        return ""


def _deleted_label(model_admin: admin.ModelAdmin, obj: models.Model) -> str:
    name = capfirst(obj._meta.verbose_name)
    url = change_url(model_admin.admin_site, obj)
    return format_html('{}: <a href="{}">{}</a>', name, url, obj) if url else f"{name}: {obj}"


_LEFT_IN_PLACE = (models.SET_NULL, models.SET_DEFAULT, models.DO_NOTHING)


def cascade_counts(model: type[models.Model], pks: list, *, using: str) -> Counter | None:
    """How many rows of each model a delete of `model`'s rows `pks` removes, counted by the database: one count per
    model of the rows whose key points at a row removed before it (subqueries, in the order the cascade reaches
    them; a row reached along several keys counts once). The collector read every row to count it: 2 s for a
    learner's delete page at 50,000 attempts, 9 s at 250,000.

    None when the relations hold anything but CASCADE and keys that stay (SET_NULL, SET_DEFAULT, DO_NOTHING): a
    PROTECT or RESTRICT (the collector says what blocks the delete), a custom handler, generic relations, parent
    models, a cycle, or a proxy model; the caller asks the collector then."""
    if model._meta.proxy:  # (DRF's token proxy has the user's id as its pk: the collector reads the few rows)
        return None
    root = model._meta.concrete_model
    parents: dict[type[models.Model], list] = {root: []}
    pending = [root]
    while pending:
        current = pending.pop()
        if current._meta.parents or any(hasattr(f, "bulk_related_objects") for f in current._meta.private_fields):
            return None
        for relation in get_candidate_relations_to_delete(current._meta):
            on_delete = relation.field.remote_field.on_delete
            if on_delete in _LEFT_IN_PLACE:
                continue
            if on_delete is not models.CASCADE:
                return None
            child = relation.related_model._meta.concrete_model
            if child not in parents:
                parents[child] = []
                pending.append(child)
            parents[child].append((relation.field, current))
    order: list[type[models.Model]] = []  # each model after every model whose removal reaches it
    waiting = {child: {parent for _field, parent in edges} for child, edges in parents.items()}
    while waiting:
        ready = [child for child, before in waiting.items() if not before - set(order)]
        if not ready:
            return None  # a cycle
        for child in ready:
            order.append(child)
            del waiting[child]
    removed = {root: root._base_manager.using(using).filter(pk__in=pks)}
    for child in order[1:]:
        reached = models.Q()
        for field, parent in parents[child]:
            reached |= models.Q(**{f"{field.attname}__in": removed[parent].values(field.target_field.attname)})
        removed[child] = child._base_manager.using(using).filter(reached)
    return Counter({child: removed[child].count() for child in order})


def deleted_objects_summary(
    model_admin: admin.ModelAdmin, objs, request: HttpRequest, *, cascades: bool = True
) -> tuple[list, dict, set, list]:
    """What a delete confirmation shows: the rows picked (the first DELETE_LISTED_MAX by name, with links) and a
    count of every kind of row the delete removes, from Django's deletion collector.

    Django's own `get_deleted_objects` names and links every row a delete cascades to: for a learner with 50,000
    attempts and 10,000 cards that page took 20–30 s and 6 MB, and "delete selected" on 2,000 quiz sessions as
    long. Permissions are asked of each row picked, as Django asks them (a rule of the admin's own may refuse one
    row: a superuser, to staff who are not), and of each kind of row the delete cascades to. Without `cascades` (a
    soft delete) only the rows themselves change."""
    objs = list(objs)
    opts = model_admin.opts
    listed: list = [_deleted_label(model_admin, obj) for obj in objs[:DELETE_LISTED_MAX]]
    if len(objs) > DELETE_LISTED_MAX:
        listed.append(f"… and {len(objs) - DELETE_LISTED_MAX} more {opts.verbose_name_plural}")
    # Shown in the confirmation's list of what the account may not delete; its "Yes" is then refused (403).
    refused = {f"{opts.verbose_name} “{obj}”" for obj in objs if not model_admin.has_delete_permission(request, obj)}
    if not cascades:
        return listed, {opts.verbose_name_plural: len(objs)}, refused, []
    using = router.db_for_write(model_admin.model)
    collected = cascade_counts(model_admin.model, [obj.pk for obj in objs], using=using)
    if collected is None:  # a relation that only the collector can follow: it reads the rows
        collector = Collector(using=using, origin=objs)
        try:
            collector.collect(objs)
        except (ProtectedError, RestrictedError) as exc:
            blocking = list(getattr(exc, "protected_objects", None) or getattr(exc, "restricted_objects", ()))
            return listed, {}, set(), [f"{capfirst(o._meta.verbose_name)}: {o}" for o in blocking[:DELETE_LISTED_MAX]]
        collected = Counter()
        for model, instances in collector.data.items():
            collected[model] += len(instances)
        for queryset in collector.fast_deletes:  # whole querysets Django deletes without reading them
            collected[queryset.model] += queryset.count()
    counts = {model: count for model, count in collected.items() if count}  # (the collector lists empty relations)
    perms_needed = refused
    for model in counts:
        related_admin = model_admin.admin_site._registry.get(model)
        if related_admin is not None and not related_admin.has_delete_permission(request):
            perms_needed.add(model._meta.verbose_name)
    model_count = {model._meta.verbose_name_plural: count for model, count in counts.items()}
    return listed, model_count, perms_needed, []


def _capped(action):
    """`action`, refused past BULK_ACTION_MAX rows. For Django's "delete selected" this is also what its
    confirmation can carry back: it posts every row's id, and Django reads at most 1,000 fields of a request
    (DATA_UPLOAD_MAX_NUMBER_FIELDS), so "Yes, I'm sure" for more rows was a 400."""

    @functools.wraps(action)
    def capped(model_admin, request: HttpRequest, queryset):
        if too_many_for_one_action(model_admin, request, queryset.count()):
            return None
        return action(model_admin, request, queryset)

    return capped


@functools.cache
def _sturdy_changelist(base: type) -> type:
    return type(f"Sturdy{base.__name__}", (SturdyChangeListMixin, base), {})


def _reaches_a_token(model: type[models.Model], lookup: str) -> bool:
    """Does the changelist lookup `lookup` on `model` go through a relation to an API token?"""
    from rest_framework.authtoken.models import Token

    for part in lookup.split(LOOKUP_SEP):
        try:
            field = model._meta.get_field(part)
        except FieldDoesNotExist:
            return False  # a transform or lookup (`__startswith`), or no field: Django's own check decides
        if not field.is_relation or field.related_model is None:
            return False
        model = field.related_model
        if issubclass(model._meta.concrete_model, Token):
            return True
    return False


class SturdyAdminMixin:
    """What every model admin of this site gets (StudyAdminSite.register mixes it in).

    A model admin whose delete changes only the rows themselves (a soft delete) sets `delete_cascades = False`
    (not set here: this mixin comes first in the class it is mixed into, and would hide the admin's own value)."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        # (ModelAdmin.__init__ made formfield_overrides this instance's own copy, Django's defaults included.)
        overrides = self.formfield_overrides
        if overrides[models.DateTimeField].get("form_class") is forms.SplitDateTimeField:  # Django's default
            overrides[models.DateTimeField]["form_class"] = BoundedSplitDateTimeField
        overrides.setdefault(models.JSONField, {}).setdefault("form_class", CheckedJSONFormField)

    def get_changelist(self, request, **kwargs):
        return _sturdy_changelist(super().get_changelist(request, **kwargs))

    def get_deleted_objects(self, objs, request: HttpRequest) -> tuple[list, dict, set, list]:
        return deleted_objects_summary(self, objs, request, cascades=getattr(self, "delete_cascades", True))

    def lookup_allowed(self, lookup: str, value: str, request: HttpRequest) -> bool:
        # Django lets the changelist filter by a relation's own key from the URL without asking list_filter, and a
        # token's key is its primary key: `?auth_token__key__startswith=ab` on the users' list told whoever may view
        # users each key a character at a time (`auth_token__gt=…` halved the range at each step).
        return not _reaches_a_token(self.model, lookup) and super().lookup_allowed(lookup, value, request)

    def to_field_allowed(self, request: HttpRequest, to_field: str) -> bool:
        try:
            return super().to_field_allowed(request, to_field)
        except AttributeError:  # `_to_field=user` on Group: Django meets a many-to-many relation it cannot read
            return False  # → 400 DisallowedModelAdminToField

    def get_actions(self, request: HttpRequest) -> dict:
        actions = super().get_actions(request)
        if "delete_selected" in actions:  # Django's own (hard) delete, capped like the other bulk actions
            function, name, description = actions["delete_selected"]
            actions["delete_selected"] = (_capped(function), name, description)
        return actions

    def response_action(self, request: HttpRequest, queryset):
        # Django filters pk__in=<the posted ids> as they are: "abc" was a ValueError, a huge id an OverflowError.
        selected = request.POST.getlist(helpers.ACTION_CHECKBOX_NAME)
        if not all(parse_id(value) for value in selected):
            self.message_user(request, "The selection is not valid; nothing was done.", messages.WARNING)
            return None
        return super().response_action(request, queryset)


class AdminLoginThrottle(SettingsSimpleRateThrottle):
    """The "auth" rate (THROTTLE_AUTH_RATE) per client address, counted apart from the API's token requests."""

    scope = "auth"

    def get_cache_key(self, request, view) -> str:
        return self.cache_format % {"scope": "admin_login", "ident": self.get_ident(request)}


class StudyAdminSite(admin.AdminSite):
    """Staff accounts are the most valuable ones: guessing their password costs as much as an API token's."""

    site_header = "studyserver administration"
    site_title = "studyserver admin"
    # No model list beside every page: the lists and the review queue need the width (an iPad in portrait); the
    # index and the breadcrumbs lead everywhere.
    enable_nav_sidebar = False

    def register(self, model_or_iterable, admin_class=None, **options) -> None:
        admin_class = admin_class or admin.ModelAdmin
        if not issubclass(admin_class, SturdyAdminMixin):
            namespace = {"__module__": admin_class.__module__}
            admin_class = type(admin_class.__name__, (SturdyAdminMixin, admin_class), namespace)
        super().register(model_or_iterable, admin_class, **options)

    @property
    def login_form(self) -> type:
        # (imported when asked: this module is loaded with the app registry, before auth's forms can be)
        from .admin_login import ThrottledAuthenticationForm

        return ThrottledAuthenticationForm

    def login(self, request: HttpRequest, extra_context: dict | None = None) -> HttpResponse:
        try:
            if request.method == "POST":
                address = AdminLoginThrottle()
                if not address.allow_request(request, None):
                    raise SignInLocked(address.wait())
            return super().login(request, extra_context)
        except SignInLocked as locked:
            response = HttpResponse("Too many login attempts. Try again later.", status=429,
                                    content_type="text/plain; charset=utf-8")
            response["Retry-After"] = str(math.ceil(locked.wait))
            return response


class StudyAdminConfig(AdminConfig):
    default_site = "studyserver.admin.StudyAdminSite"
