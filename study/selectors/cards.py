"""Reads of memo cards: review groups, the SR due list, the cram deck, pending counts, the admin queue."""

import functools
import operator
from dataclasses import dataclass, field
from datetime import datetime

from django.contrib.auth import get_user_model
from django.contrib.auth.base_user import AbstractBaseUser
from django.db.models import (
    Case,
    Count,
    Exists,
    F,
    IntegerField,
    Min,
    OuterRef,
    Q,
    QuerySet,
    TextField,
    Value,
    When,
)
from django.db.models.fields.json import KT
from django.db.models.functions import Coalesce
from django.utils import timezone

from study import scheduling
from study.models import CardEvidence, CardProgress, MemoCard
from study.textnorm import card_dedup_hash, spellings
from studyserver.sqljson import fetch_json, json_array_sql, json_list_sql

MANUAL_GROUP_TITLE = "직접 추가 카드"
MATERIAL_GROUP_PREFIX = "[자료] "


@dataclass
class CardGroup:
    """Cards of one source question, or manual cards of one material, in order of first appearance."""

    source_question_id: int | None
    question_text: str
    correct_choice: int | None
    correct_choice_text: str = ""
    material: str = ""
    user_id: int | None = None
    user_label: str = ""
    cards: list[MemoCard] = field(default_factory=list)
    # The admin review queue splits a big group across pages: `cards` is then the part from position
    # `first_position` (1-based) on, of `card_count` in the group.
    card_count: int = 0
    first_position: int = 1
    is_part: bool = False
    # On the Pending tab: the ids of every pending card of the source question, those the filters and other pages
    # hide included (what "Approve all cards of this question" approves).
    question_pending_ids: list[int] = field(default_factory=list)

    @property
    def question_pending_count(self) -> int:
        return len(self.question_pending_ids)

    @property
    def last_position(self) -> int:
        return self.first_position + len(self.cards) - 1


def _live_cards(user: AbstractBaseUser | None) -> QuerySet[MemoCard]:
    qs = MemoCard.objects.live()
    return qs if user is None else qs.filter(user=user)


def _group_key(source_question_id: int | None, user_id: int, material: str | None) -> tuple:
    if source_question_id:
        return ("q", source_question_id)
    return ("m", user_id, material or "")


def _new_group(card: MemoCard) -> CardGroup:
    question = card.source_question if card.source_question_id else None
    if question is not None:
        choices = question.choices if isinstance(question.choices, list) else []
        index = question.correct_choice - 1
        return CardGroup(
            source_question_id=question.pk,
            question_text=question.question_text,
            correct_choice=question.correct_choice,
            correct_choice_text=str(choices[index]) if 0 <= index < len(choices) else "",
            user_id=card.user_id,
        )
    material = card.material
    return CardGroup(
        source_question_id=None,
        question_text=f"{MATERIAL_GROUP_PREFIX}{material}" if material else MANUAL_GROUP_TITLE,
        correct_choice=None,
        material=material,
        user_id=card.user_id,
    )


# The card body of the API (CardSerializer's fields), read as plain rows: no model instances on hot lists.
CARD_BODY_FIELDS = ("id", "source_kind", "format", "cue", "fact", "cloze_text", "needs_review", "flagged_by")

# The due list's card bodies serialised by PostgreSQL (studyserver.sqljson), over a row `o` of the card columns
# below plus the progress stage. (Other lists read the stored body, study_memocard.body, migration 0002; the
# due list renders its own because it carries the stage, and reading the stored body there measured slower.)
_CARD_COLUMNS = ", ".join(f"c.{name}" for name in CARD_BODY_FIELDS)
_DUE_CARD_JSON_FIELDS = (
    "o.id, o.source_kind, o.format, o.cue, o.fact, o.cloze_text, o.needs_review, o.flagged_by, "
    + json_list_sql(
        "SELECT ev.id, ev.source_type, ev.source_id, ev.snippet FROM study_cardevidence ev WHERE ev.card_id = o.id",
        fields="n.source_type, n.source_id, n.snippet",
        order_by="n.id",
    )
    + " AS evidence, o.review_stage"
)


def _with_evidence(rows: list[dict]) -> list[dict]:
    """Attach each row's evidence (oldest first) as `evidence`: one query for all rows."""
    by_card: dict[int, list[dict]] = {}
    for row in rows:
        row["evidence"] = by_card[row["id"]] = []
    if by_card:
        evidence = (
            CardEvidence.objects.filter(card_id__in=list(by_card))
            .order_by("id")
            .values_list("card_id", "source_type", "source_id", "snippet")
        )
        for card_id, source_type, source_id, snippet in evidence:
            by_card[card_id].append({"source_type": source_type, "source_id": source_id, "snippet": snippet})
    return rows


def card_groups_list(
    *, user: AbstractBaseUser, needs_review: bool | None = None, card_format: str | None = None, limit: int = 600
) -> list[dict]:
    """The user's live cards (oldest first, at most `limit`), grouped for review screens.

    Each group is {source_question_id, question_text, correct_choice, cards}; cards are rows with evidence.
    """
    qs = _live_cards(user)
    if needs_review is not None:
        qs = qs.filter(needs_review=needs_review)
    if card_format:
        qs = qs.filter(format=card_format)
    rows = list(
        qs.order_by("id").values(
            *CARD_BODY_FIELDS,
            "source_question_id",
            material=KT("extra__material"),  # as text: F() decodes it as JSON on SQLite ("3.10" → 3.1)
            question_text=F("source_question__question_text"),
            correct_choice=F("source_question__correct_choice"),
        )[:limit]
    )
    groups: dict[tuple, dict] = {}
    for row in _with_evidence(rows):
        question_id = row["source_question_id"]
        material = str(row["material"] or "")
        group = groups.get(key := _group_key(question_id, user.pk, material))
        if group is None:
            if question_id:
                title, correct = row["question_text"], row["correct_choice"]
            else:
                title, correct = (f"{MATERIAL_GROUP_PREFIX}{material}" if material else MANUAL_GROUP_TITLE), None
            group = groups[key] = {
                "source_question_id": question_id or None,
                "question_text": title,
                "correct_choice": correct,
                "cards": [],
            }
        group["cards"].append(row)
    return list(groups.values())


@functools.lru_cache
def _card_groups_json_sql(*, needs_review: bool | None, by_format: bool) -> str:
    """One statement text per filter combination (each is prepared on its own). `needs_review` is written
    into the text (three variants), so even a generic plan knows the filter and walks the review index.

    Card bodies come rendered from `study_memocard.body` (trigger-maintained, migration 0002); the statement
    groups them and writes the group objects around them.
    """
    where = ["c.user_id = %(user)s", "c.deleted_at IS NULL"]
    if needs_review is not None:
        where.append("c.needs_review" if needs_review else "NOT c.needs_review")
    if by_format:
        where.append("c.format = %(format)s")
    # The same order as by id (user and needs_review are fixed by the filter), spelled as the review index
    # (user, needs_review, id) so the planner walks it instead of filtering the primary key.
    order = "c.id" if needs_review is None else "c.user_id, c.needs_review, c.id"
    title = (
        "CASE WHEN g.source_question_id IS NOT NULL THEN q.question_text"
        " WHEN g.material <> '' THEN %(material_prefix)s || g.material ELSE %(manual_title)s END"
    )
    # LIMIT 1 keeps the question lookup a per-group index probe (unlimited, it is flattened into a merge
    # join that reads every question of the table).
    return f"""
        WITH cards AS MATERIALIZED (
            SELECT c.id, c.source_question_id, c.body,
                   CASE WHEN c.source_question_id IS NULL THEN coalesce(c.extra ->> 'material', '') END AS material
            FROM study_memocard c WHERE {" AND ".join(where)} ORDER BY {order} LIMIT %(limit)s
        )
        SELECT coalesce('[' || string_agg(g.body, ',' ORDER BY g.first_id) || ']', '[]') FROM (
            SELECT g.first_id,
                   '{{"source_question_id":' || coalesce(g.source_question_id::text, 'null')
                   || ',"question_text":' || to_json({title})
                   || ',"correct_choice":' || coalesce(q.correct_choice::text, 'null')
                   || ',"cards":[' || g.bodies || ']}}' AS body
            FROM (
                SELECT min(id) AS first_id, source_question_id, material, string_agg(body, ',' ORDER BY id) AS bodies
                FROM cards GROUP BY source_question_id, material
            ) g LEFT JOIN LATERAL (
                SELECT question_text, correct_choice FROM study_question WHERE id = g.source_question_id LIMIT 1
            ) q ON true
        ) g
    """


def card_groups_json(
    *, user: AbstractBaseUser, needs_review: bool | None = None, card_format: str | None = None, limit: int = 600
) -> str:
    """card_groups_list() as the JSON text of the API body, built by PostgreSQL in one statement."""
    sql = _card_groups_json_sql(needs_review=needs_review, by_format=bool(card_format))
    params = {
        "user": user.pk, "format": card_format, "limit": limit,
        "material_prefix": MATERIAL_GROUP_PREFIX, "manual_title": MANUAL_GROUP_TITLE,
    }
    return fetch_json(sql, params)


def cards_due_list(*, user: AbstractBaseUser, limit: int = 30, now: datetime | None = None) -> list[dict]:
    """Approved live cards to recall now: scheduled ones by due date first, then never-rated ones by id.

    Two index-backed, early-limited reads: progress rows due now in (user, due_at) order joined to their
    cards, then, for the places left, approved cards without progress by id (anti-join). Rows carry
    `review_stage` (None for a new card) and `evidence`. (cards_due_json() is the same in one statement.)
    """
    now = now or timezone.now()
    approved = _live_cards(user).filter(needs_review=False)
    rows = list(
        approved.filter(
            progress__user=user, progress__due_at__lte=now, progress__review_stage__lt=scheduling.MASTERED
        )
        .annotate(review_stage=F("progress__review_stage"))
        .values(*CARD_BODY_FIELDS, "review_stage")
        .order_by("progress__due_at", "progress__card_id")[:limit]
    )
    if len(rows) < limit:
        never_rated = approved.filter(~Exists(CardProgress.objects.filter(user=user, card=OuterRef("pk"))))
        new = never_rated.values(*CARD_BODY_FIELDS).order_by("id")[: limit - len(rows)]
        rows += [{**row, "review_stage": None} for row in new]
    return _with_evidence(rows)


_DUE_JSON_SQL = json_array_sql(
    # The new-card half runs only for the places the due half leaves (LIMIT 0 does not scan).
    f"""
    WITH due AS MATERIALIZED (
        SELECT {_CARD_COLUMNS}, 0 AS half, p.review_stage, p.due_at
        FROM study_cardprogress p JOIN study_memocard c ON c.id = p.card_id
        WHERE p.user_id = %(user)s AND p.due_at <= %(now)s AND p.review_stage < %(mastered)s
          AND c.user_id = %(user)s AND c.deleted_at IS NULL AND NOT c.needs_review
        ORDER BY p.due_at, p.card_id
        LIMIT %(limit)s
    )
    SELECT * FROM due
    UNION ALL
    (SELECT {_CARD_COLUMNS}, 1, NULL, NULL
     FROM study_memocard c
     WHERE c.user_id = %(user)s AND c.deleted_at IS NULL AND NOT c.needs_review
       AND NOT EXISTS (SELECT 1 FROM study_cardprogress p WHERE p.user_id = %(user)s AND p.card_id = c.id)
     ORDER BY c.id
     LIMIT greatest(%(limit)s - (SELECT count(*) FROM due), 0))
    """,
    fields=_DUE_CARD_JSON_FIELDS,
    order_by="o.half, o.due_at, o.id",
)


def cards_due_json(*, user: AbstractBaseUser, limit: int = 30, now: datetime | None = None) -> str:
    """cards_due_list() as the JSON text of the API body, built by PostgreSQL in one statement."""
    params = {"user": user.pk, "now": now or timezone.now(), "mastered": scheduling.MASTERED, "limit": limit}
    return fetch_json(_DUE_JSON_SQL, params)


def cards_deck_list(
    *, user: AbstractBaseUser, material: str | None = None, card_format: str | None = None, limit: int = 20
) -> list[dict]:
    """The cram deck: approved live cards, never viewed first, then least recently viewed (rows with evidence)."""
    qs = _live_cards(user).filter(needs_review=False)
    if material:
        qs = qs.filter(extra__material=material)
    if card_format:
        qs = qs.filter(format=card_format)
    qs = qs.order_by(F("last_viewed_at").asc(nulls_first=True), "id").values(*CARD_BODY_FIELDS)
    return _with_evidence(list(qs[:limit]))


def cards_needing_review_count(*, user: AbstractBaseUser | None = None) -> int:
    """Live cards waiting for review (of one user, or of everyone for the admin)."""
    return _live_cards(user).filter(needs_review=True).count()


def card_duplicate_of(*, card: MemoCard, fact: str) -> MemoCard | None:
    """The other live card of its owner that `card` with this fact would collide with, if any (to name it)."""
    dedup_hash = card_dedup_hash(source_question_id=card.source_question_id, card_format=card.format, fact=fact)
    return (MemoCard.objects.live().filter(user_id=card.user_id, dedup_hash=dedup_hash).exclude(pk=card.pk)
            .only("id", "needs_review").first())


def review_queue_filtered(
    *,
    needs_review: bool = True,
    user_id: int | None = None,
    card_format: str | None = None,
    source_kind: str | None = None,
    text: str | None = None,
) -> QuerySet[MemoCard]:
    """Pending (or approved) live cards of every user (or one), for the admin review queue; `text` finds cards
    whose cue, fact, cloze text or source question's text contains it."""
    qs = MemoCard.objects.live().filter(needs_review=needs_review)
    if user_id:
        qs = qs.filter(user_id=user_id)
    if card_format:
        qs = qs.filter(format=card_format)
    if source_kind:
        qs = qs.filter(source_kind=source_kind)
    if text:
        # As typed, NFC and NFD: question texts are stored NFC, a card's texts as they were sent (NFD from macOS).
        qs = qs.filter(functools.reduce(operator.or_, (
            Q(cue__icontains=spelling)
            | Q(fact__icontains=spelling)
            | Q(cloze_text__icontains=spelling)
            | Q(source_question__question_text__icontains=spelling)
            for spelling in spellings(text)
        )))
    return qs


@dataclass(frozen=True)
class ReviewQueueGroupKey:
    """One group of the admin review queue as the aggregate reads it (no card rows): a source question, or the
    manual cards of one owner and material."""

    source_question_id: int | None
    user_id: int | None  # manual groups only
    material: str  # manual groups only
    card_count: int
    first_card_id: int
    flagged: bool

    @property
    def key(self) -> tuple:
        return _group_key(self.source_question_id, self.user_id, self.material)


@dataclass(frozen=True)
class ReviewQueuePart:
    """The cards of one group that one page shows: `limit` of them from `offset` on, in id order."""

    group: ReviewQueueGroupKey
    offset: int
    limit: int

    @property
    def whole(self) -> bool:
        return self.offset == 0 and self.limit >= self.group.card_count


def _queue_group_columns() -> dict[str, Case]:
    """The queue's group key beside source_question_id: a manual card's owner and material (the JSON key as
    text, through the ORM's key transform). A material is a string wherever it is written (the API; the admin
    shows `extra` read-only); a number or boolean stored by hand reads differently on SQLite and PostgreSQL."""
    manual = Q(source_question_id__isnull=True)
    return {
        "queue_user": Case(When(manual, then=F("user_id")), default=None, output_field=IntegerField()),
        "queue_material": Case(
            When(manual, then=Coalesce(KT("extra__material"), Value(""), output_field=TextField())),
            default=Value(""),
            output_field=TextField(),
        ),
    }


def _queue_group_match(group: ReviewQueueGroupKey) -> Q:
    if group.source_question_id:
        return Q(source_question_id=group.source_question_id)
    return Q(source_question_id__isnull=True, user_id=group.user_id, queue_material=group.material)


def review_queue_group_keys(qs: QuerySet[MemoCard]) -> list[ReviewQueueGroupKey]:
    """Every group of the queue with its card count, first (lowest) card id and whether it holds a flagged card
    (someone disputed a card there): one aggregate query. Flagged groups first, then first appearance."""
    rows = (
        qs.order_by()
        .values("source_question_id", **_queue_group_columns())
        .annotate(card_count=Count("id"), first_card_id=Min("id"), flagged_cards=Count("id", filter=~Q(flagged_by="")))
    )
    groups = [
        ReviewQueueGroupKey(
            source_question_id=row["source_question_id"],
            user_id=row["queue_user"],
            material=row["queue_material"] or "",
            card_count=row["card_count"],
            first_card_id=row["first_card_id"],
            flagged=row["flagged_cards"] > 0,
        )
        for row in rows
    ]
    return sorted(groups, key=lambda group: (not group.flagged, group.first_card_id))


def review_queue_pages(groups: list[ReviewQueueGroupKey], *, cards_per_page: int) -> list[list[ReviewQueuePart]]:
    """Pages of about `cards_per_page` cards: whole groups, in order, while they fit. A group bigger than that is
    split in parts of `cards_per_page`, each on a page of its own except its last, which groups may follow."""
    pages: list[list[ReviewQueuePart]] = []
    page: list[ReviewQueuePart] = []
    used = 0
    for group in groups:
        for offset in range(0, group.card_count, cards_per_page):
            size = min(cards_per_page, group.card_count - offset)
            if page and used + size > cards_per_page:
                pages.append(page)
                page, used = [], 0
            page.append(ReviewQueuePart(group=group, offset=offset, limit=size))
            used += size
    if page:
        pages.append(page)
    return pages


def pending_ids_of_questions(question_ids: list[int]) -> dict[int, list[int]]:
    """The live cards that wait for review per source question, their ids in order (one query)."""
    rows = (MemoCard.objects.live().filter(needs_review=True, source_question_id__in=question_ids)
            .order_by("source_question_id", "id").values_list("source_question_id", "id"))
    waiting: dict[int, list[int]] = {}
    for question_id, card_id in rows:
        waiting.setdefault(question_id, []).append(card_id)
    return waiting


def review_queue_groups(qs: QuerySet[MemoCard], parts: list[ReviewQueuePart]) -> list[CardGroup]:
    """Full groups (question, owner, evidence) for one page of the admin review queue, in the order of `parts`:
    one query for the page's cards (a split group's part by offset and limit in id order), one for evidence."""
    if not parts:
        return []
    qs = qs.annotate(**_queue_group_columns())
    whole_questions = [part.group.source_question_id for part in parts
                       if part.whole and part.group.source_question_id]
    matches = [Q(source_question_id__in=whole_questions)] if whole_questions else []
    for part in parts:
        match = _queue_group_match(part.group)
        if not part.whole:
            part_ids = qs.filter(match).order_by("id").values("id")[part.offset:part.offset + part.limit]
            matches.append(Q(id__in=part_ids))
        elif not part.group.source_question_id:
            matches.append(match)
    condition = functools.reduce(operator.or_, matches)
    cards = (
        qs.filter(condition)
        .select_related("source_question", "user")
        .prefetch_related("evidence")
        .order_by("id")
    )
    cards_of: dict[tuple, list[MemoCard]] = {part.group.key: [] for part in parts}
    for card in cards:
        shown = cards_of.get(_group_key(card.source_question_id, card.user_id, card.queue_material))
        if shown is not None:
            shown.append(card)
    groups = []
    for part in parts:
        shown = cards_of[part.group.key]
        if not shown:  # approved or deleted since the count
            continue
        group = _new_group(shown[0])
        group.cards = shown
        group.card_count = part.group.card_count
        group.first_position = part.offset + 1
        group.is_part = not part.whole
        group.user_label = shown[0].user.get_username()
        groups.append(group)
    return groups


def card_owner_choices() -> list[tuple[int, str]]:
    """(id, username) of users who own live cards: the reviewer's user filter."""
    User = get_user_model()
    owners = User.objects.filter(Exists(MemoCard.objects.live().filter(user=OuterRef("pk"))))
    return list(owners.order_by(User.USERNAME_FIELD).values_list("pk", User.USERNAME_FIELD))
