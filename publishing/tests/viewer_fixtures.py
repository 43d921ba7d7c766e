"""Fixtures of the viewer channel shared by the publishing and ingest tests (imported by their conftest)."""

import pytest
from rest_framework.test import APIClient

VIEWER_TOKEN = "viewer-sync-token-for-tests"


@pytest.fixture(autouse=True)
def _viewer_settings(settings):
    """A configured viewer token and a throttle rate no test reaches unless it lowers it."""
    settings.VIEWER_SYNC_TOKEN = VIEWER_TOKEN
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]  # fast factories
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {**settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"], "viewer": "100000/min"},
    }
    return settings


@pytest.fixture
def viewer_client() -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {VIEWER_TOKEN}")
    return client
