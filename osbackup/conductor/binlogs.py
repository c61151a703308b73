"""Schedule binlog archive tasks: one per database node and interval.

An agent whose ``binlog`` driver is present (archiving on in its [mysql]
binlog_archive_interval and log_bin on in its server) says so in its
heartbeat with its interval. Every TICK seconds the conductor starts an
archive backup (service ``binlog``, policy ARCHIVE_POLICY) on each such up
agent whose last one is older than its interval and none is running: the
task carries where the archive continues (conductor/backups.py), so the
agent keeps no state of its own.
"""

from oslo_log import log as logging

from osbackup import binlog_chain
from osbackup.db import rows
from osbackup.definitions import binlog as binlog_definition
from osbackup import exception
from osbackup import states

LOG = logging.getLogger(__name__)

#: Seconds between two looks at which archive is due.
TICK = 1.0
#: The policy name of archive backups in ``backup list``.
ARCHIVE_POLICY = 'binlog-archive'


def archivers(agents: list, fixed: str | None = None) -> dict:
    """{host: None if it archives, else why not} of binlog-present agents.

    A standalone server archives its own binlog. A Galera cluster's
    binlog is archived on one fixed member (with log_slave_updates, every
    member logs every write): ``fixed`` ([mysql] galera_binlog_node) when
    it is a member with archiving on, else the first such member by name.
    Archive positions are a member's own, so a chain stays on its member;
    a change of member starts another chain (another host in ``binlog
    list``) from that member's binlog.
    """
    out, clusters = {}, {}
    for agent in agents:
        info = agent['info'] or {}
        if not (info.get('binlog') or {}).get('interval'):
            continue
        cluster = (info.get('galera') or {}).get('cluster_uuid')
        out[agent['host']] = None
        if cluster:
            clusters.setdefault(cluster, []).append(agent['host'])
    binlog = {a['host']: a['info'].get('binlog') for a in agents}
    for cluster, members in clusters.items():
        chosen = fixed if fixed in members else sorted(members)[0]
        for host in members:
            if host != chosen:
                out[host] = ('Galera cluster %s: binlog archived on %s'
                             % (cluster, chosen))
        if binlog[chosen].get('log_slave_updates') is False:
            LOG.warning('Galera cluster %s: the binlog of %s is archived '
                        'but log_slave_updates is OFF there: writes '
                        'through the other members are not in it',
                        cluster, chosen)
    return out


def due(agents: list, tasks: dict, now, fixed: str | None = None
        ) -> list[str]:
    """Hosts whose archive task is due (sorted)."""
    out = []
    chosen = archivers(agents, fixed)
    for agent in agents:
        interval = (agent['info'].get('binlog') or {}).get('interval')
        if not interval or agent['state'] != states.UP or \
                chosen.get(agent['host']):
            continue
        created, active = tasks.get(agent['host'], (None, False))
        if active:
            continue
        if created is None or (now - created).total_seconds() >= interval:
            out.append(agent['host'])
    return sorted(out)


class BinlogScheduler:
    """Starts the archive backups that are due."""

    def __init__(self, conf, catalogue, backups):
        self.conf = conf
        self.catalogue = catalogue
        self.backups = backups

    def tick(self) -> list[str]:
        agents = self.catalogue.list_agents(
            self.conf.conductor.agent_down_time)
        hosts = due(agents, self.catalogue.binlog_tasks(), rows.now(),
                    self.conf.mysql.galera_binlog_node)
        for host in hosts:
            try:
                self.backups.create([host], [binlog_definition.NAME],
                                    policy=ARCHIVE_POLICY)
            except exception.OsbackupError as exc:
                LOG.warning('Binlog archive of %s not started: %s',
                            host, exc)
        return hosts


def lag_limit(interval: int) -> int:
    """Seconds without a shipment after which the archive lags."""
    return max(3 * interval, interval + 60)


def expired_archives(backups: list, bases: list, doomed: set) -> list[dict]:
    """Archive backups no kept base backup needs (retention).

    A point in time is reached from a base backup's position on, so the
    binlogs a host needs start with the file holding the position of its
    oldest base backup that stays; an archive backup all of whose segments
    are in older files is not needed. Without any base for the host,
    everything is kept. Empty archive backups (nothing was written) go but
    for the newest.
    """
    oldest = {}
    for base in bases:
        if base['backup_id'] in doomed:
            continue
        seq = binlog_chain.sequence(base['binlog']['file'])
        if base['host'] not in oldest or seq < oldest[base['host']][0]:
            oldest[base['host']] = (seq, base)
    archives = [b for b in backups if b['policy'] == ARCHIVE_POLICY and
                b['status'] in states.TASK_DONE]
    newest = max((b['id'] for b in archives), default=None)
    out = []
    for b in archives:
        arts = b['artifacts']
        reason = None
        if not arts or all(a['status'] != states.AVAILABLE for a in arts):
            if b['id'] != newest:
                reason = 'binlog archive run with nothing archived'
        elif len({a['host'] for a in arts}) == 1 and arts[0]['host'] in \
                oldest:
            seq, base = oldest[arts[0]['host']]
            files = [binlog_chain.sequence(a['name'].rsplit('-', 1)[0])
                     for a in arts]
            if max(files) < seq:
                reason = ('binlogs older than the oldest kept base backup '
                          'of %s (backup %s, %s)' % (
                              arts[0]['host'], base['backup_id'],
                              base['binlog']['file']))
        if reason:
            out.append({'id': b['id'], 'policy': b['policy'],
                        'created_at': rows.iso(b['created_at']),
                        'reason': reason})
    return out
