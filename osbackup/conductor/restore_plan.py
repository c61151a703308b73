"""Turn a backup and a selection into an ordered restore plan.

The plan is pure data computed from the catalogue and the agents'
heartbeats, so ``--dry-run`` shows exactly what a real restore will do.
Per host it lists the file sets to stage and swap in, the database
server's accounts and grants (loaded before the databases), the databases
to load, the command artifacts to load (RabbitMQ definitions, OVN
databases) and the units to stop before and start after.
"""

from sqlalchemy.engine import url as sa_url

from osbackup import artifact_kinds
from osbackup import binlog_chain
from osbackup.conductor import galera_restore
from osbackup.conductor import restore_versions
from osbackup import definitions
from osbackup.definitions import mysql as mysql_definition
from osbackup.definitions import order
from osbackup.definitions import ovn as ovn_definition
from osbackup import exception
from osbackup import restore_phases
from osbackup import states

MYSQL = mysql_definition.NAME
PHYSICAL = artifact_kinds.PHYSICAL
COMMANDS = 'commands'
ACCOUNTS = artifact_kinds.ACCOUNTS
#: Kinds an orchestrated restore of a backup lists as skipped, and why.
NOT_RESTORED = {
    artifact_kinds.BINLOG: 'archived binlogs (%s) are replayed by a '
                           'point-in-time restore (restore create '
                           '--to-time)',
}


def catalogue_database(conf) -> str | None:
    """Name of osbackup's own catalogue database, never to be restored."""
    try:
        url = sa_url.make_url(conf.database.connection)
    except Exception:
        return None
    return url.database if url.get_backend_name() == 'mysql' else None


def database_owner(conf, database: str) -> str | None:
    for service, definition in sorted(definitions.builtin().items()):
        if definition.fileset and database in conf[service].databases:
            return service
    return None


def _artifact(a):
    return {k: a[k] for k in ('id', 'name', 'kind', 'location', 'sha256',
                              'size', 'meta')}


def _chain(backup: dict, art: dict, chains: dict) -> dict:
    """{backup id: artifact} of the bases an incremental file set needs."""
    out = {}
    for base in chains.get(art['id'], []):
        if base['status'] != states.AVAILABLE:
            raise exception.InvalidInput(
                'Backup %s: the %s file set of %s is incremental on backup '
                '%s, whose artifact is %s; it cannot be restored'
                % (backup['id'], art['service'], art['host'],
                   base['backup_id'], base['status']))
        # An archive names its base by the id the base had when written;
        # a rebuilt catalogue may have given that backup another one.
        ref = (base.get('meta') or {}).get('backup_ref', base['backup_id'])
        out[str(ref)] = _artifact(base)
    return out


def map_hosts(backup: dict, mapping: dict, agents: dict) -> dict:
    """``backup`` with the artifacts of host OLD as NEW's (--map-host).

    A rebuilt node often gets a new name: its agent restores what the old
    one stored. NEW must be a known agent that holds nothing of its own
    in the backup, and each OLD a host of the backup.
    """
    if not mapping:
        return backup
    stored = {a['host'] for a in backup['artifacts']}
    news = list(mapping.values())
    for old, new in mapping.items():
        if old not in stored:
            raise exception.InvalidInput(
                '--map-host %s=%s: backup %s has nothing of host %r '
                '(hosts: %s)' % (old, new, backup['id'], old,
                                 ', '.join(sorted(stored))))
        if new not in agents:
            raise exception.InvalidInput(
                '--map-host %s=%s: no agent %r (see "osbackup-manage agent '
                'list")' % (old, new, new))
        if news.count(new) > 1 or (new in stored and new not in mapping):
            raise exception.InvalidInput(
                '--map-host %s=%s: %r would receive the artifacts of two '
                'hosts' % (old, new, new))
    return dict(backup, artifacts=[
        dict(a, host=mapping.get(a['host'], a['host']))
        for a in backup['artifacts']])


def build(conf, backup: dict, agents: dict, hosts: list,
          services: list, chains: dict | None = None,
          force: bool = False, skip_accounts: bool = False) -> dict:
    """Compute the plan; raise InvalidInput when nothing matches.

    ``chains`` maps the id of each incremental file-set artifact to its
    bases (Catalogue.artifact_chains); the plan carries them so the agent
    can take unchanged files from the backups that hold them. ``force``:
    load artifacts the agent would refuse (an OVN database of another
    schema version, a dump older than its live database's schema).
    ``versions`` lists the version differences between the backup and
    the hosts (conductor/restore_versions.py). The accounts artifact
    comes with the whole backup or ``--service mysql``, unless
    ``skip_accounts``.
    """
    available = [a for a in backup['artifacts']
                 if a['status'] == states.AVAILABLE]
    known_hosts = sorted({a['host'] for a in available})
    known_services = sorted({a['service'] for a in available} |
                            {database_owner(conf, a['name'])
                             for a in available if a['service'] == MYSQL}
                            - {None})
    for host in hosts:
        if host not in known_hosts:
            raise exception.InvalidInput(
                'Backup %s has nothing for host %r (hosts: %s)'
                % (backup['id'], host, ', '.join(known_hosts)))
    for service in services:
        if service not in known_services:
            raise exception.InvalidInput(
                'Backup %s has nothing for service %r (services: %s)'
                % (backup['id'], service, ', '.join(known_services)))
    own_db = catalogue_database(conf)
    plan = {'hosts': {}, 'skipped': [], 'repairs': []}
    if force:
        plan['force'] = True
    # Which hosts run each service, for stopping it around a DB load.
    service_hosts = {}
    for a in available:
        if a['service'] != MYSQL:
            service_hosts.setdefault(a['service'], set()).add(a['host'])

    def host_plan(host):
        return plan['hosts'].setdefault(
            host, {'files': [], 'databases': [], 'units': []})

    # The service that brought each unit in, to start it in its turn.
    unit_owner = {}

    def add_units(host, service):
        units = (agents.get(host, {}).get('info', {}).get('units', {})
                 .get(service, []))
        entry = host_plan(host)
        for unit in units:
            unit_owner.setdefault((host, unit), service)
            if unit not in entry['units']:
                entry['units'].append(unit)

    for a in sorted(available, key=lambda x: (x['host'], x['service'],
                                              x['name'])):
        if hosts and a['host'] not in hosts:
            continue
        if a['kind'] == PHYSICAL:
            _plan_physical(plan, a, services, host_plan, add_units)
            continue
        if a['kind'] == ACCOUNTS:
            if not services or MYSQL in services:
                _plan_accounts(plan, a, host_plan, skip=(
                    'the physical copy of the server holds them'
                    if _physical_asked(available, services) else
                    '--skip-accounts' if skip_accounts else None))
            continue
        if a['kind'] == artifact_kinds.COMMAND:
            if not services or a['service'] in services:
                _plan_command(plan, a, host_plan)
            continue
        if a['kind'] in NOT_RESTORED:
            if not services or a['service'] in services:
                plan['skipped'].append({
                    'host': a['host'], 'target': a['name'],
                    'reason': NOT_RESTORED[a['kind']] % a['service']})
            continue
        if a['service'] == MYSQL:
            owner = database_owner(conf, a['name'])
            if services and MYSQL not in services and owner not in services:
                continue
            if _physical_asked(available, services):
                plan['skipped'].append({
                    'host': a['host'], 'target': a['name'],
                    'reason': 'the physical copy of the server restores '
                              'every database'})
                continue
            if a['name'] == own_db:
                plan['skipped'].append({
                    'host': a['host'], 'target': a['name'],
                    'reason': "osbackup's own catalogue is never "
                              "overwritten by a restore"})
                continue
            item = {'database': a['name'], 'owner': owner,
                    'artifact': _artifact(a)}
            if force:
                # Loaded even into a newer live schema (mysql/schema.py).
                item['force'] = True
            host_plan(a['host'])['databases'].append(item)
            for other in sorted(service_hosts.get(owner, ())):
                if not hosts or other in hosts:
                    add_units(other, owner)
            continue
        if services and a['service'] not in services:
            continue
        item = {'service': a['service'], 'artifact': _artifact(a),
                'paths': ['/' + p for p in a['meta'].get('paths', [])]}
        if a.get('parent_id'):
            item['chain'] = _chain(backup, a, chains or {})
        host_plan(a['host'])['files'].append(item)
        add_units(a['host'], a['service'])
    if not any(h['files'] or h['databases'] or h.get(PHYSICAL) or
               h.get(COMMANDS) or h.get(ACCOUNTS)
               for h in plan['hosts'].values()):
        raise exception.InvalidInput('Nothing to restore from backup %s '
                                     'with this selection' % backup['id'])
    _order_units(plan, unit_owner)
    galera_restore.plan_restore(conf, plan, agents)
    plan['versions'] = restore_versions.differences(plan, agents)
    return plan


def _order_units(plan: dict, unit_owner: dict) -> None:
    """Start units by their services' restore order (definitions.order).

    The database and message bus come up first, keystone next, the
    services that authenticate against it after; ``order`` lists the
    services of the plan in that order for --dry-run.
    """
    known = definitions.builtin()
    services = {s for s in unit_owner.values()}
    services |= {f['service'] for h in plan['hosts'].values()
                 for f in h['files']}
    plan['order'] = order.sort_services(services, known)
    rank = {name: i for i, name in enumerate(plan['order'])}
    for host, entry in plan['hosts'].items():
        entry['units'].sort(key=lambda u: rank[unit_owner[(host, u)]])


def _plan_command(plan, art, host_plan):
    """Loaded into the running server in load_db; its units keep running.

    The server must serve to take the load (rabbitmqctl
    import_definitions, ovsdb-client restore), so none of its units is
    stopped. A northbound database that no longer matches neutron's
    database is repaired by neutron-ovn-db-sync-util: the plan names it.
    """
    host_plan(art['host']).setdefault(COMMANDS, []).append(
        {'service': art['service'], 'artifact': _artifact(art),
         'force': bool(plan.get('force'))})
    if art['service'] == ovn_definition.NAME and art['name'] == 'ovn-nb':
        plan['repairs'].append({
            'host': art['host'], 'target': ovn_definition.SYNC_COMMAND,
            'reason': "run it on a neutron-server host if OVN's northbound "
                      "database and neutron's database disagree after the "
                      "restore (osbackup does not run it)"})


def _plan_accounts(plan, art, host_plan, skip=None):
    """The server's accounts, loaded before its databases.

    ``skip``: why they are not (listed as a skipped step).
    """
    if skip:
        plan['skipped'].append({
            'host': art['host'], 'target': art['name'],
            'reason': 'accounts and grants left as they are (%s)' % skip})
        return
    host_plan(art['host'])[ACCOUNTS] = {'artifact': _artifact(art)}


def _physical_asked(available, services):
    return any(a['kind'] == PHYSICAL and a['service'] in services
               for a in available)


def _plan_physical(plan, art, services, host_plan, add_units):
    """A physical copy replaces the whole server: only when asked."""
    if art['service'] not in services:
        plan['skipped'].append({
            'host': art['host'], 'target': art['name'],
            'reason': 'a physical copy of the whole database server is '
                      'restored only when asked for (--service %s)'
                      % art['service']})
        return
    host_plan(art['host']).setdefault(PHYSICAL, []).append(
        {'service': art['service'], 'artifact': _artifact(art)})
    add_units(art['host'], art['service'])


def _physical_target(item):
    """The data directory as the backup saw it (the agent decides)."""
    return (item['artifact']['meta'].get('datadir') or
            '%s datadir' % item['service']).rstrip('/')


def _step(host, phase, action, target):
    return {'host': host, 'phase': phase, 'action': action,
            'target': target, 'status': 'PLANNED'}


def steps(plan: dict) -> list[dict]:
    """The ordered steps a plan will run, for --dry-run."""
    out = []
    hosts = sorted(plan['hosts'].items())
    for host, p in hosts:
        for f in p['files']:
            out.append(_step(host, 'prepare', 'verify', f['artifact']['name']))
            out.extend(_step(host, 'prepare', 'stage', d) for d in f['paths'])
        if p.get(ACCOUNTS):
            out.append(_step(host, 'prepare', 'verify',
                             p[ACCOUNTS]['artifact']['name']))
        for d in p['databases']:
            out.append(_step(host, 'prepare', 'verify', d['database']))
        for x in p.get(PHYSICAL, []):
            out.append(_step(host, 'prepare', 'verify', x['artifact']['name']))
            out.append(_step(host, 'prepare', 'stage', _physical_target(x)))
        out.extend(_step(host, 'prepare', 'verify', c['artifact']['name'])
                   for c in p.get(COMMANDS, []))
    for host, p in hosts:
        out.extend(_step(host, 'stop', 'stop', u) for u in p['units'])
    for host, p in hosts:
        late = restore_phases.database_phase(p) != 'load_db'
        if p.get(ACCOUNTS) and not late:
            out.append(_step(host, 'load_db', 'load',
                             p[ACCOUNTS]['artifact']['name']))
        if not late:
            out.extend(_step(host, 'load_db', 'load', d['database'])
                       for d in p['databases'])
        out.extend(_step(host, 'load_db', 'load', c['artifact']['name'])
                   for c in p.get(COMMANDS, []))
        if p.get('replay') and not late:
            out.append(_step(host, 'load_db', 'replay',
                             binlog_chain.replay_target(p['replay'])))
    for host, p in hosts:
        for f in p['files']:
            out.extend(_step(host, 'replace', 'replace', d)
                       for d in f['paths'])
        out.extend(_step(host, 'replace', 'replace', _physical_target(x))
                   for x in p.get(PHYSICAL, []))
    for host, p in hosts:
        out.extend(_step(host, 'start', 'start', u) for u in p['units'])
    for host, p in hosts:
        out.extend(_step(host, 'check', 'check', u) for u in p['units'])
    rank = {p: i for i, p in enumerate(restore_phases.PHASES)}
    out = sorted(out + galera_restore.steps(plan),
                 key=lambda s: rank[s['phase']])
    for skipped in plan['skipped']:
        out.append({'host': skipped['host'], 'phase': 'load_db',
                    'action': 'skip', 'target': skipped['target'],
                    'status': states.SKIPPED, 'error': skipped['reason']})
    out.extend(repair_steps(plan))
    return out


def repair_steps(plan: dict) -> list[dict]:
    """Repairs the operator runs if needed (neutron-ovn-db-sync-util)."""
    return [{'host': r['host'], 'phase': 'finish', 'action': 'repair',
             'target': r['target'], 'status': states.SKIPPED,
             'error': r['reason']} for r in plan.get('repairs', [])]


def has_work(plan_host: dict, phase: str) -> bool:
    """Whether a host has anything to do in a phase."""
    if phase in restore_phases.GALERA + (restore_phases.CLUSTER_UNDO,):
        return galera_restore.has_work(plan_host, phase)
    if phase in ('prepare', 'finish', restore_phases.ROLLBACK):
        return True
    if phase in ('stop', 'start', 'check'):
        return bool(plan_host['units'])
    if phase == 'load_db':
        return bool(plan_host.get(COMMANDS)) or (
            bool(plan_host['databases'] or plan_host.get(ACCOUNTS)) and
            restore_phases.database_phase(plan_host) == 'load_db')
    if phase == 'replace':
        # A Galera joiner swaps an empty data directory in (SST fills it).
        return bool(plan_host['files']) or bool(plan_host.get(PHYSICAL)) \
            or galera_restore.has_work(plan_host, phase)
    return False
