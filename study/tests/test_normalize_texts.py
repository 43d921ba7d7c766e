"""manage.py normalize_texts: the texts stored NFC since are NFC-normalised in rows older versions wrote as sent."""

import unicodedata
from datetime import UTC, datetime
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from publishing.models import Published, PublishOutbox
from study.management.commands import normalize_texts
from study.models import Document, MemoCard, Question, StudySession, StudyTopic
from study.tests import factories as f

pytestmark = pytest.mark.django_db

TEXTS = {"certification": "가스기사", "language_code": "한국어", "learning_level": "초급", "subject": "가스법규",
         "topic": "용기 검사"}
LONG_AGO = datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC)


def nfd(text: str) -> str:
    decomposed = unicodedata.normalize("NFD", text)
    assert decomposed != text
    return decomposed


def half_composed(text: str) -> str:
    """Another spelling NFC makes `text`: its first syllable composed, the rest decomposed."""
    spelling = text[0] + unicodedata.normalize("NFD", text[1:])
    assert spelling not in (text, nfd(text))
    return spelling


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


def test_cards_duplicate_checks_are_recomputed_unless_another_live_card_has_the_fact(user, other_user):
    """Older versions kept invisible characters (a zero-width space, a BOM) in a fact's duplicate check: such a card
    did not collide with the same fact typed clean."""
    from study.textnorm import card_dedup_hash

    def as_stored_before(card, fact: str) -> None:  # the fact with its invisible character, the hash it had then
        as_written_by_an_older_version(MemoCard, card.pk, fact=fact, dedup_hash=f"{card.pk:064x}")

    pasted = f.MemoCardFactory(user=user)
    as_stored_before(pasted, "메탄\u200b")
    clean = f.MemoCardFactory(user=user, fact="에탄")
    twin = f.MemoCardFactory(user=user)
    as_stored_before(twin, "\ufeff에탄")  # the same fact as `clean` once recomputed: left, and named
    gone = f.MemoCardFactory(user=user, deleted_at=LONG_AGO)
    as_stored_before(gone, "에탄\u2060")  # deleted: its check is unique to nothing
    others = f.MemoCardFactory(user=other_user)
    as_stored_before(others, "에탄\u200b")  # another learner's: no pair with `clean`
    untouched = f.MemoCardFactory(user=user, fact="프로판")

    out = run("--batch-size", "2")

    def stored(card) -> str:
        return MemoCard.objects.values_list("dedup_hash", flat=True).get(pk=card.pk)

    def now(fact: str) -> str:
        return card_dedup_hash(source_question_id=None, card_format="qa", fact=fact)

    assert (stored(pasted), stored(gone), stored(others)) == (now("메탄"), now("에탄"), now("에탄"))
    assert stored(twin) == f"{twin.pk:064x}" and stored(clean) == now("에탄") and stored(untouched) == now("프로판")
    assert "recomputed the duplicate check of 3 card(s)" in out
    assert ("1 card(s) left with their old duplicate check: another live card of the user holds the same fact once "
            f"invisible characters are dropped; delete or edit one of each pair: ids {twin.pk}") in out
    assert "recomputed the duplicate check of 0 card(s)" in run()  # idempotent
    # the API now sees the pasted card's fact as the one typed clean
    from study.services.cards import card_create
    from studyserver.errors import DuplicateCard

    with pytest.raises(DuplicateCard):
        card_create(user=user, card_format="qa", cue="주성분", fact="메탄")


def test_a_numbers_sign_is_put_back_into_the_duplicate_check(user):
    """Versions before kept `-40` as `40` in the check: the card refused the fact `40` as a duplicate."""
    from study.services.cards import card_create
    from study.textnorm import card_dedup_hash

    minus = f.MemoCardFactory(user=user, fact="-40")
    as_written_by_an_older_version(MemoCard, minus.pk,
                                   dedup_hash=card_dedup_hash(source_question_id=None, card_format="qa", fact="40"))
    assert "recomputed the duplicate check of 1 card(s)" in run()
    assert card_create(user=user, card_format="qa", cue="어는점", fact="40").fact == "40"


def outbox(kind: str) -> set[int]:
    return set(PublishOutbox.objects.filter(kind=kind).values_list("source_id", flat=True))


def test_topic_names_become_nfc_unless_another_active_topic_of_the_user_has_the_name(user, other_user):
    renamed = f.StudyTopicFactory(user=user, name="가스기사")
    composed_holder = f.StudyTopicFactory(user=user, name="용기 검사")
    behind_composed = f.StudyTopicFactory(user=user, name="가스산업기사")
    as_written_by_an_older_version(StudyTopic, behind_composed.pk, name=nfd("용기 검사"))
    # two spellings that NFC makes one name: which one keeps it is for the user to say, so neither changes
    twins = [f.StudyTopicFactory(user=user) for _ in range(2)]
    as_written_by_an_older_version(StudyTopic, twins[0].pk, name=nfd("안전관리"))
    as_written_by_an_older_version(StudyTopic, twins[1].pk, name=half_composed("안전관리"))
    another_users = f.StudyTopicFactory(user=other_user, name="용기 검사 2")
    deleted = f.StudyTopicFactory(user=user, name="용기 검사 3", deleted_at=LONG_AGO)  # names unique among live only
    as_written_by_an_older_version(StudyTopic, renamed.pk, name=nfd("가스기사"))
    for topic in (another_users, deleted):
        as_written_by_an_older_version(StudyTopic, topic.pk, name=nfd("용기 검사"))
    too_long = f.StudyTopicFactory(user=user)
    as_written_by_an_older_version(StudyTopic, too_long.pk, name="\ufb2c" * 70)  # 210 characters once NFC
    StudyTopic.objects.update(updated_at=LONG_AGO)

    out = run("--batch-size", "2")  # the twins and the holders in other batches

    names = dict(StudyTopic.objects.values_list("pk", "name"))
    assert names[renamed.pk] == "가스기사"
    assert names[another_users.pk] == names[deleted.pk] == "용기 검사"
    assert names[composed_holder.pk] == "용기 검사"
    assert names[behind_composed.pk] == nfd("용기 검사")
    assert [names[topic.pk] for topic in twins] == [nfd("안전관리"), half_composed("안전관리")]
    assert names[too_long.pk] == "\ufb2c" * 70
    assert set(StudyTopic.objects.values_list("updated_at", flat=True)) == {LONG_AGO}
    assert outbox("study_topic") == {renamed.pk, another_users.pk, deleted.pk}
    assert "3 of 8 topic(s)" in out
    assert "1 topic text(s) left as they are: NFC would not fit the column" in out
    left = f"3 topic name(s) left as they are: another active topic of the user has that name; rename or merge by " \
           f"hand: ids {behind_composed.pk}, {twins[0].pk}, {twins[1].pk}"
    assert left in out
    again = run()
    assert "0 of 8 topic(s)" in again and left in again


def test_a_topic_name_taken_after_the_check_is_left_and_the_batch_goes_on(user, monkeypatch):
    taken = f.StudyTopicFactory(user=user, name="가스기사")
    other = f.StudyTopicFactory(user=user, name="용기 검사")
    as_written_by_an_older_version(StudyTopic, taken.pk, name=nfd("가스기사"))
    as_written_by_an_older_version(StudyTopic, other.pk, name=nfd("용기 검사"))
    checked = normalize_texts._topic_names_taken

    def then_created_meanwhile(changed):
        kept = checked(changed)
        StudyTopic.objects.create(user=user, name="가스기사")  # as a create through the API between check and write
        return kept

    monkeypatch.setattr(normalize_texts, "_topic_names_taken", then_created_meanwhile)

    out = run()

    assert StudyTopic.objects.get(pk=taken.pk).name == nfd("가스기사")
    assert StudyTopic.objects.get(pk=other.pk).name == "용기 검사"
    assert outbox("study_topic") == {other.pk}
    assert "1 of 3 topic(s)" in out
    assert f"1 topic name(s) left as they are: another active topic of the user has that name; rename or merge by " \
           f"hand: ids {taken.pk}" in out


def test_question_subjects_and_texts_become_nfc_and_are_republished(user):
    topic = f.StudyTopicFactory(user=user)
    both = f.QuestionFactory(study_topic=topic, explanation=nfd("설명"), choices=[nfd("메탄"), "에탄"])
    as_written_by_an_older_version(Question, both.pk, subject=nfd("가스법규"), question_text=nfd("주성분은?"))
    text_only = f.QuestionFactory(study_topic=topic)
    as_written_by_an_older_version(Question, text_only.pk, question_text=nfd("용기 검사 주기는?"))
    composed = f.QuestionFactory(study_topic=topic, subject="가스법규")
    deleted = f.QuestionFactory(study_topic=topic, deleted_at=LONG_AGO)
    as_written_by_an_older_version(Question, deleted.pk, subject=nfd("가스법규"))
    too_long = f.QuestionFactory(study_topic=topic)
    as_written_by_an_older_version(Question, too_long.pk, subject="\ufb2c" * 70, question_text=nfd("주성분은?"))
    Question.objects.update(updated_at=LONG_AGO)

    out = run("--batch-size", "2")

    stored = {q.pk: q for q in Question.objects.all()}
    assert (stored[both.pk].subject, stored[both.pk].question_text) == ("가스법규", "주성분은?")
    # the choices and the explanation are stored as sent, now as then
    assert (stored[both.pk].choices, stored[both.pk].explanation) == ([nfd("메탄"), "에탄"], nfd("설명"))
    assert stored[text_only.pk].question_text == "용기 검사 주기는?"
    assert stored[deleted.pk].subject == "가스법규"
    assert (stored[too_long.pk].subject, stored[too_long.pk].question_text) == ("\ufb2c" * 70, "주성분은?")
    assert stored[composed.pk].question_text == composed.question_text
    assert set(Question.objects.values_list("updated_at", flat=True)) == {LONG_AGO}
    assert outbox("study_question") == {both.pk, text_only.pk, deleted.pk, too_long.pk}
    assert "4 of 5 question(s)" in out
    assert "1 question text(s) left as they are: NFC would not fit the column" in out


def test_document_titles_and_tags_become_nfc(user):
    titled = f.DocumentFactory(user=user)
    as_written_by_an_older_version(Document, titled.pk, title=nfd("가스 노트"), tags_text=f",{nfd('법규')},pdf,")
    # two tags that NFC makes one are kept once, as the upload and the admin keep them
    twins = f.DocumentFactory(user=user, title="노트")
    as_written_by_an_older_version(Document, twins.pk, tags_text=f",법규,{nfd('법규')},{half_composed('안전관리')},")
    untouched = f.DocumentFactory(user=user, title="가스 노트")
    # tags NFC leaves as they are stay so, even in a shape that the model's setter would not write
    as_written_by_an_older_version(Document, untouched.pk, tags_text=",법규,법규,")
    too_long = f.DocumentFactory(user=user)
    as_written_by_an_older_version(Document, too_long.pk, title="\ufb2c" * 90, tags_text=f",{nfd('법규')},")
    Document.objects.update(updated_at=LONG_AGO)

    out = run("--batch-size", "2")

    stored = {d.pk: d for d in Document.objects.all()}
    assert (stored[titled.pk].title, stored[titled.pk].tags) == ("가스 노트", ["법규", "pdf"])
    assert stored[twins.pk].tags_text == ",법규,안전관리,"
    assert (stored[untouched.pk].title, stored[untouched.pk].tags_text) == ("가스 노트", ",법규,법규,")
    assert (stored[too_long.pk].title, stored[too_long.pk].tags) == ("\ufb2c" * 90, ["법규"])
    assert set(Document.objects.values_list("updated_at", flat=True)) == {LONG_AGO}
    assert "3 of 4 document(s)" in out
    assert "1 document text(s) left as they are: NFC would not fit the column" in out
    assert not PublishOutbox.objects.exists()  # documents are not in the feed


def test_a_dry_run_counts_and_writes_nothing(user):
    session = f.StudySessionFactory(user=user)
    as_written_by_an_older_version(StudySession, session.pk, subject=nfd("가스법규"))
    card = f.MemoCardFactory(user=user)
    as_written_by_an_older_version(MemoCard, card.pk, extra={"material": nfd("가스 물성")})
    topic = f.StudyTopicFactory(user=user)
    as_written_by_an_older_version(StudyTopic, topic.pk, name=nfd("가스기사"))
    holder = f.StudyTopicFactory(user=user, name="용기 검사")
    taken = f.StudyTopicFactory(user=user)
    as_written_by_an_older_version(StudyTopic, taken.pk, name=nfd("용기 검사"))
    question = f.QuestionFactory(study_topic=holder)
    as_written_by_an_older_version(Question, question.pk, question_text=nfd("주성분은?"))
    document = f.DocumentFactory(user=user)
    as_written_by_an_older_version(Document, document.pk, title=nfd("가스 노트"), tags_text=f",{nfd('법규')},")

    out = run("--dry-run")

    assert ("dry run: would have normalised 1 of 1 study session(s), 1 of 3 topic(s), 1 of 1 question(s), "
            "1 of 1 document(s) and 1 of 1 card(s)") in out
    assert f"1 topic name(s) left as they are: another active topic of the user has that name; rename or merge by " \
           f"hand: ids {taken.pk}" in out
    assert StudySession.objects.get(pk=session.pk).subject == nfd("가스법규")
    assert MemoCard.objects.get(pk=card.pk).extra == {"material": nfd("가스 물성")}
    assert StudyTopic.objects.get(pk=topic.pk).name == nfd("가스기사")
    assert Question.objects.get(pk=question.pk).question_text == nfd("주성분은?")
    assert Document.objects.filter(pk=document.pk).values_list("title", "tags_text").get() == (
        nfd("가스 노트"), f",{nfd('법규')},")
    assert not PublishOutbox.objects.exists()


@pytest.mark.parametrize("size", ["0", "100001"])
def test_a_batch_size_out_of_range_is_refused(size):
    with pytest.raises(CommandError, match="--batch-size must be between 1 and 100000"):
        run("--batch-size", size)


def test_quiet_runs_still_name_what_is_left_to_mend(user):
    """`-v 0` (a cron job, an upgrade script) printed nothing at all, also when rows were left for the operator."""
    holder = f.StudyTopicFactory(user=user, name="가스기사")
    behind = f.StudyTopicFactory(user=user, name="가스 기사")
    as_written_by_an_older_version(StudyTopic, behind.pk, name=nfd("가스기사"))
    clean = f.StudyTopicFactory(user=user, name="용기 검사")

    quiet_with_one_left = run("-v", "0")
    left_id = behind.pk
    behind.delete()
    quiet_with_nothing_left = run("-v", "0")

    assert quiet_with_one_left == (f"1 topic name(s) left as they are: another active topic of the user has that "
                                   f"name; rename or merge by hand: ids {left_id}\n")
    assert quiet_with_nothing_left == ""
    assert StudyTopic.objects.get(pk=holder.pk).name == "가스기사"
    assert StudyTopic.objects.get(pk=clean.pk).name == "용기 검사"


def test_question_subjects_that_only_look_alike_become_one(user):
    """The API stores a subject with its white space collapsed and its invisible characters dropped now; the rows
    stored before are given that spelling (and republished)."""
    topic = f.StudyTopicFactory(user=user)
    spaced, plain = f.QuestionFactory(study_topic=topic), f.QuestionFactory(study_topic=topic, subject="Gas Safety")
    as_written_by_an_older_version(Question, spaced.pk, subject="Gas\u00a0 Safety\u200b")
    run()
    assert set(Question.objects.values_list("subject", flat=True)) == {"Gas Safety"}
    assert outbox("study_question") == {spaced.pk}
    assert plain.pk not in outbox("study_question")
