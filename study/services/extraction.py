"""Text extraction of documents (placeholder: the real extractor comes with the background-work issue)."""

from django.utils import timezone

from study.models import Document
from study.models.documents import ExtractStatus


def document_extract(*, document_id: int) -> str:
    """Claim a pending document and mark it processed. Idempotent: a done document is left alone."""
    claimed = Document.objects.filter(pk=document_id, extract_status=ExtractStatus.PENDING).update(
        extract_status=ExtractStatus.SKIPPED,
        extract_error="extractor not installed",
        extracted_at=timezone.now(),
    )
    return "processed" if claimed else "not_pending"
