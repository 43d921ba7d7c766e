"""WSGI entry point (gunicorn studyserver.wsgi)."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "studyserver.settings")
application = get_wsgi_application()
