"""Writes of memo cards: create, edit, review (approve / flag / delete), SR rating, cram views."""

from collections.abc import Collection, Iterable, Mapping
from typing import Any

from django.contrib.auth.base_user import AbstractBaseUser
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from publishing.models import PublishKind
from publishing.services import publish_request, publish_request_many
from study import scheduling
from study.models import CardEvidence, CardProgress, MemoCard, Question, StudyTopic
from study.models.cards import CardSourceKind
from study.textnorm import card_dedup_hash, nfc
from studyserver import sqljson
from studyserver.errors import Conflict, DuplicateCard, NotFound, NotReviewed, violates_unique
from studyserver.sqljson import fetch_row

DEDUP_CONSTRAINT = "study_memocard_dedup_uniq"
FLAGGED_BY_USER = "user"
FLAGGED_BY_REVIEWER = "reviewer"

# The learner's words for a recall (암 = I know it, 애매 = not sure, 모름 = I don't) and the canonical ones.
RATING_OUTCOMES = {
    "암": scheduling.CORRECT,
    "애매": scheduling.UNSURE,
    "모름": scheduling.WRONG,
    scheduling.CORRECT: scheduling.CORRECT,
    scheduling.UNSURE: scheduling.UNSURE,
    scheduling.WRONG: scheduling.WRONG,
}


def _is_dedup_violation(exc: IntegrityError) -> bool:
    return violates_unique(exc, MemoCard, DEDUP_CONSTRAINT)


def _publish_card(card: MemoCard) -> None:
    publish_request(kind=PublishKind.STUDY_CARD, source_id=card.pk)


def _save_deduped(card: MemoCard, **save_kwargs) -> MemoCard:
    """Save in a savepoint; the partial unique index decides duplicates, also under races."""
    try:
        with transaction.atomic():
            card.save(**save_kwargs)
    except IntegrityError as exc:
        if _is_dedup_violation(exc):
            raise DuplicateCard() from exc
        raise
    return card


def card_create(
    *,
    user: AbstractBaseUser,
    card_format: str,
    cue: str,
    fact: str,
    cloze_text: str = "",
    material: str = "",
    study_topic: StudyTopic | None = None,
) -> MemoCard:
    """A learner's own (manual) card: approved at once; a duplicate fact raises DuplicateCard. Its `material` is
    stored NFC: the review groups group manual cards by it and the deck filters on it."""
    material = nfc(material)
    card = MemoCard(
        user=user,
        source_kind=CardSourceKind.MANUAL,
        format=card_format,
        cue=cue,
        fact=fact,
        cloze_text=cloze_text or "",
        needs_review=False,
        study_topic=study_topic,
        extra={"material": material} if material else {},
        reviewed_at=timezone.now(),
        dedup_hash=card_dedup_hash(source_question_id=None, card_format=card_format, fact=fact),
    )
    with transaction.atomic():
        _save_deduped(card, force_insert=True)
        _publish_card(card)
    return card


def card_candidate_create(
    *,
    question: Question,
    card_format: str,
    cue: str,
    fact: str,
    cloze_text: str = "",
    evidence: Iterable[Mapping[str, Any]] = (),
) -> MemoCard | None:
    """A machine-made card from a question, waiting for review; None when the same fact already exists.

    `evidence` items are {"source_type", "source_id"?, "snippet"?}. Not published: the viewer
    only sees approved cards.
    """
    card = MemoCard(
        user_id=question.user_id,
        source_kind=CardSourceKind.QUESTION,
        format=card_format,
        cue=cue,
        fact=fact,
        cloze_text=cloze_text or "",
        needs_review=True,
        source_question=question,
        study_topic_id=question.study_topic_id,
        dedup_hash=card_dedup_hash(source_question_id=question.pk, card_format=card_format, fact=fact),
    )
    with transaction.atomic():
        try:
            _save_deduped(card, force_insert=True)
        except DuplicateCard:
            return None
        CardEvidence.objects.bulk_create(
            [
                CardEvidence(
                    card=card,
                    source_type=item["source_type"],
                    source_id=item.get("source_id"),
                    snippet=item.get("snippet") or "",
                )
                for item in evidence
            ]
        )
    return card


def card_update(
    *, card: MemoCard, cue: str | None = None, fact: str | None = None, cloze_text: str | None = None
) -> MemoCard:
    """An edit is the user's final version: new content, recomputed dedup hash, approved and unflagged.

    Fields not given keep what the row holds now, read under a lock: two edits at once (one the cue, the
    other the fact) both land, instead of the later one writing back its stale copy of the other field.
    """
    fields = ["cue", "fact", "cloze_text", "dedup_hash", "needs_review", "flagged_by", "flagged_at",
              "reviewed_at", "updated_at"]
    with transaction.atomic():
        current = (
            MemoCard.objects.live().select_for_update(no_key=True).filter(pk=card.pk)
            .values("cue", "fact", "cloze_text").first()
        )
        if current is None:
            raise NotFound()
        now = timezone.now()
        card.cue = cue if cue is not None else current["cue"]
        card.fact = fact if fact is not None else current["fact"]
        card.cloze_text = cloze_text if cloze_text is not None else current["cloze_text"]
        card.dedup_hash = card_dedup_hash(
            source_question_id=card.source_question_id, card_format=card.format, fact=card.fact
        )
        for field, value in _approved(now).items():  # an edit approves
            setattr(card, field, value)
        _save_deduped(card, update_fields=fields)
        _publish_card(card)
    return card


def _approved(now) -> dict:
    """What approving writes (one card or many): out of review, the flag cleared, reviewed now."""
    return {"needs_review": False, "flagged_by": "", "flagged_at": None, "reviewed_at": now, "updated_at": now}


def _flagged(flagged_by: str, now) -> dict:
    """What sending an approved card back to review writes: who and when (the last review's time stays)."""
    return {"needs_review": True, "flagged_by": flagged_by, "flagged_at": now, "updated_at": now}


def card_approve(*, card: MemoCard) -> bool:
    """Approve one card waiting for review: it enters the due list and the deck. False when it no longer waits
    (approved or deleted meanwhile): no change, no publish."""
    with transaction.atomic():
        if not card.update_if_live({"needs_review": True}, **_approved(timezone.now())):
            return False
        _publish_card(card)
    return True


class WaitingCardsChanged(Exception):
    """A card of the question waits for review that the reviewer was not shown (`waiting`: how many wait now)."""

    def __init__(self, waiting: int) -> None:
        super().__init__(f"{waiting} card(s) wait for review")
        self.waiting = waiting


def cards_approve_for_question(*, user: AbstractBaseUser | int, source_question_id: int,
                               expected: Collection[int] | None = None) -> list[int]:
    """Approve every pending live card of one source question of `user`; returns their ids (those this call
    approved: a concurrent call waits for the row locks, then finds them approved).

    With `expected` (the ids of the cards the reviewer was told of), a card waiting that is not among them (made or
    flagged back since; a count would miss one coming as another left) raises WaitingCardsChanged and none is
    approved: a click approves no card the reviewer was not told of. Shown cards approved meanwhile are left out."""
    user_id = user if isinstance(user, int) else user.pk
    waiting = MemoCard.objects.live().filter(user_id=user_id, source_question_id=source_question_id,
                                             needs_review=True)
    with transaction.atomic():
        ids = list(waiting.order_by("id").select_for_update(no_key=True).values_list("id", flat=True))
        if expected is not None and not set(ids) <= set(expected):
            raise WaitingCardsChanged(len(ids))
        return cards_approve(card_ids=ids)


def cards_approve(*, card_ids: Iterable[int]) -> list[int]:
    """card_approve for many cards at once (the admin's "approve selected"): one locked read, one UPDATE, one
    publish request per card. The ids of those this call approved; cards approved or deleted meanwhile are left
    out, unchanged."""
    return _cards_moved(card_ids, needs_review=True, values=_approved(timezone.now()))


def cards_flag(*, card_ids: Iterable[int], flagged_by: str) -> list[int]:
    """card_flag for many cards at once (the admin's "flag selected"); the ids this call flagged. Cards waiting
    already or deleted meanwhile are left out, so who flagged them first stays."""
    return _cards_moved(card_ids, needs_review=False, values=_flagged(flagged_by, timezone.now()))


def cards_delete(*, card_ids: Iterable[int]) -> list[int]:
    """card_delete for many cards at once (the admin's "delete selected (soft)"): one locked read, one UPDATE, one
    publish request per card, where one card took five statements. The ids of those this call deleted; cards
    deleted meanwhile are left out."""
    now = timezone.now()
    return _cards_moved(card_ids, needs_review=None, values={"deleted_at": now, "updated_at": now})


def _cards_moved(card_ids: Iterable[int], *, needs_review: bool | None, values: dict) -> list[int]:
    """Write `values` to the live cards among `card_ids` whose `needs_review` is as given (None: either), and
    request their publication; their ids. They are locked in id order first (two bulk actions at once never
    deadlock), so a card moved meanwhile is found moved and left out."""
    cards = MemoCard.objects.live().filter(id__in=card_ids)
    if needs_review is not None:
        cards = cards.filter(needs_review=needs_review)
    with transaction.atomic():
        ids = list(cards.order_by("id").select_for_update(no_key=True).values_list("id", flat=True))
        if ids:
            MemoCard.objects.filter(id__in=ids).update(**values)
            publish_request_many(kind=PublishKind.STUDY_CARD, source_ids=ids)
    return ids


def card_flag(*, card: MemoCard, flagged_by: str = FLAGGED_BY_USER) -> bool:
    """Send an approved card back to review (it leaves the due list, the deck and the viewer). False when it is not
    approved (waiting already, or deleted meanwhile): no change, so who flagged it first stays."""
    with transaction.atomic():
        if not card.update_if_live({"needs_review": False}, **_flagged(flagged_by, timezone.now())):
            return False
        _publish_card(card)
    return True


def card_delete(*, card: MemoCard) -> bool:
    """Soft delete; the fact may be added again afterwards (the dedup index covers live cards only).

    False when it was deleted already (a concurrent delete), which changes nothing.
    """
    now = timezone.now()
    with transaction.atomic():
        if not card.update_if_live(deleted_at=now, updated_at=now):
            return False
        _publish_card(card)
    return True


def card_rate(*, card: MemoCard, outcome: str, key: str = "") -> CardProgress:
    """One recall of an approved card, through the shared SR ladder (see card_rate_for_user)."""
    return card_rate_for_user(user_id=card.user_id, card_id=card.pk, outcome=outcome, key=key)


def card_rate_for_user(*, user_id: int, card_id: int, outcome: str, key: str = "") -> CardProgress:
    """One recall of the user's approved live card (by id, loaded once, under a lock), through the SR ladder.

    A first recall that is correct marks the card known (stage 0, no due date) so new cards
    do not flood the queue; a first miss puts it due tomorrow. Later recalls of a scheduled card (one with a due
    date) advance the ladder. A correct recall of a card with no due date (known, or mastered) leaves it out of the
    queue, as questions outside the queue keep their stage (SPEC); a miss puts it due tomorrow at stage 0.
    Another user's, a deleted or a missing card → NotFound; a card waiting for review → NotReviewed.

    Every rating counts (SPEC), unless it carries `key` (the request's Idempotency-Key) and the card's last rating
    was sent with that key: that is the same rating resent (an app's retry of an answer it lost, or one rating sent
    twice at once), which changes and publishes nothing and is answered as it left the card. The same key with
    another outcome is a Conflict.
    """
    canonical = RATING_OUTCOMES[outcome]
    fast = sqljson.fast_paths_supported()
    with transaction.atomic():
        # Locking the card row serialises concurrent ratings, also of a card without progress yet;
        # progress is read afterwards, in its own statement, so it sees a rating committed meanwhile.
        needs_review = _rate_lock_card(user_id, card_id) if fast else _rate_lock_card_orm(user_id, card_id)
        now = timezone.now()  # once locked: a rating that waited for another is not timed before it
        if needs_review is None:
            raise NotFound()
        if needs_review:
            raise NotReviewed()
        prior = _rate_progress(user_id, card_id) if fast else _rate_progress_orm(user_id, card_id)
        if key and prior is not None and prior.last_rating_key == key:
            if prior.last_outcome != canonical:
                raise Conflict("This Idempotency-Key was sent with another outcome for this card.")
            prior.user_id, prior.card_id = user_id, card_id  # (the answer's fields)
            return prior
        if prior is None:
            if canonical == scheduling.CORRECT:
                state = scheduling.LadderState(stage=0, due_at=None)
            else:
                state = scheduling.first_due(now)
        elif prior.due_at is None and canonical == scheduling.CORRECT:  # known or mastered: stays out of the queue
            state = scheduling.LadderState(stage=prior.review_stage, due_at=None)
        else:
            state = scheduling.advance(prior.review_stage, canonical, now, prior.due_at)
        progress = CardProgress(
            pk=prior.pk if prior else None, user_id=user_id, card_id=card_id, last_outcome=canonical,
            last_reviewed_at=now, review_stage=state.stage, due_at=state.due_at, updated_at=now, last_rating_key=key,
        )
        if fast:
            progress.pk = _rate_save(progress, now)
        elif prior is None:
            progress.save(force_insert=True)
        else:
            progress.save(update_fields=["last_outcome", "last_reviewed_at", "review_stage", "due_at", "updated_at",
                                         "last_rating_key"])
        publish_request(kind=PublishKind.STUDY_CARD_PROGRESS, source_id=progress.pk)
    return progress


# Rating is the hottest write. On PostgreSQL its statements are fixed texts run as prepared statements
# (studyserver.sqljson.fetch_row): building and compiling the equivalent querysets cost several times the
# database work. The ORM functions below are the same statements for other databases; tests run both.


def _rate_lock_card(user_id: int, card_id: int) -> bool | None:
    row = fetch_row(
        "SELECT needs_review FROM study_memocard WHERE id = %s AND user_id = %s AND deleted_at IS NULL"
        " FOR NO KEY UPDATE",
        [card_id, user_id],
    )
    return row[0] if row else None


def _rate_lock_card_orm(user_id: int, card_id: int) -> bool | None:
    cards = MemoCard.objects.live().filter(pk=card_id, user_id=user_id).select_for_update(no_key=True)
    return cards.values_list("needs_review", flat=True).first()


def _rate_progress(user_id: int, card_id: int) -> CardProgress | None:
    row = fetch_row(
        "SELECT id, review_stage, due_at, last_outcome, last_rating_key FROM study_cardprogress"
        " WHERE user_id = %s AND card_id = %s",
        [user_id, card_id],
    )
    if row is None:
        return None
    return CardProgress(pk=row[0], review_stage=row[1], due_at=row[2], last_outcome=row[3], last_rating_key=row[4])


def _rate_progress_orm(user_id: int, card_id: int) -> CardProgress | None:
    fields = ("id", "review_stage", "due_at", "last_outcome", "last_rating_key")
    return CardProgress.objects.filter(user_id=user_id, card_id=card_id).only(*fields).first()


def _rate_save(progress: CardProgress, now) -> int:
    """Insert or update the progress row (the card lock rules out a concurrent first insert); its id."""
    row = fetch_row(
        """
        INSERT INTO study_cardprogress
            (created_at, updated_at, user_id, card_id, last_outcome, last_reviewed_at, review_stage, due_at,
             last_rating_key)
        VALUES (%(now)s, %(now)s, %(user)s, %(card)s, %(outcome)s, %(now)s, %(stage)s, %(due)s, %(key)s)
        ON CONFLICT (user_id, card_id) DO UPDATE SET
            updated_at = EXCLUDED.updated_at, last_outcome = EXCLUDED.last_outcome,
            last_reviewed_at = EXCLUDED.last_reviewed_at, review_stage = EXCLUDED.review_stage,
            due_at = EXCLUDED.due_at, last_rating_key = EXCLUDED.last_rating_key
        RETURNING id
        """,
        {"now": now, "user": progress.user_id, "card": progress.card_id, "outcome": progress.last_outcome,
         "stage": progress.review_stage, "due": progress.due_at, "key": progress.last_rating_key},
    )
    return row[0]


def card_view(*, card: MemoCard) -> bool:
    """A cram-deck view: count it and remember when; no SR effect, nothing for the viewer. False (nothing counted)
    when the card was deleted meanwhile. A card waiting for review → NotReviewed, counting nothing: the deck holds
    approved cards only (a view counted before its approval sorted it behind the cards never viewed)."""
    counted = (
        MemoCard.objects.live()
        .filter(pk=card.pk, needs_review=False)
        .update(view_count=F("view_count") + 1, last_viewed_at=timezone.now())
    )
    if not counted and MemoCard.objects.live().filter(pk=card.pk).exists():
        raise NotReviewed()
    return bool(counted)
