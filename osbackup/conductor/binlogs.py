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

from osbackup.db import rows
from osbackup.definitions import binlog as binlog_definition
from osbackup import exception
from osbackup import states

LOG = logging.getLogger(__name__)

#: Seconds between two looks at which archive is due.
TICK = 1.0
#: The policy name of archive backups in ``backup list``.
ARCHIVE_POLICY = 'binlog-archive'


def due(agents: list, tasks: dict, now) -> list[str]:
    """Hosts whose archive task is due (sorted)."""
    out = []
    for agent in agents:
        interval = (agent['info'].get('binlog') or {}).get('interval')
        if not interval or agent['state'] != states.UP:
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
        hosts = due(agents, self.catalogue.binlog_tasks(), rows.now())
        for host in hosts:
            try:
                self.backups.create([host], [binlog_definition.NAME],
                                    policy=ARCHIVE_POLICY)
            except exception.OsbackupError as exc:
                LOG.warning('Binlog archive of %s not started: %s',
                            host, exc)
        return hosts
