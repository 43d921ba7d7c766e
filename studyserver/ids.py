"""Row ids read from text (a URL, a form, an action's selection): ASCII digits only.

int() alone also reads "１" (fullwidth), " 1", "+1" and "1_0" as numbers, other spellings of the same id, and
raises ValueError on a text of over 4,300 digits.
"""

BIGINT_MAX = 2**63 - 1


def parse_id(text: str | None) -> int | None:
    """The id `text` spells (1..BIGINT_MAX in ASCII digits), else None."""
    if not isinstance(text, str) or not (len(text) <= 19 and text.isascii() and text.isdigit()):
        return None
    number = int(text)
    return number if 1 <= number <= BIGINT_MAX else None
