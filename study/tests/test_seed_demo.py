"""manage.py seed_demo is all or nothing: a failure at any step leaves no row, no file and no task behind."""

from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from publishing.models import Published, PublishOutbox
from study import models
from study.management.commands.seed_demo import LANG_TOPIC

pytestmark = pytest.mark.django_db

SEEDED = (models.Document, models.TopicDocument, models.Question, models.QuestionExplanation, models.MemoCard,
          models.CardProgress, models.QuestionProgress, models.QuizSession, models.StudySession,
          models.SessionAsset, PublishOutbox, Published)


def stored_files(settings) -> list:
    return [path for path in settings.MEDIA_ROOT.rglob("*") if path.is_file()]


def test_a_failure_at_the_last_step_leaves_nothing(user, settings, django_capture_on_commit_callbacks):
    # The last step creates this topic: its name taken makes the service refuse (a real constraint conflict).
    models.StudyTopic.objects.create(user=user, name=LANG_TOPIC)
    with (
        django_capture_on_commit_callbacks() as callbacks,
        pytest.raises(CommandError, match="nothing was written"),
    ):
        call_command("seed_demo", "--user", user.username, stdout=StringIO())
    assert callbacks == []  # no task is sent for rows that were rolled back
    assert list(models.StudyTopic.objects.values_list("name", flat=True)) == [LANG_TOPIC]
    assert {model.__name__: model.objects.count() for model in SEEDED} == {model.__name__: 0 for model in SEEDED}
    assert stored_files(settings) == []


def test_the_demo_is_written_at_once_and_its_tasks_sent_on_commit(user, settings, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks() as callbacks:
        call_command("seed_demo", "--user", user.username, stdout=StringIO())
    assert callbacks  # extraction, explanations, analyses and the publish kicks wait for the commit
    assert not Published.objects.exists() and PublishOutbox.objects.exists()
    assert models.MemoCard.objects.filter(user=user, source_kind="question", needs_review=False).exists()
    assert models.Document.objects.filter(user=user, extract_status="pending").exists()  # the last step's
    assert len(stored_files(settings)) == models.Document.objects.count()

    for send in callbacks:
        send()
    assert Published.objects.filter(kind="study_question").count() == models.Question.objects.count()
    assert not models.Document.objects.filter(user=user, extract_status="pending").exists()


@pytest.mark.django_db(transaction=True)  # a real COMMIT, then the callbacks sent after it
def test_an_interrupt_after_the_commit_keeps_the_files_of_the_stored_documents(user, settings, monkeypatch):
    from django.db import transaction

    from study.management.commands import seed_demo

    language = seed_demo.Command._language

    def interrupted_after_commit(self, owner):
        language(self, owner)
        transaction.on_commit(lambda: (_ for _ in ()).throw(KeyboardInterrupt()))  # Ctrl-C while tasks are sent

    monkeypatch.setattr(seed_demo.Command, "_language", interrupted_after_commit)
    with pytest.raises(KeyboardInterrupt):
        call_command("seed_demo", "--user", user.username, stdout=StringIO())
    documents = models.Document.objects.filter(user=user)
    assert documents.exists()  # committed
    assert all(document.file.storage.exists(document.file.name) for document in documents)
    assert len(stored_files(settings)) == documents.count()
