"""What every extraction backend returns or raises."""

import re
import unicodedata
from dataclasses import dataclass

_LONE_SURROGATE = re.compile("[\ud800-\udfff]")  # no database stores them (a PDF's font map can produce them)


@dataclass(frozen=True)
class ExtractResult:
    text: str
    backend: str
    # Why the text is partial (a limit was reached), shown to the user; empty when the text is whole.
    notes: tuple[str, ...] = ()


class ExtractionSkipped(Exception):
    """The document cannot be extracted here (no OCR engine, unsupported format); retry later."""


class ExtractionFailed(Exception):
    """The document's content is broken or could not be read."""


def clean_text(text: str) -> str:
    """Drop NUL bytes (PostgreSQL text refuses them) and trailing spaces, lone surrogates become U+FFFD (no
    database encodes them), composed (NFC) as the texts it is searched with are: a decomposed (NFD) Korean note, as
    macOS writes them, matched no search term and gave no cloze. Keep the line structure."""
    text = _LONE_SURROGATE.sub("\ufffd", text.replace("\x00", ""))
    text = unicodedata.normalize("NFC", text)
    lines = (line.rstrip() for line in text.replace("\r\n", "\n").replace("\r", "\n").split("\n"))
    return "\n".join(lines).strip()
