"""Re-run text extraction of documents by status (failed by default): inline, or queued for the workers."""

from django.core.management.base import BaseCommand

from study.models import Document
from study.models.documents import ExtractStatus
from study.services.extraction import document_extract, documents_reset_for_retry
from study.tasks import extract_document

from ._progress import run_each, send_now


class Command(BaseCommand):
    help = (
        "Retry text extraction of live documents with the given extract status (default: failed). Without "
        "--enqueue the extraction runs here and the command exits 1 when a document ends failed again (the message "
        "names them) or a retry raised; with --enqueue it does not wait for the workers, so it exits 1 only when a "
        "send is refused: see the documents' status afterwards (retry_extract --dry-run lists those still failed)."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("--status", choices=["failed", "pending", "skipped"], default="failed",
                            help="which documents to extract again (default failed)")
        parser.add_argument("--dry-run", action="store_true", help="only list what would be retried")
        parser.add_argument("--enqueue", action="store_true", help="send to the Celery workers instead of running here")

    def handle(self, *args, status: str, dry_run: bool, enqueue: bool, **options) -> None:
        documents = Document.objects.filter(extract_status=status, deleted_at__isnull=True).order_by("id")
        ids = list(documents.values_list("id", flat=True))
        verbosity = options["verbosity"]
        if verbosity >= 1 or dry_run:
            self.stdout.write(f"{len(ids)} {status} document(s){' (dry run)' if dry_run else ''}")
        if dry_run:
            for document_id in ids:
                self.stdout.write(f"would retry document {document_id}")
            return

        def retry(document_id: int) -> str:
            if status != ExtractStatus.PENDING:
                documents_reset_for_retry(document_ids=[document_id])
            if enqueue:
                return send_now(extract_document, document_id, if_refused="; the document is pending now: "
                                "retry_extract --status pending --enqueue sends it again")
            return document_extract(document_id=document_id)

        # Only an extraction run here has an end status to judge; a queued one ends later, in a worker.
        run_each(self, ids, label="document", run=retry, verbosity=verbosity,
                 failed_outcome=None if enqueue else ExtractStatus.FAILED)
