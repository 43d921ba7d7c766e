"""Text extraction backends: plain text, PDF and OCR, chosen by the document's format."""

from .base import ExtractionFailed, ExtractionSkipped, ExtractResult
from .dispatch import extract_text, kind_of

__all__ = ["ExtractResult", "ExtractionFailed", "ExtractionSkipped", "extract_text", "kind_of"]
