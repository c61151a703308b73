"""``osbackup-manage restore``: create, list and show restores."""

import sys

from osbackup.conductor import restore_outcome
from osbackup.conductor import restore_versions
from osbackup import exception
from osbackup import manage
from osbackup.manage import output
from osbackup.manage import paths
from osbackup.manage import waiting
from osbackup import states

_SHOW_FIELDS = ['id', 'backup_id', 'status', 'hosts', 'services',
                'created_at', 'finished_at', 'error']
_STEP_KEYS = ('host', 'phase', 'action', 'target', 'status', 'error', 'at')


def public(restore: dict) -> dict:
    """The JSON form of a restore (or of a dry-run plan).

    ``host_status`` has, per host of the plan, its ``rollback`` status
    (``not_needed``, ``pending``, ``done``, ``timed_out``, ``failed``;
    see conductor/restore_outcome.py) and ``attention``: why the host
    needs the operator, or null; ``needs_attention`` lists those hosts.
    """
    out = {k: restore.get(k) for k in _SHOW_FIELDS}
    out['steps'] = [{k: s.get(k) for k in _STEP_KEYS}
                    for s in restore['steps']]
    pitr = (restore.get('plan') or {}).get('pitr')
    if pitr:
        out['pitr'] = pitr
    out['versions'] = (restore.get('plan') or {}).get('versions', [])
    if restore.get('dry_run'):
        out['dry_run'] = True
        out['order'] = (restore.get('plan') or {}).get('order', [])
        return out
    out['host_status'] = restore_outcome.hosts(restore)
    out['needs_attention'] = [h['host'] for h in out['host_status']
                              if h['attention']]
    return out


def print_restore(restore: dict) -> None:
    if restore.get('dry_run'):
        print('Dry run: %s would run these steps in order (nothing was '
              'changed):' % ('restoring backup %s' % restore['backup_id']
                             if restore['backup_id'] is not None else
                             'the cluster recovery'))
        order = (restore.get('plan') or {}).get('order')
        pitr = (restore.get('plan') or {}).get('pitr')
        if pitr:
            print('Point in time: backup %(backup_id)s of %(host)s (finished '
                  '%(backup_finished_at)s, binlog position %(from)s), then '
                  'binlog %(binlog_range)s in %(segments)d segment(s) up to '
                  % pitr + ('GTID %s' % pitr['to_gtid'] if pitr['to_gtid']
                            else 'the end of %s' % pitr['to_time']))
        if order:
            print('Services start in this order: %s' % ', '.join(order))
        versions = (restore.get('plan') or {}).get('versions') or []
        print('Version differences between the backup and the hosts: %s'
              % ('none seen' if not versions else len(versions)))
        for diff in versions:
            print('  ' + restore_versions.describe(diff))
    else:
        output.fields(restore, _SHOW_FIELDS)
    output.table(restore['steps'], [
        ('Phase', 'phase'), ('Host', 'host'), ('Action', 'action'),
        ('Target', 'target'), ('Status', 'status'), ('Error', 'error')])
    if restore.get('dry_run'):
        return
    hosts = restore_outcome.hosts(restore)
    output.table(hosts, [('Host', 'host'), ('Rollback', 'rollback'),
                         ('Attention', 'attention')])
    doubt = [h for h in hosts if h['attention']]
    if doubt:
        print('ATTENTION: restore %s FAILED and was NOT rolled back on %d '
              'host(s):' % (restore['id'], len(doubt)))
        for host in doubt:
            print('  %s (rollback %s): %s' % (host['host'], host['rollback'],
                                              host['attention']))
    elif restore['status'] == states.FAILED:
        print('Restore %s FAILED and was rolled back on every host.'
              % restore['id'])


def parse_map_host(values: list) -> dict:
    """{OLD: NEW} from ``--map-host OLD=NEW`` options."""
    out = {}
    for value in values:
        old, sep, new = value.partition('=')
        if not sep or not old or not new or old == new:
            raise exception.InvalidInput(
                '--map-host takes OLD=NEW (two different host names), not '
                '%r' % value)
        if old in out:
            raise exception.InvalidInput('--map-host %s given twice' % old)
        out[old] = new
    return out


class RestoreCommands:
    """Restores of backups, orchestrated across the fleet."""

    def __init__(self, env):
        self.env = env

    @manage.args('backup_id', type=int, metavar='BACKUP_ID', nargs='?',
                 help='ID of the backup to restore (none with --to-time or '
                      '--to-gtid: the restore picks it).')
    @manage.args('--to-time', dest='to_time', metavar='"YYYY-MM-DD HH:MM:SS"',
                 help='Point-in-time restore of the databases: the newest '
                      'backup that finished before this time, then the '
                      'archived binlogs replayed up to the end of this '
                      'second. In [conductor] timezone; UTC with a Z '
                      'suffix.')
    @manage.args('--to-gtid', dest='to_gtid', metavar='GTID',
                 help='Point-in-time restore up to this GTID '
                      '(DOMAIN-SERVER-SEQ), that transaction included.')
    @manage.args('--database', dest='databases', action='append',
                 default=[], metavar='DATABASE',
                 help='With --to-time or --to-gtid: restore only this '
                      'database (repeatable). Default: every database of '
                      'the backup.')
    @manage.args('--service', dest='services', action='append', default=[],
                 metavar='SERVICE',
                 help='Restore only this service (repeatable); a service '
                      'brings its databases along. Default: everything in '
                      'the backup.')
    @manage.args('--host', dest='hosts', action='append', default=[],
                 metavar='HOST',
                 help='Restore only on this host (repeatable).')
    @manage.args('--map-host', dest='map_host', action='append', default=[],
                 metavar='OLD=NEW',
                 help='Restore the artifacts of host OLD on the agent NEW '
                      '(repeatable): a rebuilt node with another name. '
                      '--host takes either name.')
    @manage.args('--skip-accounts', dest='skip_accounts',
                 action='store_true',
                 help='Leave the database server\'s accounts and grants as '
                      'they are: do not load the backup\'s "accounts" '
                      'artifact (loaded by default, before the databases, '
                      'with the whole backup or --service mysql).')
    @manage.args('--dry-run', action='store_true',
                 help='Print the ordered plan and change nothing.')
    @manage.args('--force', action='store_true',
                 help='Load what an agent would refuse: an OVN database '
                      'whose schema version differs from the running '
                      'ovsdb-server\'s; a database dump whose alembic '
                      'revision is older than the live database\'s (or '
                      'differs, when the service\'s migrations cannot '
                      'tell which is newer).')
    @manage.args('--wait', action='store_true',
                 help='Wait for the restore to end, showing progress; exit '
                      'non-zero unless it succeeded. Always on in '
                      'all-in-one mode.')
    @manage.format_arg
    def create(self, backup_id=None, services=None, hosts=None,
               dry_run=False, wait=False, map_host=None, to_time=None,
               to_gtid=None, databases=None, force=False,
               skip_accounts=False, fmt='table'):
        """Restore a backup: stop units, load DBs, swap dirs, start units."""
        mapping = parse_map_host(map_host or [])
        extra = {'map_host': mapping} if mapping else {}
        if force:
            extra['force'] = True
        if skip_accounts:
            extra['skip_accounts'] = True
        if to_time or to_gtid:
            extra['point'] = {'to_time': to_time, 'to_gtid': to_gtid,
                              'databases': databases or []}
        elif databases:
            raise exception.InvalidInput('--database goes with --to-time or '
                                         '--to-gtid; restore a backup\'s '
                                         'databases with --service')
        elif backup_id is None:
            raise exception.InvalidInput('Give a BACKUP_ID, or --to-time or '
                                         '--to-gtid')
        restore = self.env.call('create_restore', backup_id=backup_id,
                                hosts=hosts or [], services=services or [],
                                dry_run=dry_run, **extra)
        if not dry_run and (wait or self.env.all_in_one):
            print('Restore %s started' % restore['id'], file=sys.stderr)
            restore = waiting.wait(
                lambda: self.env.catalogue.get_restore(restore['id']))
        if fmt == 'json':
            output.emit_json(public(restore))
        else:
            print_restore(paths.real_targets(restore,
                                             self.env.agent_roots()))
        if dry_run or restore['status'] in (states.RUNNING,
                                            states.SUCCEEDED):
            return manage.EXIT_OK
        return manage.EXIT_FAILED

    @manage.args('--limit', type=int, default=None,
                 help='Show only the newest N restores.')
    @manage.format_arg
    def list(self, limit=None, fmt='table'):
        """List restores, newest first."""
        restores = self.env.catalogue.list_restores(limit)
        for r in restores:
            r.pop('plan', None)
        if fmt == 'json':
            output.emit_json(restores)
        else:
            output.table(restores, [
                ('ID', 'id'), ('Backup', 'backup_id'), ('Status', 'status'),
                ('Created', 'created_at'), ('Finished', 'finished_at'),
                ('Hosts', lambda r: r['hosts'] or 'all'),
                ('Services', lambda r: r['services'] or 'all'),
                ('Error', 'error')])
        return manage.EXIT_OK

    @manage.args('restore_id', type=int, metavar='RESTORE_ID',
                 help='ID of the restore.')
    @manage.format_arg
    def show(self, restore_id, fmt='table'):
        """Show a restore and the timeline of its steps."""
        restore = self.env.catalogue.get_restore(restore_id)
        if fmt == 'json':
            output.emit_json(public(restore))
        else:
            print_restore(paths.real_targets(restore,
                                             self.env.agent_roots()))
        return manage.EXIT_OK
