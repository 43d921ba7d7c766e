"""Explanations of wrong/unsure questions, then card candidates made from them.

The explainer is the extractive one unless settings.EXPLAINER_URL configures an HTTP LLM;
when that keeps failing (after its own retries) we fall back to the extractive explainer,
so a learner always gets an explanation and cards (the backend column says which wrote it).
"""

import logging

from django.conf import settings
from django.db import IntegrityError, transaction

from publishing.services import publish_request
from study.explain import Draft, ExplainerUnavailable, Passage, QuestionFacts
from study.explain.extractive import extractive_explain
from study.explain.http import http_explain
from study.explain.retrieval import passages_for_question
from study.models import Question, QuestionExplanation

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


def explanation_draft(facts: QuestionFacts, passages: list[Passage]) -> Draft:
    """Write the explanation text with the configured explainer (HTTP LLM, else extractive)."""
    if settings.EXPLAINER_URL:
        try:
            return http_explain(facts, passages)
        except ExplainerUnavailable as exc:
            logger.warning("question %s: %s; falling back to the extractive explainer", facts.question_id, exc)
    return extractive_explain(facts, passages)


def question_explain(*, question_id: int) -> str:
    """Explain a live question that has no explanation yet, make its card candidates, publish it.

    Returns created / exists / missing. Safe to run twice or concurrently: the OneToOne
    constraint decides the one writer; the loser changes nothing.
    """
    question = Question.objects.filter(pk=question_id, deleted_at__isnull=True).first()
    if question is None:
        logger.info("explain question %s: missing or deleted", question_id)
        return "missing"
    if QuestionExplanation.objects.filter(question_id=question_id).exists():
        logger.info("explain question %s: already explained", question_id)
        return "exists"
    facts = _facts(question)
    # Retrieval and the (possibly slow) explainer run outside any transaction.
    passages = passages_for_question(facts)
    draft = explanation_draft(facts, passages)
    with transaction.atomic():
        question = Question.objects.select_for_update().filter(pk=question_id, deleted_at__isnull=True).first()
        if question is None:
            return "missing"
        try:
            with transaction.atomic():
                explanation = QuestionExplanation.objects.create(
                    user_id=question.user_id,
                    question=question,
                    text=draft.text,
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
