"""Upload limits and file-name rules: refuse oversized bodies before and while they stream."""

import hashlib
import os
import warnings

from django.conf import settings
from django.core.files.uploadedfile import UploadedFile
from django.core.files.uploadhandler import FileUploadHandler
from PIL import Image

from study.extract.ocr import BROKEN_IMAGE_ERRORS
from study.textnorm import is_blank, nfc
from studyserver.errors import BodyTooLarge, EmptyFile, InvalidInput, UploadTooLarge

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
MAX_NAME_LENGTH = 255
MAX_FORMAT_LENGTH = 20


class LimitedUploadHandler(FileUploadHandler):
    """First in FILE_UPLOAD_HANDLERS: counts bytes and stops at DOCUMENT_MAX_BYTES.

    - `Content-Length` above max_bytes × slack is refused before a byte is read;
    - while streaming, more than max_bytes in one file is refused, and the partial
      files of the later handlers (memory / temp file) are closed, which removes a temp file.
    """

    def __init__(self, request=None) -> None:
        super().__init__(request)
        self.max_bytes = settings.DOCUMENT_MAX_BYTES
        self.received = 0

    def handle_raw_input(self, input_data, META, content_length, boundary, encoding=None):
        if content_length and content_length > self.max_bytes * settings.DOCUMENT_LENGTH_SLACK:
            raise UploadTooLarge(f"The upload exceeds the limit of {self.max_bytes} bytes.")
        return None

    def new_file(self, *args, **kwargs) -> None:
        super().new_file(*args, **kwargs)
        self.received = 0

    def receive_data_chunk(self, raw_data: bytes, start: int):
        self.received += len(raw_data)
        if self.received > self.max_bytes:
            self._close_partial_files()
            raise UploadTooLarge(f"The file exceeds the limit of {self.max_bytes} bytes.")
        return raw_data

    def file_complete(self, file_size: int):
        return None

    def _close_partial_files(self) -> None:
        for handler in getattr(self.request, "upload_handlers", ()):
            partial = getattr(handler, "file", None)
            if handler is not self and partial is not None:
                partial.close()


def upload_base_name(raw_name: str | None) -> str:
    """The base name of a client file name (any / or \\ path stripped); empty names and dot-files refused."""
    name = nfc(raw_name or "")
    name = name.replace("\\", "/").rsplit("/", 1)[-1]
    name = "".join(ch for ch in name if ch.isprintable()).strip()
    # (a name of Hangul fillers alone, or before its extension, shows as nothing, or as a dot-file)
    if not name or name.startswith(".") or is_blank(os.path.splitext(name)[0]):
        raise InvalidInput("The file name is empty or a hidden (dot) file.")
    if len(name) > MAX_NAME_LENGTH:
        stem, ext = os.path.splitext(name)
        name = stem[: MAX_NAME_LENGTH - len(ext)] + ext if len(ext) < 30 else name[:MAX_NAME_LENGTH]
    return name


def file_format_of(name: str) -> str:
    """The lower-case extension of `name` (letters and digits only), or "" when it has none."""
    ext = os.path.splitext(name)[1][1:].lower()
    return ext if ext.isascii() and ext.isalnum() and len(ext) <= MAX_FORMAT_LENGTH else ""


def checked_upload_size(upload: UploadedFile) -> int:
    """The size of an upload; empty → 400 empty_file, above DOCUMENT_MAX_BYTES → 413."""
    size = upload.size or 0
    if size <= 0:
        raise EmptyFile()
    if size > settings.DOCUMENT_MAX_BYTES:
        raise BodyTooLarge(f"The file exceeds the limit of {settings.DOCUMENT_MAX_BYTES} bytes.")
    return size


def sha256_of(upload: UploadedFile) -> str:
    """sha256 of an upload, read chunk by chunk (never the whole file in memory)."""
    digest = hashlib.sha256()
    for chunk in upload.chunks():
        digest.update(chunk)
    upload.seek(0)
    return digest.hexdigest()


def is_png(upload: UploadedFile) -> bool:
    """True when the content really is a PNG: the signature, then Pillow's walk over every chunk up to IEND
    with their checksums (pixels are not decoded). The name and the declared type are not trusted.

    A PNG whose header declares more pixels than Pillow opens at all (twice Image.MAX_IMAGE_PIXELS, ~179 million)
    is a PNG, but no snapshot: 400 invalid_input, not "not a PNG"."""
    upload.seek(0)
    try:
        if upload.read(len(PNG_SIGNATURE)) != PNG_SIGNATURE:
            return False
        upload.seek(0)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # nothing is decoded here
            with Image.open(upload, formats=["PNG"]) as image:
                image.verify()
        return True
    except Image.DecompressionBombError:
        raise InvalidInput(f"The image has more pixels than a snapshot may ({2 * Image.MAX_IMAGE_PIXELS:,}).") from None
    except BROKEN_IMAGE_ERRORS:
        return False
    finally:
        upload.seek(0)
