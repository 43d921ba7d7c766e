"""manage.py bench_seed: a realistic data set for the benchmarks, made fast with bulk_create.

Scale 1: 2 users, 20 topics, 5,000 questions, 2,000 done quiz sessions with 50,000
attempts, question progress, 20,000 cards (a quarter pending review) with evidence,
20,000 card progress rows (due, scheduled later, and due = null), 1,000 documents, 2,000 study
sessions with assets; then the published feed is backfilled. Every figure multiplies
with --scale. The data set is deterministic (--seed).
"""

import random
import time
from collections import defaultdict
from datetime import timedelta

from django.contrib.auth import get_user_model
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError
from django.db import connection, transaction
from django.utils import timezone
from rest_framework.authtoken.models import Token

from study import models as m
from study import scheduling
from study.textnorm import card_dedup_hash

BENCH_USERNAMES = ("bench_learner", "bench_family")
BENCH_PASSWORD = "bench-pass-1"  # noqa: S105 - a throwaway benchmark account
BATCH = 5000
SUBJECTS = ("가스안전관리", "가스장치 및 설비", "가스일반", "연소공학", "가스계측")
OUTCOME_WEIGHTS = ((scheduling.CORRECT, 60), (scheduling.WRONG, 25), (scheduling.UNSURE, 10), (scheduling.SKIPPED, 5))
ATTEMPTS_PER_QUIZ = 25
DOCUMENT_PATH = "bench/seed-note.txt"
DOCUMENT_BODY = b"LNG is stored at -162 C. Methane is the main component.\n"

# Rows per unit of scale (divided between the two users).
PER_SCALE = {
    "topics": 20,
    "questions": 5_000,
    "attempts": 50_000,
    "cards": 20_000,
    "documents": 1_000,
    "sessions": 2_000,
}


class Command(BaseCommand):
    help = "Seed a benchmark data set (bulk_create); --reset wipes the benchmark users first."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--scale", type=int, default=1,
                            help="Data set size, 1..100 (default 1: 5,000 questions, 50,000 attempts, 20,000 cards).")
        parser.add_argument("--reset", action="store_true", help="Delete the benchmark users' data first.")
        parser.add_argument("--seed", type=int, default=42,
                            help="Random seed: the same seed, the same data (default 42).")
        parser.add_argument("--no-publish", action="store_true", help="Skip backfill_publish --kind all.")

    def handle(self, *args, scale: int, reset: bool, seed: int, no_publish: bool, **options) -> None:
        if scale < 1 or scale > 100:
            raise CommandError("--scale must be between 1 and 100")
        user_model = get_user_model()
        existing = list(user_model.objects.filter(username__in=BENCH_USERNAMES))
        if existing and not reset and m.StudyTopic.objects.filter(user__in=existing).exists():
            raise CommandError("benchmark data already present; run with --reset to wipe and reseed")
        if existing and reset:
            self._wipe([u.pk for u in existing])
        self.rng = random.Random(seed)
        self.now = timezone.now()
        started = time.perf_counter()
        with transaction.atomic():
            users = self._users()
            seeded = self._seed(users, scale)
        summary = ", ".join(f"{k}={v}" for k, v in seeded.items())
        self._log(f"seeded in {time.perf_counter() - started:.1f}s: {summary}")
        if not no_publish:
            self._backfill()
        self._analyze()

    # --- steps -------------------------------------------------------------------------------

    def _log(self, text: str) -> None:
        self.stdout.write(text)
        self.stdout.flush()

    def _analyze(self) -> None:
        """Give the planner statistics, as autovacuum would on a live server (it may be off here)."""
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("ANALYZE")
            self._log("analyzed")

    def _wipe(self, user_ids: list[int]) -> None:
        """Delete every row of the benchmark users set-based (the ORM collector is far too slow here)."""
        # The outbox is left alone: its rows have no owner, and requests for sources deleted here drain as
        # "source gone" (other users' pending requests must survive a reset).
        from publishing.models import Published

        alias = connection.alias
        with transaction.atomic():
            for model in (Published, m.CardProgress, m.QuestionProgress, m.SessionAnalysis, m.QuestionExplanation):
                model.objects.filter(user_id__in=user_ids)._raw_delete(alias)
            m.CardEvidence.objects.filter(card__user_id__in=user_ids)._raw_delete(alias)
            m.SessionAsset.objects.filter(session__user_id__in=user_ids)._raw_delete(alias)
            for model in (m.MemoCard, m.QuestionAttempt, m.QuizSession, m.Question, m.StudySession,
                          m.TopicDocument, m.Document, m.StudyTopic):
                model.objects.filter(user_id__in=user_ids)._raw_delete(alias)
        self._log(f"wiped benchmark data of users {user_ids}")

    def _users(self) -> list:
        user_model = get_user_model()
        users = []
        for name in BENCH_USERNAMES:
            user, created = user_model.objects.get_or_create(username=name, defaults={"email": f"{name}@example.com"})
            if created:
                user.set_password(BENCH_PASSWORD)
                user.save(update_fields=["password"])
            Token.objects.get_or_create(user=user)
            users.append(user)
        return users

    def _ago(self, max_days: int) -> timezone.datetime:
        return self.now - timedelta(seconds=self.rng.randint(60, max_days * 86400))

    def _seed(self, users: list, scale: int) -> dict:
        rng = self.rng
        counts = {k: v * scale for k, v in PER_SCALE.items()}
        if not default_storage.exists(DOCUMENT_PATH):
            default_storage.save(DOCUMENT_PATH, ContentFile(DOCUMENT_BODY))

        topics = m.StudyTopic.objects.bulk_create(
            [
                m.StudyTopic(
                    user=users[i % 2], name=f"벤치 {'가스기사' if i % 3 else 'JLPT N3'} {i:03d}",
                    study_type="certification" if i % 3 else "language", description="benchmark topic",
                    created_at=self._ago(365),
                )
                for i in range(counts["topics"])
            ],
            batch_size=BATCH,
        )
        self._log(f"topics: {len(topics)}")

        questions = m.Question.objects.bulk_create(
            (
                m.Question(
                    user_id=topic.user_id, study_topic=topic, subject=SUBJECTS[i % len(SUBJECTS)],
                    question_text=f"{SUBJECTS[i % len(SUBJECTS)]} 문제 {i}: 다음 중 옳은 것은?",
                    choices=[f"보기 {c} ({i})" for c in range(1, 5)], correct_choice=rng.randint(1, 4),
                    explanation="해설: 메탄이 주성분이다." if i % 4 == 0 else "",
                    source={"exam": "가스기사", "year": 2015 + i % 10, "number": i % 100 + 1},
                    created_at=self._ago(365),
                )
                for i in range(counts["questions"])
                for topic in [topics[i % len(topics)]]
            ),
            batch_size=BATCH,
        )
        self._log(f"questions: {len(questions)}")
        by_topic: dict[int, list] = defaultdict(list)
        for q in questions:
            by_topic[q.study_topic_id].append(q)

        self._quizzes(topics, by_topic, counts["attempts"])
        cards = self._cards(users, questions, counts["cards"])
        self._sessions(users, topics, counts["documents"], counts["sessions"])
        return {
            "topics": len(topics), "questions": len(questions), "attempts": counts["attempts"],
            "cards": len(cards), "documents": counts["documents"], "sessions": counts["sessions"],
        }

    def _quizzes(self, topics: list, by_topic: dict, attempt_count: int) -> None:
        rng = self.rng
        outcomes, weights = zip(*OUTCOME_WEIGHTS, strict=True)
        quiz_count = attempt_count // ATTEMPTS_PER_QUIZ
        plans = []  # (topic, questions, outcomes, finished_at)
        for i in range(quiz_count):
            topic = topics[i % len(topics)]
            picked = rng.sample(by_topic[topic.pk], min(ATTEMPTS_PER_QUIZ, len(by_topic[topic.pk])))
            plans.append((topic, picked, rng.choices(outcomes, weights, k=len(picked)), self._ago(180)))
        plans.sort(key=lambda p: p[3])  # oldest first, so later attempts win in progress

        quizzes = []
        for topic, picked, outs, finished in plans:
            tally = {o: outs.count(o) for o in scheduling.OUTCOMES}
            quizzes.append(
                m.QuizSession(
                    user_id=topic.user_id, study_topic=topic, status="done", question_ids=[q.pk for q in picked],
                    subject_distribution={s: sum(1 for q in picked if q.subject == s) for s in SUBJECTS},
                    target_per_subject=5, correct_count=tally["correct"], wrong_count=tally["wrong"],
                    unsure_count=tally["unsure"], skipped_count=tally["skipped"],
                    summary={"correct": tally["correct"], "wrong": tally["wrong"], "unsure": tally["unsure"],
                             "skipped": tally["skipped"]},
                    created_at=finished - timedelta(minutes=20), finished_at=finished, finalized_at=finished,
                )
            )
        quizzes = m.QuizSession.objects.bulk_create(quizzes, batch_size=BATCH)
        self._log(f"quiz sessions: {len(quizzes)}")

        attempts = []
        for quiz, (_topic, picked, outs, finished) in zip(quizzes, plans, strict=True):
            for n, (q, outcome) in enumerate(zip(picked, outs, strict=True)):
                if outcome == scheduling.CORRECT:
                    selected = q.correct_choice
                elif outcome == scheduling.WRONG:
                    selected = q.correct_choice % 4 + 1
                else:
                    selected = None
                attempts.append(
                    m.QuestionAttempt(
                        user_id=quiz.user_id, quiz_session=quiz, question=q, selected_choice=selected,
                        is_unsure=outcome == scheduling.UNSURE, outcome=outcome,
                        answered_at=finished - timedelta(seconds=30 * (len(picked) - n)),
                    )
                )
        for start in range(0, len(attempts), BATCH):
            m.QuestionAttempt.objects.bulk_create(attempts[start:start + BATCH])
        self._log(f"attempts: {len(attempts)}")

        history: dict[int, list] = defaultdict(list)
        for a in attempts:
            history[a.question_id].append(a)
        progress = []
        for question_id, rows in history.items():
            last = rows[-1]
            window = scheduling.pattern_window([a.outcome for a in rows])
            in_queue = self.rng.random() < 0.3
            progress.append(
                m.QuestionProgress(
                    user_id=last.user_id, question_id=question_id, last_outcome=last.outcome,
                    last_attempted_at=last.answered_at, last_attempt=last,
                    pattern_state=scheduling.pattern_state(window), pattern_window_attempts=window,
                    pattern_updated_at=last.answered_at if window else None,
                    review_stage=self.rng.randint(0, 3) if in_queue else 0,
                    due_at=self.now + timedelta(days=self.rng.randint(-5, 10)) if in_queue else None,
                    last_reviewed_at=last.answered_at if in_queue else None,
                )
            )
        m.QuestionProgress.objects.bulk_create(progress, batch_size=BATCH)
        self._log(f"question progress: {len(progress)}")

    def _cards(self, users: list, questions: list, card_count: int) -> list:
        rng = self.rng
        questions_by_user: dict[int, list] = defaultdict(list)
        for q in questions:
            questions_by_user[q.user_id].append(q)
        cards = []
        for i in range(card_count):
            user = users[i % 2]
            pending = i % 4 == 0
            pool = questions_by_user[user.pk]
            q = pool[rng.randrange(len(pool))] if i % 5 != 0 else None
            fmt = "cloze" if i % 10 < 3 else "qa"
            fact = f"메탄은 LNG의 주성분이다 #{i}"
            cards.append(
                m.MemoCard(
                    user=user, source_kind="question" if q else "manual", format=fmt,
                    cue=f"LNG의 주성분은? #{i}", fact=fact,
                    cloze_text=f"{{{{c1::메탄}}}}은 LNG의 주성분이다 #{i}" if fmt == "cloze" else "",
                    needs_review=pending, reviewed_at=None if pending else self._ago(90),
                    source_question=q, study_topic_id=q.study_topic_id if q else None,
                    extra={} if q else {"material": f"요약노트 {i % 7}"},
                    view_count=rng.randint(1, 5) if i % 3 else 0,  # a view is counted with its time
                    last_viewed_at=self._ago(30) if i % 3 else None,
                    dedup_hash=card_dedup_hash(source_question_id=q.pk if q else None, card_format=fmt, fact=fact),
                    created_at=self._ago(120),
                )
            )
        cards = m.MemoCard.objects.bulk_create(cards, batch_size=BATCH)
        self._log(f"cards: {len(cards)} ({sum(c.needs_review for c in cards)} pending review)")

        evidence = []
        for c in cards:
            if c.source_question_id:
                evidence.append(m.CardEvidence(card=c, source_type="question", source_id=c.source_question_id,
                                               snippet=c.fact[:80]))
                if c.pk % 4 == 0:
                    evidence.append(m.CardEvidence(card=c, source_type="explanation", source_id=c.source_question_id,
                                                   snippet="해설 발췌"))
        m.CardEvidence.objects.bulk_create(evidence, batch_size=BATCH)
        self._log(f"card evidence: {len(evidence)}")

        # One progress row per card, as the scale 1 asks (20,000 cards, 20,000 progress rows): cards
        # pending review were rated before they were flagged back (their progress stays, out of the due list).
        progress = []
        for n, c in enumerate(cards):
            kind = n % 3
            if kind == 0:  # due now or overdue
                stage, due = rng.randint(0, 3), self.now - timedelta(hours=rng.randint(1, 240))
            elif kind == 1:  # scheduled later
                stage, due = rng.randint(0, 3), self.now + timedelta(days=rng.randint(1, 14))
            else:  # known at first sight or mastered: due = null sentinel
                stage, due = rng.choice((0, 4)), None
            progress.append(
                m.CardProgress(
                    user_id=c.user_id, card=c, last_outcome="correct" if kind == 2 else rng.choice(("correct", "wrong",
                                                                                                 "unsure")),
                    last_reviewed_at=self._ago(30), review_stage=stage, due_at=due,
                )
            )
        m.CardProgress.objects.bulk_create(progress, batch_size=BATCH)
        self._log(f"card progress: {len(progress)}")
        return cards

    def _sessions(self, users: list, topics: list, document_count: int, session_count: int) -> None:
        rng = self.rng
        docs = m.Document.objects.bulk_create(
            [
                m.Document(
                    user=users[i % 2], title=f"벤치 노트 {i}", file=DOCUMENT_PATH, original_name=f"note-{i}.txt",
                    file_format="png" if i % 2 else "txt", content_type="image/png" if i % 2 else "text/plain",
                    file_size=len(DOCUMENT_BODY), sha256="0" * 64, tags_text=f",bench,tag{i % 5},",
                    extract_status="done", extracted_text="LNG 메탄 저장 온도 영하 162도" if i % 2 == 0 else "",
                    extracted_at=self._ago(199),
                    created_at=self._ago(200),
                )
                for i in range(document_count)
            ],
            batch_size=BATCH,
        )
        docs_by_user: dict[int, list] = defaultdict(list)
        for d in docs:
            docs_by_user[d.user_id].append(d)
        topics_by_user: dict[int, list] = defaultdict(list)
        for t in topics:
            topics_by_user[t.user_id].append(t)
        links = {(t.pk, d.pk): (t, d) for t in topics for d in rng.sample(docs_by_user[t.user_id],
                                                                           min(10, len(docs_by_user[t.user_id])))}
        m.TopicDocument.objects.bulk_create(
            [m.TopicDocument(user_id=t.user_id, topic=t, document=d) for t, d in links.values()], batch_size=BATCH
        )
        self._log(f"documents: {len(docs)}, topic links: {len(links)}")

        modes = [c for c, _ in m.sessions.SessionMode.choices]
        states = [None, *[c for c, _ in m.sessions.ReviewState.choices]]
        sessions = []
        for i in range(session_count):
            user = users[i % 2]
            language = i % 4 == 0
            sessions.append(
                m.StudySession(
                    user=user, study_topic=rng.choice(topics_by_user[user.pk]) if i % 3 else None,
                    study_type="language" if language else "certification",
                    certification="" if language else rng.choice(("가스기사", "산업안전기사")),
                    language_code="ja" if language else "", learning_level="N3" if language else "",
                    subject=rng.choice(SUBJECTS), topic=f"단원 {i % 12}", source_text="LNG는 메탄이 주성분이다.",
                    mode=rng.choice(modes), review_state=rng.choice(states),
                    next_review_at=self.now + timedelta(days=rng.randint(-10, 20)) if i % 2 else None,
                    last_quiz_at=self._ago(60) if i % 3 == 0 else None, repetition_count=rng.randint(0, 9),
                    metadata={"device": "ipad"}, created_at=self._ago(200),
                )
            )
        sessions = m.StudySession.objects.bulk_create(sessions, batch_size=BATCH)
        assets = []
        asset_kinds = (("source_scan", "prompt"), ("handwriting_png", "answer"), ("audio", "pronunciation"),
                       ("reference", None))
        for i, s in enumerate(sessions):
            pool = docs_by_user[s.user_id]
            for n in range(1 + i % 3):
                asset_type, role = asset_kinds[(i + n) % len(asset_kinds)]
                assets.append(m.SessionAsset(session=s, document=pool[(i * 3 + n) % len(pool)], asset_type=asset_type,
                                             role=role, sort_order=n))
        m.SessionAsset.objects.bulk_create(assets, batch_size=BATCH)
        self._log(f"study sessions: {len(sessions)}, assets: {len(assets)}")

    def _backfill(self) -> None:
        from django.core.management import get_commands

        if "backfill_publish" not in get_commands():
            self._log("backfill_publish is not available yet: the published feed was NOT backfilled")
            return
        started = time.perf_counter()
        call_command("backfill_publish", kind="all", stdout=self.stdout)
        self._log(f"published feed backfilled in {time.perf_counter() - started:.1f}s")
