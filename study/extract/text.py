"""Plain text and markdown: UTF-8 first, then the Korean legacy encodings (CP949 ⊃ EUC-KR)."""

import codecs

from .base import ExtractResult, clean_text

_BOMS = ((codecs.BOM_UTF8, "utf-8-sig"), (codecs.BOM_UTF16_LE, "utf-16"), (codecs.BOM_UTF16_BE, "utf-16"))


def decode_text(data: bytes) -> str:
    """Decode bytes of unknown encoding: BOM, strict UTF-8, strict CP949, else UTF-8 with replacement."""
    for bom, encoding in _BOMS:
        if data.startswith(bom):
            return data.decode(encoding, errors="replace")
    for encoding in ("utf-8", "cp949"):
        try:
            return data.decode(encoding)
        except UnicodeDecodeError:
            continue
    return data.decode("utf-8", errors="replace")


def extract_plain(data: bytes) -> ExtractResult:
    return ExtractResult(text=clean_text(decode_text(data)), backend="text")
