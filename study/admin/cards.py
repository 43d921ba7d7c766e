"""Admin for memo cards: the review queue (grouped by source question), bulk review actions, progress.

Every card change goes through study.services.cards, so the admin and the API share one implementation
of each rule (dedup hash, approval, flags, soft delete, publish requests); card progress edits record their
publish request here.
"""

from urllib.parse import urlsplit

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.models import CHANGE, LogEntry
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.db import transaction
from django.db.models import Prefetch, QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseNotAllowed, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join
from django.utils.http import url_has_allowed_host_and_scheme

from publishing.models import PublishKind
from publishing.services import publish_request, publish_request_many
from study.api.card_serializers import TEXT_MAX
from study.api.common import VisibleFormCharField
from study.models import CardEvidence, CardProgress, MemoCard, Question
from study.models.cards import CardFormat, CardSourceKind
from study.selectors import cards as card_selectors
from study.services import cards as card_services
from studyserver.admin import too_many_for_one_action
from studyserver.errors import DuplicateCard, NotFound
from studyserver.ids import parse_id

from .base import (
    OWNER_FILTER,
    TOPIC_FILTER,
    NFCSearchMixin,
    SameOwnerForm,
    ShownValuesForm,
    SoftDeleteModelAdmin,
    refuse_future,
    same_text,
    save_changed_fields,
)

# A page of the review queue shows whole groups up to about this many cards; a bigger group is split across pages
# (the page's HTML, and so the wait after each action that comes back to it, grows with its cards).
CARDS_PER_PAGE = 50
DUPLICATE_MESSAGE = "Another live card of this user already has the same fact; nothing was changed."


class CardEvidenceInline(admin.TabularInline):
    model = CardEvidence
    extra = 0
    fields = ("source_type", "source_id", "snippet")
    readonly_fields = fields
    can_delete = False

    def has_add_permission(self, request: HttpRequest, obj=None) -> bool:
        return False


class MemoCardForm(ShownValuesForm):
    """The change form: content and the review flag; a duplicate fact is a form error, not a 500. The texts are
    as long as the API allows them.

    As every change page (ShownValuesForm), it saves what this reviewer changed, not every field another reviewer
    changed since the page was opened (saving a new fact wrote the page's old cue back over theirs, and a box shown
    ticked sent a card approved meanwhile back to review); a field changed both here and meanwhile is a form error,
    as in the review queue, with the text typed kept."""

    cue = VisibleFormCharField(widget=forms.Textarea, max_length=TEXT_MAX)
    fact = VisibleFormCharField(widget=forms.Textarea, max_length=TEXT_MAX)
    cloze_text = forms.CharField(widget=forms.Textarea, max_length=TEXT_MAX, required=False)

    class Meta:
        model = MemoCard
        fields = ("cue", "fact", "cloze_text", "needs_review")

    def clean(self) -> dict:
        data = super().clean()
        fact = data.get("fact")
        if fact and "fact" in self.changed_data:
            other = card_selectors.card_duplicate_of(card=self.instance, fact=fact)
            if other is not None:
                self.add_error("fact", _duplicate_message(other))
        return data


class CardEditForm(forms.Form):
    """The inline edit form of one card in the review queue."""

    cue = VisibleFormCharField(widget=forms.Textarea, max_length=TEXT_MAX)
    fact = VisibleFormCharField(widget=forms.Textarea, max_length=TEXT_MAX)
    cloze_text = forms.CharField(widget=forms.Textarea, max_length=TEXT_MAX, required=False)


class QueueFilterForm(forms.Form):
    """Query parameters of the review queue; anything invalid falls back to the default."""

    status = forms.ChoiceField(choices=[("pending", "pending"), ("approved", "approved")], required=False)
    user = forms.IntegerField(required=False, min_value=1, max_value=2**63 - 1)
    format = forms.ChoiceField(choices=CardFormat.choices, required=False)
    source_kind = forms.ChoiceField(choices=CardSourceKind.choices, required=False)
    q = forms.CharField(required=False, max_length=200)


@admin.register(MemoCard)
class MemoCardAdmin(NFCSearchMixin, SoftDeleteModelAdmin):
    form = MemoCardForm
    list_display = ("id", "short_cue", "short_fact", "format", "source_kind", "review_state", "user", "study_topic")
    list_display_links = ("id", "short_cue")
    list_filter = ("needs_review", "format", "source_kind", OWNER_FILTER, TOPIC_FILTER)
    list_select_related = ("user", "study_topic")
    show_full_result_count = False  # one count of the whole table a page, not two
    search_fields = ("cue", "fact")
    ordering = ("-id",)
    inlines = [CardEvidenceInline]
    actions = ["approve_selected", "flag_selected", "soft_delete_selected"]
    fieldsets = (
        (None, {"fields": ("cue", "fact", "cloze_text", "needs_review")}),
        (
            "Origin and state",
            {
                "fields": ("user", "source_kind", "format", "source_question", "study_topic", "extra", "flagged_by",
                           "flagged_at", "reviewed_at", "view_count", "last_viewed_at", "dedup_hash", "created_at",
                           "updated_at"),
            },
        ),
    )
    readonly_fields = ("user", "source_kind", "format", "source_question", "study_topic", "extra", "flagged_by",
                       "flagged_at", "reviewed_at", "view_count", "last_viewed_at", "dedup_hash", "created_at",
                       "updated_at")

    def get_queryset(self, request: HttpRequest) -> QuerySet[MemoCard]:
        return super().get_queryset(request).filter(deleted_at__isnull=True)

    def get_object(self, request: HttpRequest, object_id: str, from_field: str | None = None) -> MemoCard | None:
        """A save reads the card under its row lock, held until the save commits (the change view is one
        transaction): MemoCardForm.clean compares what the page showed with the row, and two reviewers saving at
        once, both compared with the row as it was, both saved (the later edit over the earlier, unannounced)."""
        if request.method != "POST" or not transaction.get_connection().in_atomic_block:
            # (a page that reads the card outside a transaction, as the history page also does on a POST)
            return super().get_object(request, object_id, from_field)
        field = self.opts.pk if from_field is None else self.opts.get_field(from_field)
        try:
            return (self.get_queryset(request).select_for_update(no_key=True, of=("self",))
                    .get(**{field.name: field.to_python(object_id)}))
        except (MemoCard.DoesNotExist, ValidationError, ValueError):
            return None

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # cards come from the learner's app or from questions, never from a reviewer

    # --- the change form and delete go through the services -----------------------------------

    def save_model(self, request: HttpRequest, obj: MemoCard, form: forms.ModelForm, change: bool) -> None:
        changed = set(form.changed_data)
        try:
            if changed & set(DRAFT_FIELDS):
                # Only the fields changed on the form: card_update keeps the others as the row holds them now, so a
                # reviewer's edit made in the queue meanwhile is not written back with this page's old text.
                card_services.card_update(card=obj, **{field: getattr(obj, field) for field in DRAFT_FIELDS
                                                       if field in changed})
                if form.cleaned_data.get("needs_review"):
                    if "needs_review" in changed:  # ticked with the edit: saved, then back to review
                        card_services.card_flag(card=obj, flagged_by=card_services.FLAGGED_BY_REVIEWER)
                    else:  # a pending card's box left as it was
                        messages.warning(request, "An edit approves the card: it no longer waits for review. Tick "
                                         "\"Needs review\" and save again to send it back.")
            elif "needs_review" in changed:
                if obj.needs_review:
                    done = card_services.card_flag(card=obj, flagged_by=card_services.FLAGGED_BY_REVIEWER)
                else:
                    done = card_services.card_approve(card=obj)
                if not done:
                    if not _is_live(obj):
                        raise NotFound()
                    state = "waiting for review" if obj.needs_review else "approved"
                    self.refuse_save(request, f"This card was {state} already; nothing was changed.")
        except DuplicateCard:
            self.refuse_save(request, DUPLICATE_MESSAGE)
        except NotFound:  # deleted while the form was open
            self.refuse_save(request, "This card was deleted meanwhile; nothing was changed.")

    def response_post_save_change(self, request: HttpRequest, obj: MemoCard) -> HttpResponse:
        # A card opened from the review queue (its #id link names the page) goes back to that page, its tab,
        # filters and place, not to the card list.
        if back := _queue_page(request, request.GET.get("next")):
            return HttpResponseRedirect(back)
        return super().response_post_save_change(request, obj)

    def soft_delete(self, obj: MemoCard) -> bool:  # the delete button
        return card_services.card_delete(card=obj)

    def soft_delete_many(self, rows: list[MemoCard]) -> list[MemoCard]:  # "delete selected (soft)"
        deleted = set(card_services.cards_delete(card_ids=[card.pk for card in rows]))
        return [card for card in rows if card.pk in deleted]

    # Cut, as the question list cuts its text: one card of a few thousand characters made its row screens tall.
    @admin.display(description="cue", ordering="cue")
    def short_cue(self, obj: MemoCard) -> str:
        return obj.cue[:80]

    @admin.display(description="fact", ordering="fact")
    def short_fact(self, obj: MemoCard) -> str:
        return obj.fact[:80]

    @admin.display(description="Review", ordering="needs_review")
    def review_state(self, obj: MemoCard) -> str:
        # Words, not Django's boolean icons: a green tick on "needs review" read as "this card is fine". Who sent a
        # card back is said here too (a column of its own, mostly empty, pushed the topic out of a 1280 px window).
        if not obj.needs_review:
            return "Approved"
        return {
            card_services.FLAGGED_BY_USER: "Waiting for review (sent back by the learner)",
            card_services.FLAGGED_BY_REVIEWER: "Waiting for review (sent back by a reviewer)",
        }.get(obj.flagged_by, "Waiting for review")

    # --- bulk actions on the changelist (deliberately no "approve every pending card") ----------

    @admin.action(description="Approve selected cards", permissions=["change"])
    def approve_selected(self, request: HttpRequest, queryset: QuerySet[MemoCard]) -> None:
        # "Select all N" hands the action every card the changelist matches, not the ones picked on the page:
        # that would be the approve-everything the review rules leave out on purpose.
        if forms.BooleanField(required=False).to_python(request.POST.get("select_across")):
            self.message_user(
                request,
                "Approving every matching card at once is not offered; nothing was approved. Pick cards on the "
                "page, or approve one question's cards in the review queue.",
                messages.ERROR,
            )
            return
        selected = list(queryset.values_list("id", flat=True))
        with transaction.atomic():  # the cards' changes and their history entries are kept together, or none
            approved = card_services.cards_approve(card_ids=selected)  # (one approved or deleted meanwhile: left out)
            self._log_changes(request, approved, "Approved.")
        self.message_user(request, f"Approved {_cards(len(approved))}.",
                          messages.SUCCESS if approved else messages.WARNING)
        if len(selected) > len(approved):
            self.message_user(request, f"{_left(len(selected) - len(approved))}: approved already (or deleted "
                              "meanwhile).", messages.INFO)

    def _log_changes(self, request: HttpRequest, card_ids: list[int], message: str) -> None:
        """One history entry per card, written in one INSERT (log_change wrote them one by one)."""
        cards = MemoCard.objects.filter(id__in=card_ids).only("id", "cue").order_by("id")
        LogEntry.objects.log_actions(request.user.pk, cards, CHANGE, change_message=message)

    @admin.action(description="Flag selected cards back to review", permissions=["change"])
    def flag_selected(self, request: HttpRequest, queryset: QuerySet[MemoCard]) -> None:
        if too_many_for_one_action(self, request, queryset.count()):
            return
        selected = list(queryset.values_list("id", flat=True))
        with transaction.atomic():  # as in approve_selected
            # (a card waiting already or deleted meanwhile is left out, its flag as it was)
            flagged = card_services.cards_flag(card_ids=selected, flagged_by=card_services.FLAGGED_BY_REVIEWER)
            self._log_changes(request, flagged, "Flagged back to review.")
        self.message_user(request, f"Flagged {_cards(len(flagged))} back to review.",
                          messages.SUCCESS if flagged else messages.WARNING)
        if len(selected) > len(flagged):
            self.message_user(request, f"{_left(len(selected) - len(flagged))}: waiting for review already (or "
                              "deleted meanwhile).", messages.INFO)

    # --- the review queue ----------------------------------------------------------------------

    def get_urls(self):
        prefix = f"{self.opts.app_label}_{self.opts.model_name}"
        return [
            path("review/", self.admin_site.admin_view(self.review_queue_view), name=f"{prefix}_review"),
            path(
                "review/action/",
                self.admin_site.admin_view(self.review_action_view),
                name=f"{prefix}_review_action",
            ),
            *super().get_urls(),
        ]

    def changelist_view(self, request: HttpRequest, extra_context: dict | None = None) -> HttpResponse:
        extra_context = {**(extra_context or {}), "pending_count": card_selectors.cards_needing_review_count()}
        return super().changelist_view(request, extra_context=extra_context)

    def review_queue_view(self, request: HttpRequest) -> HttpResponse:
        if not self.has_view_or_change_permission(request):
            raise PermissionDenied
        form = QueueFilterForm(request.GET)
        form.is_valid()
        params = form.cleaned_data  # the valid filters only: one bad parameter does not drop the others
        status = params.get("status") or "pending"
        filters = {
            "user_id": params.get("user"),
            "card_format": params.get("format") or None,
            "source_kind": params.get("source_kind") or None,
            "text": params.get("q") or None,
        }
        queryset = card_selectors.review_queue_filtered(needs_review=status == "pending", **filters)
        queue_groups = card_selectors.review_queue_group_keys(queryset)
        card_total = sum(group.card_count for group in queue_groups)
        # The Pending tab counts what it shows, with the filters it keeps.
        pending_count = card_total if status == "pending" else (
            card_selectors.review_queue_filtered(needs_review=True, **filters).count())
        pages = card_selectors.review_queue_pages(queue_groups, cards_per_page=CARDS_PER_PAGE)
        page = Paginator(pages, 1).get_page(request.GET.get("page"))  # (a junk or too high number: first or last)
        groups = card_selectors.review_queue_groups(queryset, page.object_list[0] if pages else [])
        filtered = any(value is not None for value in filters.values())
        if status == "pending":
            # "Approve all cards of this question" approves the ones the filters hide too: its label counts them,
            # and its form names them (it approves those, or none when they changed before the click).
            question_ids = [group.source_question_id for group in groups if group.source_question_id]
            waiting = card_selectors.pending_ids_of_questions(question_ids) if question_ids else {}
            for group in groups:
                group.question_pending_ids = waiting.get(group.source_question_id, [])
        _attach_drafts(request, groups)
        query = request.GET.copy()
        query.pop("page", None)
        tab_query = query.copy()  # the Pending / Approved tabs keep the user, format, source and text filters
        tab_query.pop("status", None)
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": "Cards to review" if status == "pending" else "Approved cards",
            "status": status,
            "groups": groups,
            "page": page,
            "card_total": card_total,
            "group_total": len(queue_groups),
            "pending_count": pending_count,
            "filters": params,
            "filtered": filtered,
            "users": card_selectors.card_owner_choices(),
            "formats": CardFormat.choices,
            "source_kinds": CardSourceKind.choices,
            "query_without_page": query.urlencode(),
            "tab_query": tab_query.urlencode(),
            "can_change": self.has_change_permission(request),
            "can_delete": self.has_delete_permission(request),
            "draft_max_chars": DRAFT_MAX_CHARS,  # (a longer edit came back cut, and the next click saved it cut)
        }
        return TemplateResponse(request, "admin/study/memocard/review_queue.html", context)

    def review_action_view(self, request: HttpRequest) -> HttpResponse:
        queue_url = reverse("admin:study_memocard_review")
        if request.method in {"GET", "HEAD"}:
            # The login page sends a reviewer whose session had ended back here with a GET (the action's POST was
            # lost on the way): to the queue, saying so, not to a blank 405.
            self.message_user(request, "The last action was not done (your sign-in had ended): do it again.",
                              messages.WARNING)
            return HttpResponseRedirect(queue_url)
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        if not self.has_change_permission(request):
            raise PermissionDenied
        next_url = _queue_page(request, request.POST.get("next")) or queue_url
        action = request.POST.get("action", "")
        if action == "delete" and not self.has_delete_permission(request):
            raise PermissionDenied  # a reviewer who may change cards may not necessarily delete them
        with transaction.atomic():  # a card's change and its history entry are kept together, or neither
            if action == "approve_question":
                self._approve_question(request)
            elif action in {"approve", "flag", "delete", "edit"}:
                self._card_action(request, action)
            else:
                self.message_user(request, "Unknown action.", messages.ERROR)
        return HttpResponseRedirect(next_url)

    def _approve_question(self, request: HttpRequest) -> None:
        question_id = parse_id(request.POST.get("question_id"))
        owner_id = Question.objects.filter(pk=question_id).values_list("user_id", flat=True).first()
        if owner_id is None:
            self.message_user(request, "That question no longer exists.", messages.WARNING)
            return
        posted = request.POST.get("expected")  # the ids of the cards the page counted; a page of before: none
        expected = _posted_ids(posted)
        if posted is not None and expected is None:  # (a page that says which cards it showed, unreadably)
            self.message_user(request, f"The page did not say which cards of question #{question_id} it showed; "
                              "nothing was approved. Reload the page.", messages.WARNING)
            return
        try:
            approved = card_services.cards_approve_for_question(user=owner_id, source_question_id=question_id,
                                                                expected=expected)
        except card_services.WaitingCardsChanged as changed:
            self.message_user(
                request, f"The cards of question #{question_id} waiting for review are not the {len(expected)} the "
                f"page showed ({changed.waiting} wait now: cards were made, flagged back or approved meanwhile); "
                "nothing was approved. Look at them again.", messages.WARNING)
            return
        # Only the cards this request approved: a reviewer's concurrent click approved (and logs) the others.
        self._log_changes(request, approved, f"Approved with every card of question #{question_id} in the review "
                          "queue.")
        if not approved:
            self.message_user(request, f"No card of question #{question_id} waits for review (approved meanwhile); "
                              "nothing was changed.", messages.WARNING)
            return
        self.message_user(request, f"Approved {_cards(len(approved))} of question #{question_id}.", messages.SUCCESS)

    def _card_action(self, request: HttpRequest, action: str) -> None:
        card_id = parse_id(request.POST.get("card_id"))
        # An edit compares what its page showed with the row (_own_edits): read under the row's lock, held until
        # the edit commits (review_action_view's transaction), so two reviewers saving at once are compared one
        # after the other; both had been compared with the row as it was, and both saved.
        cards = MemoCard.objects.live().select_for_update(no_key=True) if action == "edit" else MemoCard.objects.live()
        card = cards.filter(pk=card_id).first() if card_id else None
        if card is None:
            self.message_user(request, "That card no longer exists.", messages.WARNING)
            return
        if action in {"approve", "flag", "delete"}:
            if action == "approve":
                done = card_services.card_approve(card=card)
                history, message = "Approved in the review queue.", f"Approved card #{card.pk}."
            elif action == "flag":
                done = card_services.card_flag(card=card, flagged_by=card_services.FLAGGED_BY_REVIEWER)
                history = "Flagged back to review in the review queue."
                message = f"Flagged card #{card.pk} back to review."
            else:
                done = card_services.card_delete(card=card)
                history, message = "Deleted (soft) in the review queue.", f"Deleted card #{card.pk}."
            if not done:  # approved, flagged or deleted by someone else since the page showed it
                if not _is_live(card):
                    self.message_user(request, "That card no longer exists.", messages.WARNING)
                else:
                    state = "approved" if action == "approve" else "waiting for review"
                    self.message_user(request, f"Card #{card.pk} was {state} already; nothing was changed.",
                                      messages.WARNING)
                return
            self.log_change(request, card, history)
            self.message_user(request, message, messages.SUCCESS)
            return
        form = CardEditForm(request.POST)
        if not form.is_valid():
            errors = "; ".join(f"{field}: {' '.join(errs)}" for field, errs in form.errors.items())
            self.message_user(request, f"Card #{card.pk} was not saved: {errors}", messages.ERROR)
            _keep_draft(request, card.pk)
            return
        before = {field: getattr(card, field) for field in (*DRAFT_FIELDS, "needs_review")}
        edits, overtaken = _own_edits(request.POST, form.cleaned_data, stored=before)
        if overtaken:  # told on the page the redirect shows, which knows whether the card is still on it
            _keep_draft(request, card.pk, overtaken=overtaken)
            return
        try:
            card_services.card_update(card=card, **edits)
        except DuplicateCard:
            other = card_selectors.card_duplicate_of(card=card, fact=form.cleaned_data["fact"])
            text = _duplicate_message(other) if other is not None else DUPLICATE_MESSAGE  # (gone meanwhile)
            self.message_user(request, format_html("Card #{}: {}", card.pk, text), messages.ERROR)
            _keep_draft(request, card.pk)
            return
        except NotFound:  # deleted after the page was shown
            self.message_user(request, "That card no longer exists.", messages.WARNING)
            return
        changed = [field for field in DRAFT_FIELDS if field in edits and edits[field] != before[field]]
        self.log_change(request, card, _edit_message(changed, was_pending=before["needs_review"]))
        self.message_user(request, f"Saved and approved card #{card.pk}.", messages.SUCCESS)


DRAFTS_KEY = "review_queue_drafts"
DRAFT_FIELDS = ("cue", "fact", "cloze_text")
DRAFT_MAX_CHARS = TEXT_MAX  # per field, as the API's card texts (the session is no place for more)


def _cards(n: int) -> str:
    return f"{n} card" if n == 1 else f"{n} cards"


def _left(n: int) -> str:
    return f"{_cards(n)} left as {'it was' if n == 1 else 'they were'}"


def _duplicate_message(other: MemoCard) -> str:
    """DUPLICATE_MESSAGE naming the other card, with a link to it (it may be on the other tab of the queue)."""
    state = "waiting for review" if other.needs_review else "approved"
    url = reverse("admin:study_memocard_change", args=[other.pk])
    return format_html('The same fact is on card <a href="{}">#{}</a> ({}) of this user; nothing was changed.',
                       url, other.pk, state)


def _queue_page(request: HttpRequest, url: str | None) -> str | None:
    """`url` when it is a review queue page of this site: another site, or a page of this one that is not the
    queue (any other path of the admin shows no messages, which then piled up for the next one), is None."""
    queue_url = reverse("admin:study_memocard_review")
    if url and url_has_allowed_host_and_scheme(url, {request.get_host()}, request.is_secure()) \
            and urlsplit(url).path == queue_url:
        return url
    return None


def _posted_ids(value: str | None) -> list[int] | None:
    """Comma-separated ids as a form posts them; None when absent or not such a list."""
    ids = [parse_id(part) for part in (value or "").split(",")]
    return ids if value and all(ids) else None


def _is_live(card: MemoCard) -> bool:
    return MemoCard.objects.live().filter(pk=card.pk).exists()


def _own_edits(post, cleaned: dict, *, stored: dict) -> tuple[dict, list[str]]:
    """The fields this reviewer changed on the page (each card's form also sends what it showed, `<field>_was`),
    and those of them that someone else changed since the page was shown (then nothing is saved).

    A field the reviewer left alone is not sent to card_update, which keeps what the row holds: two tabs editing
    one card's cue and fact both land, instead of the second writing back the fact its page showed."""
    edits, overtaken = {}, []
    for field in DRAFT_FIELDS:
        shown = post.get(f"{field}_was")
        if shown is None:  # a form that does not say what it showed: all of it is the reviewer's
            edits[field] = cleaned[field]
        elif not same_text(cleaned[field], shown):
            edits[field] = cleaned[field]
            if not same_text(stored[field], shown) and not same_text(stored[field], cleaned[field]):
                overtaken.append(field)
    return edits, overtaken


def _keep_draft(request: HttpRequest, card_id: int, *, overtaken: list[str] | None = None) -> None:
    """An edit that was not saved comes back in its card's fields (once), so the reviewer can correct it. With it go
    the fields the reviewer changed, and those someone else changed meanwhile (`overtaken`), for the message."""
    post = request.POST
    draft = {field: post.get(field, "")[:DRAFT_MAX_CHARS] for field in DRAFT_FIELDS}
    draft["edited"] = [field for field in DRAFT_FIELDS
                       if post.get(f"{field}_was") is None or not same_text(post.get(field, ""), post[f"{field}_was"])]
    draft["overtaken"] = overtaken or []
    drafts = request.session.get(DRAFTS_KEY, {})
    drafts[str(card_id)] = draft
    request.session[DRAFTS_KEY] = drafts


def _label(field: str) -> str:
    return str(MemoCard._meta.get_field(field).verbose_name)


def _attach_drafts(request: HttpRequest, groups: list) -> None:
    """Put unsaved edits back into their cards on the next page shown (`card.draft`), then forget them all. An edit
    refused because someone changed the card meanwhile is told here, as the page now shows the card or not. The edit
    of a card that is not on the page (approved or flagged meanwhile, it is on the other tab now) is shown in a
    message, with a link to the card: it was forgotten without a word."""
    drafts = request.session.pop(DRAFTS_KEY, None)
    if not drafts:
        return
    for group in groups:
        for card in group.cards:
            card.draft = draft = drafts.pop(str(card.pk), None)
            if draft and draft.get("overtaken"):
                fields = ", ".join(map(_label, draft["overtaken"]))
                messages.error(request, f"Card #{card.pk} was changed meanwhile ({fields}: in another tab or by "
                                        "another reviewer); nothing was saved. The page shows what it holds now; "
                                        "your edit is kept in its fields.")
    for card_id, draft in drafts.items():
        url = reverse("admin:study_memocard_change", args=[card_id])
        edited = [name for name in draft.get("edited", DRAFT_FIELDS) if name in DRAFT_FIELDS]
        typed = format_html_join("; ", "{}: «{}»", ((_label(name), draft[name]) for name in edited))
        why = " was changed meanwhile and" if draft.get("overtaken") else ""
        messages.warning(request, format_html('Card <a href="{}">#{}</a>{} is no longer on this page; your edit, not '
                                              "saved, was {}.", url, card_id, why, typed or "no change"))


def _edit_message(changed: list[str], *, was_pending: bool) -> str:
    """The history entry of an edit in the review queue (an edit approves the card and clears its flag)."""
    what = "Changed " + ", ".join(changed) if changed else "Saved unchanged"
    return f"{what}{' and approved' if was_pending else ''} in the review queue."


class CardProgressForm(SameOwnerForm):
    """What a rating writes (card_rate_for_user): progress of an approved card, reviewed in the past."""

    owner_links = ("card",)

    def clean(self) -> dict:
        data = super().clean()
        card = data.get("card")
        if card is not None and card.needs_review and (self.instance.pk is None or "card" in self.changed_data):
            self.add_error("card", "This card waits for review: a card is rated once it is approved.")
        refuse_future(self, data, "last_reviewed_at")
        return data


@admin.register(CardProgress)
class CardProgressAdmin(admin.ModelAdmin):
    """Card progress is published (every row, SPEC): each change or delete here records its publish request,
    and a deleted row becomes a tombstone in the feed."""

    form = CardProgressForm
    list_display = ("card", "user", "last_outcome", "review_stage", "due_at", "last_reviewed_at")
    list_filter = ("last_outcome", "review_stage", OWNER_FILTER)
    raw_id_fields = ("user", "card")
    # The page's cards and users are read after it is cut (get_queryset): joined, every card was read before the
    # sort and the offset (0.5 s for the last page of 100,000 rows).
    list_select_related = ()
    ordering = ("-id",)
    show_full_result_count = False  # one count of the whole table a page, not two
    readonly_fields = ("last_rating_key",)  # the app's, for its retries: not for editing

    def get_queryset(self, request: HttpRequest) -> QuerySet[CardProgress]:
        return super().get_queryset(request).prefetch_related(Prefetch("card", MemoCard.objects.only("id", "cue")),
                                                              "user")

    def save_model(self, request: HttpRequest, obj: CardProgress, form: forms.ModelForm, change: bool) -> None:
        with transaction.atomic():
            if save_changed_fields(obj, form, change):
                publish_request(kind=PublishKind.STUDY_CARD_PROGRESS, source_id=obj.pk)

    def delete_model(self, request: HttpRequest, obj: CardProgress) -> None:
        progress_id = obj.pk
        with transaction.atomic():
            super().delete_model(request, obj)
            publish_request(kind=PublishKind.STUDY_CARD_PROGRESS, source_id=progress_id)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[CardProgress]) -> None:
        with transaction.atomic():
            progress_ids = list(queryset.values_list("id", flat=True))
            super().delete_queryset(request, queryset)
            publish_request_many(kind=PublishKind.STUDY_CARD_PROGRESS, source_ids=progress_ids)
