"""The pure learning rules: outcome derivation, the SR ladder, pattern state."""

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from study import scheduling
from study.scheduling import (
    CHRONIC_WRONG,
    CORRECT,
    MASTERED,
    PATTERN_WRONG,
    RECOVERED,
    REGRESSED,
    SKIPPED,
    STABLE,
    UNSURE,
    WRONG,
    InvalidAnswer,
    LadderState,
    advance,
    derive_outcome,
    first_due,
    pattern_state,
    pattern_window,
)

NOW = datetime(2025, 3, 1, 9, 0, tzinfo=UTC)
EARLIER_DUE = NOW - timedelta(days=2)


# --- derive_outcome ------------------------------------------------------------------------

def test_derive_outcome_correct_wrong_unsure_skipped():
    assert derive_outcome(2, False, 2) == CORRECT
    assert derive_outcome(3, False, 2) == WRONG
    assert derive_outcome(None, True, 2) == UNSURE
    assert derive_outcome(2, True, 2) == UNSURE  # unsure wins even over the right choice
    assert derive_outcome(None, False, 2, skipped=True) == SKIPPED
    assert derive_outcome(1, True, 2, skipped=True) == SKIPPED


def test_derive_outcome_nothing_selected_is_invalid():
    with pytest.raises(InvalidAnswer):
        derive_outcome(None, False, 1)
    assert issubclass(InvalidAnswer, ValueError)


# --- the ladder: every (stage x outcome) cell ---------------------------------------------

@pytest.mark.parametrize(
    ("stage", "expected_stage", "expected_days"),
    [(0, 1, 3), (1, 2, 7), (2, 3, 14), (3, 4, None), (4, 4, None)],
)
def test_advance_correct(stage, expected_stage, expected_days):
    state = advance(stage, CORRECT, NOW, EARLIER_DUE)
    assert state.stage == expected_stage
    assert state.due_at == (None if expected_days is None else NOW + timedelta(days=expected_days))


@pytest.mark.parametrize("stage", [0, 1, 2, 3, 4])
@pytest.mark.parametrize("outcome", [WRONG, UNSURE])
def test_advance_bad_outcome_restarts_at_stage_0_due_tomorrow(stage, outcome):
    assert advance(stage, outcome, NOW, EARLIER_DUE) == LadderState(stage=0, due_at=NOW + timedelta(days=1))


@pytest.mark.parametrize("stage", [0, 1, 2, 3, 4])
def test_advance_skipped_changes_nothing(stage):
    assert advance(stage, SKIPPED, NOW, EARLIER_DUE) == LadderState(stage=stage, due_at=EARLIER_DUE)
    assert advance(stage, SKIPPED, NOW, None) == LadderState(stage=stage, due_at=None)


def test_mastery_is_stage_4_with_no_due_date():
    state = LadderState(stage=0, due_at=NOW)
    for expected in (1, 2, 3):
        state = advance(state.stage, CORRECT, NOW, state.due_at)
        assert state.stage == expected and state.due_at is not None
    state = advance(state.stage, CORRECT, NOW, state.due_at)
    assert state == LadderState(stage=MASTERED, due_at=None)


def test_interval_table_and_first_due():
    assert scheduling.INTERVAL_DAYS == {1: 3, 2: 7, 3: 14}
    assert first_due(NOW) == LadderState(stage=0, due_at=NOW + timedelta(days=1))


def test_advance_rejects_unknown_outcome_and_stage():
    with pytest.raises(ValueError, match="unknown outcome"):
        advance(0, "maybe", NOW)
    with pytest.raises(ValueError, match="outside"):
        advance(5, CORRECT, NOW)
    with pytest.raises(ValueError, match="outside"):
        advance(-1, WRONG, NOW)


@given(
    stage=st.integers(min_value=0, max_value=4),
    outcomes=st.lists(st.sampled_from([CORRECT, WRONG, UNSURE, SKIPPED]), max_size=30),
)
def test_ladder_invariants(stage, outcomes):
    state = LadderState(stage=stage, due_at=None if stage == MASTERED else NOW)
    for outcome in outcomes:
        before = state
        state = advance(state.stage, outcome, NOW, state.due_at)
        assert 0 <= state.stage <= MASTERED
        if outcome == SKIPPED:
            assert state == before
        elif outcome in (WRONG, UNSURE):
            assert state == LadderState(stage=0, due_at=NOW + timedelta(days=1))
        else:
            assert state.stage == min(before.stage + 1, MASTERED)
        assert (state.due_at is None) == (state.stage == MASTERED)


# --- pattern -------------------------------------------------------------------------------

@pytest.mark.parametrize(
    ("window", "expected"),
    [
        ([], None),
        ([CORRECT], STABLE),
        ([CORRECT, CORRECT, CORRECT], STABLE),
        ([WRONG, CORRECT], RECOVERED),
        ([UNSURE, CORRECT, CORRECT], RECOVERED),
        ([CORRECT, WRONG], REGRESSED),
        ([WRONG, CORRECT, UNSURE], REGRESSED),
        ([WRONG, WRONG], CHRONIC_WRONG),
        ([WRONG, UNSURE], CHRONIC_WRONG),
        ([CORRECT, UNSURE, WRONG], CHRONIC_WRONG),
        ([WRONG], PATTERN_WRONG),
        ([UNSURE], PATTERN_WRONG),
    ],
)
def test_pattern_state(window, expected):
    assert pattern_state(window) == expected


def test_pattern_window_keeps_last_three_non_skipped_oldest_first():
    assert pattern_window([WRONG, CORRECT, SKIPPED, UNSURE, SKIPPED, CORRECT]) == [CORRECT, UNSURE, CORRECT]
    assert pattern_window([SKIPPED, SKIPPED]) == []
    assert pattern_window([WRONG, WRONG, WRONG, CORRECT]) == [WRONG, WRONG, CORRECT]


@given(st.lists(st.sampled_from([CORRECT, WRONG, UNSURE, SKIPPED]), max_size=12))
def test_pattern_window_invariants(outcomes):
    window = pattern_window(outcomes)
    assert len(window) <= 3 and SKIPPED not in window
    state = pattern_state(window)
    assert (state is None) == (not window)
    if window and window[-1] == CORRECT:
        assert state in (STABLE, RECOVERED)
    elif window:
        assert state in (REGRESSED, CHRONIC_WRONG, PATTERN_WRONG)
