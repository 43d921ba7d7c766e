"""Create (or keep) the admin user of a demo install and print how to log in."""

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from rest_framework.authtoken.models import Token

from studyserver.env import env_str


class Command(BaseCommand):
    help = "Create a superuser from DEMO_ADMIN_USER / DEMO_ADMIN_PASSWORD (defaults admin / admin) if missing."

    def handle(self, *args, **options) -> None:
        username = env_str("DEMO_ADMIN_USER", "admin")  # blank means the default, as for every variable
        password = env_str("DEMO_ADMIN_PASSWORD", "admin")
        User = get_user_model()
        user, created = User.objects.get_or_create(
            username=username, defaults={"is_staff": True, "is_superuser": True, "email": f"{username}@localhost"}
        )
        if created:
            user.set_password(password)
            user.save(update_fields=["password"])
        elif not (user.is_staff and user.is_superuser):
            # Never hand superuser rights to an existing account (a learner's) because of its name.
            raise CommandError(
                f"A user {username!r} exists and is not a superuser; set DEMO_ADMIN_USER to another name "
                "(or make it one yourself: tick its Staff and Superuser status on its page in the admin)."
            )
        token, _ = Token.objects.get_or_create(user=user)
        state = "created" if created else "exists (password unchanged)"
        self.stdout.write(f"Admin user {username!r} {state}; password: {password if created else '(as set before)'}")
        self.stdout.write(f"API token for {username!r}: {token.key}")
