"""What an agents row means: its fields for display and its state.

Shared by the full catalogue (agent_api.py) and the light read path
(light.py), so both say the same of the same row.
"""

import datetime

from osbackup import states

AGENT_FIELDS = ('host', 'version', 'info', 'last_heartbeat', 'stopped_at',
                'clock_offset')
#: Columns of agent_rejections that ``agent list`` shows.
REJECTION_FIELDS = ('host', 'reason', 'count', 'first_at', 'last_at')


def state(row, now: datetime.datetime, down_after: int) -> str:
    """The state of one agents row (see agent_api's docstring)."""
    if row.stopped_at is not None:
        return states.STOPPED
    if row.skewed_at is not None and row.skewed_at >= row.last_heartbeat \
            and (now - row.skewed_at).total_seconds() <= down_after:
        return states.SKEWED
    if (now - row.last_heartbeat).total_seconds() <= down_after:
        return states.UP
    return states.DOWN
