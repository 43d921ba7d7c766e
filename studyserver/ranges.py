"""Single byte ranges of a download (RFC 9110 §14): what a media player asks for to stream or seek."""

import re
from typing import BinaryIO

_SINGLE_RANGE = re.compile(r"^bytes=([0-9]{0,18})-([0-9]{0,18})$")  # ASCII digits: \d matches "０" too

UNSATISFIABLE = "unsatisfiable"


def byte_range(header: str | None, size: int) -> tuple[int, int] | str | None:
    """The (first, last) byte positions a `Range` header asks for in a file of `size` bytes, inclusive.

    None: serve the whole file (no header, a unit other than bytes, several ranges, or a malformed one: a
    server may always ignore Range). UNSATISFIABLE: a well-formed range that starts beyond the end (416).
    """
    match = _SINGLE_RANGE.match((header or "").strip())
    if match is None or match.groups() == ("", ""):
        return None
    first, last = match.groups()
    if size == 0:
        return UNSATISFIABLE  # an empty file has no byte to give
    if first == "":  # "-N": the last N bytes
        suffix = int(last)
        if suffix == 0:
            return UNSATISFIABLE
        return max(size - suffix, 0), size - 1
    start = int(first)
    end = size - 1 if last == "" else min(int(last), size - 1)
    if last != "" and int(last) < start:
        return None  # invalid: ignored, the whole file
    if start >= size:
        return UNSATISFIABLE
    return start, end


class FileSlice:
    """Bytes first..last (inclusive) of an open file: the body of a 206 (FileResponse reads it in blocks and
    closes it)."""

    def __init__(self, handle: BinaryIO, first: int, last: int) -> None:
        self.handle, self.remaining = handle, last - first + 1
        handle.seek(first)

    def read(self, size: int = -1) -> bytes:
        if self.remaining <= 0:
            return b""
        size = self.remaining if size is None or size < 0 else min(size, self.remaining)
        data = self.handle.read(size)
        self.remaining -= len(data)
        return data

    def close(self) -> None:
        self.handle.close()
