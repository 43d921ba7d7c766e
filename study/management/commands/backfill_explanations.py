"""Explain every wrong/unsure question that has no explanation yet (optionally one topic): inline or queued."""

from django.core.management.base import BaseCommand, CommandError

from study.models import StudyTopic
from study.services.explanations import question_explain, questions_needing_explanation
from study.tasks import explain_question

from ._progress import run_each, send_now


class Command(BaseCommand):
    help = "Write explanations (and card candidates) for wrong/unsure questions that have none."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--topic", type=int, help="only this study topic id")
        parser.add_argument("--dry-run", action="store_true", help="only list what would be explained")
        parser.add_argument("--enqueue", action="store_true", help="send to the Celery workers instead of running here")

    def handle(self, *args, topic: int | None, dry_run: bool, enqueue: bool, **options) -> None:
        if topic is not None and not StudyTopic.objects.filter(pk=topic).exists():
            raise CommandError(f"study topic {topic} does not exist")
        ids = list(questions_needing_explanation(topic_id=topic).values_list("id", flat=True))
        verbosity = options["verbosity"]
        if verbosity >= 1 or dry_run:
            self.stdout.write(f"{len(ids)} question(s) to explain{' (dry run)' if dry_run else ''}")
        if dry_run:
            for question_id in ids:
                self.stdout.write(f"would explain question {question_id}")
            return

        def explain(question_id: int) -> str:
            if enqueue:
                return send_now(explain_question, question_id)
            return question_explain(question_id=question_id)

        run_each(self, ids, label="question", run=explain, verbosity=verbosity)
