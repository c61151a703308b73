"""Restore phases: the one list the conductor, the agent and the CLI use.

A restore runs ``PHASES`` in order across hosts, one agent task per host
and phase (kind ``restore_<phase>``); ``ROLLBACK`` undoes what the phases
before it changed.
"""

PHASES: tuple[str, ...] = ('prepare', 'stop', 'load_db', 'replace', 'start',
                           'check', 'finish')
ROLLBACK = 'rollback'
#: Every phase an agent runs, rollback included.
ALL: tuple[str, ...] = PHASES + (ROLLBACK,)
TASK_PREFIX = 'restore_'


def task_kind(phase: str) -> str:
    """The agent task kind that runs ``phase``."""
    return TASK_PREFIX + phase


def phase_of(kind: str) -> str:
    """The phase a ``restore_<phase>`` task kind runs."""
    return kind[len(TASK_PREFIX):] if kind.startswith(TASK_PREFIX) else kind


ROLLBACK_KIND = task_kind(ROLLBACK)
#: Task kinds after which a host holds nothing of the restore any more.
END_KINDS: tuple[str, ...] = (task_kind('finish'), ROLLBACK_KIND)
