"""What a restore left on each host: was it rolled back there?

A failed restore rolls back on every host of its plan, but a host whose
agent is gone cannot: its rollback task times out and the host stays
half-restored until the agent comes back and rolls back from its own
journal. The restore's status alone cannot say that, so each host gets a
``rollback`` status, derived from the restore's rollback tasks (the one
record of what happened there):

``not_needed``
    the restore did not roll back (it succeeded, is still running, or
    failed before any host changed anything);
``pending``
    a rollback task is on its way or running on the host;
``done``
    the host's agent rolled back everything its journal listed (when the
    conductor asked, or at its own restart after a crash);
``timed_out``
    the agent did not answer: the host may be half-restored (units
    stopped, databases loaded, staging directories left). The conductor
    asks again once the agent is heard from;
``failed``
    the agent rolled back but some steps failed (see the timeline).

A finished restore whose host is not ``done`` or ``not_needed`` needs the
operator's attention there.
"""

from osbackup import states

ROLLBACK_KIND = 'restore_rollback'

NOT_NEEDED = 'not_needed'
PENDING = 'pending'
DONE = 'done'
TIMED_OUT = 'timed_out'
FAILED = 'failed'

_FINE = (NOT_NEEDED, DONE)

_ADVICE = {
    PENDING: 'rollback sent, waiting for the agent',
    TIMED_OUT: 'its agent did not roll back (it is down or silent): the '
               'host may be half-restored; start the agent, it rolls back '
               'from its journal and the restore records it',
    FAILED: 'rollback left steps undone (see the FAILED rollback steps); '
            'fix them by hand',
}


def rollback_tasks(restore: dict, host: str) -> list[dict]:
    """The host's rollback tasks, oldest first."""
    return sorted((t for t in restore['tasks']
                   if t['kind'] == ROLLBACK_KIND and t['host'] == host),
                  key=lambda t: t['created_at'])


def host_rollback(restore: dict, host: str) -> str:
    """The rollback status of one host of a restore (see module doc)."""
    tasks = rollback_tasks(restore, host)
    if not tasks:
        return NOT_NEEDED
    last = tasks[-1]['status']
    if last in states.TASK_ACTIVE:
        return PENDING
    if last == states.SUCCEEDED:
        return DONE
    if last == states.TIMED_OUT:
        return TIMED_OUT
    return FAILED


def hosts(restore: dict) -> list[dict]:
    """Per host of the plan: ``host``, ``rollback``, ``attention``."""
    out = []
    finished = restore['status'] != states.RUNNING
    for host in sorted(restore['plan'].get('hosts', {})):
        rollback = host_rollback(restore, host)
        attention = None
        if finished and rollback not in _FINE:
            attention = _ADVICE[rollback]
        out.append({'host': host, 'rollback': rollback,
                    'attention': attention})
    return out


def needs_attention(restore: dict) -> list[dict]:
    """The hosts of a finished restore left in doubt."""
    return [h for h in hosts(restore) if h['attention']]
