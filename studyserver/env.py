"""Typed readers for settings that come from the environment (12-factor).

A variable that is unset, empty or only whitespace means its default (compose files pass `${NAME:-}` as an
empty value). A value that cannot mean what its name says stops the start with one line naming the variable.
"""

import ipaddress
import os
import re
from urllib.parse import urlsplit

from django.core.exceptions import ImproperlyConfigured
from redis.connection import parse_url as parse_redis_url

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


def _raw(name: str) -> str | None:
    """The variable's text without surrounding whitespace, or None when it is unset or blank."""
    raw = os.environ.get(name)
    if raw is None or not raw.strip():
        return None
    return raw.strip()


def env_str(name: str, default: str = "") -> str:
    value = _raw(name)
    return default if value is None else value


def env_bool(name: str, default: bool = False) -> bool:
    value = _raw(name)
    if value is None:
        return default
    if (word := value.lower()) in _TRUE:
        return True
    if word in _FALSE:
        return False
    raise ImproperlyConfigured(f"{name} must be a boolean (true/false), got {value!r}")


def env_int(name: str, default: int, *, minimum: int | None = None, maximum: int | None = None) -> int:
    value = _raw(name)
    if value is None:
        return default
    try:
        number = int(value)
    except ValueError as exc:
        raise ImproperlyConfigured(f"{name} must be an integer, got {value!r}") from exc
    if (minimum is not None and number < minimum) or (maximum is not None and number > maximum):
        bounds = (f"between {minimum} and {maximum}" if minimum is not None and maximum is not None
                  else f"at least {minimum}" if minimum is not None else f"at most {maximum}")
        raise ImproperlyConfigured(f"{name} must be {bounds}, got {number}")
    return number


def env_list(name: str, default: list[str] | None = None) -> list[str]:
    value = _raw(name)
    if value is None:
        return list(default or [])
    return [item.strip() for item in value.split(",") if item.strip()]


_HOST_NAME = re.compile(r"^[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*$")
_DEFAULT_PORTS = {"http": 80, "https": 443}


def _origin(value: str) -> str | None:
    """`value` written as a browser sends its Origin (scheme and host in lower case, an IDN host in ASCII, no default
    port), or None when it is no http(s) origin (a path, a user, a wildcard, a bad port or host)."""
    try:
        parts = urlsplit(value)
        port = parts.port
    except ValueError:
        return None
    if parts.scheme not in _DEFAULT_PORTS or parts.username is not None or not parts.hostname \
            or parts.path or parts.query or parts.fragment or value.endswith((":", "?", "#")):
        return None
    host = parts.hostname
    if ":" in host:
        try:
            host = f"[{ipaddress.IPv6Address(host).compressed}]"
        except ValueError:
            return None
    else:
        try:
            host = host.encode("idna").decode("ascii")
        except UnicodeError:
            return None
        if not _HOST_NAME.match(host):
            return None
    if port is not None and port != _DEFAULT_PORTS[parts.scheme]:
        host += f":{port}"
    return f"{parts.scheme}://{host}"


def env_origins(name: str) -> list[str]:
    """Web origins, comma separated (https://viewer.example.com, http://localhost:5173), each read as a browser
    sends its Origin header, which is compared with them as text."""
    origins = []
    for value in env_list(name):
        origin = _origin(value)
        if origin is None:
            raise ImproperlyConfigured(f"{name} takes origins like https://viewer.example.com or "
                                       f"http://localhost:5173 (no path, not even a closing /), separated by commas; "
                                       f"got {value!r}")
        origins.append(origin)
    return origins


_RATE = re.compile(r"^[1-9]\d*/(s|sec|second|m|min|minute|h|hour|d|day)$")


def env_rate(name: str, default: str) -> str | None:
    """A DRF throttle rate ("20/min", "5/s", …; at least one request); "off" turns that throttle off (None)."""
    value = (_raw(name) or default).lower()
    if value == "off":
        return None
    if not _RATE.match(value):
        raise ImproperlyConfigured(f"{name} must be a rate like 20/min (or off), got {value!r}")
    return value


def checked_redis_url(url: str) -> None:
    """ValueError unless redis-py reads `url` as written: its parser drops a database that is no number
    (redis://host:6379/1x3 was database 0, the broker's in the README's example)."""
    parse_redis_url(url)
    parts = urlsplit(url)
    database = parts.path.strip("/")
    if parts.scheme in {"redis", "rediss"} and database and not database.isdigit():
        raise ValueError(f"the database after the host must be a number, not {database[:20]!r}")
