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
#: A Galera member's role in those phases (plan['galera']['role']): it
#: starts the new cluster, joins it, or takes part in a recovery.
BOOTSTRAP, JOIN, RECOVER = 'bootstrap', 'join', 'recover'
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


def database_phase(plan_host: dict) -> str:
    """The phase in which a host of a plan loads its database dumps.

    ``load_db``, except in a restore that recovers a Galera cluster that
    was down: the dumps need a running cluster, so they load at the end
    of ``rejoin``, on the member ``load_on`` names.
    """
    cluster = plan_host.get('galera') or {}
    if cluster.get('role') == RECOVER and cluster.get('load_on'):
        return 'rejoin'
    return 'load_db'
