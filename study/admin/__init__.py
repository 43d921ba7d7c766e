"""Django admin for the study app, one module per area."""

from django.contrib import admin

from . import cards, documents, quizzes, sessions, tokens, topics, users  # noqa: F401  (registers the ModelAdmins)

# The server has no page at "/" (it is an API): without this the admin's "View site" link leads to a 404.
admin.site.site_url = None
