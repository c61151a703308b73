"""``osbackup-manage backup``: create, list and show backups."""

import sys

from osbackup import manage
from osbackup.manage import output
from osbackup.manage import waiting
from osbackup import states

_SHOW_FIELDS = ['id', 'status', 'policy', 'hosts', 'services', 'created_at',
                'finished_at', 'error']


def artifact_rows(backup: dict) -> list:
    """The artifacts of a backup as the CLI shows them.

    A task that stored nothing still appears, so a skipped or failed
    service is visible next to the ones that succeeded.
    """
    rows = [{k: a[k] for k in ('host', 'service', 'name', 'kind', 'status',
                               'size', 'sha256', 'location')}
            for a in backup['artifacts']]
    for task in backup['tasks']:
        if task['status'] not in (states.SUCCEEDED, states.SKIPPED):
            rows.append({'host': task['host'], 'service': task['service'],
                         'name': task['service'], 'kind': None,
                         'status': task['status'].lower(), 'size': None,
                         'sha256': None, 'location': None,
                         'error': task['error']})
    return sorted(rows, key=lambda r: (r['host'], r['service'], r['name']))


def public(backup: dict) -> dict:
    """The JSON form of a backup."""
    out = {k: backup[k] for k in _SHOW_FIELDS}
    out['artifacts'] = artifact_rows(backup)
    keys = ('id', 'host', 'service', 'kind', 'status', 'error', 'started_at',
            'finished_at', 'progress_bytes', 'progress_files')
    out['tasks'] = [{k: t[k] for k in keys} for t in backup['tasks']]
    return out


def print_backup(backup: dict) -> None:
    output.fields(backup, _SHOW_FIELDS)
    output.table(artifact_rows(backup), [
        ('Host', 'host'), ('Service', 'service'), ('Name', 'name'),
        ('Status', 'status'), ('Size', lambda r: output.human_size(r['size'])),
        ('SHA-256', lambda r: (r['sha256'] or '')[:16] or None),
        ('Location / error', lambda r: r.get('location') or r.get('error'))])


class BackupCommands:
    """Backups of the fleet."""

    def __init__(self, env):
        self.env = env

    @manage.args('--host', dest='hosts', action='append', default=[],
                 metavar='HOST',
                 help='Back up this host (repeatable). Default: every agent '
                      'that is up.')
    @manage.args('--service', dest='services', action='append', default=[],
                 metavar='SERVICE',
                 help='Back up this service (repeatable), e.g. mysql, nova. '
                      'Default: every driver of each agent.')
    @manage.args('--wait', action='store_true',
                 help='Wait for the backup to end, showing progress; exit '
                      'non-zero unless every task succeeded. Always on in '
                      'all-in-one mode.')
    @manage.format_arg
    def create(self, hosts=None, services=None, wait=False, fmt='table'):
        """Back up services on hosts: one task per (host, service)."""
        backup = self.env.call('create_backup', hosts=hosts or [],
                               services=services or [])
        if wait or self.env.all_in_one:
            print('Backup %s started' % backup['id'], file=sys.stderr)
            backup = waiting.wait(
                lambda: self.env.catalogue.get_backup(backup['id']))
        if fmt == 'json':
            output.emit_json(public(backup))
        else:
            print_backup(backup)
        if backup['status'] in (states.PENDING, states.RUNNING):
            return manage.EXIT_OK
        return manage.EXIT_OK if backup['status'] == states.SUCCEEDED \
            else manage.EXIT_FAILED

    @manage.args('--limit', type=int, default=None,
                 help='Show only the newest N backups.')
    @manage.format_arg
    def list(self, limit=None, fmt='table'):
        """List backups, newest first."""
        backups = self.env.catalogue.list_backups(limit)
        if fmt == 'json':
            output.emit_json(backups)
        else:
            output.table(backups, [
                ('ID', 'id'), ('Status', 'status'),
                ('Created', 'created_at'), ('Hosts', 'hosts'),
                ('Services', lambda b: b['services'] or 'all'),
                ('Artifacts', 'artifact_count'),
                ('Size', lambda b: output.human_size(b['size'])),
                ('Policy', 'policy')])
        return manage.EXIT_OK

    @manage.args('backup_id', type=int, metavar='BACKUP_ID',
                 help='ID of the backup.')
    @manage.format_arg
    def show(self, backup_id, fmt='table'):
        """Show a backup with its artifacts."""
        backup = self.env.catalogue.get_backup(backup_id)
        if fmt == 'json':
            output.emit_json(public(backup))
        else:
            print_backup(backup)
        return manage.EXIT_OK
