"""A stored document sent as a download: never rendered inline by a browser, whoever uploaded it."""

from django.http import FileResponse

from study.models import Document

# Content types a browser cannot execute or render as a page; everything else downloads as octet-stream. Text goes
# without a charset: a learner's notes come in UTF-8, UTF-16, CP949 or Shift-JIS (the extraction reads them all), and
# "charset=utf-8" on a CP949 file told a client to decode it wrongly.
SAFE_CONTENT_TYPES = {
    "application/pdf": "application/pdf",
    "image/png": "image/png",
    "image/jpeg": "image/jpeg",
    "image/gif": "image/gif",
    "image/webp": "image/webp",
    "image/heic": "image/heic",
    "text/plain": "text/plain",
    "text/markdown": "text/plain",
    "text/csv": "text/plain",
    "audio/mpeg": "audio/mpeg",
    "audio/mp4": "audio/mp4",
    "audio/aac": "audio/aac",
    "audio/ogg": "audio/ogg",
    "audio/flac": "audio/flac",
    "audio/3gpp": "audio/3gpp",
    "audio/wav": "audio/wav",
    "audio/x-wav": "audio/wav",
    "video/mp4": "video/mp4",
    "video/quicktime": "video/quicktime",  # an iPhone's recordings (.mov)
    "video/webm": "video/webm",
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
