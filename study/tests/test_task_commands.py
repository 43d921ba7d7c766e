"""Operator tools: retry_extract, backfill_explanations and the admin "retry extraction" action."""

from io import StringIO
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command
from django.urls import reverse

from study.models import Document, MemoCard, QuestionExplanation
from study.services.topics import topic_delete
from study.tests.factories import (
    DocumentFactory,
    QuestionFactory,
    QuestionProgressFactory,
    StudyTopicFactory,
    TopicDocumentFactory,
)
from studyserver.testing import celery_conf


def run(command: str, *args) -> str:
    out = StringIO()
    call_command(command, *args, stdout=out)
    return out.getvalue()


@pytest.fixture
def documents(user):
    failed = DocumentFactory(user=user, extract_status="failed", extract_error="boom")
    skipped = DocumentFactory(user=user, extract_status="skipped", extract_error="OCR unavailable")
    pending = DocumentFactory(user=user)
    deleted = DocumentFactory(user=user, extract_status="failed", deleted_at=failed.created_at)
    return {"failed": failed, "skipped": skipped, "pending": pending, "deleted": deleted}


def status_of(doc) -> str:
    return Document.objects.values_list("extract_status", flat=True).get(pk=doc.pk)


@pytest.mark.django_db
class TestRetryExtract:
    def test_default_retries_failed_live_documents_with_plain_progress(self, documents):
        out = run("retry_extract")
        assert "1 failed document(s)" in out
        assert f"[1/1] document {documents['failed'].id}: done" in out
        assert "retry_extract: done 1" in out
        assert status_of(documents["failed"]) == "done"
        assert Document.objects.get(pk=documents["failed"].pk).extracted_text == "LNG is stored at -162 C."
        assert [status_of(documents[k]) for k in ("skipped", "pending", "deleted")] == ["skipped", "pending", "failed"]

    def test_status_option_and_dry_run(self, documents):
        out = run("retry_extract", "--status", "skipped", "--dry-run")
        assert f"would retry document {documents['skipped'].id}" in out
        assert status_of(documents["skipped"]) == "skipped"
        run("retry_extract", "--status", "pending")
        assert status_of(documents["pending"]) == "done"

    def test_enqueue_sends_to_the_workers(self, documents):
        out = run("retry_extract", "--status", "skipped", "--enqueue")
        assert "retry_extract: queued 1" in out
        assert status_of(documents["skipped"]) == "done"  # eager Celery ran the task

    def test_enqueue_with_the_broker_down_is_an_error_not_queued(self, documents):
        err = StringIO()
        with celery_conf(broker_url="redis://127.0.0.1:1/0", task_always_eager=False):  # nothing listens on 1
            with pytest.raises(CommandError, match="retry_extract: error 1$"):
                call_command("retry_extract", "--enqueue", stdout=StringIO(), stderr=err)
        assert f"document {documents['failed'].id}: CommandError: not queued (" in err.getvalue()
        assert "retry_extract --status pending --enqueue" in err.getvalue()
        assert status_of(documents["failed"]) == "pending"  # as the message says: the next --status pending finds it

    def test_an_item_that_raises_is_counted_and_the_others_still_run(self, documents, monkeypatch):
        from study.management.commands import retry_extract

        real_extract = retry_extract.document_extract
        first, second = documents["pending"], DocumentFactory(user=documents["pending"].user)  # in id order

        def breaks_on_the_first(*, document_id: int) -> str:
            if document_id == first.id:
                raise ConnectionError("storage unreachable")
            return real_extract(document_id=document_id)

        monkeypatch.setattr(retry_extract, "document_extract", breaks_on_the_first)
        err = StringIO()
        with pytest.raises(CommandError, match="retry_extract: done 1, error 1"):
            call_command("retry_extract", "--status", "pending", stdout=StringIO(), stderr=err)
        assert f"document {first.id}: ConnectionError: storage unreachable" in err.getvalue()
        assert (status_of(first), status_of(second)) == ("pending", "done")

    def test_documents_that_end_failed_again_fail_the_command_naming_them(self, documents, user):
        """Their files are missing: the retry runs and fails them again (a real failure, no mock)."""
        gone = [documents["failed"], DocumentFactory(user=user, extract_status="failed")]
        fine = DocumentFactory(user=user, extract_status="failed")  # before the unlinks: it would take a freed name
        for document in gone:
            Path(document.file.path).unlink()
        out = StringIO()
        with pytest.raises(CommandError) as failure:
            call_command("retry_extract", stdout=out, stderr=StringIO())
        assert str(failure.value) == f"retry_extract: 2 document(s) ended failed: {gone[0].id}, {gone[1].id}"
        assert "retry_extract: done 1, failed 2" in out.getvalue()  # the summary is still printed
        assert [status_of(d) for d in (*gone, fine)] == ["failed", "failed", "done"]

        # --enqueue does not wait for the workers: it exits 0 when every send went through, whatever they do then
        # (here eager Celery ran the extraction, which failed again).
        assert "retry_extract: queued 2" in run("retry_extract", "--enqueue")
        assert [status_of(d) for d in gone] == ["failed", "failed"]

    def test_an_error_and_a_document_ended_failed_are_both_in_the_message(self, documents, user, monkeypatch):
        from study.management.commands import retry_extract

        real_extract = retry_extract.document_extract
        broken, gone = documents["failed"], DocumentFactory(user=user, extract_status="failed")
        Path(gone.file.path).unlink()

        def breaks_on_the_first(*, document_id: int) -> str:
            if document_id == broken.id:
                raise ConnectionError("storage unreachable")
            return real_extract(document_id=document_id)

        monkeypatch.setattr(retry_extract, "document_extract", breaks_on_the_first)
        with pytest.raises(CommandError) as failure:
            call_command("retry_extract", stdout=StringIO(), stderr=StringIO())
        assert str(failure.value) == f"retry_extract: error 1, failed 1; 1 document(s) ended failed: {gone.id}"

    def test_the_failed_ids_named_are_bounded(self, user):
        gone = DocumentFactory.create_batch(12, user=user, extract_status="failed")
        for document in gone:
            Path(document.file.path).unlink()
        with pytest.raises(CommandError) as failure:
            call_command("retry_extract", "-v", "0", stdout=StringIO(), stderr=StringIO())
        first_ten = ", ".join(str(d.id) for d in gone[:10])
        assert str(failure.value) == f"retry_extract: 12 document(s) ended failed: {first_ten} and 2 more"

    def test_unknown_status_is_refused(self):
        with pytest.raises(CommandError):
            call_command("retry_extract", "--status", "done", stdout=StringIO())

    def test_verbosity_0_prints_nothing_but_errors_still_fail(self, documents, monkeypatch):
        from study.management.commands import retry_extract

        assert run("retry_extract", "-v", "0") == ""
        assert status_of(documents["failed"]) == "done"

        def breaks(*, document_id: int) -> str:
            raise ConnectionError("storage unreachable")

        monkeypatch.setattr(retry_extract, "document_extract", breaks)
        out, err = StringIO(), StringIO()
        with pytest.raises(CommandError, match="retry_extract: error 1"):
            call_command("retry_extract", "--status", "pending", "-v", "0", stdout=out, stderr=err)
        assert out.getvalue() == ""
        assert "ConnectionError: storage unreachable" in err.getvalue()


@pytest.fixture
def missed_questions(user, other_user):
    topic = StudyTopicFactory(user=user)
    doc = DocumentFactory(user=user, extract_status="done", extracted_text="LNG의 주성분은 메탄이다.")
    TopicDocumentFactory(topic=topic, document=doc)
    wrong = QuestionFactory(study_topic=topic)
    unsure = QuestionFactory(study_topic=StudyTopicFactory(user=user))
    right = QuestionFactory(study_topic=topic)
    explained = QuestionFactory(study_topic=topic)
    foreign = QuestionFactory(study_topic__user=other_user)
    for question, outcome in [(wrong, "wrong"), (unsure, "unsure"), (right, "correct"), (explained, "wrong"),
                              (foreign, "wrong")]:
        QuestionProgressFactory(question=question, last_outcome=outcome)
    QuestionExplanation.objects.create(user=user, question=explained, text="있음")
    return {"topic": topic, "wrong": wrong, "unsure": unsure, "right": right, "foreign": foreign}


@pytest.mark.django_db
class TestBackfillExplanations:
    def test_explains_wrong_and_unsure_questions_without_one(self, missed_questions):
        q = missed_questions
        out = run("backfill_explanations")
        assert "3 question(s) to explain" in out
        assert "backfill_explanations: created 3" in out
        explained = set(QuestionExplanation.objects.values_list("question_id", flat=True))
        assert {q["wrong"].id, q["unsure"].id, q["foreign"].id} <= explained
        assert q["right"].id not in explained
        assert MemoCard.objects.filter(source_question=q["wrong"], needs_review=True).count() == 2
        assert "0 question(s) to explain" in run("backfill_explanations")

    def test_verbosity_0_prints_nothing(self, missed_questions):
        assert run("backfill_explanations", "-v", "0") == ""
        assert QuestionExplanation.objects.filter(question=missed_questions["wrong"]).exists()

    def test_topic_filter_and_dry_run(self, missed_questions):
        q = missed_questions
        out = run("backfill_explanations", "--topic", str(q["topic"].id), "--dry-run")
        assert out.splitlines()[1:] == [f"would explain question {q['wrong'].id}"]
        assert QuestionExplanation.objects.count() == 1
        run("backfill_explanations", "--topic", str(q["topic"].id))
        assert QuestionExplanation.objects.filter(question=q["wrong"]).exists()
        assert not QuestionExplanation.objects.filter(question=q["unsure"]).exists()

    def test_questions_of_a_deleted_topic_are_not_listed(self, missed_questions):
        q = missed_questions
        topic_delete(topic=q["topic"])
        out = run("backfill_explanations", "--dry-run")
        assert "2 question(s) to explain" in out  # the wrong one was in the deleted topic
        assert out.splitlines()[1:] == [f"would explain question {q[name].id}" for name in ("unsure", "foreign")]

    def test_a_deleted_question_is_not_explained(self, missed_questions):
        from study.services.questions import question_delete

        q = missed_questions
        question_delete(question=q["unsure"])
        out = run("backfill_explanations", "--dry-run")
        assert out.splitlines()[1:] == [f"would explain question {q[name].id}" for name in ("wrong", "foreign")]
        run("backfill_explanations")
        assert not QuestionExplanation.objects.filter(question=q["unsure"]).exists()

    def test_unknown_topic_is_an_error(self):
        with pytest.raises(CommandError, match="does not exist"):
            call_command("backfill_explanations", "--topic", "999999", stdout=StringIO())

    def test_enqueue_sends_or_counts_each_failed_send(self, missed_questions):
        err = StringIO()
        with celery_conf(broker_url="redis://127.0.0.1:1/0", task_always_eager=False):  # nothing listens on 1
            with pytest.raises(CommandError, match="backfill_explanations: error 3$"):
                call_command("backfill_explanations", "--enqueue", stdout=StringIO(), stderr=err)
        assert err.getvalue().count(": CommandError: not queued (") == 3
        assert QuestionExplanation.objects.count() == 1
        assert "backfill_explanations: queued 3" in run("backfill_explanations", "--enqueue")  # eager: sent and run
        assert QuestionExplanation.objects.count() == 4


@pytest.mark.django_db
def test_admin_retry_extraction_action(documents, admin_client, django_capture_on_commit_callbacks):
    ids = [documents[k].id for k in ("failed", "skipped", "pending", "deleted")]
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        response = admin_client.post(
            reverse("admin:study_document_changelist"),
            {"action": "retry_extraction", "_selected_action": ids},
            follow=True,
        )
    assert response.status_code == 200
    assert "Extraction queued for 3 document(s)." in response.content.decode()
    assert len(callbacks) == 3
    assert [status_of(documents[k]) for k in ("failed", "skipped", "pending", "deleted")] == [
        "done", "done", "done", "failed",
    ]
