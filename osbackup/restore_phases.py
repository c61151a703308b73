"""Restore phases: the one list the conductor, the agent and the CLI use.

A restore runs ``PHASES`` in order across hosts, one agent task per host
and phase (kind ``restore_<phase>``); ``ROLLBACK`` undoes what the phases
before it changed.
"""

PHASES: tuple[str, ...] = ('prepare', 'stop', 'cluster_stop', 'load_db',
                           'replace', 'bootstrap', 'rejoin', 'start',
                           'check', 'finish')
#: The phases only the members of a Galera cluster have work in
#: (conductor/galera_restore.py): stop every member's server, start one
#: as a new cluster, start the others and wait until all are Synced.
GALERA: tuple[str, ...] = ('cluster_stop', 'bootstrap', 'rejoin')
ROLLBACK = 'rollback'
#: Before the rollback of a cluster restore: every member stops its
#: server and puts its old data back, before any starts one again.
CLUSTER_UNDO = 'cluster_undo'
#: Every phase an agent runs, rollback included.
ALL: tuple[str, ...] = PHASES + (CLUSTER_UNDO, ROLLBACK)
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
