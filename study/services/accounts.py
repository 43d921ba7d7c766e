"""Deleting a learner with everything they own."""

from collections.abc import Iterable

from django.contrib.auth.models import AbstractBaseUser
from django.db import router, transaction

from study import models as m


def owned_rows_delete(*, user_ids: Iterable[int], using: str) -> None:
    """Delete every study row of these users, one statement per table, children before the rows they refer to
    (a progress row names its last attempt; cards have evidence and progress; attempts and analyses belong to quiz
    sessions; assets and topic links to sessions, documents and topics). Nothing else is sent: no signals, no
    publish requests. Inside the caller's transaction."""
    user_ids = list(user_ids)
    m.CardEvidence.objects.filter(card__user_id__in=user_ids)._raw_delete(using)
    m.SessionAsset.objects.filter(session__user_id__in=user_ids)._raw_delete(using)
    for model in (m.CardProgress, m.QuestionProgress, m.SessionAnalysis, m.QuestionExplanation, m.MemoCard,
                  m.QuestionAttempt, m.QuizSession, m.Question, m.StudySession, m.TopicDocument, m.Document,
                  m.StudyTopic):
        model.objects.filter(user_id__in=user_ids)._raw_delete(using)


def user_delete(*, user: AbstractBaseUser) -> None:
    """Delete `user` and everything they own, in one transaction; their rows in the feed become tombstones
    (publishing's pre_delete signal, sent by user.delete()), and their documents' files are left to the orphan-file
    sweep, as before.

    Their study rows go first, one statement per table (owned_rows_delete). Django's collector loads every row that
    another row refers to (an attempt, which a progress row names as its last; a card, with its evidence and
    progress; questions, sessions, documents) and deletes them a hundred at a time: a learner with 25,000 attempts
    and 10,000 cards took 8–9 s to delete in the admin, and one four times that size would outlast gunicorn's 30 s
    timeout, so could not be deleted there at all. user.delete() then removes the rest (tokens, admin history)."""
    using = router.db_for_write(type(user))
    with transaction.atomic(using=using):
        owned_rows_delete(user_ids=[user.pk], using=using)
        user.delete()
