"""manage.py normalize_texts: the texts stored NFC since are NFC-normalised in rows older versions wrote as sent."""

import unicodedata
from datetime import UTC, datetime
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from publishing.models import Published, PublishOutbox
from study.models import MemoCard, StudySession
from study.tests import factories as f

pytestmark = pytest.mark.django_db

TEXTS = {"certification": "가스기사", "language_code": "한국어", "learning_level": "초급", "subject": "가스법규",
         "topic": "용기 검사"}
LONG_AGO = datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC)


def nfd(text: str) -> str:
    decomposed = unicodedata.normalize("NFD", text)
    assert decomposed != text
    return decomposed


def run(*args: str) -> str:
    out = StringIO()
    call_command("normalize_texts", *args, stdout=out)
    return out.getvalue()


def as_written_by_an_older_version(model, pk: int, **values) -> None:
    """Rows as sent, bypassing the API and the admin that normalise now (and their publish requests)."""
    model.objects.filter(pk=pk).update(**values)


def test_existing_sessions_become_nfc_and_nothing_else_changes(user):
    decomposed = [f.StudySessionFactory(user=user) for _ in range(3)]
    for session in decomposed:
        as_written_by_an_older_version(StudySession, session.pk, **{k: nfd(v) for k, v in TEXTS.items()})
    composed = f.StudySessionFactory(user=user, **TEXTS)
    one_field = f.StudySessionFactory(user=user, certification="")
    as_written_by_an_older_version(StudySession, one_field.pk, subject=nfd("안전관리"))
    # NFC makes "\ufb2c" three characters: 30 in a 20-character column cannot be stored, so it stays as it is
    too_long = f.StudySessionFactory(user=user)
    as_written_by_an_older_version(StudySession, too_long.pk, language_code="\ufb2c" * 10, topic="\ufb2c" * 10)
    StudySession.objects.update(updated_at=LONG_AGO)

    out = run("--batch-size", "2")  # several batches

    for session in (*decomposed, composed):
        session.refresh_from_db()
        assert {k: getattr(session, k) for k in TEXTS} == TEXTS
    one_field.refresh_from_db()
    assert (one_field.certification, one_field.subject) == ("", "안전관리")
    too_long.refresh_from_db()
    assert (too_long.language_code, too_long.topic) == ("\ufb2c" * 10, unicodedata.normalize("NFC", "\ufb2c" * 10))
    assert set(StudySession.objects.values_list("updated_at", flat=True)) == {LONG_AGO}  # a pure normalisation
    assert "normalised 5 of 6 study session(s)" in out
    assert "1 session text(s) left as they are" in out
    assert "normalised 0 of 6 study session(s)" in run()  # idempotent


def test_card_materials_become_nfc_and_the_feed_follows(user, django_capture_on_commit_callbacks):
    material = f.MemoCardFactory(user=user, needs_review=False)  # approved: in the feed once published
    others = [f.MemoCardFactory(user=user, extra={"material": "법규"}), f.MemoCardFactory(user=user, extra={}),
              f.MemoCardFactory(user=user, extra={"material": 7})]
    deleted = f.MemoCardFactory(user=user, deleted_at=LONG_AGO)
    as_written_by_an_older_version(MemoCard, material.pk, extra={"material": nfd("가스 물성"), "kept": [1, "둘"]})
    as_written_by_an_older_version(MemoCard, deleted.pk, extra={"material": nfd("가스 물성")})

    with django_capture_on_commit_callbacks(execute=True):
        out = run("--batch-size", "2")

    material.refresh_from_db()
    assert material.extra == {"material": "가스 물성", "kept": [1, "둘"]}
    deleted.refresh_from_db()
    assert deleted.extra == {"material": "가스 물성"}
    assert [MemoCard.objects.get(pk=card.pk).extra for card in others] == [{"material": "법규"}, {}, {"material": 7}]
    assert "2 of 5 card(s)" in out
    assert "memo cards: 5/5 rows (" in out and "rows/s, eta" in out  # progress lines, outside a terminal
    assert Published.objects.get(kind="study_card", source_id=material.pk).payload["material"] == "가스 물성"


def test_a_dry_run_counts_and_writes_nothing(user):
    session = f.StudySessionFactory(user=user)
    as_written_by_an_older_version(StudySession, session.pk, subject=nfd("가스법규"))
    card = f.MemoCardFactory(user=user)
    as_written_by_an_older_version(MemoCard, card.pk, extra={"material": nfd("가스 물성")})
    outbox = PublishOutbox.objects.count()

    out = run("--dry-run")

    assert "dry run: would have normalised 1 of 1 study session(s) and 1 of 1 card(s)" in out
    assert StudySession.objects.get(pk=session.pk).subject == nfd("가스법규")
    assert MemoCard.objects.get(pk=card.pk).extra == {"material": nfd("가스 물성")}
    assert PublishOutbox.objects.count() == outbox


@pytest.mark.parametrize("size", ["0", "100001"])
def test_a_batch_size_out_of_range_is_refused(size):
    with pytest.raises(CommandError, match="--batch-size must be between 1 and 100000"):
        run("--batch-size", size)
