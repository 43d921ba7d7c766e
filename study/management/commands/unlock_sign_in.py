"""manage.py unlock_sign_in USERNAME: clear an account's failed sign-ins (THROTTLE_AUTH_ACCOUNT_RATE)."""

from django.contrib.auth import get_user_model
from django.core.cache import cache
from django.core.management.base import BaseCommand, CommandError, CommandParser

from studyserver.caches import CACHE_ERRORS, cache_is_shared
from studyserver.throttling import AccountSignInThrottle


class Command(BaseCommand):
    help = (
        "Let an account sign in again now: clear the failed sign-ins counted against USERNAME in the current window "
        "(API token and admin login alike; any case or Unicode form of the name). Guesses that go on lock it again."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("username", help="The account's username, as it signs in.")

    def handle(self, *args, username: str, **options) -> None:
        if not cache_is_shared():
            raise CommandError(
                "Without REDIS_URL each web process counts sign-ins in its own memory, which this command cannot "
                "reach: restart the web server to clear every count (or set REDIS_URL)."
            )
        throttle = AccountSignInThrottle(username)
        try:
            failures = cache.get(throttle.key) or 0
            cache.delete(throttle.key)
        except CACHE_ERRORS as exc:
            raise CommandError(f"The cache (REDIS_URL) is unreachable: {type(exc).__name__}: {exc}") from None
        if options["verbosity"] == 0:
            return
        known = get_user_model().objects.filter(username=username.strip()).exists()
        self.stdout.write(f"cleared {failures} failed sign-in(s) of {username!r} in this window"
                          + ("" if known else " (no user has exactly this name)"))
