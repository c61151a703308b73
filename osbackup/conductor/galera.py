"""Galera clusters in a backup: one member per cluster, the right one.

The agents report their server's wsrep state in every heartbeat (the
``galera`` entry, see drivers/galera.py). A backup of the database
services of a cluster runs once, on one member: ``[mysql]
galera_backup_node`` when it is Synced and ready, else a Synced, ready
member not in ``[mysql] galera_avoid_nodes`` with the fewest client
connections, else an avoided one. A cluster with no such member is not
backed up, with the reason naming each member and its state. The agent
checks its node again when the task starts: heartbeats may be stale.
"""

import dataclasses

from oslo_log import log as logging

LOG = logging.getLogger(__name__)

#: The services that copy the cluster's data (once per cluster).
SERVICES = ('mysql', 'mariabackup')


@dataclasses.dataclass
class Cluster:
    """The members of one cluster among the hosts of a backup."""

    uuid: str
    members: dict           # host -> galera facts
    chosen: str | None = None
    reason: str = ''

    def skip_reason(self, host: str) -> str:
        return ('member of Galera cluster %s, backed up once on %s'
                % (self.uuid, self.chosen))


def usable(facts: dict) -> bool:
    """Synced, wsrep_ready and in the primary component."""
    return (facts.get('state') == 'Synced' and bool(facts.get('ready')) and
            facts.get('primary', True))


def clusters(agents: dict, hosts: list) -> dict:
    """{cluster uuid: Cluster} of the members among ``hosts``."""
    found = {}
    for host in hosts:
        facts = (agents[host].get('info') or {}).get('galera')
        if facts and facts.get('cluster_uuid'):
            found.setdefault(facts['cluster_uuid'], Cluster(
                facts['cluster_uuid'], {})).members[host] = facts
    if len(found) > 1:
        LOG.warning('Agents report %d Galera clusters (%s): each is backed '
                    'up once; if they should be one, the cluster is split',
                    len(found), ', '.join(
                        '%s: %s' % (uuid, ', '.join(sorted(c.members)))
                        for uuid, c in sorted(found.items())))
    return found


def choose(conf, cluster: Cluster) -> Cluster:
    """Set ``cluster.chosen`` (or ``reason`` when no member may be used)."""
    opts = conf.mysql
    ready = {h: f for h, f in cluster.members.items() if usable(f)}
    wanted = opts.galera_backup_node
    if wanted in ready:
        cluster.chosen = wanted
        return cluster
    if wanted in cluster.members:
        LOG.warning('[mysql] galera_backup_node %s is %s, not Synced: '
                    'backing up cluster %s on another member', wanted,
                    cluster.members[wanted].get('state'), cluster.uuid)
    preferred = {h: f for h, f in ready.items()
                 if h not in opts.galera_avoid_nodes} or ready
    if not preferred:
        cluster.reason = (
            'no member of Galera cluster %s is Synced and ready: %s' % (
                cluster.uuid, ', '.join(
                    '%s is %s%s' % (h, f.get('state'),
                                    '' if f.get('ready') else
                                    ' (wsrep_ready=OFF)')
                    for h, f in sorted(cluster.members.items()))))
        return cluster
    cluster.chosen = min(preferred, key=lambda h: (
        preferred[h].get('connections') or 0, h))
    return cluster


def plan(conf, agents: dict, hosts: list) -> dict:
    """{host: Cluster} for every member among ``hosts``, chosen."""
    by_host = {}
    for cluster in clusters(agents, hosts).values():
        choose(conf, cluster)
        if cluster.chosen:
            LOG.info('Galera cluster %s (%s): backing up on %s',
                     cluster.uuid, ', '.join(sorted(cluster.members)),
                     cluster.chosen)
        for host in cluster.members:
            by_host[host] = cluster
    return by_host
