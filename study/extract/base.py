"""What every extraction backend returns or raises."""

from dataclasses import dataclass


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
    """Drop NUL bytes (PostgreSQL text refuses them) and trailing spaces; keep the line structure."""
    lines = (line.rstrip() for line in text.replace("\x00", "").replace("\r\n", "\n").replace("\r", "\n").split("\n"))
    return "\n".join(lines).strip()
