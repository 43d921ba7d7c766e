from publishing.tests.viewer_fixtures import _viewer_settings, viewer_client  # noqa: F401
