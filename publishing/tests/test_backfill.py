"""manage.py backfill_publish: batches, summary, dry run, --user, idempotence (seq left alone)."""

from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import timezone

from publishing.models import Published, PublishKind, PublishOutbox
from study.tests.factories import (
    CardProgressFactory,
    MemoCardFactory,
    QuestionFactory,
    StudyTopicFactory,
    UserFactory,
)

pytestmark = pytest.mark.django_db


def backfill(*args: str) -> str:
    out = StringIO()
    call_command("backfill_publish", *args, stdout=out)
    return out.getvalue()


@pytest.fixture
def data():
    user = UserFactory()
    topic = StudyTopicFactory(user=user)
    StudyTopicFactory(user=user, deleted_at=timezone.now())  # never published: nothing to retract
    questions = QuestionFactory.create_batch(5, study_topic=topic)
    live = MemoCardFactory.create_batch(3, user=user, study_topic=topic)
    MemoCardFactory(user=user, needs_review=True)
    progress = [CardProgressFactory(card=card, due_at=None) for card in live]
    return {"user": user, "topic": topic, "questions": questions, "cards": live, "progress": progress}


def test_backfill_all_publishes_every_kind_in_batches_with_plain_progress_lines(data):
    output = backfill("--kind", "all", "--batch-size", "2")
    assert Published.objects.filter(kind=PublishKind.STUDY_TOPIC).count() == 1
    assert Published.objects.filter(kind=PublishKind.STUDY_QUESTION).count() == 5
    assert Published.objects.filter(kind=PublishKind.STUDY_CARD).count() == 3
    progress_rows = Published.objects.filter(kind=PublishKind.STUDY_CARD_PROGRESS)
    assert progress_rows.count() == 3 and all(r.payload["due_at"] is None for r in progress_rows)
    assert "study_question: 2/5 rows" in output and "study_question: 5/5 rows" in output
    assert output.strip().endswith("published 12, tombstoned 0, unchanged 2")
    assert not PublishOutbox.objects.exists()


def test_second_run_changes_nothing_and_keeps_seq(data):
    backfill("--kind", "all")
    before = dict(Published.objects.values_list("pub_id", "seq"))
    output = backfill("--kind", "all", "--batch-size", "3")
    assert output.strip().endswith("published 0, tombstoned 0, unchanged 14")
    assert dict(Published.objects.values_list("pub_id", "seq")) == before


def test_backfill_tombstones_what_changed_since(data):
    backfill("--kind", "all")
    card = data["cards"][0]
    card.needs_review = True
    card.save()
    output = backfill("--kind", "study_card")
    assert output.strip().endswith("published 0, tombstoned 1, unchanged 3")
    assert Published.objects.get(kind=PublishKind.STUDY_CARD, source_id=card.id).deleted


def test_dry_run_writes_nothing(data):
    output = backfill("--kind", "study_question", "--dry-run")
    assert "would have published 6" in output  # 5 questions and the topic they refer to
    assert not Published.objects.exists()


def summary(output: str) -> str:
    return output.strip().splitlines()[-1].removeprefix("dry run: would have ")


@pytest.mark.parametrize("kind", ["all", "study_question", "study_card", "study_card_progress"])
def test_dry_run_counts_what_the_real_run_writes(data, kind):
    # Rows referenced from many batches and kinds: the live topic from every question, card and progress batch,
    # a deleted topic never published (written once, as a tombstone, when a question refers to it), the
    # questions the machine-made cards come from.
    gone = StudyTopicFactory(user=data["user"], deleted_at=timezone.now())
    QuestionFactory.create_batch(3, study_topic=gone)
    for question in data["questions"][:3]:
        card = MemoCardFactory(user=data["user"], source_question=question, source_kind="question")
        CardProgressFactory(card=card, due_at=None)

    dry = summary(backfill("--kind", kind, "--batch-size", "2", "--dry-run"))
    assert not Published.objects.exists()
    real = summary(backfill("--kind", kind, "--batch-size", "2"))
    assert dry == real
    published, tombstoned = (int(part.split()[1]) for part in real.split(", ")[:2])
    assert Published.objects.count() == published + tombstoned


def test_single_kind_allocates_referenced_rows(data):
    backfill("--kind", "study_card_progress")
    progress_row = Published.objects.get(kind=PublishKind.STUDY_CARD_PROGRESS, source_id=data["progress"][0].id)
    card_row = Published.objects.get(kind=PublishKind.STUDY_CARD, source_id=data["cards"][0].id)
    assert progress_row.payload["card_pub_id"] == card_row.pub_id
    assert Published.objects.filter(kind=PublishKind.STUDY_QUESTION).count() == 0


def test_rows_of_a_user_deleted_while_publishing_was_off_are_tombstoned(data, settings):
    backfill("--kind", "all")
    settings.STUDY_PUBLISH_ENABLED = False
    data["user"].delete()  # the deletion records nothing: its rows stay live, detached from any user
    live = Published.objects.filter(deleted=False)
    assert live.count() == 12 and not live.filter(user__isnull=False).exists()
    top_seq = Published.objects.order_by("-seq").values_list("seq", flat=True).first()
    settings.STUDY_PUBLISH_ENABLED = True

    assert backfill("--kind", "all", "--dry-run").strip().endswith("would have published 0, tombstoned 12, unchanged 0")
    assert live.count() == 12
    assert backfill("--kind", "all", "--batch-size", "5").strip().endswith("published 0, tombstoned 12, unchanged 0")
    assert not live.exists()
    assert not Published.objects.filter(deleted=True, seq__lte=top_seq).exists()  # fresh seqs: viewers see them
    assert not Published.objects.exclude(payload=None).exists()
    assert backfill("--kind", "all").strip().endswith("published 0, tombstoned 0, unchanged 0")  # nothing left


def test_user_filter_leaves_rows_of_deleted_users_alone(data, settings):
    backfill("--kind", "study_topic")
    settings.STUDY_PUBLISH_ENABLED = False
    data["user"].delete()
    backfill("--kind", "study_topic", "--user", str(UserFactory().pk))
    assert Published.objects.get(kind=PublishKind.STUDY_TOPIC).deleted is False


def test_user_filter(data):
    other_card = MemoCardFactory()
    backfill("--kind", "study_card", "--user", str(other_card.user_id))
    assert list(Published.objects.values_list("source_id", flat=True)) == [other_card.id]


def test_bad_kind_is_refused():
    with pytest.raises(CommandError):
        call_command("backfill_publish", "--kind", "nope")


def test_query_count_per_batch_is_bounded(data, django_assert_max_num_queries):
    QuestionFactory.create_batch(40, study_topic=data["topic"])
    # count + per batch (ids, savepoint pair, lock, existing, sources, refs, max seq, upsert) + final empty batch
    # + the rows of gone sources (none)
    with django_assert_max_num_queries(1 + 2 * 11 + 1 + 1):
        backfill("--kind", "study_question", "--batch-size", "25")
    assert Published.objects.filter(kind=PublishKind.STUDY_QUESTION).count() == 45


class Terminal(StringIO):
    def isatty(self) -> bool:
        return True


def test_terminal_gets_a_progress_bar_with_rate(data):
    out = Terminal()
    call_command("backfill_publish", "--kind", "study_question", stdout=out)
    text = out.getvalue()
    assert "study_question" in text and "5/5" in text and "rows/s" in text
    assert "5/5 rows (" not in text  # no plain progress lines on a terminal


def test_verbosity_0_prints_nothing_even_on_a_terminal(data):
    out = Terminal()
    call_command("backfill_publish", "--kind", "all", "--batch-size", "2", "-v", "0", stdout=out)
    assert out.getvalue() == ""
    assert Published.objects.filter(kind=PublishKind.STUDY_QUESTION).count() == 5
    # a dry run's counts are what it is run for
    assert backfill("--kind", "all", "--dry-run", "-v", "0").strip() == (
        "dry run: would have published 0, tombstoned 0, unchanged 14"
    )


@pytest.mark.parametrize(
    "args", [("--batch-size", "0"), ("--batch-size", "99999999999999999999"), ("--user", "999999999")]
)
def test_bad_arguments_are_a_command_error(args):
    from django.core.management.base import CommandError

    with pytest.raises(CommandError):
        backfill("--kind", "all", *args)
