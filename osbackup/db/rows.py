"""Turning catalogue rows into plain dicts, and the catalogue's clock."""

import datetime

from oslo_utils import timeutils


def now() -> datetime.datetime:
    """The conductor's clock, naive UTC, as stored in the catalogue."""
    return timeutils.utcnow()


def iso(value) -> str | None:
    return value.isoformat(timespec='seconds') + 'Z' if value else None


def row(obj, *fields) -> dict:
    """Selected fields of a row; datetimes as ISO 8601 UTC strings."""
    out = {}
    for field in fields:
        value = getattr(obj, field)
        if isinstance(value, datetime.datetime):
            value = iso(value)
        out[field] = value
    return out
