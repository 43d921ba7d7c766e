"""Plain text and markdown: UTF-8 first, then the Korean legacy encodings (CP949 ⊃ EUC-KR)."""

import codecs

from .base import ExtractResult, clean_text

_BOMS = ((codecs.BOM_UTF8, "utf-8-sig"), (codecs.BOM_UTF16_LE, "utf-16"), (codecs.BOM_UTF16_BE, "utf-16"))


def _utf16_without_bom(data: bytes) -> str | None:
    """UTF-16 by its zero bytes: Latin text (and the ASCII in CJK text) puts one in every other byte, on the odd
    offsets in little-endian, the even ones in big-endian; UTF-8 and CP949 text has none."""
    sample = data[:4096]
    if len(sample) < 4 or len(data) % 2:
        return None
    even, odd = sample[0::2].count(0), sample[1::2].count(0)
    half = len(sample) // 2
    if odd >= half * 0.3 and even == 0:
        encoding = "utf-16-le"
    elif even >= half * 0.3 and odd == 0:
        encoding = "utf-16-be"
    else:
        return None
    try:
        return data.decode(encoding)
    except UnicodeDecodeError:
        return None


def decode_text(data: bytes) -> str:
    """Decode bytes of unknown encoding: BOM, UTF-16 by its zero bytes, strict UTF-8, strict CP949, else UTF-8
    with replacement."""
    for bom, encoding in _BOMS:
        if data.startswith(bom):
            return data.decode(encoding, errors="replace")
    if (text := _utf16_without_bom(data)) is not None:
        return text
    for encoding in ("utf-8", "cp949"):
        try:
            return data.decode(encoding)
        except UnicodeDecodeError:
            continue
    return data.decode("utf-8", errors="replace")


def extract_plain(data: bytes) -> ExtractResult:
    return ExtractResult(text=clean_text(decode_text(data)), backend="text")
