"""Bounds of the times the server accepts."""

from datetime import UTC, datetime

# The earliest time a client or an admin may write. Every zone's UTC offset has been whole minutes since 1972; an
# earlier time renders in many zones with the seconds of a local mean time ("+08:27:52" in Asia/Seoul), which is
# not RFC 3339 (the schema's date-time), and no study record is that old.
EARLIEST_TIME = datetime(1972, 1, 1, tzinfo=UTC)
