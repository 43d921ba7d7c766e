"""Pure learning rules shared by questions and cards: outcome, the SR ladder, pattern state.

No ORM here: every caller (quiz finalize, card rating, ingest) passes plain values in,
so each rule has exactly one implementation.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

CORRECT = "correct"
WRONG = "wrong"
UNSURE = "unsure"
SKIPPED = "skipped"
OUTCOMES = (CORRECT, WRONG, UNSURE, SKIPPED)
BAD_OUTCOMES = frozenset({WRONG, UNSURE})

INTERVAL_DAYS = {1: 3, 2: 7, 3: 14}
MASTERED = 4
FIRST_DUE_DAYS = 1

STABLE = "stable"
RECOVERED = "recovered"
REGRESSED = "regressed"
CHRONIC_WRONG = "chronic_wrong"
PATTERN_WRONG = "wrong"
PATTERN_WINDOW = 3


class InvalidAnswer(ValueError):
    """Nothing selected, not unsure and not skipped: not an answer."""


def derive_outcome(
    selected_choice: int | None, is_unsure: bool, correct_choice: int, *, skipped: bool = False
) -> str:
    """The one place an answer becomes an outcome."""
    if skipped:
        return SKIPPED
    if is_unsure:
        return UNSURE
    if selected_choice is None:
        raise InvalidAnswer("an answer needs selected_choice, is_unsure or skipped")
    return CORRECT if selected_choice == correct_choice else WRONG


@dataclass(frozen=True)
class LadderState:
    stage: int
    due_at: datetime | None


def first_due(now: datetime) -> LadderState:
    """Entering the review queue (review complete, or a first miss): stage 0, due tomorrow."""
    return LadderState(stage=0, due_at=now + timedelta(days=FIRST_DUE_DAYS))


def advance(stage: int, outcome: str, now: datetime, due_at: datetime | None = None) -> LadderState:
    """One step of the ladder. `due_at` is kept as it was for a skip."""
    if outcome not in OUTCOMES:
        raise ValueError(f"unknown outcome {outcome!r}")
    if not 0 <= stage <= MASTERED:
        raise ValueError(f"stage {stage} is outside 0..{MASTERED}")
    if outcome == SKIPPED:
        return LadderState(stage=stage, due_at=due_at)
    if outcome in BAD_OUTCOMES:
        return first_due(now)
    next_stage = min(stage + 1, MASTERED)
    if next_stage >= MASTERED:
        return LadderState(stage=MASTERED, due_at=None)
    return LadderState(stage=next_stage, due_at=now + timedelta(days=INTERVAL_DAYS[next_stage]))


def pattern_window(outcomes: Sequence[str]) -> list[str]:
    """The last ≤3 non-skipped outcomes, oldest first."""
    return [o for o in outcomes if o != SKIPPED][-PATTERN_WINDOW:]


def pattern_state(window: Sequence[str]) -> str | None:
    """Pattern of a question from its window (oldest → newest); None when there is no answer yet."""
    if not window:
        return None
    latest = window[-1]
    bad = sum(1 for o in window if o in BAD_OUTCOMES)
    if latest == CORRECT:
        return RECOVERED if bad else STABLE
    if len(window) >= 2 and window[-2] == CORRECT:
        return REGRESSED
    if bad >= 2:
        return CHRONIC_WRONG
    return PATTERN_WRONG
