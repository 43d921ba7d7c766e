#!/usr/bin/env python
"""Django's command-line utility for administrative tasks."""

import os
import sys


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "studyserver.settings")
    from django.conf import settings
    from django.core.exceptions import ImproperlyConfigured
    from django.core.management import execute_from_command_line

    try:
        settings.INSTALLED_APPS  # noqa: B018 (reads the environment: a value that cannot be used stops here)
    except ImproperlyConfigured as exc:
        sys.exit(f"Configuration error: {exc}")  # one line naming the variable, not a traceback ending in it
    execute_from_command_line(sys.argv)


if __name__ == "__main__":
    main()
