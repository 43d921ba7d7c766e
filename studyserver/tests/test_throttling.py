"""The per-account sign-in throttle (studyserver.throttling.AccountSignInThrottle): its windows, its key, its
Retry-After. The API's and the admin's use of it are in study/tests/api/test_auth.py."""

import uuid
from io import StringIO

import pytest
from django.conf import settings as django_settings
from django.core.management import call_command
from rest_framework.test import APIClient

from studyserver.caches import cache_is_shared
from studyserver.testing import fresh_address
from studyserver.throttling import AccountSignInThrottle

pytestmark = pytest.mark.django_db

PASSWORD = "pw-for-tests-1"
DAY = 24 * 3600
WINDOW_START = 1_780_000_000 - 1_780_000_000 % DAY  # a day's window starts here


@pytest.fixture
def clock(settings, monkeypatch):
    """The account throttle on at 3 failures a day, its clock set by the test (`clock.now = …`)."""
    settings.REST_FRAMEWORK = {
        **django_settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {
            **django_settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"],
            "auth": "100/min",
            "auth_account": "3/day",
        },
    }

    class Clock:
        now = WINDOW_START + 3600

    monkeypatch.setattr(AccountSignInThrottle, "timer", lambda self: Clock.now)
    return Clock


@pytest.fixture
def own_user(db):
    """A username no other test or earlier run has used: its failure counter is its own."""
    from study.tests.factories import UserFactory

    user = UserFactory(username=f"acct-{uuid.uuid4().hex[:12]}")
    user.set_password(PASSWORD)
    user.save()
    return user


def token_for(username, password: str = PASSWORD):
    client = APIClient(REMOTE_ADDR=fresh_address())
    return client.post("/api/auth/token", {"username": username, "password": password}, format="json")


def lock(username: str) -> None:
    assert [token_for(username, f"guess-{n}").status_code for n in range(3)] == [400, 400, 400]


def test_the_next_window_starts_without_the_failures_of_the_last(own_user, clock):
    """Fixed windows of the rate's period: a lock ends with its window, not a period after the last failure."""
    lock(own_user.username)
    clock.now = WINDOW_START + DAY - 1  # the window's last second: still locked
    assert token_for(own_user.username).status_code == 429
    clock.now = WINDOW_START + DAY  # the next window
    assert token_for(own_user.username).status_code == 200


def test_retry_after_counts_down_to_the_end_of_the_window(own_user, clock):
    """Retry-After is what is left of the window (at least a second), not the whole period."""
    lock(own_user.username)
    for now, wait in (
        (WINDOW_START + 3600, DAY - 3600),
        (WINDOW_START + DAY - 100, 100),
        (WINDOW_START + DAY - 0.25, 1),
    ):
        clock.now = now
        blocked = token_for(own_user.username)
        assert (blocked.status_code, blocked["Retry-After"]) == (429, str(wait)), now


def test_guesses_under_a_compatibility_spelling_lock_the_name(own_user, clock):
    """The key folds the Unicode form (NFKC) and the case: failures sent as fullwidth or upper-case letters count
    against the account (test_auth's "fullwidth" spelling is NFKD, which is plain ASCII again)."""
    fullwidth = own_user.username.replace("acct", "ａｃｃｔ")
    assert fullwidth != own_user.username
    for spelling in (fullwidth, fullwidth.upper(), own_user.username.upper()):
        assert token_for(spelling, "guess").status_code == 400
    assert token_for(own_user.username).status_code == 429


def test_an_operator_unlocks_a_name_given_with_surrounding_spaces(own_user, clock):
    """The key trims the name as the sign-in forms do: `unlock_sign_in " name"` clears the same counter."""
    if not cache_is_shared():
        pytest.skip("needs REDIS_URL: the local-memory cache is the process's own")
    lock(own_user.username)
    call_command("unlock_sign_in", f"  {own_user.username}\t", stdout=StringIO())
    assert token_for(own_user.username).status_code == 200
