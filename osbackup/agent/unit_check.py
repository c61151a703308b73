"""Wait until a restore's started units have all stayed active.

A daemon that dies on a bad restored config often looks active for a
moment, so each unit must stay active for a settle window. The units are
watched together: the check costs one settle window for the host, not one
per unit one after another.
"""

import concurrent.futures
import time
import typing

#: Seconds between polls of the units' states, at most.
INTERVAL = 0.5
#: Units asked for their state at once.
MAX_PARALLEL = 8


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
    # The units are asked together, and the last poll falls when the next
    # window closes: the check costs the settle window, not a poll round
    # per unit on top of it.
    with concurrent.futures.ThreadPoolExecutor(
            max(1, min(MAX_PARALLEL, len(pending))),
            thread_name_prefix='osbackup-unit-check') as pool:
        while True:
            now = clock()
            active = dict(zip(pending, pool.map(is_active, pending)))
            for unit in list(pending):
                if not active[unit]:
                    active_since.pop(unit, None)
                    continue
                since = active_since.setdefault(unit, now)
                if now - since >= settle:
                    pending.remove(unit)
            if not pending or now >= deadline:
                break
            due = min((active_since[u] + settle for u in pending
                       if u in active_since), default=now + INTERVAL)
            sleep(max(0.0, min(INTERVAL, due - now, deadline - now)))
    return {unit: ('did not stay active for %d s within %d s of its start'
                   % (settle, timeout) if unit in pending else None)
            for unit in units}
