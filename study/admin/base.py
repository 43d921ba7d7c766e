"""What the study admins share: the ModelAdmin of soft-deletable rows, the form that keeps owners together."""

from datetime import timedelta

from django import forms
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.contrib.admin.models import CHANGE, LogEntry
from django.contrib.admin.utils import model_ngettext
from django.contrib.admin.widgets import ForeignKeyRawIdWidget
from django.db import IntegrityError, models, transaction
from django.db.models import QuerySet
from django.forms.models import BaseInlineFormSet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils import timezone
from django.utils.text import Truncator

from study.services.topics import topic_get_live
from study.textnorm import spellings
from studyserver.admin import change_url, too_many_for_one_action
from studyserver.errors import NotFound, violates_unique

# A list's filter by owner (or topic) names only the owners of its rows, not every account of the site: staff who
# may view cards would otherwise read every username, the superusers' included.
OWNER_FILTER = ("user", admin.RelatedOnlyFieldListFilter)
TOPIC_FILTER = ("study_topic", admin.RelatedOnlyFieldListFilter)

_REFUSED = "studyserver_admin_refused"  # set on a request whose write found its row gone or its value taken
_DELETION_LOG = "studyserver_deletion_log"  # the rows Django asked to log as deleted, until they really are


def same_text(a: str, b: str) -> bool:
    """Equal as a textarea shows them: browsers send its line breaks as CRLF and the form strips the ends."""
    return a.replace("\r\n", "\n").strip() == b.replace("\r\n", "\n").strip()


CHANGED_MEANWHILE = ("Changed meanwhile (by the app, a task or another staff member); nothing was saved. Reload the "
                     "page to see what it holds now; your value is kept here.")


class ShownValuesForm(forms.ModelForm):
    """A change form that writes what its user changed, not what changed since its page was opened.

    Each field also sends back the value the page showed (Django's `show_hidden_initial`), and `changed_data` is
    what differs from that: Django compares the post with the row as it is when the post arrives, so a field the
    app, a task or another tab changed meanwhile counted as changed here and the page's old value was written back
    over it (the OCR text of a session, a learner's fix of a question, republished to the viewers). The admin then
    saves `changed_data` only (save_changed_fields, or the service the admin calls with those fields). A field
    changed both here and meanwhile is a form error, with the value typed kept. A post that does not say what its
    page showed (a script, an older page) is compared with the row, as before; so are file fields."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        if self.instance.pk is None:
            return
        for name, field in self.fields.items():
            if isinstance(field, forms.FileField) or field.widget.is_hidden:
                continue
            field.show_hidden_initial = not self.is_bound or not field.hidden_widget().value_omitted_from_data(
                self.data, self.files, self.add_initial_prefix(name))

    @property
    def changed_data(self) -> list[str]:
        # (a property: Django's cached one is read before clean, for the owner checks, and again by the admin)
        return [name for name in super().changed_data
                if not self._same_text(name, self[name].data, self._shown_raw(name))]

    def clean(self) -> dict:
        data = super().clean()
        for name in self.changed_data:
            field = self.fields[name]
            if not field.show_hidden_initial or name in self.errors:
                continue
            now, shown, posted = self[name].initial, self._shown_raw(name), self[name].data
            meanwhile = field.has_changed(now, shown) and not self._same_text(name, shown, now)
            if meanwhile and field.has_changed(now, posted) and not self._same_text(name, posted, now):
                self.add_error(name, CHANGED_MEANWHILE)
        return data

    def _shown_raw(self, name: str):
        """What the page showed in field `name`, as posted (its hidden initial value); else the row's value now."""
        field = self.fields[name]
        if not field.show_hidden_initial:
            return self[name].initial
        return field.hidden_widget().value_from_datadict(self.data, self.files, self.add_initial_prefix(name))

    def _same_text(self, name: str, a, b) -> bool:
        """Whether `a` and `b` (posted or stored values of field `name`) are one text as a textarea shows it."""
        field = self.fields[name]
        if not isinstance(field, forms.CharField):
            return False
        try:
            a, b = field.to_python(a), field.to_python(b)
        except forms.ValidationError:
            return False
        return isinstance(a, str) and isinstance(b, str) and same_text(a, b)


def _refused(request: HttpRequest) -> bool:
    return getattr(request, _REFUSED, False)


def _newly_deleted(form: forms.ModelForm, field: str, related: models.Model | None) -> bool:
    """Is `field` newly pointed at a soft-deleted row? (One that pointed at a row deleted since stays.)"""
    return field in form.changed_data and getattr(related, "deleted_at", None) is not None


def take_row(obj: models.Model, saved: models.Model) -> None:
    """Make the admin's unsaved `obj` the row a service has just saved: the admin then logs that row, links the
    inlines to it and redirects to it."""
    for field in saved._meta.concrete_fields:
        setattr(obj, field.attname, getattr(saved, field.attname))
    obj._state.adding = False
    obj._state.db = saved._state.db


def save_changed_fields(obj: models.Model, form: forms.ModelForm, change: bool) -> bool:
    """Save what the form changed (an added row whole); whether anything was written.

    A change form writes back every field it shows, and the date-time widgets drop microseconds (Django takes the
    cut value for the initial one, so the form sees no change): saving a page unchanged moved its times back by
    up to a second, and a published row was republished to every viewer."""
    if not change:
        obj.save()
        return True
    if not form.has_changed():
        return False
    fields = {field.name for field in obj._meta.concrete_fields}
    changed = [name for name in form.changed_data if name in fields]
    obj.save(update_fields=[*changed, *(["updated_at"] if "updated_at" in fields else [])])
    return True


class OwnerSetOnceMixin:
    """The owner (`user`) is chosen when a row is added and read-only afterwards: the rows it points at and the
    rows pointing at it belong to that owner (the same-owner keys of study/0009), so moving it would strand them."""

    def get_readonly_fields(self, request: HttpRequest, obj: models.Model | None = None) -> tuple[str, ...]:
        fields = tuple(super().get_readonly_fields(request, obj))
        return ("user", *fields) if obj is not None else fields


class NFCSearchMixin:
    """The changelist's search looks for what was typed and for its NFC and NFD forms: names, subjects, titles and
    the sessions' texts are stored NFC, so a term pasted in a decomposed (NFD) spelling finds them; texts stored as
    sent (a card's cue, a session's OCR text) are found in the spelling they have, NFD (a macOS app) too."""

    def get_search_results(self, request: HttpRequest, queryset: models.QuerySet, search_term: str):
        results, may_have_duplicates = super().get_search_results(request, queryset, search_term)
        for spelling in spellings(search_term)[1:]:
            found, found_duplicates = super().get_search_results(request, queryset, spelling)
            results, may_have_duplicates = results | found, may_have_duplicates or found_duplicates
        return results, may_have_duplicates


class ViewOnlyMixin:
    """Rows written by a flow of the app (a quiz's sessions and attempts), shown in the admin but neither added,
    changed nor deleted there: what the flow derived from them (counts, progress, spaced repetition) could not follow
    the edit. A deleted attempt left its session's counts behind; a deleted viewer session took its `client_uuid`
    along, and the same batch sent again would have moved spaced repetition twice. The model-level delete permission
    stays, so deleting a user still takes these rows with it: the delete confirmation (deleted_objects_summary) asks
    each kind of row for that one, not an object's (Django's own get_deleted_objects would ask per row, and refuse)."""

    def has_add_permission(self, request: HttpRequest, obj: models.Model | None = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: models.Model | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: models.Model | None = None) -> bool:
        return obj is None and super().has_delete_permission(request)

    def get_actions(self, request: HttpRequest) -> dict:
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)
        return actions


class LoadedRawIdWidget(ForeignKeyRawIdWidget):
    """A raw-id widget labelled from the row its form's instance already holds (`loaded`) instead of a query."""

    loaded: models.Model | None = None

    def label_and_url_for_value(self, value) -> tuple[str, str]:
        obj = self.loaded
        if obj is None or str(obj.pk) != str(value):  # another value posted: Django's own lookup
            return super().label_and_url_for_value(value)
        return Truncator(obj).words(14), change_url(self.admin_site, obj)


class LoadedLinksFormSet(BaseInlineFormSet):
    """Hands each row's already selected links to its raw-id widgets."""

    def _construct_form(self, i: int, **kwargs) -> forms.ModelForm:
        form = super()._construct_form(i, **kwargs)
        for name, field in form.fields.items():
            if isinstance(field.widget, LoadedRawIdWidget) and form.instance._meta.get_field(name).is_cached(
                form.instance
            ):
                field.widget.loaded = getattr(form.instance, name)
        return form


class LoadedLinksInline(admin.TabularInline):
    """An inline whose rows' raw-id links are selected with the rows: the page's query count does not grow with
    them (Django's raw-id widget reads each label with its own query)."""

    formset = LoadedLinksFormSet
    defer_fields: tuple[str, ...] = ()  # large columns of the linked rows the inline does not show

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        return super().get_queryset(request).select_related(*self.raw_id_fields).defer(*self.defer_fields)

    def formfield_for_foreignkey(self, db_field, request: HttpRequest, **kwargs) -> forms.Field:
        if db_field.name in self.raw_id_fields:
            kwargs["widget"] = LoadedRawIdWidget(db_field.remote_field, self.admin_site, using=kwargs.get("using"))
        return super().formfield_for_foreignkey(db_field, request, **kwargs)


class RefusableSaveAdmin(admin.ModelAdmin):
    """A ModelAdmin whose save can be refused when a write found its row gone or its value taken after the page
    read it (`refuse_save`): Django logs a change and says "changed successfully" after save_model, whatever it
    did; here the history and the message say what happened.

    `inline_conflicts`: (model, unique constraint, message) of the inlines' rows. Django saves an inline's rows one
    by one, so rows that swap their keys in one POST, or a row another request added after the formset was
    checked, collide with a row of the page; that refuses the whole save (the parent's changes too).
    """

    inline_conflicts: tuple[tuple[type[models.Model], str, str], ...] = ()

    def refuse_save(self, request: HttpRequest, message: str) -> None:
        """From save_model or save_related: nothing was saved; the change (or add) form shows `message` instead of
        its success and writes no history."""
        setattr(request, _REFUSED, True)
        self.message_user(request, message, messages.ERROR)

    def topic_kept_live(self, request: HttpRequest, obj: models.Model, form: forms.ModelForm, change: bool,
                        field: str = "study_topic") -> bool:
        """From save_model: when the row is added or moved to a topic (`field`), lock that topic live until the
        admin's commit, as the API's writes do, so a concurrent delete waits for this row. False (and the save
        refused) when the topic was deleted since the form checked it."""
        topic_id = getattr(obj, f"{field}_id")
        if topic_id is None or (change and field not in form.changed_data):
            return True
        try:
            topic_get_live(user=obj.user, topic_id=topic_id, lock=True)
        except NotFound:
            self.refuse_save(request, "The topic was deleted meanwhile; nothing was saved.")
            return False
        return True

    def save_related(self, request: HttpRequest, form, formsets, change: bool) -> None:
        if _refused(request):
            return  # the row was not saved: neither are its inlines
        try:
            with transaction.atomic():
                super().save_related(request, form, formsets, change)
        except IntegrityError as exc:
            message = next((text for model, name, text in self.inline_conflicts if violates_unique(exc, model, name)),
                           None)
            if message is None:
                raise
            transaction.set_rollback(True)  # the admin's transaction: the row's own changes go too
            self.refuse_save(request, f"{message} Nothing was saved.")

    def construct_change_message(self, request: HttpRequest, form, formsets, add: bool = False) -> list:
        if _refused(request):
            return []  # nothing to log (and the skipped formsets never got their saved objects)
        return super().construct_change_message(request, form, formsets, add)

    def log_addition(self, request: HttpRequest, obj: models.Model, message) -> object:
        if _refused(request):
            return None
        return super().log_addition(request, obj, message)

    def log_change(self, request: HttpRequest, obj: models.Model, message) -> object:
        if _refused(request):
            return None
        return super().log_change(request, obj, message)

    def response_add(self, request: HttpRequest, obj: models.Model, post_url_continue=None) -> HttpResponse:
        if _refused(request):
            return HttpResponseRedirect(request.path)  # the add form again: there is no row to show
        return super().response_add(request, obj, post_url_continue)

    def response_change(self, request: HttpRequest, obj: models.Model) -> HttpResponse:
        if _refused(request):  # the form again, with what is stored now (and where it came from: its query)
            return HttpResponseRedirect(request.get_full_path())
        return super().response_change(request, obj)


class SoftDeleteModelAdmin(RefusableSaveAdmin):
    """A ModelAdmin whose delete button and "delete selected (soft)" action call `soft_delete`.

    Django's own delete would remove the row and everything cascading from it, behind the soft delete
    and without the publish request its service records.
    """

    actions = ["soft_delete_selected"]
    # Only the rows themselves change: the confirmation neither lists nor asks delete permission for the related
    # rows a hard delete would cascade to, none of which a soft delete touches.
    delete_cascades = False

    def soft_delete(self, obj: models.Model) -> bool:
        """Soft-delete one live row through its service; False when someone else deleted it meanwhile."""
        raise NotImplementedError

    def soft_delete_many(self, rows: list[models.Model]) -> list[models.Model]:
        """Soft-delete live rows (in id order); those this call deleted. One by one through `soft_delete`, unless a
        model admin has a bulk service for it."""
        return [obj for obj in rows if self.soft_delete(obj)]

    def get_actions(self, request: HttpRequest) -> dict:
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)
        return actions

    # Django logs a deletion before it calls delete_model, whatever it did: the history says what happened.

    def log_deletions(self, request: HttpRequest, queryset) -> object:
        # Called by the delete view just before delete_model: kept until the row has really gone.
        setattr(request, _DELETION_LOG, queryset)

    def delete_model(self, request: HttpRequest, obj: models.Model) -> None:
        # deleting again would move deleted_at and publish for nothing
        if obj.deleted_at is None and self.soft_delete(obj):
            super().log_deletions(request, getattr(request, _DELETION_LOG, [obj]))
        else:
            setattr(request, _REFUSED, True)

    def response_delete(self, request: HttpRequest, obj_display: str, obj_id) -> HttpResponse:
        if _refused(request):
            self.message_user(
                request, f"The {self.opts.verbose_name} “{obj_display}” was already deleted; nothing was changed.",
                messages.WARNING,
            )
            return HttpResponseRedirect(reverse(f"admin:{self.opts.app_label}_{self.opts.model_name}_changelist",
                                                current_app=self.admin_site.name))
        return super().response_delete(request, obj_display, obj_id)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet) -> None:
        with transaction.atomic():
            self.soft_delete_many(list(queryset.filter(deleted_at__isnull=True).order_by("pk")))

    @admin.action(description="Delete selected %(verbose_name_plural)s (soft)", permissions=["delete"])
    def soft_delete_selected(self, request: HttpRequest, queryset: QuerySet) -> HttpResponse | None:
        """Asks first, as Django's own "delete selected" does ("Select all" hands it a whole filtered list)."""
        live = queryset.filter(deleted_at__isnull=True)
        count = live.count()
        if too_many_for_one_action(self, request, count):
            return None
        if not count:
            self.message_user(request, f"The selected {self.opts.verbose_name_plural} were deleted already; nothing "
                              "was changed.", messages.WARNING)
            return None
        if not request.POST.get("post"):
            return self._soft_delete_confirmation(request, live)
        with transaction.atomic():
            # (a row deleted by someone else after this read is left out of the count and the history)
            # (in id order, as every bulk write locks its rows: two of them at once never deadlock)
            deleted = self.soft_delete_many(list(live.order_by("pk")))
            if deleted:  # the history Django's own bulk delete keeps, in one INSERT
                LogEntry.objects.log_actions(request.user.pk, deleted, CHANGE, change_message="Deleted (soft).")
        self.message_user(
            request, f"Deleted {len(deleted)} {model_ngettext(self.opts, len(deleted))}.",
            messages.SUCCESS if deleted else messages.WARNING,  # (all deleted by someone else meanwhile)
        )
        return None

    def _soft_delete_confirmation(self, request: HttpRequest, live: QuerySet) -> HttpResponse:
        rows = list(live)
        listed, model_count, _, _ = self.get_deleted_objects(rows, request)
        objects_name = model_ngettext(self.opts, len(rows))
        context = {
            **self.admin_site.each_context(request),
            "title": "Delete multiple objects",
            "subtitle": None,
            "objects_name": str(objects_name),
            "deletable_objects": [listed],
            "model_count": model_count.items(),
            "queryset": rows,
            "opts": self.opts,
            "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
            "media": self.media,
        }
        request.current_app = self.admin_site.name
        return TemplateResponse(request, "admin/soft_delete_selected_confirmation.html", context)


class DocumentLinkForm(forms.ModelForm):
    """A link from a row (`parent_field`: a topic, a session) to a document: the document is live when linked and
    belongs to the parent's owner, as the API allows nothing else (and the triggers of study/0007 refuse it on
    PostgreSQL). In an inline, the parent field holds the parent form's row, not saved yet on the add page."""

    parent_field = ""

    def clean(self) -> dict:
        data = super().clean()
        parent, document = data.get(self.parent_field), data.get("document")
        if _newly_deleted(self, self.parent_field, parent):
            self.add_error(self.parent_field, f"This {self.parent_field} is deleted.")
        elif _newly_deleted(self, "document", document):
            self.add_error("document", "This document is deleted.")
        elif parent is not None and document is not None and parent.user_id is not None:
            if document.user_id != parent.user_id:
                self.add_error("document", f"This document belongs to another user than the {self.parent_field}.")
            else:
                self.owner_checked(parent.user_id)
        return data

    def owner_checked(self, user_id: int) -> None:
        """Called once the document's owner is known to be the parent's."""


# How far ahead of the server's clock a time that records a past event may be (an admin's clock a little ahead).
CLOCK_SKEW = timedelta(minutes=5)


def refuse_future(form: forms.ModelForm, data: dict, *fields: str) -> None:
    """Times that record what happened (a review, an answer) are not in the future: the SR ladder and the feed
    read them as past."""
    latest = timezone.now() + CLOCK_SKEW
    for field in fields:
        value = data.get(field)
        if value is not None and value > latest:
            form.add_error(field, "This records what happened: it cannot be in the future.")


class SameOwnerForm(ShownValuesForm):
    """The rows this one points at (`owner_links`) belong to its `user`, as a form error: PostgreSQL refuses
    anything else at commit (the <table>_<field>_same_owner_fk keys of study/0009), which would be a 500 here.
    In an inline, the parent's field holds the parent (its owner already set on the add page).

    A link newly pointed at a soft-deleted row is refused too, as the API refuses it (404); one that pointed at
    a row deleted since stays (SPEC: a soft delete detaches nothing)."""

    owner_links: tuple[str, ...] = ()

    def clean(self) -> dict:
        data = super().clean()
        for field in self.owner_links:
            related = data.get(field)
            if _newly_deleted(self, field, related):
                name = self._meta.model._meta.get_field(field).related_model._meta.verbose_name
                self.add_error(self._error_field(field), f"This {name} is deleted.")
        user = data.get("user")
        user_id = user.pk if user is not None else self.instance.user_id
        if user_id is None:
            return data
        for field in self.owner_links:
            related = data.get(field)
            if related is not None and related.user_id is not None and related.user_id != user_id:
                name = self._meta.model._meta.get_field(field).related_model._meta.verbose_name
                self.add_error(self._error_field(field), f"This {name} belongs to another user.")
        return data

    def _error_field(self, field: str) -> str | None:
        """The field to show the error on: an inline's parent is a hidden field, so its rows show it on `user`."""
        if field in self.fields and not self.fields[field].widget.is_hidden:
            return field
        return "user" if "user" in self.fields else None
