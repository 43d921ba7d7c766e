"""POST /api/auth/token, token and session auth, 401 (not 403), and the auth rate limit."""

import threading
import uuid

import pytest
from django.conf import settings as django_settings
from django.contrib.auth.hashers import make_password
from django.core.cache import cache
from django.db import connections
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from studyserver.testing import fresh_address

pytestmark = pytest.mark.django_db

PASSWORD = "pw-for-tests-1"


def fresh_client() -> APIClient:
    """A client from its own address, so throttle counters never mix between tests."""
    return APIClient(REMOTE_ADDR=fresh_address())


@pytest.mark.parametrize("path", ["/api/auth/token", "/api/auth/token/"])
@pytest.mark.parametrize("fmt", ["json", "multipart"])
def test_token_for_good_credentials(user, path, fmt):
    response = fresh_client().post(path, {"username": user.username, "password": PASSWORD}, format=fmt)
    assert response.status_code == 200
    assert response.json() == {"token": Token.objects.get(user=user).key}


def test_token_authenticates(user):
    token = fresh_client().post("/api/auth/token", {"username": user.username, "password": PASSWORD}).json()["token"]
    client = fresh_client()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    assert client.get("/api/study-topics").status_code == 200


@pytest.mark.parametrize(
    "payload",
    [{"username": "nobody", "password": "x"}, {"username": "learner", "password": ""}, {}, {"username": "🙂" * 200}],
)
def test_wrong_credentials_are_400_invalid(user, payload):
    response = fresh_client().post("/api/auth/token", payload, format="json")
    assert response.status_code == 400
    assert response.json()["error_code"] == "invalid"
    assert "errors" in response.json()


def test_a_stale_token_or_session_beside_good_credentials_still_gets_the_token(user):
    """An app whose token was revoked may still send it when it logs in again, and a browser may carry an admin
    session (without the CSRF token): the exchange reads only the credentials. Authenticating the request first
    answered 401 / 403, which the schema does not declare for this operation either."""
    stale = fresh_client()
    stale.credentials(HTTP_AUTHORIZATION="Token revoked-long-ago")
    response = stale.post("/api/auth/token", {"username": user.username, "password": PASSWORD}, format="json")
    assert response.status_code == 200, response.content
    assert response.json() == {"token": Token.objects.get(user=user).key}

    browser = APIClient(enforce_csrf_checks=True)
    browser.force_login(user)
    response = browser.post("/api/auth/token", {"username": user.username, "password": PASSWORD}, format="json")
    assert response.status_code == 200, response.content


def test_wrong_password_is_400(user):
    response = fresh_client().post("/api/auth/token", {"username": user.username, "password": "nope"}, format="json")
    assert response.status_code == 400


def test_malformed_json_is_400():
    response = fresh_client().post("/api/auth/token", b"{not json", content_type="application/json")
    assert response.status_code == 400
    assert response.json()["error_code"] == "invalid"


def test_throttled_after_the_rate_with_retry_after(user, settings):
    settings.REST_FRAMEWORK = {
        **django_settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {**django_settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"], "auth": "2/min"},
    }
    client = fresh_client()
    for _ in range(2):
        assert client.post("/api/auth/token", {"username": user.username, "password": "bad"}).status_code == 400
    response = client.post("/api/auth/token", {"username": user.username, "password": PASSWORD})
    assert response.status_code == 429
    assert response.json()["error_code"] == "throttled"
    assert int(response["Retry-After"]) > 0
    # another address is not throttled
    assert fresh_client().post("/api/auth/token", {"username": user.username, "password": PASSWORD}).status_code == 200


def auth_rate(settings, rate: str) -> None:
    settings.REST_FRAMEWORK = {
        **django_settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {**django_settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"], "auth": rate},
    }


def test_a_rate_lowered_meanwhile_still_answers_retry_after(user, settings):
    """An operator lowers THROTTLE_AUTH_RATE and restarts while the counters in Redis survive: an address past the
    new rate got its 429 without Retry-After (DRF's history had no slot to wait for)."""
    auth_rate(settings, "10/min")
    client = fresh_client()
    for _ in range(6):
        assert client.post("/api/auth/token", {"username": user.username, "password": "bad"}).status_code == 400
    auth_rate(settings, "3/min")
    response = client.post("/api/auth/token", {"username": user.username, "password": PASSWORD})
    assert response.status_code == 429
    assert 1 <= int(response["Retry-After"]) <= 60


@pytest.mark.django_db(transaction=True)
def test_token_requests_sent_at_once_from_one_address_never_pass_the_rate(settings):
    """DRF's throttle read an address's history and wrote it back later: of 40 requests sent at once, up to 30 got
    past a rate of 5/min on Redis. Each now takes its slot in one atomic increment."""
    auth_rate(settings, "5/min")
    address = fresh_address()
    senders = 40
    barrier = threading.Barrier(senders)
    statuses: list[int] = []

    def send() -> None:
        try:
            barrier.wait()
            response = APIClient(REMOTE_ADDR=address).post("/api/auth/token", {"username": "someone", "password": ""},
                                                           format="json")
            statuses.append(response.status_code)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=send) for _ in range(senders)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(statuses) == senders
    assert sum(status != 429 for status in statuses) <= 5, sorted(statuses)


def test_a_forged_forwarded_for_does_not_escape_the_auth_throttle(user, settings):
    settings.REST_FRAMEWORK = {
        **django_settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {**django_settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"], "auth": "2/min"},
    }
    client = fresh_client()
    statuses = [
        client.post("/api/auth/token", {"username": user.username, "password": "bad"},
                    HTTP_X_FORWARDED_FOR=f"198.51.100.{n}").status_code
        for n in range(3)
    ]
    assert statuses == [400, 400, 429]


def test_unauthenticated_is_401_with_www_authenticate(anon_client):
    for path in ("/api/study-topics", "/api/documents", "/api/study-sessions", "/api/study-sessions/groups"):
        response = anon_client.get(path)
        assert response.status_code == 401, path
        assert response["WWW-Authenticate"] == "Token"
        assert response.json()["error_code"] == "not_authenticated"


@pytest.mark.parametrize("key", ["not-a-real-token", "abc\x00", "\x00"])
def test_bad_token_is_401(key):
    """Also a key no token can have: PostgreSQL cannot compare a text with a NUL byte (it answered 400)."""
    client = fresh_client()
    client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    response = client.get("/api/study-topics")
    assert response.status_code == 401
    assert response.json()["error_code"] == "authentication_failed"


def test_session_auth_works(user, client):
    client.force_login(user)
    assert client.get("/api/study-topics").status_code == 200


def test_delete_revokes_the_token_and_the_next_post_issues_a_new_one(user):
    credentials = {"username": user.username, "password": PASSWORD}
    old = fresh_client().post("/api/auth/token", credentials).json()["token"]
    client = fresh_client()
    client.credentials(HTTP_AUTHORIZATION=f"Token {old}")
    assert client.get("/api/study-topics").status_code == 200

    response = client.delete("/api/auth/token")

    assert response.status_code == 204
    assert not Token.objects.filter(user=user).exists()
    assert client.get("/api/study-topics").status_code == 401
    new = fresh_client().post("/api/auth/token", credentials).json()["token"]
    assert new != old


def test_a_user_made_inactive_is_refused_until_active_again_with_the_same_token(user):
    """What the README says of unticking "Active" in the admin: the token stops, is kept, and works again."""
    credentials = {"username": user.username, "password": PASSWORD}
    key = fresh_client().post("/api/auth/token", credentials).json()["token"]
    client = fresh_client()
    client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    type(user).objects.filter(pk=user.pk).update(is_active=False)
    assert client.get("/api/study-topics").status_code == 401
    assert fresh_client().post("/api/auth/token", credentials).status_code == 400  # and no new one
    type(user).objects.filter(pk=user.pk).update(is_active=True)
    assert client.get("/api/study-topics").status_code == 200
    assert Token.objects.get(user=user).key == key


def test_revoking_needs_the_caller_signed_in(user):
    Token.objects.create(user=user)
    assert fresh_client().delete("/api/auth/token").status_code == 401
    stranger = fresh_client()
    stranger.credentials(HTTP_AUTHORIZATION="Token not-a-token")
    assert stranger.delete("/api/auth/token").status_code == 401
    assert Token.objects.filter(user=user).exists()


def test_a_session_revokes_its_users_token(user, client):
    Token.objects.create(user=user)
    client.force_login(user)
    assert client.delete("/api/auth/token").status_code == 204
    assert not Token.objects.filter(user=user).exists()


def signed_in_app(user) -> tuple[APIClient, str]:
    key = fresh_client().post("/api/auth/token", {"username": user.username, "password": PASSWORD}).json()["token"]
    app = fresh_client()
    app.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    assert app.get("/api/study-topics").status_code == 200
    return app, key


def test_a_new_password_signs_every_app_out(user, other_user):
    app, _ = signed_in_app(user)
    Token.objects.create(user=other_user)

    user.set_password("a-new-password-2")
    user.save()

    assert app.get("/api/study-topics").status_code == 401
    assert not Token.objects.filter(user=user).exists()
    assert Token.objects.filter(user=other_user).exists()


def test_saving_a_user_without_a_new_password_keeps_the_token(user):
    app, _ = signed_in_app(user)
    user.first_name = "Renamed"
    user.save()
    assert app.get("/api/study-topics").status_code == 200


def test_the_admins_password_form_signs_the_users_apps_out(user, client):
    app, _ = signed_in_app(user)
    client.force_login(type(user).objects.create_superuser("boss", "boss@example.com", "pw-boss-1"))

    response = client.post(f"/admin/auth/user/{user.pk}/password/",
                           {"password1": "Another-pass-93", "password2": "Another-pass-93", "usable_password": "true"})

    assert response.status_code == 302, response.content[:2000]
    assert app.get("/api/study-topics").status_code == 401


def test_a_login_that_rehashes_the_same_password_keeps_the_token(user):
    """Django rehashes a stored password on login when its hasher wants it (here: a salt too short); that is no new
    password, and the user's other apps stay signed in."""
    app, key = signed_in_app(user)
    type(user).objects.filter(pk=user.pk).update(password=make_password(PASSWORD, salt="ab"))

    again = fresh_client().post("/api/auth/token", {"username": user.username, "password": PASSWORD})

    assert again.status_code == 200
    assert again.json()["token"] == key
    user.refresh_from_db()
    assert not user.password.startswith("md5$ab$")  # rehashed and saved
    assert app.get("/api/study-topics").status_code == 200


@pytest.mark.postgresql
@pytest.mark.django_db(transaction=True)
def test_a_login_racing_a_password_change_gets_no_token_that_outlives_it(user):
    """The login checked the old password (the change not committed yet); the change then revoked every token, and
    a token made after that by the login stayed valid under the new password."""
    from studyserver.testing import while_holding

    def change_password():
        changed = type(user).objects.get(pk=user.pk)
        changed.set_password("a-new-password-2")
        changed.save()  # and the hook revokes the tokens, inside this transaction

    response = while_holding(change_password, then=lambda: fresh_client().post(
        "/api/auth/token", {"username": user.username, "password": PASSWORD}))

    assert response.status_code == 400, response.content
    assert response.json()["error_code"] == "invalid"
    assert not Token.objects.filter(user=user).exists()
    assert fresh_client().post("/api/auth/token", {"username": user.username,
                                                   "password": "a-new-password-2"}).status_code == 200


@pytest.mark.postgresql
@pytest.mark.django_db(transaction=True)
def test_a_login_racing_another_logins_rehash_of_the_same_password_gets_its_token(user):
    """Two apps sign in at once and the other one's login rehashes the stored password (a newer hasher): the hash
    moved, the password did not; this login still succeeds."""
    from studyserver.testing import while_holding

    def rehash():
        type(user).objects.filter(pk=user.pk).update(password=make_password(PASSWORD))  # a new salt, same password

    response = while_holding(rehash, then=lambda: fresh_client().post(
        "/api/auth/token", {"username": user.username, "password": PASSWORD}))

    assert response.status_code == 200, response.content
    assert Token.objects.get(user=user).key == response.json()["token"]


def test_the_admin_turning_password_login_off_signs_the_users_apps_out(user, client):
    app, _ = signed_in_app(user)
    client.force_login(type(user).objects.create_superuser("boss", "boss@example.com", "pw-boss-1"))

    response = client.post(f"/admin/auth/user/{user.pk}/password/", {"usable_password": "false",
                                                                     "unset-password": "1"})

    assert response.status_code == 302, response.content[:2000]
    user.refresh_from_db()
    assert not user.has_usable_password()
    assert app.get("/api/study-topics").status_code == 401


def test_an_account_without_a_password_keeps_its_token_when_saved(user):
    """An API-only account (no usable password, a token made by staff): editing it signs nothing out."""
    user.set_unusable_password()
    user.save()
    key = Token.objects.create(user=user).key
    user.first_name = "Renamed"
    user.save()
    assert Token.objects.get(user=user).key == key


# --- failed sign-ins per account, from every address together ------------------------------------------------

DAY = 24 * 3600
NOW = 1_780_000_000 - 1_780_000_000 % DAY + 3600  # an hour into a day's window


@pytest.fixture
def account_rate(settings, monkeypatch):
    """Turn the per-account throttle on at 3 failures a day (conftest turns it off for every other test), its clock
    held an hour into a window: no test crosses into the next one unless it moves the clock (`account_rate.now`),
    and Retry-After is known."""
    from studyserver.throttling import AccountSignInThrottle

    settings.REST_FRAMEWORK = {
        **django_settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {
            **django_settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"], "auth": "100/min", "auth_account": "3/day",
        },
    }

    class Clock:
        now = NOW

    monkeypatch.setattr(AccountSignInThrottle, "timer", lambda self: Clock.now)
    return Clock


@pytest.fixture
def own_user(db):
    """A user whose username no other test or earlier run has used: its failure counter is its own."""
    from study.tests.factories import UserFactory

    user = UserFactory(username=f"acct-{uuid.uuid4().hex[:12]}")
    user.set_password(PASSWORD)
    user.save()
    return user


def token_for(username, password: str = PASSWORD):
    return fresh_client().post("/api/auth/token", {"username": username, "password": password}, format="json")


def lock(username: str) -> None:
    assert [token_for(username, f"guess-{n}").status_code for n in range(3)] == [400, 400, 400]


def test_guesses_from_many_addresses_lock_the_account_not_the_others(own_user, other_user, account_rate):
    lock(own_user.username)  # three addresses
    # a fourth address, even with the right password: refused (a guess must not learn it was right)
    blocked = token_for(own_user.username)
    assert blocked.status_code == 429
    assert blocked.json()["error_code"] == "throttled"
    assert blocked["Retry-After"] == str(DAY - 3600)  # until the window ends
    assert not Token.objects.filter(user=own_user).exists()
    # another account signs in as ever
    other_user.set_password(PASSWORD)
    other_user.save()
    assert token_for(other_user.username).status_code == 200


@pytest.mark.parametrize("spelling", [
    lambda name: name + " ", lambda name: " " + name, lambda name: "\u00a0" + name + "\t",  # trimmed by DRF
    str.upper, lambda name: name.replace("acct", "ａｃｃｔ"),  # case, a compatibility form (NFKC folds it)
], ids=["trailing-space", "leading-space", "nbsp-tab", "upper", "fullwidth"])
def test_no_spelling_of_a_locked_name_gets_past_the_lock(own_user, account_rate, spelling):
    """The lock was looked up under the name as sent, the failures counted under the name DRF trimmed: one
    space after the name skipped the lock, and the right password got a token."""
    lock(own_user.username)
    assert token_for(spelling(own_user.username)).status_code == 429


def test_a_numeric_username_sent_as_a_json_number_is_locked_too(db, account_rate):
    from study.tests.factories import UserFactory

    number = 10**11 + uuid.uuid4().int % 10**11
    student = UserFactory(username=str(number))
    student.set_password(PASSWORD)
    student.save()
    lock(student.username)
    assert token_for(number).status_code == 429  # DRF reads the number as the text


def test_only_failures_count(own_user, account_rate):
    for _ in range(5):
        assert token_for(own_user.username).status_code == 200
    assert token_for(own_user.username, "wrong").status_code == 400  # the slots the successes took were given back


@pytest.mark.parametrize("door", ["api", "admin"])
def test_sign_ins_the_database_could_not_check_do_not_count(own_user, account_rate, client, monkeypatch, door):
    """The database away: each sign-in answers 503 with Retry-After, and an app that obeys it retried its way into
    the account's lock (the right password then answered 429 for the rest of the window)."""
    from django.contrib.auth.backends import ModelBackend
    from django.db import InterfaceError

    own_user.is_staff = True
    own_user.save()

    def database_away(self, request, username=None, password=None, **kwargs):
        raise InterfaceError("connection already closed")

    with monkeypatch.context() as patched:
        patched.setattr(ModelBackend, "authenticate", database_away)
        for _ in range(4):  # more than the 3 failures the account may have
            if door == "api":
                response = token_for(own_user.username)
            else:
                response = client.post("/admin/login/", {"username": own_user.username, "password": PASSWORD},
                                       REMOTE_ADDR=fresh_address())
            assert response.status_code == 503
    assert token_for(own_user.username, "wrong").status_code == 400  # no slot was kept: not locked
    assert token_for(own_user.username).status_code == 200


def test_a_locked_account_keeps_its_token(own_user, account_rate):
    token = token_for(own_user.username).json()["token"]
    lock(own_user.username)
    app = fresh_client()
    app.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    assert app.get("/api/study-topics").status_code == 200


def test_admin_login_failures_count_against_the_account_too(own_user, account_rate, client):
    own_user.is_staff = True
    own_user.save()
    for n in range(2):
        response = client.post("/admin/login/", {"username": own_user.username, "password": f"guess-{n}"},
                               REMOTE_ADDR=fresh_address())
        assert response.status_code == 200  # the form again, with its error
    # the third failure comes through the API: both count in one counter
    assert token_for(own_user.username, "g").status_code == 400
    for spelling in (own_user.username, f" {own_user.username} ", own_user.username.replace("acct", "ａｃｃｔ")):
        blocked = client.post("/admin/login/", {"username": spelling, "password": PASSWORD},
                              REMOTE_ADDR=fresh_address())
        assert blocked.status_code == 429 and blocked["Retry-After"] == str(DAY - 3600)
    assert "_auth_user_id" not in client.session


def test_an_operator_unlocks_an_account(own_user, account_rate):
    from io import StringIO

    from django.core.management import call_command

    from studyserver.caches import cache_is_shared

    if not cache_is_shared():
        pytest.skip("needs REDIS_URL: the local-memory cache is the process's own")  # (see the next test)
    lock(own_user.username)
    assert token_for(own_user.username).status_code == 429
    out = StringIO()
    call_command("unlock_sign_in", own_user.username.upper(), stdout=out)
    assert out.getvalue() == (f"cleared 3 failed sign-in(s) of '{own_user.username.upper()}' in this window "
                              "(no user has exactly this name)\n")  # (the count folds the case; Django's names don't)
    assert token_for(own_user.username).status_code == 200
    lock(own_user.username)
    call_command("unlock_sign_in", own_user.username, stdout=(quiet := StringIO()), verbosity=0)
    assert quiet.getvalue() == ""  # -v 0, as the other commands: nothing but errors
    assert token_for(own_user.username).status_code == 200


def test_an_operator_unlocks_a_name_given_with_surrounding_spaces(own_user, account_rate):
    """The key trims the name as the sign-in forms do: `unlock_sign_in " name"` clears the same counter."""
    from io import StringIO

    from django.core.management import call_command

    from studyserver.caches import cache_is_shared

    if not cache_is_shared():
        pytest.skip("needs REDIS_URL: the local-memory cache is the process's own")
    lock(own_user.username)
    call_command("unlock_sign_in", f"  {own_user.username}\t", stdout=StringIO())
    assert token_for(own_user.username).status_code == 200


def test_the_next_window_starts_without_the_failures_of_the_last(own_user, account_rate):
    """Fixed windows of the rate's period: a lock ends with its window, not a period after the last failure."""
    window_start = NOW - 3600
    lock(own_user.username)
    account_rate.now = window_start + DAY - 1  # the window's last second: still locked
    assert token_for(own_user.username).status_code == 429
    account_rate.now = window_start + DAY  # the next window
    assert token_for(own_user.username).status_code == 200


def test_retry_after_counts_down_to_the_end_of_the_window(own_user, account_rate):
    """Retry-After is what is left of the window (at least a second), not the whole period."""
    window_start = NOW - 3600
    lock(own_user.username)
    for now, wait in ((window_start + DAY - 100, 100), (window_start + DAY - 0.25, 1)):
        account_rate.now = now
        blocked = token_for(own_user.username)
        assert (blocked.status_code, blocked["Retry-After"]) == (429, str(wait)), now


def test_unlocking_without_a_shared_cache_says_it_cannot(settings):
    """Each web process then counts in its own memory: the command cleared its own, empty cache and said it had
    cleared 0, while the account stayed locked."""
    from django.core.management import CommandError, call_command

    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
    with pytest.raises(CommandError, match="restart the web server"):
        call_command("unlock_sign_in", "anyone")


def test_sign_ins_at_the_same_moment_never_pass_the_limit_together(own_user, account_rate):
    """Each takes its slot in one atomic increment before its password is checked: reading the count first let
    every sign-in in flight at the limit through."""
    from studyserver.throttling import AccountSignInThrottle, SignInLocked

    barrier = threading.Barrier(6)
    outcomes: list[str] = []

    def sign_in() -> None:
        barrier.wait()
        try:
            AccountSignInThrottle(own_user.username).take()
            outcomes.append("checked")
        except SignInLocked:
            outcomes.append("locked")

    threads = [threading.Thread(target=sign_in) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes) == ["checked"] * 3 + ["locked"] * 3
    assert cache.get(AccountSignInThrottle(own_user.username).key) == 3  # the refused ones took nothing


def test_the_account_throttle_lets_sign_ins_through_while_the_cache_is_down(own_user, account_rate, settings,
                                                                             caplog):
    settings.CACHES = {"default": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": "redis://127.0.0.1:1/0",
        "OPTIONS": {"socket_connect_timeout": 0.2, "socket_timeout": 0.2},
    }}
    settings.REST_FRAMEWORK = {
        **django_settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {**django_settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"], "auth": None},
    }
    assert token_for(own_user.username, "g").status_code == 400
    assert token_for(own_user.username).status_code == 200
    assert "throttle auth_account not applied" in caplog.text


def test_a_slot_whose_window_expired_meanwhile_is_given_back_without_error(own_user, account_rate):
    """A sign-in checked as its window's key expires (at most a second after the window ends) finds nothing to give
    back: `decr` of a missing key raised, and the right password got a 500."""
    from studyserver.throttling import AccountSignInThrottle

    throttle = AccountSignInThrottle(own_user.username)
    throttle.take()
    cache.delete(throttle.key)  # expired meanwhile
    throttle.give_back()
    assert cache.get(throttle.key) is None
