"""Turning catalogue rows into plain dicts, and the catalogue's clock."""

import datetime

from oslo_utils import timeutils


def now() -> datetime.datetime:
    """The conductor's clock, naive UTC, as stored in the catalogue."""
    return timeutils.utcnow()


def iso(value) -> str | None:
    return value.isoformat(timespec='seconds') + 'Z' if value else None


def seconds_between(start, end) -> float | None:
    """Seconds from ``start`` to ``end`` (ISO strings or datetimes)."""
    if not start or not end:
        return None
    start, end = (t if isinstance(t, datetime.datetime) else
                  datetime.datetime.fromisoformat(str(t).rstrip('Z'))
                  for t in (start, end))
    return max(0.0, (end - start).total_seconds())


def row(obj, *fields) -> dict:
    """Selected fields of a row; datetimes as ISO 8601 UTC strings."""
    out = {}
    for field in fields:
        value = getattr(obj, field)
        if isinstance(value, datetime.datetime):
            value = iso(value)
        out[field] = value
    return out
