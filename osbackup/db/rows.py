"""Turning catalogue rows into plain dicts, the catalogue's clock, retries."""

import datetime

from oslo_utils import timeutils


# Reports from many agents update neighbouring index entries at once;
# InnoDB then picks deadlock victims, whose whole transaction is safe to
# run again (every update is compare-and-set). On a Galera cluster, two
# conductors writing the same rows through different members lose one
# transaction to certification, reported as the same error 1213: every
# write of the catalogue is retried the same way.
def retry_deadlock(fn):
    """Retry ``fn`` on deadlocks and certification conflicts."""
    # oslo.db loads only with the query modules that decorate with it:
    # the light read path (db/light.py) imports this module too.
    from oslo_db import api as oslo_db_api
    return oslo_db_api.wrap_db_retry(max_retries=5,
                                     retry_on_deadlock=True)(fn)


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
