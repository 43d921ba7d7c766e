"""manage.py unlock_sign_in USERNAME: clear an account's failed sign-ins (THROTTLE_AUTH_ACCOUNT_RATE)."""

from django.core.cache import cache
from django.core.management.base import BaseCommand, CommandParser

from studyserver.throttling import AccountSignInThrottle


class Command(BaseCommand):
    help = (
        "Let an account sign in again now: clear the failed sign-ins counted against USERNAME in the current window "
        "(API token and admin login alike; any case or Unicode form of the name). Guesses that go on lock it again."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("username", help="The account's username, as it signs in.")

    def handle(self, *args, username: str, **options) -> None:
        throttle = AccountSignInThrottle(username)
        failures = cache.get(throttle.key) or 0
        cache.delete(throttle.key)
        self.stdout.write(f"cleared {failures} failed sign-in(s) of {username!r} in this window")
