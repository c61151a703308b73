"""Wait until a restore's started units have all stayed active.

A daemon that dies on a bad restored config often looks active for a
moment, so each unit must stay active for a settle window. The units are
watched together: the check costs one settle window for the host, not one
per unit one after another.
"""

import time
import typing

#: Seconds between polls of the units' states.
INTERVAL = 0.5


def wait_settled(units: typing.Sequence[str],
                 is_active: typing.Callable[[str], bool],
                 settle: float, timeout: float,
                 clock: typing.Callable[[], float] = time.monotonic,
                 sleep: typing.Callable[[float], None] = time.sleep,
                 ) -> dict[str, str | None]:
    """{unit: None when it settled, else why not}, in ``units`` order.

    A unit settles once it has been active for ``settle`` seconds without
    a break; one still unsettled ``timeout`` seconds after the call fails.
    Inactive units are not failed early: systemd may be restarting them.
    """
    deadline = clock() + timeout
    active_since: dict[str, float] = {}
    pending = list(units)
    while True:
        now = clock()
        for unit in list(pending):
            if not is_active(unit):
                active_since.pop(unit, None)
                continue
            since = active_since.setdefault(unit, now)
            if now - since >= settle:
                pending.remove(unit)
        if not pending or now >= deadline:
            break
        sleep(min(INTERVAL, max(0.0, deadline - now)))
    return {unit: ('did not stay active for %d s within %d s of its start'
                   % (settle, timeout) if unit in pending else None)
            for unit in units}
