"""Explanations of wrong/unsure questions, then card candidates made from them.

The explainer is the extractive one unless settings.EXPLAINER_URL configures an HTTP LLM;
when that keeps failing (after its own retries) we fall back to the extractive explainer,
so a learner always gets an explanation and cards (the backend column says which wrote it).
One run at a time calls the LLM for a question (a claim in the shared cache): each call is paid.
"""

import logging
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta

from django.conf import settings
from django.core.cache import cache
from django.db import IntegrityError, connection, transaction
from django.db.models import Exists, OuterRef, QuerySet
from django.utils import timezone

from publishing.models import PublishKind
from publishing.services import publish_request, publish_request_many
from study.explain import Draft, ExplainerRefused, ExplainerUnavailable, Passage, QuestionFacts
from study.explain.extractive import extractive_explain
from study.explain.http import http_explain
from study.explain.retrieval import passages_for_question
from study.extract.base import clean_text
from study.models import MemoCard, Question, QuestionExplanation, QuestionProgress
from study.models.cards import CardSourceKind
from study.scheduling import BAD_OUTCOMES
from studyserver.caches import CACHE_ERRORS, cache_breaker
from studyserver.celery import enqueue_on_commit

from .card_generation import question_cards_generate

logger = logging.getLogger(__name__)


def _facts(question: Question) -> QuestionFacts:
    choices = question.choices if isinstance(question.choices, list) else []
    return QuestionFacts(
        question_id=question.id,
        topic_id=question.study_topic_id,
        user_id=question.user_id,
        subject=question.subject,
        question_text=question.question_text,
        choices=tuple(str(c) for c in choices),
        correct_choice=question.correct_choice,
        explanation=question.explanation or "",
    )


class ExplainerDown(ConnectionError):
    """The configured explainer could not answer, and the task will try again later (a transient error)."""


def explanation_draft(facts: QuestionFacts, passages: list[Passage], *, fall_back: bool = True) -> Draft:
    """Write the explanation text with the configured explainer (HTTP LLM, else extractive). When the LLM cannot
    answer: the extractive text with `fall_back`, else ExplainerDown, for the task to retry with backoff (the
    explanation a question gets is its one: an outage of a few minutes must not leave the extractive one for good).
    An explainer that refuses the request (ExplainerRefused: a wrong key, model or URL) falls back at once: retrying
    it for minutes changed nothing but the wait."""
    if settings.EXPLAINER_URL:
        try:
            return http_explain(facts, passages)
        except ExplainerRefused as exc:
            logger.error("question %s: %s; falling back to the extractive explainer (check EXPLAINER_URL, "
                         "EXPLAINER_API_KEY and EXPLAINER_MODEL)", facts.question_id, exc)
        except ExplainerUnavailable as exc:
            if not fall_back:
                raise ExplainerDown(f"question {facts.question_id}: {exc}") from exc
            logger.warning("question %s: %s; falling back to the extractive explainer", facts.question_id, exc)
    return extractive_explain(facts, passages)


def _explainable(question_id: int) -> QuerySet[Question]:
    """The question, if it is live in a live topic: a deleted topic's questions are gone for the learner."""
    return Question.objects.filter(pk=question_id, deleted_at__isnull=True, study_topic__deleted_at__isnull=True)


def _claim_key(question_id: int) -> str:
    """The question's claim in the cache: question ids are a database's (two databases may share a Redis)."""
    return f"explain-claim:{connection.settings_dict['NAME']}:{question_id}"


@contextmanager
def _explainer_claim(question_id: int, token: str | None) -> Iterator[bool]:
    """Whether this run may call the explainer for the question: False while another run holds its claim.

    Only the HTTP explainer is claimed: each call is paid, and two deliveries of one question at once (at-least-once
    delivery, a finalize's fan-out meeting `backfill_explanations`, an edit's new run) would each call it, the
    OneToOne constraint keeping one answer of the two bought. The claim is a key added to the shared cache for the
    block (until the explanation is written and committed), holding `token` (the task's id) and when it ends: at
    most explain_question's hard time limit later. A claim holding this run's own token is a message delivered
    again after its worker died mid-call: it is this run's, taken over. While the cache is unreachable the run goes
    on unclaimed, as before (cache_breaker: logged, then the cache is not asked for a while)."""
    if not settings.EXPLAINER_URL:
        yield True
        return
    from study.tasks import explain_time_limits

    key, what = _claim_key(question_id), f"explanation claim of question {question_id}"
    token = token or uuid.uuid4().hex
    lifetime = explain_time_limits()[1]
    value = (token, time.time() + lifetime)  # (who holds it, when it ends)
    taken = cache_breaker.call(what, lambda: cache.add(key, value, timeout=lifetime), fallback=None)
    if taken is False:
        held = cache_breaker.call(what, lambda: _claim_held(key), fallback=None)
        if held is None or held[0] != token:
            yield False
            return
        taken = cache_breaker.call(what, lambda: cache.set(key, value, timeout=lifetime) or True, fallback=None)
    try:
        yield True
    finally:
        if taken:
            _claim_release(key, token)


def _claim_held(key: str) -> tuple[str, float] | None:
    """The claim under `key`: (its holder's token, when it ends), or None."""
    value = cache.get(key)
    return value if isinstance(value, tuple) and len(value) == 2 else None


def _claim_release(key: str, token: str) -> None:
    """Let the claim go, if it is still ours (one that outlived its timeout and was taken by another run is theirs).
    Asked even while the cache breaker skips the cache: a claim left behind would hold off every other run until
    it ends."""
    try:
        held = _claim_held(key)
        if held is not None and held[0] == token:
            cache.delete(key)
    except CACHE_ERRORS as exc:
        logger.warning("explanation claim %s not let go (it ends by itself): %s: %s", key, type(exc).__name__, exc)


def explanation_claim_seconds_left(question_id: int) -> float:
    """How long the question's claim lasts yet (0 when there is none, or the cache cannot tell): a run that found it
    held is tried again after it ends, when its holder has written the explanation, let the claim go, or died."""
    held = cache_breaker.call("explanation claim", lambda: _claim_held(_claim_key(question_id)), fallback=None)
    return 0.0 if held is None else max(0.0, held[1] - time.time())


def question_explain(*, question_id: int, fall_back: bool = True, claim_token: str | None = None) -> str:
    """Explain a live question that has no explanation yet, make its card candidates, publish it.

    Returns created / exists / missing / changed / claimed. Safe to run twice or concurrently: with the HTTP
    explainer, one run at a time calls it for a question (_explainer_claim); another returns "claimed" and
    changes nothing (the task tries again later, when it usually finds the explanation: "exists"). The OneToOne
    constraint decides the one writer; the loser changes nothing. The explainer runs outside any transaction; a
    question edited meanwhile (another answer, other choices) keeps no draft of its old text: the task is sent
    again after commit (once the claim is let go), and that run, within its own time limits, writes the draft
    from what the question says then, so the explanation and its cards name the same answer.

    `fall_back=False` (a task with retries left): an LLM that cannot answer raises ExplainerDown instead of
    storing the extractive text. `claim_token`: the task's id, kept by a message delivered again.
    """
    question = _explainable(question_id).first()
    if question is None:
        logger.info("explain question %s: missing or deleted", question_id)
        return "missing"
    if QuestionExplanation.objects.filter(question_id=question_id).exists():
        logger.info("explain question %s: already explained", question_id)
        return "exists"
    facts = _facts(question)
    with _explainer_claim(question_id, claim_token) as ours:
        if not ours:
            logger.info("explain question %s: another run is calling the explainer for it", question_id)
            return "claimed"
        if settings.EXPLAINER_URL and QuestionExplanation.objects.filter(question_id=question_id).exists():
            logger.info("explain question %s: explained by the run that held the claim", question_id)
            return "exists"
        # Retrieval and the (possibly slow) explainer run outside any transaction.
        passages = passages_for_question(facts)
        draft = explanation_draft(facts, passages, fall_back=fall_back)
        outcome = _explanation_write(question_id, facts=facts, draft=draft, passages=passages)
    if outcome == "changed":
        from study.tasks import explain_question

        logger.info("explain question %s: edited while being explained; sent again", question_id)
        enqueue_on_commit(explain_question, question_id)
    return outcome


def _explanation_write(question_id: int, *, facts: QuestionFacts, draft: Draft, passages: list[Passage]) -> str:
    """Store the draft, its card candidates and the publish request if the question is live and unchanged since
    `facts` were read; created / exists / missing / changed."""
    with transaction.atomic():
        question = _explainable(question_id).select_for_update(of=("self",)).first()
        if question is None:
            return "missing"
        if _facts(question) != facts:
            return "changed"
        try:
            with transaction.atomic():
                explanation = QuestionExplanation.objects.create(
                    user_id=question.user_id,
                    question=question,
                    text=clean_text(draft.text),
                    backend=draft.backend,
                    passages=[p.as_json() for p in passages],
                )
        except IntegrityError:
            logger.info("explain question %s: another worker explained it first", question_id)
            return "exists"
        cards = question_cards_generate(question=question, explanation=explanation)
        publish_request(kind="study_question", source_id=question.id)
    logger.info(
        "explain question %s: %s explanation, %d passage(s), %d card(s)",
        question_id, draft.backend, len(passages), len(cards),
    )
    return "created"


def explanation_forget(*, before: Question, after: Question) -> None:
    """Within the caller's transaction: when an edit changed the answer key (correct_choice or the choices),
    drop the explanation, which names the old answer, and the card candidates made from it that nobody has
    approved yet (approved and flagged cards are the user's), then explain the question again after commit
    if its owner's last answer to it is still wrong or unsure."""
    if (before.correct_choice, before.choices) == (after.correct_choice, after.choices):
        return
    if not QuestionExplanation.objects.filter(question_id=after.id).delete()[0]:
        return  # no explanation, so no candidates made from one either
    now = timezone.now()
    candidates = MemoCard.objects.filter(
        source_question_id=after.id,
        source_kind=CardSourceKind.QUESTION,
        needs_review=True,
        flagged_by="",
        deleted_at__isnull=True,
    )
    # Locked in id order (as the bulk card actions lock), and read after the lock: a card approved, flagged or
    # edited by a transaction that committed meanwhile no longer matches and stays.
    card_ids = list(candidates.order_by("id").select_for_update(no_key=True).values_list("id", flat=True))
    MemoCard.objects.filter(id__in=card_ids).update(deleted_at=now, updated_at=now)
    publish_request_many(kind=PublishKind.STUDY_CARD, source_ids=card_ids)
    # Its owner's last answer, read under the progress row's lock: a finalize answering the question meanwhile holds
    # that lock, and each side had seen the other's state as it was before (the explanation still there, the last
    # answer still correct), so neither explained the question again. Now one waits for the other's commit.
    last_outcome = (
        QuestionProgress.objects.select_for_update(no_key=True)
        .filter(question_id=after.id, user_id=after.user_id)
        .values_list("last_outcome", flat=True)
        .first()
    )
    if last_outcome in BAD_OUTCOMES:
        from study.tasks import explain_question

        enqueue_on_commit(explain_question, after.id)


def questions_needing_explanation(*, topic_id: int | None = None, missed_between: tuple | None = None) -> QuerySet:
    """Live questions of live topics whose owner's last outcome is wrong/unsure and that have no explanation; with
    `missed_between` (from, to), only those whose last answer reached the server in that time (stored, not
    answered: an offline viewer writes answers of days ago back now)."""
    missed = QuestionProgress.objects.filter(
        question_id=OuterRef("pk"), user_id=OuterRef("user_id"), last_outcome__in=sorted(BAD_OUTCOMES)
    )
    if missed_between is not None:
        missed = missed.filter(last_attempt__created_at__range=missed_between)
    questions = Question.objects.filter(
        deleted_at__isnull=True, study_topic__deleted_at__isnull=True, ai_explanation__isnull=True
    ).filter(Exists(missed))
    if topic_id is not None:
        questions = questions.filter(study_topic_id=topic_id)
    return questions.order_by("id")


EXPLAIN_SWEEP_GRACE = timedelta(minutes=10)  # the task's own tries, with their backoff, are over by then
EXPLAIN_SWEEP_WINDOW = timedelta(days=2)
EXPLAIN_SWEEP_BATCH = 200


def explanations_missing_resend(*, limit: int = EXPLAIN_SWEEP_BATCH) -> int:
    """Send again the explanation of questions whose miss reached the server in the last two days (an offline answer
    written back late counts from then) that still have none ten minutes on: its task was lost (the broker away at
    the commit, a flushed queue) or gave up (the database away through all its tries). Older misses are
    `backfill_explanations`' work: an HTTP explainer's calls are paid, and an upgrade must not start explaining years
    of history. How many were sent; a second delivery is harmless (the task finds the explanation, or the claim of
    the run writing it)."""
    from study.tasks import explain_question
    from studyserver.celery import send_or_log

    now = timezone.now()
    window = (now - EXPLAIN_SWEEP_WINDOW, now - EXPLAIN_SWEEP_GRACE)
    question_ids = list(questions_needing_explanation(missed_between=window).values_list("id", flat=True)[:limit])
    sent = sum(send_or_log(explain_question, question_id) for question_id in question_ids)
    if question_ids:
        logger.info("explanations sweep: sent %d of %d question(s) missed without an explanation", sent,
                    len(question_ids))
    return sent
