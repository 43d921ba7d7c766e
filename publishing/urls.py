"""Viewer channel routes (/publish/...): every path answers with and without its trailing slash."""

from django.urls import re_path

from .api import FeedView

urlpatterns = [
    re_path(r"^feed/?$", FeedView.as_view(), name="publish-feed"),
]
