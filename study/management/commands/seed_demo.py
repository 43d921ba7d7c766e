"""Seed a realistic demo: a 가스기사 topic with questions, documents, sessions and quiz history,
machine-made cards waiting for review, and a JLPT N3 kanji topic. Idempotent, and all or nothing."""

import io
import random

from django.contrib.auth import get_user_model
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management.base import BaseCommand, CommandError
from django.db import DatabaseError, transaction
from django.db.transaction import TransactionManagementError
from PIL import Image, ImageDraw

from study import scheduling
from study.demo import content
from study.demo.questions import demo_questions
from study.models import Document, MemoCard, Question, QuestionAttempt, StudyTopic
from study.models.documents import ExtractStatus
from study.services.cards import card_create, card_rate, cards_approve_for_question
from study.services.documents import document_upload
from study.services.explanations import question_explain
from study.services.extraction import document_extract
from study.services.progress import question_review_complete
from study.services.questions import questions_import
from study.services.quizzes import quiz_attempt_record, quiz_session_start
from study.services.sessions import session_asset_add, session_create, session_snapshot_create
from study.services.topics import topic_create
from studyserver.env import env_str
from studyserver.errors import ApiError

CERT_TOPIC = "가스기사 필기"
LANG_TOPIC = "JLPT N3 한자"


def _png(strokes: int, seed: int) -> bytes:
    rng = random.Random(seed)
    image = Image.new("RGB", (320, 320), "white")
    draw = ImageDraw.Draw(image)
    for _ in range(strokes):
        draw.line([(rng.randint(20, 300), rng.randint(20, 300)) for _ in range(3)], fill="black", width=6)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


class Command(BaseCommand):
    help = "Create demo data for one user (default: the DEMO_ADMIN_USER, 'admin'). Safe to run twice."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--user", default=None,
                            help="username that owns the demo data (default: DEMO_ADMIN_USER, else admin)")

    def handle(self, *args, **options) -> None:
        username = options["user"] or env_str("DEMO_ADMIN_USER", "admin")
        user = get_user_model().objects.filter(username=username).first()
        if user is None:
            raise CommandError(f"user {username!r} does not exist (run ensure_admin first)")
        if StudyTopic.objects.live().filter(user=user, name=CERT_TOPIC).exists():
            self.stdout.write(f"demo data for {username!r} already present; nothing to do")
            return
        self.rng = random.Random(2024)
        self.stored_files: list[str] = []
        try:
            # One transaction: a failure at any step leaves nothing behind, and the tasks the services send on
            # commit (extraction, explanations, analyses, the publish drain) are sent only when it all committed.
            with transaction.atomic():
                topic = self._certification(user)
                self._quiz_history(user, topic)
                self._workers_part(user)
                self._review_queue(user, topic)
                self._language(user)
        except BaseException as exc:
            self._delete_files_of_rows_not_stored()
            if isinstance(exc, ApiError):  # a rule a service enforces, e.g. a topic name already taken
                raise CommandError(f"demo data not created, nothing was written: {exc.detail}") from exc
            raise
        pending = MemoCard.objects.live().filter(user=user, needs_review=True).count()
        self.stdout.write(self.style.SUCCESS(
            f"demo data for {username!r}: {Question.objects.filter(user=user).count()} questions, "
            f"{MemoCard.objects.filter(user=user).count()} cards ({pending} waiting for review)"
        ))

    def _delete_files_of_rows_not_stored(self) -> None:
        """After a failure: the files whose documents were rolled back would be orphans. An interrupt (Ctrl-C) can
        also land in the COMMIT itself or in a task sent after it, when the rows are stored: their files stay.
        When the database cannot be asked, every file stays (`sweep_orphan_files` removes orphans later; a deleted
        file of a stored document would be lost)."""
        try:
            stored = set(Document.objects.filter(file__in=self.stored_files).values_list("file", flat=True))
        except (DatabaseError, TransactionManagementError):  # the connection went with the interrupt
            self.stderr.write("seed_demo: could not tell which files were committed; all of them are kept")
            return
        for name in self.stored_files:
            if name not in stored:
                default_storage.delete(name)

    def _certification(self, user) -> StudyTopic:
        topic = topic_create(user=user, name=CERT_TOPIC, study_type="certification",
                             description="한국가스안전공사 가스기사 필기 대비")
        builders = {
            "폭발범위 정리.md": content.explosion_limits_text,
            "용기 도색 기준.txt": content.cylinder_colours_text,
            "가스 물성표.md": content.properties_text,
        }
        documents = []
        for name, tags in content.DOCUMENTS:
            upload = SimpleUploadedFile(name, builders[name]().encode("utf-8"), content_type="text/plain")
            document = document_upload(user=user, upload=upload, title=name.rsplit(".", 1)[0], tags=tags,
                                       study_topic_id=topic.id)
            self.stored_files.append(document.file.name)
            documents.append(document)
        questions_import(user=user, topic=topic, rows=demo_questions())

        for i, (subject, text) in enumerate([("연소공학", "폭발범위와 위험도"), ("가스안전관리", "용기 도색")]):
            session = session_create(user=user, data={
                "study_type": "certification", "certification": "가스기사", "subject": subject, "topic": text,
                "mode": "copy" if i == 0 else "blank-repeat", "source_text": text, "study_topic_id": topic.id,
                "review_state": "learning" if i == 0 else "weak",
            })
            session_asset_add(session=session, document_id=documents[i].id, asset_type="reference",
                              role="reference")
            upload = SimpleUploadedFile(f"page-{i + 1}.png", _png(8, i), content_type="image/png")
            self.stored_files.append(session_snapshot_create(session=session, upload=upload).document.file.name)
        return topic

    def _quiz_history(self, user, topic: StudyTopic) -> None:
        """Three quiz sessions so progress, pattern states and the review queue exist."""
        for round_no, (wrong_only, accuracy) in enumerate([(False, 0.55), (True, 0.4), (True, 0.6)]):
            session = quiz_session_start(user=user, study_topic_id=topic.id, target_per_subject=8,
                                         wrong_only=wrong_only)
            for qid in session.question_ids:
                question = Question.objects.get(pk=qid)
                roll = self.rng.random()
                if roll < accuracy:
                    answer = {"selected_choice": question.correct_choice}
                elif roll < accuracy + 0.1:
                    answer = {"is_unsure": True}
                else:
                    wrong = [c for c in range(1, len(question.choices) + 1) if c != question.correct_choice]
                    answer = {"selected_choice": self.rng.choice(wrong)}
                quiz_attempt_record(user=user, quiz_session_id=session.id, question_id=qid, **answer)
            if round_no == 0:
                for qid in session.question_ids[:5]:
                    question_review_complete(user=user, question_id=qid)

    def _workers_part(self, user) -> None:
        """Extract the documents and explain the missed questions (which makes their cards) now, as the tasks
        sent on commit would: the review queue step needs those cards inside this transaction, whether or not
        a worker runs. The tasks then find the work done and change nothing."""
        pending = Document.objects.filter(user=user, extract_status=ExtractStatus.PENDING).order_by("id")
        for document_id in pending.values_list("id", flat=True):
            document_extract(document_id=document_id)
        missed = QuestionAttempt.objects.filter(user=user, outcome__in=scheduling.BAD_OUTCOMES)
        for question_id in sorted(set(missed.values_list("question_id", flat=True))):
            question_explain(question_id=question_id)

    def _review_queue(self, user, topic: StudyTopic) -> None:
        """Approve the machine-made cards of a few questions; the rest wait for the reviewer."""
        question_ids = list(
            MemoCard.objects.live().filter(user=user, needs_review=True)
            .order_by("source_question_id").values_list("source_question_id", flat=True).distinct()
        )
        for qid in question_ids[:3]:
            cards_approve_for_question(user=user, source_question_id=qid)
        with transaction.atomic():
            manual = [
                card_create(user=user, card_format="qa", cue="LNG의 주성분은?", fact="메탄 (CH₄)",
                            material="가스 물성표", study_topic=topic),
                card_create(user=user, card_format="cloze", cue="LNG 저장 온도",
                            fact="-162℃", cloze_text="LNG는 약 ____℃에서 액화되어 저장된다.",
                            material="가스 물성표", study_topic=topic),
            ]
        for card, outcome in zip(manual, ["correct", "wrong"], strict=True):
            card_rate(card=card, outcome=outcome)

    def _language(self, user) -> None:
        topic = topic_create(user=user, name=LANG_TOPIC, study_type="language", description="JLPT N3 한자 쓰기")
        for i, (kanji, reading, meaning, example) in enumerate(content.JLPT_KANJI):
            session = session_create(user=user, data={
                "study_type": "language", "language_code": "ja", "learning_level": "N3", "subject": "한자",
                "topic": "시험·경험" if i < 3 else "위험·제한", "mode": "trace" if i % 2 == 0 else "copy",
                "prompt_question": f"{kanji} ({reading})", "expected_answer": kanji, "study_topic_id": topic.id,
                "metadata": {"kanji": kanji, "reading": reading, "meaning": meaning, "example": example},
                "target_count": 10, "canvas_width": 1024, "canvas_height": 1024,
            })
            if i < 2:
                upload = SimpleUploadedFile(f"{kanji}.png", _png(5, 100 + i), content_type="image/png")
                self.stored_files.append(session_snapshot_create(session=session, upload=upload).document.file.name)
