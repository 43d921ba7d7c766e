"""factory_boy factories for every study model (tests build data through these or the services)."""

import hashlib
from datetime import datetime, timedelta

import factory
from django.contrib.auth import get_user_model
from django.core.files.base import ContentFile
from django.utils import timezone

from study import models
from study.textnorm import card_dedup_hash


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        django_get_or_create = ("username",)

    username = factory.Sequence(lambda n: f"learner{n}")
    email = factory.LazyAttribute(lambda o: f"{o.username}@example.com")
    password = factory.django.Password("pw-for-tests-1")


class StudyTopicFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = models.StudyTopic

    user = factory.SubFactory(UserFactory)
    name = factory.Sequence(lambda n: f"가스기사 {n}")
    study_type = "certification"


class DocumentFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = models.Document

    user = factory.SubFactory(UserFactory)
    title = factory.Sequence(lambda n: f"노트 {n}")
    original_name = "note.txt"
    file_format = "txt"
    content_type = "text/plain"
    file = factory.LazyAttribute(lambda o: ContentFile(b"LNG is stored at -162 C.", name=o.original_name))
    file_size = 24
    sha256 = factory.LazyFunction(lambda: hashlib.sha256(b"LNG is stored at -162 C.").hexdigest())
    extract_status = "pending"
    # As the extraction writes it: a run that ended recorded when.
    extracted_at = factory.LazyAttribute(lambda o: None if o.extract_status == "pending" else timezone.now())


class TopicDocumentFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = models.TopicDocument

    topic = factory.SubFactory(StudyTopicFactory)
    user = factory.SelfAttribute("topic.user")
    document = factory.SubFactory(DocumentFactory, user=factory.SelfAttribute("..user"))


def _before(moment):
    """A minute before `moment` (a datetime or an ISO string, as tests pass them)."""
    if isinstance(moment, str):
        moment = datetime.fromisoformat(moment)
    return moment - timedelta(minutes=1)


def _owner_of(*parents: str) -> factory.Maybe:
    """`user`: the owner of the first given parent (a row points at its own owner's rows), else a new user."""
    declaration = factory.SubFactory(UserFactory)
    for parent in reversed(parents):
        declaration = factory.Maybe(parent, factory.SelfAttribute(f"{parent}.user"), declaration)
    return declaration


class StudySessionFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = models.StudySession

    study_topic = None
    user = _owner_of("study_topic")
    study_type = "certification"
    mode = "copy"
    certification = "가스기사"
    subject = "가스안전관리"


class SessionAssetFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = models.SessionAsset

    session = factory.SubFactory(StudySessionFactory)
    document = factory.SubFactory(DocumentFactory, user=factory.SelfAttribute("..session.user"))
    asset_type = "handwriting_png"
    role = "answer"


class QuestionFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = models.Question

    study_topic = factory.SubFactory(StudyTopicFactory)
    user = factory.SelfAttribute("study_topic.user")
    subject = "가스안전관리"
    question_text = factory.Sequence(lambda n: f"LNG의 주성분은 무엇인가? ({n})")
    choices = factory.LazyFunction(lambda: ["메탄", "에탄", "프로판", "부탄"])
    correct_choice = 1


class QuizSessionFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = models.QuizSession

    study_topic = factory.SubFactory(StudyTopicFactory)
    user = factory.SelfAttribute("study_topic.user")
    status = "in_progress"
    # As the quiz flow writes them (the model's lifecycle checks): an ended session has its time, a done one
    # was finalized with a summary, and a viewer's session carries the client's uuid.
    client_session_uuid = None
    source = factory.LazyAttribute(lambda o: "viewer" if o.client_session_uuid else "app")
    finished_at = factory.LazyAttribute(lambda o: None if o.status == "in_progress" else timezone.now())
    finalized_at = factory.LazyAttribute(lambda o: o.finished_at if o.status == "done" else None)
    summary = factory.LazyAttribute(lambda o: {"correct": o.correct_count, "wrong": o.wrong_count,
                                               "unsure": o.unsure_count, "skipped": o.skipped_count}
                                    if o.status == "done" else None)
    correct_count = 0
    wrong_count = 0
    unsure_count = 0
    skipped_count = 0


class QuestionAttemptFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = models.QuestionAttempt

    quiz_session = factory.SubFactory(QuizSessionFactory)
    user = factory.SelfAttribute("quiz_session.user")
    question = factory.SubFactory(
        QuestionFactory, study_topic=factory.SelfAttribute("..quiz_session.study_topic")
    )
    selected_choice = 1
    outcome = "correct"
    answered_at = factory.LazyFunction(timezone.now)


class QuestionProgressFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = models.QuestionProgress

    question = factory.SubFactory(QuestionFactory)
    user = factory.SelfAttribute("question.user")
    # As finalize and review complete write them: a pattern comes from an answer, an answer and a pattern carry
    # their times, and a row on the SR ladder entered it through review complete (reviewed before its last answer,
    # so a missed question stays pending review as before).
    pattern_state = None
    last_outcome = factory.LazyAttribute(
        lambda o: None if o.pattern_state is None else "correct" if o.pattern_state in ("stable", "recovered")
        else "wrong"
    )
    last_attempted_at = factory.LazyAttribute(lambda o: timezone.now() if o.last_outcome else None)
    pattern_updated_at = factory.LazyAttribute(lambda o: timezone.now() if o.pattern_state else None)
    review_stage = 0
    due_at = None
    last_reviewed_at = factory.LazyAttribute(
        lambda o: None if o.review_stage == 0 and o.due_at is None
        else _before(o.last_attempted_at) if o.last_attempted_at else timezone.now()
    )


class MemoCardFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = models.MemoCard

    source_question = None
    study_topic = None
    user = _owner_of("source_question", "study_topic")
    source_kind = "manual"
    format = "qa"
    cue = factory.Sequence(lambda n: f"LNG 저장 온도는? ({n})")
    fact = factory.Sequence(lambda n: f"영하 162도 ({n})")
    needs_review = False
    # As study.services.cards writes them: an approved card (and a flagged one, approved before) was reviewed, a
    # flag has its time, a view is counted with its time.
    flagged_by = ""
    flagged_at = factory.LazyAttribute(lambda o: timezone.now() if o.flagged_by else None)
    reviewed_at = factory.LazyAttribute(lambda o: timezone.now() if o.flagged_by or not o.needs_review else None)
    view_count = 0
    last_viewed_at = factory.LazyAttribute(lambda o: timezone.now() if o.view_count else None)
    dedup_hash = factory.LazyAttribute(
        lambda o: card_dedup_hash(
            source_question_id=o.source_question.pk if o.source_question else None, card_format=o.format, fact=o.fact
        )
    )


class CardEvidenceFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = models.CardEvidence

    card = factory.SubFactory(MemoCardFactory)
    source_type = "question"
    source_id = 1
    snippet = "LNG는 영하 162도에서 액화된다."


class CardProgressFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = models.CardProgress

    card = factory.SubFactory(MemoCardFactory)
    user = factory.SelfAttribute("card.user")
    # Made by a rating, as card_rate writes it: a first correct recall (known: stage 0, no due date) by default.
    last_outcome = "correct"
    last_reviewed_at = factory.LazyFunction(timezone.now)
