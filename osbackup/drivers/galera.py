"""Galera membership of the local MariaDB server, and desync during a copy.

The mysql and mariabackup drivers share this: they read the node's wsrep
state for the heartbeat (the conductor groups agents by cluster and picks
the member a backup runs on), check it again when a backup starts (the
heartbeat may be stale), and a physical copy desyncs the node so that a
busy mariadb-backup does not throttle the whole cluster by flow control.

A desync is journalled in ``<state_path>/agent/galera-desync.json`` before
``SET GLOBAL wsrep_desync=ON``: an agent killed during the copy puts the
node back in sync when it starts again (``recover``).
"""

import contextlib
import dataclasses
import json
import os
import typing

from oslo_log import log as logging

from osbackup import durable
from osbackup import exception

LOG = logging.getLogger(__name__)

SYNCED = 'Synced'
_STATUS = ('wsrep_cluster_size', 'wsrep_local_state_comment',
           'wsrep_cluster_state_uuid', 'wsrep_last_committed', 'wsrep_ready',
           'wsrep_cluster_status', 'Threads_connected')
JOURNAL = 'galera-desync.json'
#: The last membership seen, reported while the server does not answer.
MEMBER = 'galera-member.json'
UNREACHABLE = 'unreachable'

Query = typing.Callable[[str], list]


@dataclasses.dataclass(frozen=True)
class NodeState:
    """The wsrep state of one server, as it reported it."""

    cluster_uuid: str
    state: str
    size: int
    seqno: int
    ready: bool
    primary: bool
    connections: int
    desync: bool

    @property
    def usable(self) -> bool:
        """Whether a backup may run here: Synced, ready, in the primary."""
        return self.state == SYNCED and self.ready and self.primary

    def facts(self) -> dict:
        """The heartbeat's ``galera`` entry."""
        return {'cluster_uuid': self.cluster_uuid, 'state': self.state,
                'size': self.size, 'seqno': self.seqno, 'ready': self.ready,
                'primary': self.primary, 'connections': self.connections,
                'desync': self.desync}


def _rows(rows) -> dict:
    return dict(row.split('\t', 1) for row in rows if '\t' in row)


def _int(value, default=0) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return default


def read(query: Query) -> NodeState | None:
    """The server's wsrep state, or None when it is not a Galera member."""
    variables = _rows(query(
        "SHOW GLOBAL VARIABLES WHERE Variable_name IN "
        "('wsrep_on', 'wsrep_desync')"))
    if variables.get('wsrep_on', 'OFF').upper() != 'ON':
        return None
    status = _rows(query(
        'SHOW GLOBAL STATUS WHERE Variable_name IN (%s)'
        % ', '.join("'%s'" % name for name in _STATUS)))
    return NodeState(
        cluster_uuid=status.get('wsrep_cluster_state_uuid', ''),
        state=status.get('wsrep_local_state_comment', 'unknown'),
        size=_int(status.get('wsrep_cluster_size')),
        seqno=_int(status.get('wsrep_last_committed'), -1),
        ready=status.get('wsrep_ready', 'OFF').upper() == 'ON',
        primary=status.get('wsrep_cluster_status', 'Primary') == 'Primary',
        connections=_int(status.get('Threads_connected')),
        desync=variables.get('wsrep_desync', 'OFF').upper() == 'ON')


def membership(query: Query, state_path: str) -> dict:
    """{'galera': facts} for a member, {} otherwise.

    A member whose server does not answer (stopped, crashed: a cluster
    after an outage) still says which cluster it belongs to, from the
    last facts seen, with state ``unreachable``: the conductor needs the
    members of a cluster that is down to restore or recover it.
    """
    path = os.path.join(state_path, 'agent', MEMBER)
    try:
        state = read(query)
    except Exception as exc:
        LOG.debug('Could not read the wsrep state: %s', exc)
        try:
            with open(path) as f:
                last = json.load(f)
        except (OSError, ValueError):
            return {}
        return {'galera': dict(last, state=UNREACHABLE, ready=False,
                               primary=False, connections=0)}
    if state is None:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)
        return {}
    facts = state.facts()
    # Written when it changes only: not at every heartbeat.
    kept = {'cluster_uuid': state.cluster_uuid, 'size': state.size}
    try:
        with open(path) as f:
            same = json.load(f) == kept
    except (OSError, ValueError):
        same = False
    if not same and state.usable:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        durable.write_json(path, kept)
    return {'galera': facts}


def check_usable(state: NodeState, host: str) -> None:
    """Refuse to back up a member that is not Synced and ready."""
    if not state.usable:
        raise exception.DumpFailed(
            'Galera node %s is %s (wsrep_ready=%s, %s component), not '
            'Synced: not backing it up; back up another member' % (
                host, state.state, 'ON' if state.ready else 'OFF',
                'primary' if state.primary else 'non-primary'))


def meta(state: NodeState | None, host: str,
         seqno: int | None = None) -> dict | None:
    """The artifact's ``galera`` entry: cluster, seqno and node."""
    if state is None:
        return None
    return {'cluster_uuid': state.cluster_uuid,
            'seqno': state.seqno if seqno is None else seqno, 'node': host}


def unreplicated_tables(query: Query, database: str) -> list[str]:
    """``db.table (ENGINE)`` of the base tables Galera does not replicate.

    Galera replicates InnoDB rows only: rows loaded into an Aria or MyISAM
    table stay on the member that loaded them.
    """
    name = database.replace('\\', '\\\\').replace("'", "\\'")
    rows = query(
        "SELECT TABLE_NAME, ENGINE FROM information_schema.TABLES WHERE "
        "TABLE_SCHEMA = '%s' AND TABLE_TYPE = 'BASE TABLE' AND ENGINE NOT "
        "IN ('InnoDB') ORDER BY TABLE_NAME" % name)
    return ['%s.%s (%s)' % ((database,) + tuple(row.split('\t', 1)))
            for row in rows if '\t' in row]


class Desync:
    """``SET GLOBAL wsrep_desync`` around a copy, journalled."""

    def __init__(self, query: Query, state_path: str):
        self.query = query
        self.journal = os.path.join(state_path, 'agent', JOURNAL)

    @contextlib.contextmanager
    def during(self, state: NodeState | None, host: str):
        """Desync the node for the block; always put it back.

        A node the operator desynced already is left as it was found.
        """
        if state is None or state.desync:
            if state is not None:
                LOG.info('Galera node %s is desynced already (by the '
                         'operator): leaving wsrep_desync as found', host)
            yield
            return
        os.makedirs(os.path.dirname(self.journal), exist_ok=True)
        durable.write_json(self.journal, {'host': host})
        try:
            self.query('SET GLOBAL wsrep_desync=ON')
            LOG.info('Galera node %s desynced for the physical copy', host)
            yield
        finally:
            self.resync()

    def resync(self) -> None:
        """Put the node back in sync and forget the journal entry."""
        self.query('SET GLOBAL wsrep_desync=OFF')
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.journal)
        LOG.info('Galera node back in sync (wsrep_desync=OFF)')

    def recover(self) -> bool:
        """After a crash during a copy: resync the node; True if it did."""
        try:
            with open(self.journal) as f:
                json.load(f)
        except FileNotFoundError:
            return False
        except ValueError:
            pass        # a torn entry still means a desync may be on
        LOG.warning('The previous agent process stopped during a physical '
                    'copy of this Galera node: putting it back in sync')
        self.resync()
        return True
