"""Plain text and markdown in the encodings a learner's notes come in: a BOM, UTF-8, UTF-16, the Korean and
Japanese legacy ones (CP949 ⊃ EUC-KR, Shift-JIS as CP932, EUC-JP) and Windows-1252. Bytes that are none of them are
a failed extraction, not text guessed into mojibake."""

import codecs

from charset_normalizer import from_bytes

from .base import ExtractionFailed, ExtractResult, clean_text

_BOMS = ((codecs.BOM_UTF8, "utf-8-sig"), (codecs.BOM_UTF16_LE, "utf-16"), (codecs.BOM_UTF16_BE, "utf-16"))
# What charset-normalizer may choose among (its full list also holds encodings no learner here writes in, which a
# short text fits as well as the right one).
_LEGACY = ["cp949", "cp932", "euc_jp", "utf_16_le", "utf_16_be", "cp1252"]
# A damaged file (a stray byte at its end) is read with its few bad bytes replaced: at most one in a hundred.
_PARTIAL = ("cp949", "cp932", "euc_jp", "utf-8")
_SAMPLE_CHARS = 100_000  # of a long text, what the plausibility checks look at
NOT_TEXT_MESSAGE = ("not text in an encoding this server reads (UTF-8, UTF-16, CP949 (EUC-KR), Shift-JIS, EUC-JP or "
                    "Windows-1252)")


def text_prefix(data: bytes, *, max_chars: int) -> bytes:
    """As much of a text file as max_chars characters take at most, cut where a character ends: a 50 MB note was
    decoded whole, and by every encoding tried, to keep its first 300,000 characters.

    8 bytes a character leave room for the cut. UTF-16 (by its BOM, or any zero byte) is cut at an even length, not
    between a surrogate pair's halves. Other text is cut after its last ASCII white space in the second half (in
    UTF-8 and the legacy encodings read here such a byte is a character of its own, never part of one), so at
    least 4 bytes a character remain, which every encoding read here holds max_chars characters in; without one,
    at the limit, moved back to where a UTF-8 character starts."""
    limit = max_chars * 8
    if len(data) <= limit:
        return data
    sample = data[:4096]
    if data.startswith(codecs.BOM_UTF16_BE):
        order = "utf-16-be"
    elif data.startswith(codecs.BOM_UTF16_LE):
        order = "utf-16-le"
    elif 0 in sample:  # UTF-16 or nothing read here: 8-bit text has no zero bytes (Korean UTF-16 may have few)
        order = "utf-16-le" if sample[1::2].count(0) >= sample[0::2].count(0) else "utf-16-be"
    else:
        order = None
    if order is not None:
        last_unit = int.from_bytes(data[limit - 2:limit], "little" if order == "utf-16-le" else "big")
        return data[:limit - 2 if 0xD800 <= last_unit <= 0xDBFF else limit]
    end = max(data.rfind(space, 0, limit) for space in (b"\n", b" ", b"\t", b"\r")) + 1
    if end > limit // 2:
        return data[:end]
    end = limit
    while end > limit - 3 and 0x80 <= data[end] <= 0xBF:  # (a UTF-8 continuation byte)
        end -= 1
    return data[:end]


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


def _korean(data: bytes) -> str | None:
    """Strict CP949, when it reads as Korean. Other CJK bytes often decode as CP949 too: Shift-JIS mostly into the
    syllables only CP949 has (outside EUC-KR's 2,350, which real text keeps to), EUC-JP's kana into the standalone
    jamo of EUC-KR's fourth row."""
    if data[:4096].count(0) > 40:  # (UTF-16: zero bytes no 8-bit text has)
        return None
    try:
        text = data.decode("cp949")
    except UnicodeDecodeError:
        return None
    sample = text[:_SAMPLE_CHARS]
    syllables = [ch for ch in sample if "\uac00" <= ch <= "\ud7a3"]
    # Jamo stand alone in Korean too (ㅋㅋ, ㅠㅠ, a question's ㄱ. ㄴ. ㄷ.), but far less often than syllables;
    # Japanese text is half kana. (A text of mostly jamo, a list of consonants, reads as EUC-JP kana: the two are
    # the same bytes.)
    jamo = sum("\u3131" <= ch <= "\u318e" for ch in sample)
    distinct = set(syllables)
    rare = sum(not _in_euc_kr(syllable) for syllable in distinct)  # (똠, 햏, 뷁: a few in real text, not most)
    if jamo > len(syllables) * 0.5 + 2 or rare > len(distinct) * 0.3:
        return None
    return text


def _in_euc_kr(syllable: str) -> bool:
    """One of the 2,350 syllables of KS X 1001 (EUC-KR): rows B0-C8 of CP949, trail bytes A1-FE. (Python's euc_kr
    codec encodes every syllable, the others as jamo make-up sequences.)"""
    lead, trail = syllable.encode("cp949")
    return 0xB0 <= lead <= 0xC8 and 0xA1 <= trail <= 0xFE


def _unreadable(text: str) -> int:
    """Replacement characters, and private-use ones (CP932 maps some bytes no text has to them)."""
    return sum(ch == "\ufffd" or "\ue000" <= ch <= "\uf8ff" for ch in text)


def _damaged_utf8(data: bytes) -> tuple[str, tuple[str, ...]] | None:
    """UTF-8 with a few bad bytes (a file cut in the middle of a character, one byte flipped): read as UTF-8 with
    them replaced, when they are at most one in a hundred characters and the text's well-formed non-ASCII characters
    outnumber them. (It went on to the legacy encodings, and a Korean note came out as Windows-1252 mojibake.) A
    legacy text's non-ASCII bytes are almost never well-formed UTF-8, so it still goes on."""
    text = data.decode("utf-8", errors="replace")
    bad = text.count("\ufffd")
    well_formed = sum(ch > "\x7f" for ch in text) - bad
    if bad > max(1, len(text) // 100) or well_formed <= bad:
        return None
    return text, (f"{bad} undecodable byte sequence(s) of this UTF-8 text shown as \ufffd",)


def _partially(data: bytes, encodings: tuple[str, ...] = _PARTIAL) -> tuple[str, tuple[str, ...]] | None:
    """The reading with the fewest undecodable bytes, when they are few: they become U+FFFD, and a note says so."""
    readings = [(_unreadable(text), encoding, text)
                for encoding in encodings for text in [data.decode(encoding, errors="replace")]]
    bad, encoding, text = min(readings, key=lambda reading: reading[0])
    if bad > max(1, len(text) // 100):
        return None
    return text, (f"{bad} undecodable byte sequence(s) of this {encoding.upper()} text shown as \ufffd",) if bad else ()


def decode_text(data: bytes) -> tuple[str, tuple[str, ...]]:
    """Decode bytes of unknown encoding, with notes on what could not be read: a BOM, UTF-16 by its zero bytes,
    strict UTF-8, UTF-8 with a few bad bytes, strict CP949 that reads as Korean (the likeliest legacy text here, and
    charset-normalizer's weak spot in short texts), charset-normalizer among the encodings above, a reading with a
    few bad bytes replaced; else ExtractionFailed."""
    for bom, encoding in _BOMS:
        if data.startswith(bom):
            try:
                return data.decode(encoding), ()
            except UnicodeDecodeError:  # (a few bad bytes are marked and noted; more fail, as below)
                if (partial := _partially(data, (encoding,))) is not None:
                    return partial
                raise ExtractionFailed(NOT_TEXT_MESSAGE) from None
    if (utf16 := _utf16_without_bom(data)) is not None:  # (before UTF-8, which ASCII in UTF-16 also is)
        return utf16, ()
    try:
        return data.decode("utf-8"), ()
    except UnicodeDecodeError:
        pass
    if (damaged := _damaged_utf8(data)) is not None:
        return damaged
    if (korean := _korean(data)) is not None:
        return korean, ()
    # CP949 is out: it failed, or read as no Korean (charset-normalizer would still choose it for a short text)
    candidates = [encoding for encoding in _LEGACY if encoding != "cp949"]
    if (best := from_bytes(data, cp_isolation=candidates).best()) is not None:
        return str(best), ()
    if (partial := _partially(data)) is not None:
        return partial
    raise ExtractionFailed(NOT_TEXT_MESSAGE)


def extract_plain(data: bytes) -> ExtractResult:
    text, notes = decode_text(data)
    return ExtractResult(text=clean_text(text), backend="text", notes=notes)
