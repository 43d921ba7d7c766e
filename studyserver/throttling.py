"""DRF throttles whose rate is read from settings at request time (so `THROTTLE_*_RATE` overrides apply)."""

from rest_framework.settings import api_settings
from rest_framework.throttling import ScopedRateThrottle, SimpleRateThrottle


class RateFromSettings:
    """DRF reads DEFAULT_THROTTLE_RATES once, at import; this reads the scope's rate on each request
    (`off` → None: no limit)."""

    scope: str | None

    def get_rate(self) -> str | None:
        return api_settings.DEFAULT_THROTTLE_RATES.get(self.scope)


class SettingsScopedRateThrottle(RateFromSettings, ScopedRateThrottle):
    """The view's `throttle_scope`, at its current rate."""


class SettingsSimpleRateThrottle(RateFromSettings, SimpleRateThrottle):
    """A fixed `scope`, for code outside DRF views (the admin login)."""
