"""Every invariant that lives in the database rejects what it must (on PostgreSQL)."""

import re

import pytest
from django.db import IntegrityError, transaction
from django.utils import timezone

from publishing.models import Published, PublishOutbox
from study.models import CardProgress, MemoCard, Question, QuestionProgress, QuizSession, SessionAsset, StudyTopic
from study.tests.factories import (
    CardProgressFactory,
    DocumentFactory,
    MemoCardFactory,
    QuestionFactory,
    QuestionProgressFactory,
    QuizSessionFactory,
    SessionAssetFactory,
    StudySessionFactory,
    StudyTopicFactory,
)

pytestmark = pytest.mark.django_db


def rejects(constraint: str, make) -> None:
    """`make` fails on the named constraint (a regular expression)."""
    with pytest.raises(IntegrityError) as info, transaction.atomic():
        make()
    assert re.search(constraint, str(info.value)), str(info.value)


@pytest.mark.postgresql
def test_topic_name_unique_among_active_topics_only(user):
    topic = StudyTopicFactory(user=user, name="가스기사")
    rejects("study_studytopic_name_active_uniq", lambda: StudyTopic.objects.create(user=user, name="가스기사"))
    topic.deleted_at = timezone.now()
    topic.save(update_fields=["deleted_at"])
    StudyTopic.objects.create(user=user, name="가스기사")  # the deleted one no longer counts
    StudyTopicFactory(name="가스기사")  # another user may use the name


@pytest.mark.postgresql
def test_one_in_progress_quiz_per_user_and_topic(user):
    first = QuizSessionFactory(study_topic=StudyTopicFactory(user=user))
    rejects(
        "study_quizsession_one_in_progress_uniq",
        lambda: QuizSession.objects.create(user=user, study_topic=first.study_topic, status="in_progress"),
    )
    QuizSessionFactory(study_topic=first.study_topic, status="done")
    QuizSession.objects.filter(pk=first.pk).update(status="abandoned", finished_at=timezone.now())
    QuizSession.objects.create(user=user, study_topic=first.study_topic, status="in_progress")


@pytest.mark.postgresql
def test_client_session_uuid_unique_per_topic_where_set(user):
    topic = StudyTopicFactory(user=user)
    QuizSessionFactory(study_topic=topic, status="done", client_session_uuid="u-1")
    rejects(
        "study_quizsession_client_uuid_uniq",
        lambda: QuizSessionFactory(study_topic=topic, status="done", client_session_uuid="u-1"),
    )
    QuizSessionFactory(study_topic=StudyTopicFactory(user=user), status="done", client_session_uuid="u-1")
    QuizSessionFactory(study_topic=topic, status="done", client_session_uuid=None)
    QuizSessionFactory(study_topic=topic, status="done", client_session_uuid=None)


@pytest.mark.parametrize("role", [None, "answer"])
def test_session_asset_unique_with_null_role_colliding(role):
    asset = SessionAssetFactory(role=role)
    rejects(
        "study_sessionasset_link_uniq",
        lambda: SessionAsset.objects.create(
            session=asset.session, document=asset.document, asset_type=asset.asset_type, role=role
        ),
    )


def test_session_asset_other_role_or_type_is_a_new_link():
    asset = SessionAssetFactory(role=None, asset_type="reference")
    SessionAsset.objects.create(session=asset.session, document=asset.document, asset_type="reference", role="prompt")
    SessionAsset.objects.create(session=asset.session, document=asset.document, asset_type="transcript", role=None)


@pytest.mark.postgresql
def test_card_dedup_hash_unique_per_user_among_live_cards(user):
    card = MemoCardFactory(user=user, dedup_hash="a" * 64)
    rejects(
        "study_memocard_dedup_uniq",
        lambda: MemoCard.objects.create(user=user, cue="c", fact="f", dedup_hash="a" * 64,
                                        reviewed_at=timezone.now()),
    )
    MemoCardFactory(dedup_hash="a" * 64)  # another user
    card.deleted_at = timezone.now()
    card.save(update_fields=["deleted_at"])
    MemoCard.objects.create(user=user, cue="c", fact="f", dedup_hash="a" * 64, reviewed_at=timezone.now())


@pytest.mark.postgresql
def test_progress_unique_per_user_and_question_or_card():
    progress = QuestionProgressFactory()
    rejects(
        "study_questionprogress_user_question_uniq",
        lambda: QuestionProgress.objects.create(user=progress.user, question=progress.question),
    )
    card_progress = CardProgressFactory()
    rejects(
        "study_cardprogress_user_card_uniq",
        lambda: CardProgress.objects.create(user=card_progress.user, card=card_progress.card, last_outcome="wrong",
                                            last_reviewed_at=timezone.now()),
    )


@pytest.mark.parametrize("stage", [-1, 5])
def test_review_stage_range(stage):
    with pytest.raises(IntegrityError), transaction.atomic():
        QuestionProgressFactory(review_stage=stage)
    with pytest.raises(IntegrityError), transaction.atomic():
        CardProgressFactory(review_stage=stage)


@pytest.mark.parametrize("factory", [QuestionProgressFactory, CardProgressFactory])
def test_a_mastered_row_is_never_due(factory):
    table = "questionprogress" if factory is QuestionProgressFactory else "cardprogress"
    name = f"study_{table}_mastered_chk"
    factory(review_stage=4, due_at=None)
    factory(review_stage=3, due_at=timezone.now())
    rejects(name, lambda: factory(review_stage=4, due_at=timezone.now()))


def test_flagged_by_is_nobody_the_learner_or_a_reviewer():
    for who in ("", "user", "reviewer"):
        MemoCardFactory(flagged_by=who, needs_review=bool(who))
    rejects("study_memocard_flagged_by_chk", lambda: MemoCardFactory(flagged_by="robot"))


def test_a_live_published_row_has_a_payload(user):
    rejects("publishing_published_payload_chk", lambda: Published.objects.create(
        pub_id="p-live-without-payload", kind="study_topic", source_id=1, user=user, payload=None, deleted=False,
        seq=1, item="{}",
    ))


def test_correct_choice_is_one_based():
    rejects("study_question_correct_choice_chk", lambda: QuestionFactory(correct_choice=0))


def test_correct_choice_is_one_of_the_choices():
    question = QuestionFactory(choices=["a", "b", "c"], correct_choice=3)
    chk = "study_question_correct_in_choices_chk"
    rejects(chk, lambda: QuestionFactory(choices=["a", "b"], correct_choice=3))
    rejects(chk, lambda: Question.objects.filter(pk=question.pk).update(choices=["a", "b"]))


def test_a_question_has_two_to_ten_choices():
    chk = "study_question_choice_count_chk"
    QuestionFactory(choices=["a", "b"], correct_choice=1)
    QuestionFactory(choices=[str(n) for n in range(10)], correct_choice=10)
    rejects(chk, lambda: QuestionFactory(choices=["a"], correct_choice=1))
    rejects(chk, lambda: QuestionFactory(choices=[str(n) for n in range(11)], correct_choice=1))
    # Not a list: 0 choices, so the answer is beyond them too; which of the two checks a database names first
    # is its own choice (PostgreSQL: by name).
    either = "study_question_(choice_count|correct_in_choices)_chk"
    rejects(either, lambda: QuestionFactory(choices={"1": "a", "2": "b"}, correct_choice=1))
    rejects(either, lambda: QuestionFactory(choices="ab", correct_choice=1))


def test_a_quiz_session_ends_with_a_time_and_only_then():
    chk = "study_quizsession_finished_at_chk"
    QuizSessionFactory(status="abandoned")
    rejects(chk, lambda: QuizSessionFactory(status="in_progress", finished_at=timezone.now()))
    rejects(chk, lambda: QuizSessionFactory(status="abandoned", finished_at=None))
    rejects(chk, lambda: QuizSessionFactory(status="done", finished_at=None, finalized_at=None, summary=None))
    ended = QuizSessionFactory(status="abandoned")
    rejects(chk, lambda: QuizSession.objects.filter(pk=ended.pk).update(status="in_progress"))


def test_only_a_done_session_is_finalized_and_it_has_a_summary():
    chk = "study_quizsession_finalized_chk"
    QuizSessionFactory(status="done", finalized_at=None, summary=None)  # a viewer's, before its finalize
    rejects(chk, lambda: QuizSessionFactory(status="abandoned", finalized_at=timezone.now(), summary={}))
    rejects(chk, lambda: QuizSessionFactory(status="done", summary=None))
    rejects(chk, lambda: QuizSessionFactory(status="done", finalized_at=None))
    rejects(chk, lambda: QuizSessionFactory(status="in_progress", summary={"correct": 0}))
    done = QuizSessionFactory(status="done")
    rejects(chk, lambda: QuizSession.objects.filter(pk=done.pk).update(status="abandoned"))


@pytest.mark.parametrize("field", ["correct_count", "wrong_count", "unsure_count", "skipped_count"])
def test_a_session_has_counts_once_finalized_only(field):
    QuizSessionFactory(status="done", **{field: 3})
    rejects("study_quizsession_counts_chk", lambda: QuizSessionFactory(status="abandoned", **{field: 1}))
    rejects("study_quizsession_counts_chk", lambda: QuizSessionFactory(status="in_progress", **{field: 1}))


def test_a_viewer_session_and_only_one_carries_the_clients_uuid():
    chk = "study_quizsession_client_uuid_chk"
    QuizSessionFactory(status="done", source="viewer", client_session_uuid="u-1")
    rejects(chk, lambda: QuizSessionFactory(status="done", source="viewer", client_session_uuid=None))
    rejects(chk, lambda: QuizSessionFactory(status="done", source="viewer", client_session_uuid=""))
    rejects(chk, lambda: QuizSessionFactory(status="done", source="app", client_session_uuid="u-2"))


def test_a_quiz_asks_at_least_one_question_per_subject():
    QuizSessionFactory(target_per_subject=1)
    rejects("study_quizsession_target_chk", lambda: QuizSessionFactory(target_per_subject=0))


def test_a_flagged_card_has_who_and_when_and_waits_for_review():
    chk = "study_memocard_flagged_chk"
    MemoCardFactory(needs_review=True, flagged_by="user")
    MemoCardFactory(needs_review=True, flagged_by="")  # a candidate, never approved
    rejects(chk, lambda: MemoCardFactory(needs_review=True, flagged_by="reviewer", flagged_at=None))
    rejects(chk, lambda: MemoCardFactory(needs_review=True, flagged_by="", flagged_at=timezone.now()))
    rejects(chk, lambda: MemoCardFactory(needs_review=False, flagged_by="user"))
    flagged = MemoCardFactory(needs_review=True, flagged_by="user")
    rejects(chk, lambda: MemoCard.objects.filter(pk=flagged.pk).update(needs_review=False))  # approved, flag kept


def test_an_approved_card_was_reviewed():
    chk = "study_memocard_reviewed_chk"
    MemoCardFactory(needs_review=False)
    MemoCardFactory(needs_review=True, reviewed_at=None)
    rejects(chk, lambda: MemoCardFactory(needs_review=False, reviewed_at=None))
    pending = MemoCardFactory(needs_review=True)
    rejects(chk, lambda: MemoCard.objects.filter(pk=pending.pk).update(needs_review=False))


def test_a_card_view_is_counted_with_its_time():
    chk = "study_memocard_viewed_chk"
    MemoCardFactory(view_count=2)
    MemoCardFactory(view_count=0)
    rejects(chk, lambda: MemoCardFactory(view_count=1, last_viewed_at=None))
    rejects(chk, lambda: MemoCardFactory(view_count=0, last_viewed_at=timezone.now()))


@pytest.mark.parametrize("field", ["cue", "fact"])
def test_a_card_has_both_sides(field):
    MemoCardFactory(**{field: "x"})
    rejects("study_memocard_text_chk", lambda: MemoCardFactory(**{field: ""}))


def test_a_card_dedup_hash_is_a_sha256():
    MemoCardFactory(dedup_hash="f" * 64)
    rejects("study_memocard_dedup_hash_chk", lambda: MemoCardFactory(dedup_hash="f" * 63))
    rejects("study_memocard_dedup_hash_chk", lambda: MemoCardFactory(dedup_hash=""))


def test_a_document_hash_is_a_sha256():
    DocumentFactory(sha256="0" * 64)
    rejects("study_document_sha256_chk", lambda: DocumentFactory(sha256="0" * 40))


@pytest.mark.parametrize("status", ["done", "failed", "skipped"])
def test_an_ended_extraction_has_its_time(status):
    chk = "study_document_extracted_at_chk"
    DocumentFactory(extract_status=status)
    DocumentFactory(extract_status="pending", extracted_at=None)
    DocumentFactory(extract_status="pending", extracted_at=timezone.now())  # retried: the last run's time stays
    rejects(chk, lambda: DocumentFactory(extract_status=status, extracted_at=None))


def test_a_question_answer_is_stored_with_its_time():
    chk = "study_questionprogress_attempted_chk"
    QuestionProgressFactory(last_outcome="wrong")
    QuestionProgressFactory(last_outcome=None, last_attempted_at=None)
    rejects(chk, lambda: QuestionProgressFactory(last_outcome="wrong", last_attempted_at=None))
    rejects(chk, lambda: QuestionProgressFactory(last_outcome=None, last_attempted_at=timezone.now()))


def test_a_question_pattern_comes_from_an_answer_with_its_time():
    chk = "study_questionprogress_pattern_updated_chk"
    QuestionProgressFactory(pattern_state="regressed")
    rejects(chk, lambda: QuestionProgressFactory(pattern_state="stable", pattern_updated_at=None))
    rejects(chk, lambda: QuestionProgressFactory(pattern_state=None, pattern_updated_at=timezone.now()))
    rejects(chk, lambda: QuestionProgressFactory(pattern_state="stable", last_outcome=None, last_attempted_at=None))


def test_a_question_on_the_ladder_entered_it_through_review_complete():
    chk = "study_questionprogress_reviewed_chk"
    QuestionProgressFactory(review_stage=0, due_at=None, last_reviewed_at=None)
    QuestionProgressFactory(review_stage=2, due_at=timezone.now())
    QuestionProgressFactory(review_stage=4, due_at=None)
    rejects(chk, lambda: QuestionProgressFactory(review_stage=0, due_at=timezone.now(), last_reviewed_at=None))
    rejects(chk, lambda: QuestionProgressFactory(review_stage=4, due_at=None, last_reviewed_at=None))


def test_card_progress_is_made_by_a_rating():
    chk = "study_cardprogress_rated_chk"
    for outcome in ("correct", "unsure", "wrong"):
        CardProgressFactory(last_outcome=outcome, due_at=timezone.now())
    rejects(chk, lambda: CardProgressFactory(last_outcome=None))
    rejects(chk, lambda: CardProgressFactory(last_outcome="skipped"))
    rejects(chk, lambda: CardProgressFactory(last_reviewed_at=None))


def test_a_published_seq_is_past_the_feeds_start(user):
    Published.objects.create(pub_id="p1", kind="study_topic", source_id=1, user=user, payload={}, seq=1, item="{}")
    rejects(
        "publishing_published_seq_chk",
        lambda: Published.objects.create(pub_id="p2", kind="study_topic", source_id=2, user=user, payload={}, seq=0,
                                         item="{}"),
    )


@pytest.mark.parametrize("blank", [{"question_text": ""}, {"subject": ""}])
def test_a_question_asks_something_under_a_subject(blank):
    QuestionFactory(question_text="LNG의 주성분은?", subject="가스 일반")
    rejects("study_question_text_chk", lambda: QuestionFactory(**blank))


def test_an_explanation_says_something(user):
    from study.models import QuestionExplanation

    question, other = QuestionFactory.create_batch(2)
    QuestionExplanation.objects.create(user=question.user, question=question, text="정답: 1번")
    rejects("study_questionexplanation_text_chk",
            lambda: QuestionExplanation.objects.create(user=other.user, question=other, text=""))


def test_a_skipped_analysis_and_only_it_gives_a_reason():
    from study.models import SessionAnalysis

    chk = "study_sessionanalysis_reason_chk"

    def analysis(**fields):
        session = QuizSessionFactory(status="done")
        return SessionAnalysis.objects.create(user=session.user, quiz_session=session, **fields)

    analysis(status="skipped", reason="insufficient_data")
    analysis(status="done", reason="")
    analysis()  # pending
    rejects(chk, lambda: analysis(status="skipped", reason=""))
    rejects(chk, lambda: analysis(status="done", reason="insufficient_data"))
    rejects(chk, lambda: analysis(status="pending", reason="insufficient_data"))


@pytest.mark.parametrize(
    ("factory", "field", "constraint"),
    [
        (StudySessionFactory, "mode", "study_studysession_mode_chk"),
        (StudySessionFactory, "study_type", "study_studysession_study_type_chk"),
        (StudySessionFactory, "review_state", "study_studysession_review_state_chk"),
        (QuizSessionFactory, "status", "study_quizsession_status_chk"),
        (MemoCardFactory, "format", "study_memocard_format_chk"),
        (MemoCardFactory, "source_kind", "study_memocard_source_kind_chk"),
        (DocumentFactory, "extract_status", "study_document_extract_status_chk"),
        (SessionAssetFactory, "asset_type", "study_sessionasset_asset_type_chk"),
        (SessionAssetFactory, "role", "study_sessionasset_role_chk"),
    ],
)
def test_enum_checks_reject_unknown_values(factory, field, constraint):
    rejects(constraint, lambda: factory(**{field: "bogus"}))


@pytest.mark.postgresql
def test_published_unique_per_kind_and_source_and_pub_id(user):
    Published.objects.create(pub_id="p1", kind="study_topic", source_id=1, user=user, payload={}, seq=1, item="{}")
    rejects(
        "publishing_published_kind_source_uniq",
        lambda: Published.objects.create(pub_id="p2", kind="study_topic", source_id=1, user=user, item="{}", seq=2,
                                         payload={}),
    )
    rejects(
        "pub_id",
        lambda: Published.objects.create(pub_id="p1", kind="study_card", source_id=1, user=user, item="{}", seq=3,
                                         payload={}),
    )
    rejects(
        "publishing_published_kind_chk",
        lambda: Published.objects.create(pub_id="p4", kind="nope", source_id=1, user=user, item="{}", seq=4,
                                         payload={}),
    )
    rejects(
        "publishing_published_tombstone_chk",
        lambda: Published.objects.create(
            pub_id="p5", kind="study_card", source_id=5, user=user, seq=5, deleted=True, payload={"x": 1}, item="{}"
        ),
    )
    rejects(
        "publishing_published_item_chk",
        lambda: Published.objects.create(pub_id="p6", kind="study_card", source_id=6, user=user, seq=6, payload={}),
    )
    rejects("publishing_publishoutbox_kind_chk", lambda: PublishOutbox.objects.create(kind="nope", source_id=1))


@pytest.mark.postgresql
@pytest.mark.django_db(transaction=True)
def test_checks_added_later_do_not_fail_the_migration_on_older_rows_but_hold_for_new_ones(user):
    """Rows the old admin form or a race could write (an answer beyond the choices, a mastered row still due)
    must not stop the deploy: on PostgreSQL these checks are added NOT VALID and hold for every later write."""
    from django.db import connection
    from django.db.migrations.executor import MigrationExecutor

    question = QuestionFactory(choices=["a", "b", "c"], correct_choice=3)
    progress = CardProgressFactory(review_stage=3, due_at=timezone.now())
    card = MemoCardFactory()
    executor = MigrationExecutor(connection)
    latest = executor.loader.graph.leaf_nodes()
    try:
        executor.migrate([("study", "0003_cardevidence_truncate_trigger")])
        with connection.cursor() as cursor:
            cursor.execute("UPDATE study_question SET choices = '[\"a\"]' WHERE id = %s", [question.pk])
            cursor.execute("UPDATE study_cardprogress SET review_stage = 4 WHERE id = %s", [progress.pk])
            cursor.execute("UPDATE study_memocard SET reviewed_at = NULL WHERE id = %s", [card.pk])  # study/0016
    finally:
        executor = MigrationExecutor(connection)
        executor.migrate(latest)
    rejects("study_question_correct_in_choices_chk", lambda: QuestionFactory(choices=["a", "b"], correct_choice=3))
    rejects("study_question_choice_count_chk", lambda: QuestionFactory(choices=["a"], correct_choice=1))
    rejects("study_cardprogress_mastered_chk", lambda: CardProgressFactory(review_stage=4, due_at=timezone.now()))
    rejects("study_memocard_reviewed_chk", lambda: MemoCardFactory(reviewed_at=None))
    Question.objects.filter(pk=question.pk).update(choices=["a", "b", "c"])  # repaired rows pass
