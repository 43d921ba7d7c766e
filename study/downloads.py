"""A stored document sent as a download: never rendered inline by a browser, whoever uploaded it."""

from django.http import FileResponse

from study.models import Document

# Content types a browser cannot execute or render as a page; everything else downloads as octet-stream.
SAFE_CONTENT_TYPES = {
    "application/pdf": "application/pdf",
    "image/png": "image/png",
    "image/jpeg": "image/jpeg",
    "image/gif": "image/gif",
    "image/webp": "image/webp",
    "text/plain": "text/plain; charset=utf-8",
    "text/markdown": "text/plain; charset=utf-8",
    "text/csv": "text/plain; charset=utf-8",
    "audio/mpeg": "audio/mpeg",
    "audio/mp4": "audio/mp4",
    "audio/wav": "audio/wav",
    "audio/x-wav": "audio/wav",
    "video/mp4": "video/mp4",
}
OCTET_STREAM = "application/octet-stream"


def safe_content_type(content_type: str) -> str:
    return SAFE_CONTENT_TYPES.get((content_type or "").split(";")[0].strip().lower(), OCTET_STREAM)


def attachment_response(document: Document, body) -> FileResponse:
    """`body` (the document's open file, or part of it) as an attachment under the document's original name, with a
    content type a browser cannot execute and no sniffing of another."""
    response = FileResponse(
        body, as_attachment=True, filename=document.original_name, content_type=safe_content_type(document.content_type)
    )
    response["X-Content-Type-Options"] = "nosniff"
    return response
