"""Deleting a learner with everything they own."""

from django.contrib.auth.models import AbstractBaseUser
from django.db import router, transaction
from django.db.models import Q

from publishing.models import PublishKind
from publishing.services import publish_request_many
from study import models as m


def user_delete(*, user: AbstractBaseUser) -> None:
    """Delete `user` and everything they own, in one transaction; their rows in the feed become tombstones
    (publishing's pre_delete signal, sent by user.delete()), and their documents' files are left to the orphan-file
    sweep, as before.

    Django's collector loads every row that another row refers to and deletes them a hundred at a time: a learner
    with 25,000 answers and 10,000 cards took 8–9 s to delete in the admin, and one four times that size would
    outlast gunicorn's 30 s timeout, so could not be deleted there at all. Those rows go first, one statement per
    table, doing what the collector would do with what refers to them (their cards' evidence and progress go, and
    another user's progress naming one of the answers as its last forgets it: a row an older version could write).
    The collector then deletes the rest (questions, sessions, documents, topics, tokens) as before, with what other
    users' rows of older versions may point at there."""
    using = router.db_for_write(type(user))
    with transaction.atomic(using=using):
        m.QuestionProgress.objects.filter(last_attempt__user_id=user.pk).exclude(user_id=user.pk).update(
            last_attempt=None)
        m.CardEvidence.objects.filter(card__user_id=user.pk)._raw_delete(using)
        # Another user's progress on one of the cards (a row an older version could write) is in that user's feed,
        # which the pre_delete signal does not retract: its publication is requested, for the drain to tombstone.
        foreign = m.CardProgress.objects.filter(card__user_id=user.pk).exclude(user_id=user.pk)
        if foreign_ids := list(foreign.values_list("id", flat=True)):
            publish_request_many(kind=PublishKind.STUDY_CARD_PROGRESS, source_ids=foreign_ids)
        m.CardProgress.objects.filter(Q(user_id=user.pk) | Q(card__user_id=user.pk))._raw_delete(using)
        for model in (m.QuestionProgress, m.QuestionAttempt, m.MemoCard):  # (progress names its last attempt)
            model.objects.filter(user_id=user.pk)._raw_delete(using)
        user.delete()
