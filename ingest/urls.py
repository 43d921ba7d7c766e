"""Viewer write-back routes (/ingest/...): every path answers with and without its trailing slash."""

from django.urls import re_path

from .api import IngestAttemptsView

urlpatterns = [
    re_path(r"^study/attempts/?$", IngestAttemptsView.as_view(), name="ingest-study-attempts"),
]
