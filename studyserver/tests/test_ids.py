"""studyserver.ids.parse_id: a row id is 1..BIGINT_MAX spelled in ASCII digits, nothing else."""

import pytest

from studyserver.ids import BIGINT_MAX, parse_id


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1", 1),
        ("42", 42),
        (str(BIGINT_MAX), BIGINT_MAX),  # the largest id PostgreSQL's bigint holds
    ],
)
def test_an_id_in_ascii_digits_up_to_the_largest_bigint_is_read(text, expected):
    assert parse_id(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        # out of range, or too long
        "0",
        "000",
        str(BIGINT_MAX + 1),
        "9" * 19,
        "0" + str(BIGINT_MAX),
        "9" * 5000,
        # other spellings, and no text at all
        "１",
        "+1",
        " 1",
        "1 ",
        "1_0",
        "-1",
        "1.0",
        "",
        None,
        1,
    ],
)
def test_anything_else_is_no_id(text):
    assert parse_id(text) is None
