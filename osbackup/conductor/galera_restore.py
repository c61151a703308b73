"""Restoring a Galera cluster as a cluster, and recovering one.

A physical copy of one member replaces the data of the whole cluster: a
member that kept its own data would either refuse to join the restored
node or give its newer state back to it. The plan therefore names every
member of the cluster (the agents reporting the cluster's uuid in their
heartbeat, see drivers/galera.py) and runs, besides the usual phases:

``cluster_stop``
    every member stops its server ([mysql] units);
``replace``
    the restored member swaps the restored data directory in; the others
    swap in an empty one (their own is kept for the rollback);
``bootstrap``
    the restored member is marked ``safe_to_bootstrap`` and started as a
    new cluster ([galera] bootstrap_command);
``rejoin``
    the others start their server and copy the data by SST; every member
    waits until it is Synced in a cluster of all the members.

A failure from ``cluster_stop`` on goes through ``cluster_undo`` (every
member stops its server and puts its old data directory back) before the
rollback, in which the restored member bootstraps the old cluster again
and the others rejoin it: no member is started on its old data while a
member of the new cluster still runs.

``osbackup-manage cluster recover`` is a restore without a backup: every
member stops what is left of its server and reports its position
(grastate.dat, else ``mariadbd --wsrep-recover``); the member with the
highest seqno bootstraps, the others rejoin.

A logical restore into a cluster that is down recovers it the same way
first: the dumps are loaded at the end of ``rejoin``, once every member is
Synced, on the member they are restored on, and Galera replicates them.
Its rollback loads back what the load replaced and leaves the recovered
cluster running.
"""

from osbackup import binlog_chain
from osbackup.drivers import galera as galera_driver
from osbackup.drivers import galera_recovery
from osbackup import exception
from osbackup import restore_phases
from osbackup import states

BOOTSTRAP = restore_phases.BOOTSTRAP
JOIN = restore_phases.JOIN
RECOVER = restore_phases.RECOVER
#: The phase between a failure and the rollback of a cluster restore.
UNDO = restore_phases.CLUSTER_UNDO
#: The step in which a member reports its position during a recovery.
POSITION = 'position'
#: Services whose artifacts are a copy of the database server.
SERVER_SERVICES = ('mysql', 'mariabackup')
UNREACHABLE = galera_driver.UNREACHABLE


def _facts(agent: dict) -> dict:
    return (agent.get('info') or {}).get('galera') or {}


def members(agents: dict, uuid: str) -> list[str]:
    """The hosts whose agent reports membership of cluster ``uuid``."""
    return sorted(h for h, a in agents.items()
                  if _facts(a).get('cluster_uuid') == uuid)


def _check_members(agents: dict, uuid: str, hosts: list) -> None:
    """Every member has an agent that is up; refuse before anything."""
    down = [h for h in hosts if agents[h].get('state') != states.UP]
    if down:
        raise exception.InvalidInput(
            'Galera cluster %s: the agent of member(s) %s is down; every '
            'member must be stopped and started, nothing was changed'
            % (uuid, ', '.join(down)))
    size = max(_facts(agents[h]).get('size') or 0 for h in hosts)
    if size > len(hosts):
        raise exception.InvalidInput(
            'Galera cluster %s has %d members but agents on %d only (%s): '
            'a member without an agent cannot be stopped; nothing was '
            'changed' % (uuid, size, len(hosts), ', '.join(hosts)))


def _mark(plan: dict, hosts: list, uuid: str, first: str | None,
          role_of, **extra) -> None:
    plan['galera'] = dict(extra, cluster_uuid=uuid, members=hosts,
                          bootstrap=first)
    for host in hosts:
        entry = plan['hosts'].setdefault(
            host, {'files': [], 'databases': [], 'units': []})
        entry['galera'] = dict(plan['galera'], role=role_of(host))


def _running(agents: dict, hosts: list) -> list[str]:
    """The members that are Synced in a primary component."""
    return [h for h in hosts if _facts(agents[h]).get('state') == 'Synced'
            and _facts(agents[h]).get('primary', True)]


def _only_cluster_members(plan: dict, agents: dict, hosts: list) -> None:
    """The members' servers stop and start in the Galera phases only."""
    for member in hosts:
        units = _server_units(agents.get(member, {}))
        plan['hosts'][member]['units'] = [
            u for u in plan['hosts'][member]['units'] if u not in units]


def _plan_recovery_load(plan: dict, host: str, facts: dict,
                        agents: dict) -> None:
    """A logical load into a cluster that is down: recover it first."""
    uuid = facts.get('cluster_uuid')
    hosts = sorted(set(members(agents, uuid)) | {host})
    up = _running(agents, hosts)
    if up:
        raise exception.InvalidInput(
            'Galera member %s does not answer while cluster %s runs on %s: '
            'start its server (it rejoins), or restore onto a running '
            'member with --map-host %s=%s; nothing was changed'
            % (host, uuid, ', '.join(up), host, up[0]))
    if 'galera' in plan:
        raise exception.InvalidInput(
            'The plan restores databases on two members of Galera cluster '
            '%s (%s, %s), which is down: restore one, with --host'
            % (uuid, plan['galera'].get('load_on'), host))
    _check_members(agents, uuid, hosts)
    _mark(plan, hosts, uuid, None, lambda h: RECOVER, load_on=host)
    _only_cluster_members(plan, agents, hosts)


def plan_restore(conf, plan: dict, agents: dict) -> None:
    """Make the restore of a member's physical copy one of the cluster.

    A logical load into a running cluster stays on one member (Galera
    replicates it); into a cluster that is down it recovers the cluster
    first (see the module's docstring).
    """
    for host, entry in sorted(plan['hosts'].items()):
        facts = _facts(agents.get(host, {}))
        for item in entry.get('physical', []):
            meta = item['artifact']['meta'].get('galera')
            if not meta:
                continue
            uuid = facts.get('cluster_uuid') or meta['cluster_uuid']
            hosts = sorted(set(members(agents, uuid)) | {host})
            if 'galera' in plan:
                raise exception.InvalidInput(
                    'The plan restores two physical copies of Galera '
                    'members (%s, %s): restore one, with --host'
                    % (plan['galera']['bootstrap'], host))
            _check_members(agents, uuid, hosts)
            _mark(plan, hosts, uuid, host,
                  lambda h: BOOTSTRAP if h == host else JOIN)
            _only_cluster_members(plan, agents, hosts)
        if (entry['databases'] or entry.get('accounts')) and \
                facts.get('state') == UNREACHABLE and \
                facts.get('cluster_uuid') and 'galera' not in entry:
            _plan_recovery_load(plan, host, facts, agents)


def _server_units(agent: dict) -> set:
    units = (agent.get('info') or {}).get('units') or {}
    return {u for s in SERVER_SERVICES for u in units.get(s, [])}


def plan_recover(agents: dict) -> dict:
    """The plan of ``cluster recover``: every member of the one cluster."""
    found = {}
    for host, agent in sorted(agents.items()):
        uuid = _facts(agent).get('cluster_uuid')
        if uuid:
            found.setdefault(uuid, []).append(host)
    if not found:
        raise exception.InvalidInput('No agent reports a Galera member: '
                                     'nothing to recover')
    if len(found) > 1:
        raise exception.InvalidInput(
            'Agents report %d Galera clusters (%s): the cluster is split '
            'or there are several; not recovering' % (len(found), '; '.join(
                '%s: %s' % (u, ', '.join(h)) for u, h in sorted(
                    found.items()))))
    (uuid, hosts), = found.items()
    up = _running(agents, hosts)
    if up:
        raise exception.InvalidInput(
            'Galera cluster %s is up on %s (Synced, primary): there is no '
            'outage to recover from; start the other members\' units'
            % (uuid, ', '.join(up)))
    _check_members(agents, uuid, hosts)
    plan = {'hosts': {}, 'skipped': [], 'order': [], 'recover': True}
    _mark(plan, hosts, uuid, None, lambda h: RECOVER)
    return plan


def has_work(plan_host: dict, phase: str) -> bool:
    """Whether a host has work in one of the Galera phases."""
    role = (plan_host.get('galera') or {}).get('role')
    if role is None:
        return False
    if phase == 'bootstrap':
        return role in (BOOTSTRAP, RECOVER)
    if phase == 'replace':
        return role == JOIN
    return phase in restore_phases.GALERA + (UNDO,)


def rollback_via_undo(restore: dict, index: int) -> bool:
    """Whether a failure at phase ``index`` goes through cluster_undo."""
    return bool((restore['plan'].get('galera'))) and \
        index >= restore_phases.PHASES.index('cluster_stop')


def _step(host, phase, action, target):
    return {'host': host, 'phase': phase, 'action': action,
            'target': target, 'status': 'PLANNED'}


def steps(plan: dict) -> list[dict]:
    """The Galera steps of a plan, for --dry-run."""
    cluster = plan.get('galera')
    if not cluster:
        return []
    hosts, first = cluster['members'], cluster['bootstrap']
    size = 'Synced in a cluster of %d' % len(hosts)
    out = [_step(h, 'cluster_stop', 'stop', 'database server ([mysql] units)')
           for h in hosts]
    if first is None:
        out += [_step(h, 'cluster_stop', POSITION, 'last committed seqno '
                      '(grastate.dat or --wsrep-recover)') for h in hosts]
        out += [_step(h, 'bootstrap', 'bootstrap', 'new cluster if its '
                      'seqno is the highest ([galera] bootstrap_command)')
                for h in hosts]
        out += [_step(h, 'rejoin', 'start', 'database server unless it '
                      'bootstrapped') for h in hosts]
    else:
        out += [_step(h, 'replace', 'empty', 'data directory (copied by '
                      'SST from %s)' % first) for h in hosts if h != first]
        out.append(_step(first, 'bootstrap', 'bootstrap', 'new cluster '
                         'from the restored data ([galera] '
                         'bootstrap_command)'))
        out += [_step(h, 'rejoin', 'start', 'database server (SST from %s)'
                      % first) for h in hosts if h != first]
    out += [_step(h, 'rejoin', 'wait', size) for h in hosts]
    if cluster.get('load_on'):
        host = cluster['load_on']
        entry = plan['hosts'][host]
        if entry.get('accounts'):
            out.append(_step(host, 'rejoin', 'load',
                             entry['accounts']['artifact']['name']))
        out += [_step(host, 'rejoin', 'load', d['database'])
                for d in entry['databases']]
        if entry.get('replay'):
            out.append(_step(host, 'rejoin', 'replay',
                             binlog_chain.replay_target(entry['replay'])))
    return out


def positions(restore: dict) -> list:
    """The members' positions their cluster_stop tasks reported.

    From the tasks' results, stored with their status: the steps of the
    last task to end may not be recorded yet when the phase moves on.
    """
    found = {}
    for task in restore.get('tasks') or []:
        if task['kind'] != restore_phases.task_kind('cluster_stop') or \
                task['status'] != states.SUCCEEDED:
            continue
        for s in (task.get('result') or {}).get('steps') or []:
            if s.get('action') == POSITION:
                position = galera_recovery.from_text(task['host'],
                                                     s.get('target'))
                if position is not None:
                    found[task['host']] = position
    return list(found.values())


def task_params(restore: dict, phase: str) -> dict:
    """What a recovery's bootstrap and rejoin tasks need: who starts."""
    cluster = restore['plan'].get('galera')
    if not cluster or cluster['bootstrap'] is not None or \
            phase not in ('bootstrap', 'rejoin'):
        return {}
    found = positions(restore)
    missing = sorted(set(cluster['members']) - {p.host for p in found})
    if missing:
        return {'galera_error': 'no position from %s' % ', '.join(missing)}
    try:
        return {'galera_bootstrap': galera_recovery.choose_bootstrap(
            found).host}
    except exception.OsbackupError as exc:
        return {'galera_error': exc.message}
