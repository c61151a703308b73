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
    the agent rolled back but some steps failed (see the timeline), or
    it did not run the rollback (refused it, or died running it: then
    the conductor asks again once it hears from the agent).

A finished restore whose host is not ``done`` or ``not_needed`` needs the
operator's attention there.
"""

from osbackup import restore_phases
from osbackup import states

ROLLBACK_KIND = restore_phases.ROLLBACK_KIND

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
#: A failed rollback that never ran (see unanswered).
_NOT_RUN = ('its agent did not run the rollback (see its error): the host '
            'may be half-restored; once the agent is up the rollback is '
            'asked for again')


def rollback_tasks(restore: dict, host: str) -> list[dict]:
    """The host's rollback tasks, oldest first."""
    return sorted((t for t in restore['tasks']
                   if t['kind'] == ROLLBACK_KIND and t['host'] == host),
                  key=lambda t: t['created_at'])


def unanswered(task: dict) -> bool:
    """Whether a rollback task ended without the rollback's own answer.

    It timed out, or failed without a step: refused (expired in a dead
    agent's queue) or cut short by the agent's death, whose start-up
    rollback then did the work. A rollback that ran reports its steps.
    """
    if task['status'] == states.TIMED_OUT:
        return True
    return task['status'] == states.FAILED and not (
        task.get('result') or {}).get('steps')


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
            if rollback == FAILED and unanswered(
                    rollback_tasks(restore, host)[-1]):
                attention = _NOT_RUN
        out.append({'host': host, 'rollback': rollback,
                    'attention': attention})
    return out


def needs_attention(restore: dict) -> list[dict]:
    """The hosts of a finished restore left in doubt."""
    return [h for h in hosts(restore) if h['attention']]
