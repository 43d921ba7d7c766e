"""An upload handler that refuses oversized bodies before and while they stream."""

from django.conf import settings
from django.core.files.uploadhandler import FileUploadHandler

from studyserver.errors import BodyTooLarge


class LimitedUploadHandler(FileUploadHandler):
    """First in FILE_UPLOAD_HANDLERS: counts bytes and stops at DOCUMENT_MAX_BYTES.

    - `Content-Length` above max_bytes × slack is refused before a byte is read;
    - while streaming, more than max_bytes in one file is refused.
    Later handlers (memory / temp file) do the storing; their temp files are closed,
    and so removed, when the request is torn down.
    """

    def __init__(self, request=None) -> None:
        super().__init__(request)
        self.max_bytes = settings.DOCUMENT_MAX_BYTES
        self.received = 0

    def handle_raw_input(self, input_data, META, content_length, boundary, encoding=None):
        if content_length and content_length > self.max_bytes * settings.DOCUMENT_LENGTH_SLACK:
            raise BodyTooLarge(f"The upload exceeds the limit of {self.max_bytes} bytes.")
        return None

    def new_file(self, *args, **kwargs) -> None:
        super().new_file(*args, **kwargs)
        self.received = 0

    def receive_data_chunk(self, raw_data: bytes, start: int):
        self.received += len(raw_data)
        if self.received > self.max_bytes:
            raise BodyTooLarge(f"The file exceeds the limit of {self.max_bytes} bytes.")
        return raw_data

    def file_complete(self, file_size: int):
        return None
