"""Viewer write-back routes (/ingest/...)."""

urlpatterns: list = []
